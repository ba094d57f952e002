using System.Diagnostics;
using System.Globalization;
using LLama;
using LLama.Batched;
using LLama.Common;
using LLama.Native;
using SharpLM.Benchmarks.Kernels;
using SharpLM.Formats.Gguf;
using SharpLM.Inference;
using SharpLM.Inference.Sampling;
using SharpLM.Kernels;
using SharpLM.Models;
using SharpLM.Tensors;

namespace SharpLM.Benchmarks.Inference;

/// <summary>
/// SharpLM against llama.cpp (LLamaSharp 0.30 CPU backend, FlashAttention off, F32 KV cache) on the same random-weight
/// GGUF, in one process, with the machine's limits measured in the same run: for each shape, weight type and thread
/// count, prefill (one batched pass of the prompt) and decode (one token per pass, greedy) tokens/s, the two engines
/// alternating run by run, medians. Decode is also reported as GB/s of weights against the DRAM read limit, prefill as
/// GFLOP/s (2 x matrix parameters x tokens) against the FMA peak. With <c>--streams</c> it runs the many-sequence race
/// instead: N sequences decoded together (SharpLM <see cref="BatchDecoder"/>, llama.cpp <see cref="BatchedExecutor"/>).
/// <code>
/// dotnet run -c Release --project bench/SharpLM.Benchmarks -- decode-race [--shapes tiny,134m] [--types F32,F16,Q8_0,Q4_K]
///     [--threads 1,2] [--prompt 128] [--gen 64] [--repeat 5] [--streams 1,4,8,16]
/// </code>
/// Shapes: tiny = TinyLlama 1.1B (C 2048, L 22, NH 32, KVH 4, F 5632, V 32000); 134m = SmolLM-135M (C 576, L 30,
/// NH 9, KVH 3, F 1536, V 49152). Files go to $TMPDIR/sharplm-bench and are deleted afterwards.
/// </summary>
internal static class DecodeRace
{
    internal sealed record Shape(string Name, int Dim, int Layers, int Heads, int KvHeads, int Ffn, int Vocab);

    internal static readonly Shape[] Shapes =
    [
        new("tiny", 2048, 22, 32, 4, 5632, 32000),
        new("134m", 576, 30, 9, 3, 1536, 49152),
        // Qwen2.5-0.5B's dimensions (896 = 16 + 12 blocks of 32, ffn 4864 = 9 x 16 + 8): rows whose last blocks do not
        // fill a 16-block step, on a LLaMA-shaped model of random weights
        new("qwen05", 896, 24, 14, 2, 4864, 151936),
    ];

