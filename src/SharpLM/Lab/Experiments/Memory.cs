using System.Globalization;
using System.Text.Json.Nodes;
using SharpLM.Formats.Gguf;
using SharpLM.Inference;
using SharpLM.Inference.Sampling;
using SharpLM.Models;
using SharpLM.Quantization;
using SharpLM.Sizing;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;
using SharpLM.Training;
using SharpLM.Training.Checkpoints;
using SharpLM.Training.Data;
using static SharpLM.Lab.LabReport;

namespace SharpLM.Lab.Experiments;

/// <summary>
/// <c>memory</c> (note 6): the note's 2n GB to serve and 16n GB to train with Adam, and calc's estimates
/// (<see cref="InferenceMemory"/>, <see cref="TrainingMemory"/>), against the peak resident memory that SharpLM's own runs
/// reach: for LLaMA models of several sizes, a few AdamW training steps (<see cref="TrainStep"/>), then greedy generation
/// from the model exported as F32 GGUF and requantized to Q8_0 (the inference path, weights memory-mapped).
/// The peak is the process's VmHWM (Linux), reset before each run through /proc/self/clear_refs.
/// </summary>
internal sealed class Memory : LabExperiment
{
    public override string Name => "memory";
    public override string Summary => "peak resident memory of real training and generation runs against 2n / 16n and calc's estimates";

