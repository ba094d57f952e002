using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LLama;
using LLama.Batched;
using LLama.Common;
using LLama.Native;
using Microsoft.Extensions.DependencyInjection;
using SharpLM.Inference.Sampling;
using SharpLM.Server.Scheduling;
using SharpLM.Tensors;
using SharpLM.Testing;
using SharpLM.Tests.Models;
using Xunit.Abstractions;

namespace SharpLM.Server.Tests;

/// <summary>
/// Aggregate decode throughput at 1, 4, 8 and 16 concurrent greedy streams on the same GGUF and threads: SharpLM's
/// scheduler (the server's engine, and the same through HTTP) against llama.cpp's batched decoding (LLamaSharp's
/// BatchedExecutor: one llama_decode per step for all sequences). Peers run alternately, medians of the repetitions.
/// Writes .cache/bench/server.md. Only with SHARPLM_BENCH=1 (minutes).
/// </summary>
public sealed class ServerBenchmark(ITestOutputHelper output)
{
    private const int Threads = 2, Steps = 48, PromptLength = 16, Reps = 3;
    private static readonly int[] Streams = [1, 4, 8, 16];

    [BenchFact]
    public async Task Aggregate_decode_tokens_per_second_against_llama_cpp_batched()
    {
        var dir = Path.Combine(TestPaths.RepoRoot, ".cache", "bench");
        Directory.CreateDirectory(dir);
        var spec = new TinySpec("llama", Dim: 512, Layers: 8, Heads: 8, KvHeads: 4, Ffn: 1536, Vocab: 32000, Ctx: 512);
        // experiment: the row count from which matrix products take the GEMM path instead of the per-row matvec
        if (int.TryParse(Environment.GetEnvironmentVariable("SHARPLM_BENCH_GEMM_MIN_ROWS"), out int gemmMin)) SharpLM.Kernels.MatMul.GemmMinRows = gemmMin;
        var types = Environment.GetEnvironmentVariable("SHARPLM_BENCH_TYPES") is { Length: > 0 } typeList ? typeList.Split(',').Select(Enum.Parse<DType>).ToArray() : [DType.Q8_0, DType.F32];
        var report = new StringBuilder();
        report.AppendLine($"cpu: {Cpu()}; threads {Threads}; {Steps} decode steps per stream after a {PromptLength}-token prompt; medians of {Reps} alternating runs; GEMM from {SharpLM.Kernels.MatMul.GemmMinRows} rows; load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]} at the start");
        report.AppendLine();
        report.AppendLine("| model | streams | SharpLM engine tok/s | SharpLM HTTP tok/s | llama.cpp batched tok/s | engine / llama.cpp | engine / SharpLM 1 stream |");
        report.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var type in types)
        {
            var path = Path.Combine(dir, $"bench-{spec.Dim}x{spec.Layers}-{type}.gguf");
            if (!File.Exists(path)) TinyLlama.Random(spec, seed: 5).WriteGguf(path, type);
            var prompts = Enumerable.Range(0, Streams.Max()).Select(i => TinyLlama.Random(spec, 0).RandomPrompt(PromptLength, 100 + i)).ToArray();
            await using var server = await TestServer.StartAsync(new SharpLMServerOptions { Model = path, Parallel = Streams.Max(), ContextSize = 256, Threads = Threads, PrefixCache = false });
            var engine = server.App.Services.GetRequiredService<ServerEngine>();
            using var llama = new LlamaBatched(path, Threads);
            double single = 0;
            foreach (int k in Streams)
            {
                var ours = new List<double>();
                var http = new List<double>();
                var theirs = new List<double>();
                for (int r = 0; r < Reps + 1; r++)
                {
                    var a = await EngineRate(engine, prompts[..k]);
                    var b = await llama.RateAsync(prompts[..k], Steps);
                    var c = await HttpRate(server, prompts[..k]);
                    if (r == 0) continue; // warm-up
                    ours.Add(a);
                    theirs.Add(b);
                    http.Add(c);
                }
                double o = Median(ours), t = Median(theirs), h = Median(http);
                if (k == 1) single = o;
                var line = $"| {spec.Dim}x{spec.Layers} {type} | {k} | {o:F1} | {h:F1} | {t:F1} | {o / t:F2} | {o / single:F2} |";
                report.AppendLine(line);
                output.WriteLine(line);
            }
        }
        File.WriteAllText(Path.Combine(dir, $"server-gemm{SharpLM.Kernels.MatMul.GemmMinRows}.md"), report.ToString());
        output.WriteLine(report.ToString());
    }

    private static double Median(List<double> xs)
    {
        var s = xs.Order().ToArray();
        return s[s.Length / 2];
    }

    /// <summary>Decode tokens per second: the tokens that arrive after every stream has its first token (so all are
    /// decoding), over that window.</summary>
    private static double Rate(List<long>[] times)
    {
        long start = times.Max(t => t[0]), end = times.Max(t => t[^1]);
        int tokens = times.Sum(t => t.Count(x => x > start));
        return tokens / Stopwatch.GetElapsedTime(start, end).TotalSeconds;
    }

    /// <summary>K greedy jobs straight on the scheduler (the server's engine, no HTTP).</summary>
    private static async Task<double> EngineRate(ServerEngine engine, int[][] prompts)
    {
        var jobs = prompts.Select(p => new GenerationJob(p, 1, SamplingOptions.Greedy, Steps + 1, [])).ToArray();
        var times = jobs.Select(_ => new List<long>()).ToArray();
        foreach (var j in jobs) engine.Scheduler!.Submit(j);
        await Task.WhenAll(jobs.Select(async (j, i) =>
        {
            await foreach (var e in j.Events.ReadAllAsync())
                if (e.Finish is null) times[i].Add(Stopwatch.GetTimestamp());
        }));
        return Rate(times);
    }

    /// <summary>The same through HTTP: K streaming /v1/completions requests with token-id prompts.</summary>
    private static async Task<double> HttpRate(TestServer s, int[][] prompts)
    {
        var times = prompts.Select(_ => new List<long>()).ToArray();
        var model = Path.GetFileNameWithoutExtension(s.App.Services.GetRequiredService<ServerEngine>().Options.Model!);
        await Task.WhenAll(prompts.Select(async (p, i) =>
        {
            var body = JsonSerializer.Serialize(new Dictionary<string, object> { ["model"] = model, ["prompt"] = p, ["max_tokens"] = Steps + 1, ["temperature"] = 0, ["stream"] = true });
            using var req = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            using var resp = await s.Http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await resp.Content.ReadAsStreamAsync());
            string? line;
            while ((line = await reader.ReadLineAsync()) != null)
                if (line.StartsWith("data: {", StringComparison.Ordinal) && !line.Contains("\"finish_reason\":\"", StringComparison.Ordinal)) times[i].Add(Stopwatch.GetTimestamp());
        }));
        return Rate(times);
    }

    private static string Cpu()
    {
        foreach (var l in File.ReadLines("/proc/cpuinfo"))
            if (l.StartsWith("model name", StringComparison.Ordinal)) return l[(l.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
        return "unknown";
    }

    /// <summary>llama.cpp's batched decoding through LLamaSharp's BatchedExecutor, greedy.</summary>
    private sealed class LlamaBatched : IDisposable
    {
        private readonly LLamaWeights _weights;
        private readonly ModelParams _params;

        public LlamaBatched(string path, int threads)
        {
            NativeLogConfig.llama_log_set((level, message) => { if (level == LLamaLogLevel.Error) Console.Error.Write(message); });
            _params = new ModelParams(path)
            {
                ContextSize = 256 * 16,
                BatchSize = 512,
                UBatchSize = 512,
                GpuLayerCount = 0,
                Threads = threads,
                BatchThreads = threads,
                FlashAttention = false,
                TypeK = GGMLType.GGML_TYPE_F32,
                TypeV = GGMLType.GGML_TYPE_F32,
            };
            _weights = LLamaWeights.LoadFromFile(_params);
        }

        public async Task<double> RateAsync(int[][] prompts, int steps)
        {
            using var ex = new BatchedExecutor(_weights, _params);
            var convs = prompts.Select(p =>
            {
                var c = ex.Create();
                c.Prompt(p.Select(t => (LLamaToken)t).ToList());
                return c;
            }).ToList();
            await ex.Infer();
            var sw = Stopwatch.StartNew();
            for (int s = 0; s < steps; s++)
            {
                foreach (var c in convs)
                {
                    var logits = c.Sample();
                    int best = 0;
                    for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
                    c.Prompt((LLamaToken)best);
                }
                await ex.Infer();
            }
            double rate = (double)prompts.Length * steps / sw.Elapsed.TotalSeconds;
            foreach (var c in convs) c.Dispose();
            return rate;
        }

        public void Dispose() => _weights.Dispose();
    }
}
