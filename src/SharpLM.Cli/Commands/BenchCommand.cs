using System.Text.Json;
using SharpLM.Inference;
using SharpLM.Inference.Sampling;

namespace SharpLM.Cli.Commands;

/// <summary>
/// <c>sharplm bench</c>: prefill and decode throughput of a model on random token ids (greedy, EOS ignored), the median
/// of several runs after one warm-up, plus the weight bytes read per decoded token and the bandwidth that implies, and
/// the peak resident memory against the model file (mapped) plus the KV cache, apart from what the runtime held before
/// the model was loaded.
/// </summary>
internal sealed class BenchCommand : ICliCommand
{
    public string Name => "bench";
    public string Description => "Prefill and decode tokens/s of a model (medians of --repeat runs)";
    public string Usage => "[--model PATH] [--prompt-tokens 128] [--gen-tokens 64] [--threads N] [--mmap] [--repeat 3] [--json]";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        ModelCli.ModelOption,
        new("prompt-tokens", "prompt length evaluated as one batched pass (default 128)"),
        new("gen-tokens", "tokens decoded one at a time (default 64)"),
        new("repeat", "timed runs; the medians are reported (default 3)"),
        new("batch", "the most prompt tokens per forward pass (default 256)"),
        ModelCli.ThreadsOption,
        ModelCli.MapOption,
        new("json", "print one JSON object", IsFlag: true),
    ];

    public async Task<int> RunAsync(CliArgs args, CliContext context)
    {
        if (args.Positionals.Count > 0) throw new CliUsageException($"unexpected argument '{args.Positionals[0]}'");
        int promptTokens = args.Int("prompt-tokens", 128, min: 1);
        int genTokens = args.Int("gen-tokens", 64, min: 2);
        int repeat = args.Int("repeat", 3, min: 1, max: 1000);
        bool json = args.Flag("json");
        int threads = args.Int("threads", 0, min: 0, max: 1024); // 0: all cores
        var path = args.String("model") ?? ModelCli.DefaultModelPath();
        int ctxSize = promptTokens + genTokens;
        long baselineRss = Environment.WorkingSet; // the runtime and this program before the model is loaded
        using var model = Models.LanguageModel.Load(path, new ModelLoadOptions { ContextSize = ctxSize, BatchSize = args.Int("batch", 256, min: 1), Threads = threads, MapWeights = args.Flag("mmap") });
        var cfg = model.Config;
        var rng = new Random(1234);
        var prompt = new int[promptTokens];
        for (int i = 0; i < prompt.Length; i++) prompt[i] = rng.Next(cfg.Vocab);
        var state = model.CreateState();

        GenerationStats Run(int p, int g)
        {
            state.Truncate(0);
            var gen = new Generator(state, new Sampler(SamplingOptions.Greedy, cfg.Vocab), []);
            foreach (var _ in gen.Generate(prompt.AsSpan(0, p).ToArray(), g, null, context.CancellationToken)) { }
            return gen.Stats;
        }

        if (!json) await context.Error.WriteLineAsync($"bench {model.Path}: {promptTokens} prompt tokens, {genTokens} generated, {model.Threads} threads, {repeat} runs").ConfigureAwait(false);
        Run(Math.Min(promptTokens, 16), 3); // warm-up: JIT and first touch of the mapped weights
        var runs = new List<GenerationStats>();
        for (int r = 0; r < repeat; r++)
        {
            var s = Run(promptTokens, genTokens);
            runs.Add(s);
            if (!json) await context.Error.WriteLineAsync($"  run {r + 1}: prefill {s.PrefillTokensPerSecond:F2} tok/s, decode {s.DecodeTokensPerSecond:F2} tok/s").ConfigureAwait(false);
        }
        double prefill = Median(runs.Select(s => s.PrefillTokensPerSecond));
        double decode = Median(runs.Select(s => s.DecodeTokensPerSecond));
        long bytes = model.Weights.MatrixBytes;
        double gbps = bytes * decode / 1e9;
        // memory: what the process held at its peak against what it must hold (the model file, mapped, and the KV cache)
        long peakRss = System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64;
        long fileBytes = File.Exists(model.Path) ? new FileInfo(model.Path).Length
            : Directory.Exists(model.Path) ? Directory.EnumerateFiles(model.Path, "*.safetensors").Sum(f => new FileInfo(f).Length) : 0;
        long kvBytes = state.Cache.Bytes;
        long needed = fileBytes + kvBytes;
        double over = needed > 0 ? (double)(peakRss - baselineRss) / needed - 1 : 0;
        if (json)
        {
            var o = new BenchJson(model.Path, model.Threads, promptTokens, genTokens, repeat, prefill, decode,
                [.. runs.Select(s => s.PrefillTokensPerSecond)], [.. runs.Select(s => s.DecodeTokensPerSecond)], bytes, gbps,
                new BenchMemoryJson(peakRss, baselineRss, fileBytes, kvBytes, over));
            await context.Out.WriteLineAsync(JsonSerializer.Serialize(o, CliJson.Default.BenchJson)).ConfigureAwait(false);
        }
        else
        {
            await context.Out.WriteLineAsync($"prefill: {prefill:F2} tok/s (median of {repeat})").ConfigureAwait(false);
            await context.Out.WriteLineAsync($"decode:  {decode:F2} tok/s (median of {repeat}); {bytes / 1e6:F1} MB of weights per token = {gbps:F2} GB/s").ConfigureAwait(false);
            await context.Out.WriteLineAsync($"memory:  peak resident {peakRss / 1e6:F1} MB = runtime before loading {baselineRss / 1e6:F1} MB + {(peakRss - baselineRss) / 1e6:F1} MB for the model, " +
                $"against its file {fileBytes / 1e6:F1} MB + KV cache {kvBytes / 1e6:F1} MB ({over * 100:+0.0;-0.0}%)").ConfigureAwait(false);
        }
        return 0;
    }

    private static double Median(IEnumerable<double> xs)
    {
        var a = xs.Order().ToArray();
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }
}