    public override LabReport Run(LabContext ctx)
    {
        var r = new LabReport(Name, "memory to serve and to train, measured");
        r.Claims.Add(new("6 (显存占用)", "推理时显存的下限是 2n GB，至少要把模型加载完全。训练时，如果用Adam优化器，有个2+2+12的公式，训练时显存下限是16n GB，需要把模型参数、梯度和优化器状态（4+4+4），保持在显存",
            "For an n-billion-parameter model, inference needs at least 2n GB (the fp16 weights must all be loaded). Training with Adam follows the 2+2+12 formula: at least 16n GB, for the parameters, gradients and optimizer states (4+4+4) kept in memory."));
        (int Dim, int Layers)[] sizes = ctx.Quick ? [(128, 2), (256, 2)] : [(128, 4), (256, 4), (512, 6), (768, 8), (1024, 8)];
        int vocab = 256, context = ctx.Quick ? 64 : 256, batch = ctx.Quick ? 2 : 4, steps = 2, generate = ctx.Quick ? 16 : 64;
        r.Method.Add($"**Models.** LLaMA decoders (RMSNorm, RoPE, SwiGLU, untied head, byte vocabulary V = {vocab}, heads of 64) of widths and depths {string.Join(", ", sizes.Select(s => $"{s.Dim}×{s.Layers}"))}, context {context}.");
        r.Method.Add($"**Training.** In this process: the trainer's model (`TrainModel`: parameters and gradients, f32), AdamW (two f32 moments) and {steps} steps of `TrainStep` on random tokens, batch {batch} × {context}; " +
                     $"against the note's 16n bytes and calc's `TrainingMemory` (AdamW, fp32, no ZeRO, no recomputation: model states + activations). " +
                     $"**Serving.** The trained model exported as F32 GGUF (`GgufExport`) and requantized to Q8_0 (`GgufRequantize`), loaded by `LanguageModel.Load` (memory-mapped), a prompt of {context / 2} tokens and {generate} greedy tokens through `Generator`; " +
                     "against the note's 2n (fp16), the file's bytes and calc's `InferenceMemory` (weights + F32 KV cache + working buffers).");
        r.Method.Add("**Measure.** Before each run the managed heap is collected aggressively (returning freed memory to the system) and the kernel's peak counter is reset (`echo 5 > /proc/self/clear_refs`); the run's figure is the peak resident set (VmHWM) minus the resident set just before it: " +
                     "what the run added, including the runtime's own growth (JIT, thread stacks, the GC's reserve) and the file pages it touched. GB = 10⁹ bytes.");
        if (!PeakRss.Supported)
        {
            r.Findings.Add("This system has no /proc/self/status with VmHWM or no /proc/self/clear_refs (not Linux): nothing was measured.");
            return r;
        }

        var train = new JsonArray();
        var serve = new JsonArray();
        var trainRows = new List<IReadOnlyList<string>>();
        var serveRows = new List<IReadOnlyList<string>>();
        var tmp = Path.Combine(Path.GetTempPath(), "sharplm-lab-memory-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(tmp);
        var trainPts = new List<(double, double)>[] { [], [], [] };
        var servePts = new List<(double, double)>[] { [], [], [], [] };
        try
        {
            for (int si = 0; si < sizes.Length; si++)
            {
                var (dim, layers) = sizes[si];
                ctx.Report($"training {dim}x{layers}", (double)si / sizes.Length);
                var cfg = LabTraining.Llama(vocab, dim, layers, dim / 64 == 0 ? 1 : dim / 64, context);
                var pc = new ParameterCount(cfg);
                long n = pc.Total;
                var est = TrainingMemory.Estimate(pc, OptimizerKind.AdamW, Precision.Fp32, 0, 1, batch, context, Recompute.None);
                var rng = ctx.Random(si);
                TrainModel? model = null;
                var (trainPeak, trainBase) = PeakRss.During(() =>
                {
                    model = new TrainModel(cfg);
                    model.Initialize(ctx.Seed + (ulong)si);
                    LabTraining.Run(model, steps, batch, context, 1e-3, 0, (_, x, y) =>
                    {
                        for (int i = 0; i < x.Length; i++) x[i] = rng.Next(vocab);
                        for (int i = 0; i < y.Length; i++) y[i] = i % context + 1 < context ? x[i + 1] : rng.Next(vocab);
                    });
                });
                long trainUsed = trainPeak - trainBase;
                trainRows.Add([$"{dim}×{layers}", N(n), GB(16 * n), GB(est.ModelStates), GB(est.Activations), GB(est.Total), GB(trainUsed), F((double)trainUsed / n)]);
                train.Add((JsonNode)new JsonObject
                {
                    ["width"] = dim, ["layers"] = layers, ["parameters"] = n, ["note_16n_bytes"] = 16 * n, ["calc_model_states"] = est.ModelStates,
                    ["calc_activations"] = est.Activations, ["calc_total"] = est.Total, ["batch"] = batch, ["sequence"] = context, ["steps"] = steps,
                });
                r.Timings[$"train_{dim}x{layers}"] = new JsonObject { ["peak_rss"] = trainPeak, ["base_rss"] = trainBase, ["added_bytes"] = trainUsed };
                trainPts[0].Add((n, 16.0 * n));
                trainPts[1].Add((n, est.Total));
                trainPts[2].Add((n, trainUsed));

                // serving: the same model as files
                ctx.Report($"serving {dim}x{layers}", (si + 0.6) / sizes.Length);
                string f32 = Path.Combine(tmp, $"m{si}-f32.gguf"), q8 = Path.Combine(tmp, $"m{si}-q8_0.gguf");
                GgufExport.Write(f32, cfg, model!.Parameters, new ByteTokenizer());
                model = null;
                using (var src = GgufFile.Open(f32)) GgufRequantize.Build(src, QuantFileType.Parse("Q8_0")).Write(q8);
                foreach (var (label, path, type) in new[] { ("F32", f32, DType.F32), ("Q8_0", q8, DType.Q8_0) })
                {
                    var inf = InferenceMemory.Estimate(pc, DTypes.Of(type), DTypes.Of(DType.F32), context, 1);
                    long fileBytes = new FileInfo(path).Length;
                    int[] prompt = [.. Enumerable.Range(0, context / 2).Select(_ => rng.Next(vocab))];
                    int produced = 0;
                    var (peak, bas) = PeakRss.During(() =>
                    {
                        using var lm = LanguageModel.Load(path, new ModelLoadOptions { ContextSize = context });
                        var gen = new Generator(lm.CreateState(context), new Sampler(SamplingOptions.Greedy, lm.Config.Vocab), []);
                        produced = gen.Generate(prompt, generate).Count();
                    });
                    long used = peak - bas;
                    serveRows.Add([$"{dim}×{layers}", label, N(n), GB(2 * n), GB(fileBytes), GB(inf.Weights), GB(inf.Total), GB(used), F((double)used / n)]);
                    serve.Add((JsonNode)new JsonObject
                    {
                        ["width"] = dim, ["layers"] = layers, ["type"] = label, ["parameters"] = n, ["note_2n_bytes"] = 2 * n, ["file_bytes"] = fileBytes,
                        ["calc_weights"] = inf.Weights, ["calc_kv_cache"] = inf.KvCache, ["calc_activations"] = inf.Activations, ["calc_total"] = inf.Total,
                        ["generated_tokens"] = produced,
                    });
                    r.Timings[$"serve_{dim}x{layers}_{label}"] = new JsonObject { ["peak_rss"] = peak, ["base_rss"] = bas, ["added_bytes"] = used };
                    var pts = servePts[label == "F32" ? 1 : 2];
                    pts.Add((n, used));
                    if (label == "F32") servePts[0].Add((n, 2.0 * n));
                    if (label == "F32") servePts[3].Add((n, inf.Total));
                    File.Delete(path);
                }
            }
        }
        finally
        {
            try { Directory.Delete(tmp, recursive: true); }
            catch (IOException) { }
        }
        r.Data["training"] = train;
        r.Data["serving"] = serve;
        r.Tables.Add(new("**Training** (AdamW, f32; the measured figures are under `timings` in the JSON):",
            ["model", "parameters n", "note 16n", "calc model states", "calc activations", "calc total", "measured peak added", "measured bytes / parameter"], trainRows));
        r.Tables.Add(new("**Serving** (greedy generation):",
            ["model", "weights", "parameters n", "note 2n (fp16)", "file", "calc weights", "calc total", "measured peak added", "measured bytes / parameter"], serveRows));

        // findings from the largest model, where the runtime's fixed cost matters least
        var lastTrain = trainRows[^1];
        long bigN = (long)train[^1]!["parameters"]!;
        long bigTrain = (long)r.Timings[$"train_{sizes[^1].Dim}x{sizes[^1].Layers}"]!["added_bytes"]!;
        long bigStates = (long)train[^1]!["calc_model_states"]!, bigTotal = (long)train[^1]!["calc_total"]!;
        r.Findings.Add($"Training the largest model ({lastTrain[0]}, {N(bigN)} parameters) added {GB(bigTrain)} GB at its peak: {F((double)bigTrain / bigN)} bytes per parameter, against the note's 16 " +
                       $"(SharpLM trains in f32: 4 + 4 + 8 = 16 bytes of model states per parameter, the note's total by another split than its 2 + 2 + 12) and calc's {GB(bigTotal)} GB with activations " +
                       $"({F((double)bigTrain / bigTotal)}× calc). The 16n is a floor: activations, the logits of the loss and the runtime come on top" +
                       (bigTrain < bigStates ? "; here the run stayed under it, which means some states were never touched (zero pages are not resident until written)." : "."));
        var f32Big = serve.Select(x => x!.AsObject()).Last(o => (string)o["type"]! == "F32");
        var q8Big = serve.Select(x => x!.AsObject()).Last(o => (string)o["type"]! == "Q8_0");
        long f32Used = (long)r.Timings[$"serve_{sizes[^1].Dim}x{sizes[^1].Layers}_F32"]!["added_bytes"]!;
        long q8Used = (long)r.Timings[$"serve_{sizes[^1].Dim}x{sizes[^1].Layers}_Q8_0"]!["added_bytes"]!;
        r.Findings.Add($"Serving it: F32 weights added {GB(f32Used)} GB ({F((double)f32Used / bigN)} bytes per parameter; file {GB((long)f32Big["file_bytes"]!)} GB), Q8_0 {GB(q8Used)} GB ({F((double)q8Used / bigN)} bytes per parameter; file {GB((long)q8Big["file_bytes"]!)} GB). " +
                       "The note's 2n is the fp16 case: the bytes per weight of the type in use set the floor (4 for F32, 1.0625 for Q8_0), the KV cache and the working buffers come on top, " +
                       $"as calc's {GB((long)f32Big["calc_total"]!)} GB (F32) says.");
        r.Findings.Add("At the small sizes the fixed cost of the runtime (JIT'd code, thread pools, the GC's reserves) dominates: bytes per parameter fall as n grows, toward the formula's constant.");

        r.Panels.Add(new ChartPanel
        {
            Title = "training: peak memory added", XLabel = "parameters", YLabel = "bytes", LogX = true, LogY = true,
            Series = [new("note 16n", trainPts[0]), new("calc total", trainPts[1]), new("measured", trainPts[2])],
        });
        r.Panels.Add(new ChartPanel
        {
            Title = "serving: peak memory added", XLabel = "parameters", YLabel = "bytes", LogX = true, LogY = true,
            Series = [new("note 2n", servePts[0]), new("measured f32", servePts[1]), new("measured q8_0", servePts[2]), new("calc total f32", servePts[3])],
        });
        r.ChartWidth = 1200;
        return r;
    }

    private static string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
    private static string GB(long bytes) => F(bytes / 1e9);
}

/// <summary>The process's resident memory from /proc/self/status (Linux): the current set (VmRSS), the peak (VmHWM), and
/// the peak reset (writing 5 to /proc/self/clear_refs).</summary>
internal static class PeakRss
{
    public static bool Supported => File.Exists("/proc/self/clear_refs") && Read("VmHWM:") > 0;

    /// <summary>Runs <paramref name="action"/> after collecting the managed heap and resetting the peak; returns the peak
    /// resident bytes during it and the resident bytes just before it.</summary>
    public static (long Peak, long Before) During(Action action)
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        File.WriteAllText("/proc/self/clear_refs", "5");
        long before = Read("VmRSS:");
        action();
        long peak = Read("VmHWM:");
        return (peak, before);
    }

    /// <summary>A "Name:   123 kB" line of /proc/self/status, in bytes; 0 when absent.</summary>
    public static long Read(string key)
    {
        if (!File.Exists("/proc/self/status")) return 0;
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key, StringComparison.Ordinal))
            {
                var parts = line[key.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(parts[0], CultureInfo.InvariantCulture) * 1024;
            }
        return 0;
    }
}
