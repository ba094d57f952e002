using System.Diagnostics;
using System.Globalization;
using LLama;
using LLama.Common;
using LLama.Native;
using SharpLM.Formats.Gguf;
using SharpLM.Inference;
using SharpLM.Inference.Sampling;
using SharpLM.Kernels;
using SharpLM.Models;
using SharpLM.Tensors;
using SharpLM.Testing;
using Xunit.Abstractions;

namespace SharpLM.Tests.Models;

/// <summary>
/// SharpLM vs llama.cpp on the same TinyLlama-shaped random GGUF (C 2048, L 22, NH 32, KVH 4, F 5632, V 32000), peers
/// alternated in one run, medians reported. Not a test: runs only with SHARPLM_BENCH=1 (minutes, GBs of disk).
/// SHARPLM_BENCH_TYPES (default F32,F16,Q8_0), SHARPLM_BENCH_THREADS (1,2), SHARPLM_BENCH_LAYERS (22),
/// SHARPLM_BENCH_PROMPT (128), SHARPLM_BENCH_GEN (64), SHARPLM_BENCH_REPEAT (3).
/// </summary>
public sealed class InferenceBenchmark(ITestOutputHelper output)
{
    private static string Env(string name, string fallback) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : fallback;

    [BenchFact]
    public void Sharplm_vs_llama_cpp_tokens_per_second()
    {
        var types = Env("SHARPLM_BENCH_TYPES", "F32,F16,Q8_0").Split(',').Select(Enum.Parse<DType>).ToArray();
        var threads = Env("SHARPLM_BENCH_THREADS", "1,2").Split(',').Select(int.Parse).ToArray();
        int layers = int.Parse(Env("SHARPLM_BENCH_LAYERS", "22"), CultureInfo.InvariantCulture);
        int promptTokens = int.Parse(Env("SHARPLM_BENCH_PROMPT", "128"), CultureInfo.InvariantCulture);
        int genTokens = int.Parse(Env("SHARPLM_BENCH_GEN", "64"), CultureInfo.InvariantCulture);
        int repeat = int.Parse(Env("SHARPLM_BENCH_REPEAT", "3"), CultureInfo.InvariantCulture);
        const int dim = 2048, heads = 32, kvHeads = 4, ffn = 5632, vocab = 32000;
        var dir = TestPaths.NewTempDir("bench");
        var rows = new List<string>
        {
            $"TinyLlama shape C{dim} L{layers} NH{heads} KVH{kvHeads} F{ffn} V{vocab}; prompt {promptTokens}, gen {genTokens}, {repeat} runs each, peers alternated; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC",
            "| weights | threads | SharpLM prefill tok/s | llama.cpp prefill tok/s | ratio | SharpLM decode tok/s | llama.cpp decode tok/s | ratio | SharpLM decode GB/s |",
            "|---|---|---|---|---|---|---|---|---|",
        };
        try
        {
            foreach (var type in types)
            {
                var path = Path.Combine(dir, $"tinyllama-{type}.gguf");
                var sw = Stopwatch.StartNew();
                WriteModel(path, type, dim, layers, heads, kvHeads, ffn, vocab);
                output.WriteLine($"wrote {path} ({new FileInfo(path).Length / 1e9:F2} GB) in {sw.Elapsed.TotalSeconds:F0} s");
                var prompt = new int[promptTokens];
                var rng = new Random(1);
                for (int i = 0; i < prompt.Length; i++) prompt[i] = rng.Next(3, vocab);
                foreach (int t in threads)
                {
                    WorkerPool.SetSharedThreads(t);
                    using var model = LanguageModel.Load(path, new ModelLoadOptions { ContextSize = promptTokens + genTokens + 1, BatchSize = promptTokens });
                    var state = model.CreateState();
                    var p = new ModelParams(path)
                    {
                        ContextSize = (uint)(promptTokens + genTokens + 1), BatchSize = (uint)promptTokens, UBatchSize = (uint)promptTokens,
                        GpuLayerCount = 0, Threads = t, BatchThreads = t, FlashAttention = false,
                    };
                    using var weights = LLamaWeights.LoadFromFile(p);
                    using var ctx = weights.CreateContext(p);
                    (double, double) Ours()
                    {
                        state.Truncate(0);
                        var gen = new Generator(state, new Sampler(SamplingOptions.Greedy, vocab), []);
                        foreach (var _ in gen.Generate(prompt, genTokens)) { }
                        return (gen.Stats.PrefillTokensPerSecond, gen.Stats.DecodeTokensPerSecond);
                    }
                    (double, double) Cpp()
                    {
                        ctx.NativeHandle.MemoryClear();
                        var batch = new LLamaBatch();
                        for (int i = 0; i < prompt.Length; i++) batch.Add((LLamaToken)prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
                        var s = Stopwatch.StartNew();
                        if (ctx.NativeHandle.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp decode failed");
                        double prefill = prompt.Length / s.Elapsed.TotalSeconds;
                        s.Restart();
                        int idx = prompt.Length - 1, pos = prompt.Length;
                        for (int k = 0; k < genTokens - 1; k++)   // the same number of one-token forward passes as SharpLM
                        {
                            var logits = ctx.NativeHandle.GetLogitsIth(idx);
                            int best = 0;
                            for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
                            batch.Clear();
                            batch.Add((LLamaToken)best, pos++, LLamaSeqId.Zero, true);
                            if (ctx.NativeHandle.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp decode failed");
                            idx = 0;
                        }
                        return (prefill, (genTokens - 1) / s.Elapsed.TotalSeconds);
                    }
                    Ours(); Cpp(); // warm-up
                    var ours = new List<(double, double)>();
                    var cpp = new List<(double, double)>();
                    for (int r = 0; r < repeat; r++)
                    {
                        ours.Add(Ours());
                        cpp.Add(Cpp());
                        output.WriteLine($"{type} t{t} run {r + 1}: SharpLM {ours[^1].Item1:F1}/{ours[^1].Item2:F2}, llama.cpp {cpp[^1].Item1:F1}/{cpp[^1].Item2:F2} (prefill/decode tok/s)");
                    }
                    double op = Median(ours.Select(x => x.Item1)), od = Median(ours.Select(x => x.Item2));
                    double cp = Median(cpp.Select(x => x.Item1)), cd = Median(cpp.Select(x => x.Item2));
                    rows.Add(string.Create(CultureInfo.InvariantCulture,
                        $"| {type} | {t} | {op:F1} | {cp:F1} | {op / cp:F2} | {od:F2} | {cd:F2} | {od / cd:F2} | {model.Weights.MatrixBytes * od / 1e9:F1} |"));
                }
                File.Delete(path);
            }
        }
        finally
        {
            WorkerPool.SetSharedThreads(Environment.ProcessorCount);
            foreach (var r in rows) output.WriteLine(r);
            File.WriteAllLines(Path.Combine(Path.GetTempPath(), "sharplm-inference-bench.md"), rows);
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    private static double Median(IEnumerable<double> xs)
    {
        var a = xs.Order().ToArray();
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }

    /// <summary>Random weights (uniform, fan-in scaled), written row by row so memory stays small.</summary>
    private static void WriteModel(string path, DType type, int dim, int layers, int heads, int kvHeads, int ffn, int vocab)
    {
        var w = new GgufWriter();
        w.Set("general.architecture", "llama").Set("llama.context_length", 2048u).Set("llama.embedding_length", (uint)dim)
         .Set("llama.block_count", (uint)layers).Set("llama.feed_forward_length", (uint)ffn).Set("llama.attention.head_count", (uint)heads)
         .Set("llama.attention.head_count_kv", (uint)kvHeads).Set("llama.rope.freq_base", 10000f).Set("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        var tokens = new string[vocab];
        var ttypes = new int[vocab];
        tokens[0] = "<unk>"; tokens[1] = "<s>"; tokens[2] = "</s>"; ttypes[0] = 2; ttypes[1] = 3; ttypes[2] = 3;
        for (int b = 0; b < 256; b++) { tokens[b + 3] = $"<0x{b:X2}>"; ttypes[b + 3] = 6; }
        for (int i = 259; i < vocab; i++) { tokens[i] = "\u2581t" + i.ToString(CultureInfo.InvariantCulture); ttypes[i] = 1; }
        w.Set("tokenizer.ggml.model", "llama").Set("tokenizer.ggml.tokens", GgufArray.Of(tokens)).Set("tokenizer.ggml.token_type", GgufArray.Of(ttypes))
         .Set("tokenizer.ggml.scores", GgufArray.Of(new float[vocab])).Set("tokenizer.ggml.bos_token_id", 1u).Set("tokenizer.ggml.eos_token_id", 2u);
        int kv = dim / heads * kvHeads;
        void Mat(string name, int r, int c) => w.AddTensor(name, [r, c], type, (row, dst) => Fill(dst, name.GetHashCode(StringComparison.Ordinal) ^ row, 1.5f / MathF.Sqrt(c)));
        void Vec(string name, int n) => w.AddTensor(name, [n], DType.F32, (_, dst) => dst.Fill(1f));
        Mat("token_embd.weight", vocab, dim);
        for (int l = 0; l < layers; l++)
        {
            Vec($"blk.{l}.attn_norm.weight", dim);
            Mat($"blk.{l}.attn_q.weight", dim, dim);
            Mat($"blk.{l}.attn_k.weight", kv, dim);
            Mat($"blk.{l}.attn_v.weight", kv, dim);
            Mat($"blk.{l}.attn_output.weight", dim, dim);
            Vec($"blk.{l}.ffn_norm.weight", dim);
            Mat($"blk.{l}.ffn_gate.weight", ffn, dim);
            Mat($"blk.{l}.ffn_up.weight", ffn, dim);
            Mat($"blk.{l}.ffn_down.weight", dim, ffn);
        }
        Vec("output_norm.weight", dim);
        Mat("output.weight", vocab, dim);
        w.Write(path);
    }

    private static void Fill(Span<float> dst, int seed, float scale)
    {
        uint s = (uint)seed * 2654435761u | 1;
        for (int i = 0; i < dst.Length; i++)
        {
            s ^= s << 13; s ^= s >> 17; s ^= s << 5;
            dst[i] = ((s >> 8) * (1f / (1 << 24)) * 2 - 1) * scale;
        }
    }
}