    public static void Run(string[] args)
    {
        string Opt(string name, string fallback)
        {
            int i = Array.IndexOf(args, "--" + name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }
        var shapes = Opt("shapes", "tiny,134m").Split(',').Select(n => Shapes.Single(s => s.Name == n)).ToArray();
        // a dtype (every matrix in it) or a llama.cpp file type (Q4_K_M, Q5_K_M, ...: the per-tensor mix, quantized from F16
        // by the library's requantizer, as `sharplm quantize` does)
        var types = Opt("types", "F32,F16,Q8_0,Q4_K").Split(',').ToArray();
        var threads = Opt("threads", "1,2").Split(',').Select(int.Parse).ToArray();
        int prompt = int.Parse(Opt("prompt", "128"), CultureInfo.InvariantCulture);
        int gen = int.Parse(Opt("gen", "64"), CultureInfo.InvariantCulture);
        int repeat = int.Parse(Opt("repeat", "5"), CultureInfo.InvariantCulture);
        var streams = Opt("streams", "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
        var dir = Path.Combine(Path.GetTempPath(), "sharplm-bench");
        Directory.CreateDirectory(dir);
        var lines = new List<string>
        {
            $"{Cpu()}, {Environment.ProcessorCount} logical CPUs, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, ISA {KernelIsaSelector.Current}, load average {Load()}",
            streams.Length == 0
                ? $"prompt {prompt}, gen {gen}, {repeat} runs each, engines alternated, medians"
                : $"{streams.Length} stream counts, prompt {prompt} per stream, gen {gen} steps, {repeat} runs each, engines alternated, medians",
        };
        lines.Add(streams.Length == 0
            ? "| shape | weights | threads | read limit GB/s | FMA peak GFLOP/s | SharpLM prefill tok/s | llama.cpp prefill tok/s | ratio | SharpLM prefill / FMA peak | SharpLM decode tok/s | llama.cpp decode tok/s | ratio | SharpLM decode GB/s / read limit |"
            : "| shape | weights | threads | streams | SharpLM aggregate tok/s | llama.cpp aggregate tok/s | ratio | SharpLM / its 1-stream rate |");
        lines.Add(streams.Length == 0 ? "|---|---|---|---|---|---|---|---|---|---|---|---|---|" : "|---|---|---|---|---|---|---|---|");
        foreach (var l in lines) Console.WriteLine(l);
        NativeLibraryConfig.All.WithLogCallback((_, _) => { });
        try
        {
            foreach (var shape in shapes)
                foreach (var type in types)
                {
                    bool pure = Enum.TryParse<DType>(type, out var dtype);
                    int block = pure ? DTypeInfo.BlockSize(dtype) : 1;
                    if (shape.Dim % block != 0 || shape.Ffn % block != 0)
                    {
                        Console.Error.WriteLine($"skipped {shape.Name} {type}: its widths ({shape.Dim}, {shape.Ffn}) are not whole {block}-value blocks");
                        continue;
                    }
                    var path = Path.Combine(dir, $"{shape.Name}-{type}.gguf");
                    var sw = Stopwatch.StartNew();
                    if (pure) WriteModel(path, dtype, shape);
                    else WriteMix(path, Quantization.QuantFileType.Parse(type), shape);
                    Console.Error.WriteLine($"wrote {path} ({new FileInfo(path).Length / 1e9:F2} GB) in {sw.Elapsed.TotalSeconds:F0} s");
                    try
                    {
                        foreach (int t in threads)
                        {
                            var rows = streams.Length == 0 ? Single(path, shape, type, t, prompt, gen, repeat) : Many(path, shape, type, t, prompt, gen, repeat, streams);
                            foreach (var r in rows) { Console.WriteLine(r); lines.Add(r); }
                        }
                    }
                    finally { File.Delete(path); }
                }
        }
        finally
        {
            File.WriteAllLines(Path.Combine(Path.GetTempPath(), streams.Length == 0 ? "sharplm-decode-race.md" : "sharplm-streams-race.md"), lines);
        }
    }

    /// <summary>decode-profile SHAPE TYPE THREADS GEN: SharpLM alone (for a profiler), decode tok/s printed.</summary>
    public static void Profile(string[] args)
    {
        var shape = Shapes.Single(s => s.Name == args[0]);
        var type = Enum.Parse<DType>(args[1]);
        int t = int.Parse(args[2], CultureInfo.InvariantCulture), gen = int.Parse(args[3], CultureInfo.InvariantCulture);
        var path = Path.Combine(Path.GetTempPath(), "sharplm-bench", $"profile-{shape.Name}-{type}.gguf");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (!File.Exists(path)) WriteModel(path, type, shape);
        if (args.Length > 4) { ProfileStreams(path, shape, int.Parse(args[4], CultureInfo.InvariantCulture), gen, t); return; }
        if (gen == 0) { ProfilePrefill(path, shape, t); return; }
        using var model = LanguageModel.Load(path, new ModelLoadOptions { ContextSize = gen + 80, BatchSize = 64, Threads = t });
        var state = model.CreateState();
        var prompt = Prompt(64, shape.Vocab, 1);
        for (int r = 0; r < 3; r++)
        {
            state.Truncate(0);
            var g = new Generator(state, new Sampler(SamplingOptions.Greedy, shape.Vocab), []);
            foreach (var _ in g.Generate(prompt, gen)) { }
            Console.WriteLine($"prefill {g.Stats.PrefillTokensPerSecond:F1} tok/s, decode {g.Stats.DecodeTokensPerSecond:F2} tok/s ({model.Weights.MatrixBytes * g.Stats.DecodeTokensPerSecond / 1e9:F1} GB/s)");
        }
    }

    /// <summary>decode-profile SHAPE TYPE THREADS 0: prefills a 128-token prompt over and over for 20 s (one batch), printing
    /// tok/s; for a sampling profiler.</summary>
    private static void ProfilePrefill(string path, Shape shape, int threads)
    {
        const int n = 128;
        using var model = LanguageModel.Load(path, new ModelLoadOptions { ContextSize = n + 1, BatchSize = n, Threads = threads });
        var state = model.CreateState();
        var prompt = Prompt(n, shape.Vocab, 1);
        var total = Stopwatch.StartNew();
        while (total.Elapsed.TotalSeconds < 20)
        {
            var sw = Stopwatch.StartNew();
            for (int r = 0; r < 5; r++)
            {
                state.Truncate(0);
                state.Forward(prompt, allLogits: false);
            }
            Console.WriteLine($"prefill {5 * n / sw.Elapsed.TotalSeconds:F1} tok/s");
        }
    }

    /// <summary>decode-profile SHAPE TYPE THREADS GEN STREAMS: N streams (prompt 32 each) decoded GEN steps, over and over
    /// for 20 s, printing the aggregate tok/s of each pass; for a sampling profiler (perf with DOTNET_PerfMapEnabled=1).</summary>
    private static void ProfileStreams(string path, Shape shape, int n, int gen, int threads)
    {
        const int promptTokens = 32;
        int ctxPer = promptTokens + gen + 1;
        using var model = LanguageModel.Load(path, new ModelLoadOptions { ContextSize = ctxPer, BatchSize = Math.Max(promptTokens, n), Threads = threads });
        var prompts = Enumerable.Range(0, n).Select(i => Prompt(promptTokens, shape.Vocab, 10 + i)).ToArray();
        var total = Stopwatch.StartNew();
        while (total.Elapsed.TotalSeconds < 20)
        {
            using var batch = model.CreateBatch(Math.Max(promptTokens, n) * n, n);
            var seqs = prompts.Select(_ => batch.AddSequence(ctxPer)).ToArray();
            batch.Decode([.. seqs.Select((s, i) => new SequenceInput(s, prompts[i]))]);
            var inputs = new SequenceInput[n];
            var sw = Stopwatch.StartNew();
            for (int step = 0; step < gen; step++)
            {
                for (int i = 0; i < n; i++) inputs[i] = new SequenceInput(seqs[i], new[] { Argmax(seqs[i].Logits) });
                batch.Decode(inputs);
            }
            Console.WriteLine($"{n} streams: {n * gen / sw.Elapsed.TotalSeconds:F1} tok/s");
        }
    }

    private static IEnumerable<string> Single(string path, Shape shape, string type, int t, int promptTokens, int genTokens, int repeat)
    {
        var (read, fma) = Limits(t);
        using var model = LanguageModel.Load(path, new ModelLoadOptions { ContextSize = promptTokens + genTokens + 1, BatchSize = promptTokens, Threads = t });
        var state = model.CreateState();
        var p = Params(path, promptTokens + genTokens + 1, promptTokens, t, 1);
        using var weights = LLamaWeights.LoadFromFile(p);
        using var ctx = weights.CreateContext(p);
        var prompt = Prompt(promptTokens, shape.Vocab, 1);
        (double, double) Ours()
        {
            state.Truncate(0);
            var g = new Generator(state, new Sampler(SamplingOptions.Greedy, shape.Vocab), []);
            foreach (var _ in g.Generate(prompt, genTokens)) { }
            return (g.Stats.PrefillTokensPerSecond, g.Stats.DecodeTokensPerSecond);
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
            for (int k = 0; k < genTokens - 1; k++) // the same number of one-token passes as SharpLM's decode
            {
                int best = Argmax(ctx.NativeHandle.GetLogitsIth(idx));
                batch.Clear();
                batch.Add((LLamaToken)best, pos++, LLamaSeqId.Zero, true);
                if (ctx.NativeHandle.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp decode failed");
                idx = 0;
            }
            return (prefill, (genTokens - 1) / s.Elapsed.TotalSeconds);
        }
        Ours(); Cpp(); // warm-up
        var ours = new List<(double P, double D)>();
        var cpp = new List<(double P, double D)>();
        for (int r = 0; r < repeat; r++)
        {
            if (r % 2 == 0) { ours.Add(Ours()); cpp.Add(Cpp()); }
            else { cpp.Add(Cpp()); ours.Add(Ours()); }
            Console.Error.WriteLine($"{shape.Name} {type} t{t} run {r + 1}: SharpLM {ours[^1].P:F1}/{ours[^1].D:F2}, llama.cpp {cpp[^1].P:F1}/{cpp[^1].D:F2} (prefill/decode tok/s)");
        }
        double op = Median(ours.Select(x => x.P)), od = Median(ours.Select(x => x.D));
        double cp = Median(cpp.Select(x => x.P)), cd = Median(cpp.Select(x => x.D));
        double matrixParams = MatrixParams(shape);
        yield return string.Create(CultureInfo.InvariantCulture,
            $"| {shape.Name} | {type} | {t} | {read:F1} | {fma:F0} | {op:F1} | {cp:F1} | {op / cp:F2} | {2 * matrixParams * op / 1e9 / fma:P0} | {od:F2} | {cd:F2} | {od / cd:F2} | {model.Weights.MatrixBytes * od / 1e9:F1} ({model.Weights.MatrixBytes * od / 1e9 / read:P0}) |");
    }

    private static IEnumerable<string> Many(string path, Shape shape, string type, int t, int promptTokens, int genTokens, int repeat, int[] counts)
    {
        int maxN = counts.Max();
        int ctxPer = promptTokens + genTokens + 1;
        using var model = LanguageModel.Load(path, new ModelLoadOptions { ContextSize = ctxPer, BatchSize = Math.Max(promptTokens, maxN), Threads = t });
        var p = Params(path, ctxPer * maxN, Math.Max(promptTokens, maxN) * maxN, t, maxN);
        using var weights = LLamaWeights.LoadFromFile(p);
        double oneStream = 0;
        foreach (int n in counts)
        {
            var prompts = Enumerable.Range(0, n).Select(i => Prompt(promptTokens, shape.Vocab, 10 + i)).ToArray();
            double Ours()
            {
                using var batch = model.CreateBatch(Math.Max(promptTokens, n) * n, Math.Max(n, 1));
                var seqs = prompts.Select(_ => batch.AddSequence(ctxPer)).ToArray();
                batch.Decode([.. seqs.Select((s, i) => new SequenceInput(s, prompts[i]))]);
                var inputs = new SequenceInput[n];
                var next = new int[n][];
                for (int i = 0; i < n; i++) next[i] = new int[1];
                var sw = Stopwatch.StartNew();
                for (int step = 0; step < genTokens; step++)
                {
                    for (int i = 0; i < n; i++) { next[i][0] = Argmax(seqs[i].Logits); inputs[i] = new SequenceInput(seqs[i], next[i]); }
                    batch.Decode(inputs);
                }
                return n * genTokens / sw.Elapsed.TotalSeconds;
            }
            double Cpp()
            {
                using var exec = new BatchedExecutor(weights, p);
                var convs = prompts.Select(pr => { var c = exec.Create(); c.Prompt(pr.Select(x => (LLamaToken)x).ToArray()); return c; }).ToArray();
                if (exec.Infer().GetAwaiter().GetResult() != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp prefill failed");
                var sw = Stopwatch.StartNew();
                for (int step = 0; step < genTokens; step++)
                {
                    foreach (var c in convs) c.Prompt((LLamaToken)Argmax(c.Sample()));
                    if (exec.Infer().GetAwaiter().GetResult() != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp decode failed");
                }
                double rate = n * genTokens / sw.Elapsed.TotalSeconds;
                foreach (var c in convs) c.Dispose();
                return rate;
            }
            Ours(); Cpp();
            var ours = new List<double>();
            var cpp = new List<double>();
            for (int r = 0; r < repeat; r++)
            {
                if (r % 2 == 0) { ours.Add(Ours()); cpp.Add(Cpp()); }
                else { cpp.Add(Cpp()); ours.Add(Ours()); }
                Console.Error.WriteLine($"{shape.Name} {type} t{t} streams {n} run {r + 1}: SharpLM {ours[^1]:F1}, llama.cpp {cpp[^1]:F1} tok/s");
            }
            double o = Median(ours), c = Median(cpp);
            if (n == 1) oneStream = o;
            yield return string.Create(CultureInfo.InvariantCulture,
                $"| {shape.Name} | {type} | {t} | {n} | {o:F1} | {c:F1} | {o / c:F2} | {(oneStream > 0 ? $"{o / oneStream:F2}" : "-")} |");
        }
    }

    private static ModelParams Params(string path, int ctx, int batch, int threads, int seqs) => new(path)
    {
        ContextSize = (uint)ctx, BatchSize = (uint)batch, UBatchSize = (uint)batch, SeqMax = (uint)seqs,
        GpuLayerCount = 0, Threads = threads, BatchThreads = threads, FlashAttention = false,
    };

    /// <summary>The read limit (GB/s, a sum in the widest vectors over 512 MB on <paramref name="threads"/> threads) and the FMA peak
    /// (GFLOP/s), best of 5.</summary>
    internal static (double Read, double Fma) Limits(int threads)
    {
        using var pool = new WorkerPool(threads);
        return (QuickKernelBench.ReadLimit(pool, 5), QuickKernelBench.FmaPeak(pool, 5));
    }

    internal static string Cpu() =>
        File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?" : "?";

    internal static string Load() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";

    private static double MatrixParams(Shape s)
    {
        int hs = s.Dim / s.Heads, kv = hs * s.KvHeads;
        return s.Layers * ((double)s.Dim * s.Dim * 2 + 2.0 * s.Dim * kv + 3.0 * s.Dim * s.Ffn) + (double)s.Vocab * s.Dim;
    }

    private static int[] Prompt(int n, int vocab, int seed)
    {
        var rng = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => rng.Next(3, vocab))];
    }

    private static int Argmax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    internal static double Median(IEnumerable<double> xs)
    {
        var a = xs.Order().ToArray();
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }

    /// <summary>A LLaMA GGUF of <paramref name="shape"/> with random weights (uniform, fan-in scaled) of
    /// <paramref name="type"/>, quantized in parallel chunks of rows while it is written.</summary>
    /// <summary>A model of <paramref name="shape"/> in a llama.cpp file type's per-tensor mix: written in F16, then
    /// requantized (<see cref="GgufRequantize"/>, what <c>sharplm quantize</c> runs).</summary>
    private static void WriteMix(string path, Quantization.QuantFileType fileType, Shape shape)
    {
        string f16 = path + ".f16.gguf";
        WriteModel(f16, DType.F16, shape);
        try
        {
            using var src = GgufFile.Open(f16);
            GgufRequantize.Build(src, fileType).Write(path);
        }
        finally { File.Delete(f16); }
    }

    internal static void WriteModel(string path, DType type, Shape shape)
    {
        var w = new GgufWriter();
        int hs = shape.Dim / shape.Heads, kv = hs * shape.KvHeads;
        w.Set("general.architecture", "llama").Set("llama.context_length", 4096u).Set("llama.embedding_length", (uint)shape.Dim)
         .Set("llama.block_count", (uint)shape.Layers).Set("llama.feed_forward_length", (uint)shape.Ffn).Set("llama.attention.head_count", (uint)shape.Heads)
         .Set("llama.attention.head_count_kv", (uint)shape.KvHeads).Set("llama.rope.freq_base", 10000f).Set("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        var tokens = new string[shape.Vocab];
        var ttypes = new int[shape.Vocab];
        tokens[0] = "<unk>"; tokens[1] = "<s>"; tokens[2] = "</s>"; ttypes[0] = 2; ttypes[1] = 3; ttypes[2] = 3;
        for (int b = 0; b < 256; b++) { tokens[b + 3] = $"<0x{b:X2}>"; ttypes[b + 3] = 6; }
        for (int i = 259; i < shape.Vocab; i++) { tokens[i] = "\u2581t" + i.ToString(CultureInfo.InvariantCulture); ttypes[i] = 1; }
        w.Set("tokenizer.ggml.model", "llama").Set("tokenizer.ggml.tokens", GgufArray.Of(tokens)).Set("tokenizer.ggml.token_type", GgufArray.Of(ttypes))
         .Set("tokenizer.ggml.scores", GgufArray.Of(new float[shape.Vocab])).Set("tokenizer.ggml.bos_token_id", 1u).Set("tokenizer.ggml.eos_token_id", 2u);
        void Mat(string name, int r, int c) => w.AddTensor(name, type, [r, c], s => WriteRows(s, type, name.GetHashCode(StringComparison.Ordinal), r, c));
        void Vec(string name, int n) => w.AddTensor(name, [n], DType.F32, (_, dst) => dst.Fill(1f));
        Mat("token_embd.weight", shape.Vocab, shape.Dim);
        for (int l = 0; l < shape.Layers; l++)
        {
            Vec($"blk.{l}.attn_norm.weight", shape.Dim);
            Mat($"blk.{l}.attn_q.weight", shape.Dim, shape.Dim);
            Mat($"blk.{l}.attn_k.weight", kv, shape.Dim);
            Mat($"blk.{l}.attn_v.weight", kv, shape.Dim);
            Mat($"blk.{l}.attn_output.weight", shape.Dim, shape.Dim);
            Vec($"blk.{l}.ffn_norm.weight", shape.Dim);
            Mat($"blk.{l}.ffn_gate.weight", shape.Ffn, shape.Dim);
            Mat($"blk.{l}.ffn_up.weight", shape.Ffn, shape.Dim);
            Mat($"blk.{l}.ffn_down.weight", shape.Dim, shape.Ffn);
        }
        Vec("output_norm.weight", shape.Dim);
        Mat("output.weight", shape.Vocab, shape.Dim);
        w.Write(path);
    }

    private static void WriteRows(Stream s, DType type, int seed, int rows, int cols)
    {
        var traits = SharpLM.Tensors.Types.DTypes.Of(type);
        int rb = checked((int)traits.RowBytes(cols));
        const int Chunk = 256;
        var buf = new byte[(long)rb * Chunk];
        float scale = 1.5f / MathF.Sqrt(cols);
        for (int r0 = 0; r0 < rows; r0 += Chunk)
        {
            int n = Math.Min(Chunk, rows - r0);
            Parallel.For(0, n, i =>
            {
                var row = new float[cols];
                uint st = (uint)(seed ^ (r0 + i)) * 2654435761u | 1;
                for (int k = 0; k < cols; k++)
                {
                    st ^= st << 13; st ^= st >> 17; st ^= st << 5;
                    row[k] = ((st >> 8) * (1f / (1 << 24)) * 2 - 1) * scale;
                }
                traits.QuantizeRow(row, buf.AsSpan(i * rb, rb));
            });
            s.Write(buf, 0, n * rb);
        }
    }
}
