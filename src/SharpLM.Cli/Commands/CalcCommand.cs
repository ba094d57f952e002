using System.Globalization;
using System.Text;
using System.Text.Json;
using SharpLM.Sizing;

namespace SharpLM.Cli.Commands;

/// <summary>
/// <c>sharplm calc</c>: parameter count by component (with formulas), inference memory (weights, KV cache,
/// activations), training memory (optimizer, mixed precision, ZeRO stages, activations with or without
/// recomputation) and FLOPs, from a config.json, a model file or folder, or a named preset.
/// </summary>
internal sealed class CalcCommand : ICliCommand
{
    public string Name => "calc";
    public string Description => "Parameters, memory and FLOPs of a model from its config, file or a preset";
    public string Usage => "(--config FILE | --model PATH | --preset NAME | --list-presets) [--dtype D] [--context N] [--batch N] [--train] [--optimizer adam|adamw|sgd] [--zero 0|1|2|3] [--gpus N] [--json]";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        new("config", "a Hugging Face config.json"),
        new("model", "a GGUF file or a Hugging Face folder (config.json + *.safetensors): also counts the tensors in the file"),
        new("preset", "a named architecture (see --list-presets)"),
        new("list-presets", "list the presets and exit", IsFlag: true),
        new("dtype", "weight type: f32, f16 (default), bf16, int8/q8_0, q6_k, q5_k, q5_0, q4_k, q4_1, q4_0"),
        new("kv-dtype", "KV cache type (default f16)"),
        new("context", "tokens of context for the KV cache and FLOPs (default: the model's context length, at most 4096)"),
        new("batch", "sequences at once (default 1); with --train the micro-batch per GPU"),
        new("train", "also estimate training memory", IsFlag: true),
        new("optimizer", "adam, adamw (default) or sgd (with momentum)"),
        new("precision", "mixed (default for adam/adamw: fp16/bf16 with fp32 master weights) or fp32 (default for sgd)"),
        new("zero", "ZeRO stage 0 (default), 1, 2 or 3"),
        new("gpus", "data-parallel GPUs the ZeRO stages shard over (default 1)"),
        new("seq", "training sequence length (default: --context)"),
        new("recompute", "activation recomputation: none (default), selective or full"),
        new("tflops", "sustained throughput per device in TFLOP/s, for time estimates"),
        new("train-tokens", "tokens to train on, for a total training time with --tflops"),
        new("no-pooler", "count an encoder without its pooler", IsFlag: true),
        new("json", "print one JSON object", IsFlag: true),
    ];

    public Task<int> RunAsync(CliArgs args, CliContext context)
    {
        if (args.Flag("list-presets"))
        {
            ListPresets(args.Flag("json"), context.Out);
            return Task.FromResult(0);
        }
        if (args.Positionals.Count > 0) throw new CliUsageException($"unexpected argument '{args.Positionals[0]}'");
        int given = (args.Has("config") ? 1 : 0) + (args.Has("model") ? 1 : 0) + (args.Has("preset") ? 1 : 0);
        if (given != 1) throw new CliUsageException("give exactly one of --config, --model, --preset (or --list-presets)");

        SizingInput input = args.String("config") is { } cfg ? ModelSource.FromConfig(cfg)
            : args.String("model") is { } m ? ModelSource.FromModel(m)
            : ModelSource.FromPreset(args.Required("preset"));
        var arch = input.Config;
        if (args.Flag("no-pooler")) arch = arch with { Pooler = false };

        Tensors.Types.TypeTraits weightType, kvType;
        try
        {
            weightType = Tensors.Types.DTypes.Parse(args.String("dtype") ?? "f16", "--dtype", Tensors.Types.DTypes.SizingTypes);
            kvType = Tensors.Types.DTypes.Parse(args.String("kv-dtype") ?? "f16", "--kv-dtype", Tensors.Types.DTypes.SizingTypes);
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException(e.Message);
        }
        long defaultContext = arch.Context > 0 ? Math.Min(arch.Context, 4096) : 2048;
        long ctx = args.Long("context", defaultContext, min: 1);
        long batch = args.Long("batch", 1, min: 1);
        double? tflops = args.Has("tflops") ? args.Float("tflops", 0, min: 1e-6f) : null;

        var count = new ParameterCount(arch);
        var inference = InferenceMemory.Estimate(count, weightType, kvType, ctx, batch);
        var flops = FlopEstimate.Estimate(count, ctx);

        TrainingMemory? training = null;
        if (args.Flag("train") || args.Has("optimizer") || args.Has("zero") || args.Has("gpus") || args.Has("recompute"))
        {
            var opt = (args.String("optimizer") ?? "adamw").ToLowerInvariant() switch
            {
                "adam" => OptimizerKind.Adam,
                "adamw" => OptimizerKind.AdamW,
                "sgd" => OptimizerKind.Sgd,
                var o => throw new CliUsageException($"--optimizer: unknown optimizer '{o}'; expected adam, adamw or sgd"),
            };
            var precision = (args.String("precision") ?? (opt == OptimizerKind.Sgd ? "fp32" : "mixed")).ToLowerInvariant() switch
            {
                "mixed" or "fp16" or "bf16" => Precision.Mixed,
                "fp32" or "f32" => Precision.Fp32,
                var p => throw new CliUsageException($"--precision: unknown precision '{p}'; expected mixed or fp32"),
            };
            var recompute = (args.String("recompute") ?? "none").ToLowerInvariant() switch
            {
                "none" => Recompute.None,
                "selective" => Recompute.Selective,
                "full" => Recompute.Full,
                var r => throw new CliUsageException($"--recompute: unknown mode '{r}'; expected none, selective or full"),
            };
            int zero = args.Int("zero", 0, 0, 3);
            int gpus = args.Int("gpus", 1, 1);
            long seq = args.Long("seq", ctx, min: 1);
            training = TrainingMemory.Estimate(count, opt, precision, zero, gpus, batch, seq, recompute);
        }
        long? trainTokens = args.Has("train-tokens") ? args.Long("train-tokens", 0, min: 1) : null;

        var report = new Report(input with { Config = arch }, count, inference, training, flops, tflops, trainTokens);
        context.Out.Write(args.Flag("json") ? report.Json() : report.Text());
        return Task.FromResult(0);
    }

    private static void ListPresets(bool json, TextWriter w)
    {
        if (json)
        {
            using var ms = new MemoryStream();
            using (var j = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
            {
                j.WriteStartArray();
                foreach (var n in ModelPresets.Names)
                {
                    var a = ModelPresets.Load(n);
                    j.WriteStartObject();
                    j.WriteString("name", n);
                    j.WriteString("model_type", a.Architecture);
                    j.WriteNumber("parameters", new ParameterCount(a).Total);
                    j.WriteString("source", ModelPresets.Source(n));
                    j.WriteEndObject();
                }
                j.WriteEndArray();
            }
            w.WriteLine(Encoding.UTF8.GetString(ms.ToArray()));
            return;
        }
        w.WriteLine($"{"preset",-26} {"type",-11} {"parameters",18}  source");
        foreach (var n in ModelPresets.Names)
        {
            var a = ModelPresets.Load(n);
            w.WriteLine($"{n,-26} {a.Architecture,-11} {new ParameterCount(a).Total.ToString("N0", CultureInfo.InvariantCulture),18}  {ModelPresets.Source(n)}");
        }
    }

    /// <summary>Formats the estimates as a table or as JSON.</summary>
    private sealed record Report(SizingInput Input, ParameterCount Count, InferenceMemory Inference, TrainingMemory? Training,
        FlopEstimate Flops, double? Tflops, long? TrainTokens)
    {
        private static string N(long x) => x.ToString("N0", CultureInfo.InvariantCulture);

        internal static string Short(double x) => x switch
        {
            >= 1e12 => (x / 1e12).ToString("0.##", CultureInfo.InvariantCulture) + " T",
            >= 1e9 => (x / 1e9).ToString("0.##", CultureInfo.InvariantCulture) + " B",
            >= 1e6 => (x / 1e6).ToString("0.##", CultureInfo.InvariantCulture) + " M",
            >= 1e3 => (x / 1e3).ToString("0.##", CultureInfo.InvariantCulture) + " K",
            _ => x.ToString("0.##", CultureInfo.InvariantCulture),
        };

        internal static string Bytes(long b)
        {
            string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
            double v = b;
            int u = 0;
            while (v >= 1024 && u < units.Length - 1) { v /= 1024; u++; }
            return $"{v.ToString(u == 0 ? "0" : "0.00", CultureInfo.InvariantCulture)} {units[u]}";
        }

        private static string Time(double s) => s switch
        {
            < 1e-3 => (s * 1e6).ToString("0.##", CultureInfo.InvariantCulture) + " µs",
            < 1 => (s * 1e3).ToString("0.##", CultureInfo.InvariantCulture) + " ms",
            < 3600 => s.ToString("0.##", CultureInfo.InvariantCulture) + " s",
            < 86400 * 2 => (s / 3600).ToString("0.##", CultureInfo.InvariantCulture) + " h",
            _ => (s / 86400).ToString("0.##", CultureInfo.InvariantCulture) + " days",
        };

        public string Text()
        {
            var a = Count.Config;
            var sb = new StringBuilder();
            var inv = CultureInfo.InvariantCulture;
            sb.AppendLine(inv, $"model: {Input.Source}");
            sb.Append(inv, $"  {a.Architecture}: V={a.Vocab} h={a.Width} L={a.Layers}{(a.LayerGroups != a.Layers ? $" (stored {a.LayerGroups})" : "")} NH={a.Heads} KVH={a.KvHeads} HS={a.HeadSize} F={a.FfnWidth}")
              .Append(a.EmbeddingWidth != a.Width ? $" E={a.EmbeddingWidth}" : "").Append(a.Experts > 0 ? $" experts={a.Experts} (used {a.ExpertsPerToken})" : "")
              .AppendLine(inv, $" ctx={a.Context} tied={(a.TiedEmbeddings ? "yes" : "no")}");
            sb.AppendLine();
            sb.Append(inv, $"parameters: {N(Count.Total)} ({Short(Count.Total)})")
              .AppendLine(Count.Active != Count.Total ? $", active per token {N(Count.Active)} ({Short(Count.Active)})" : "");
            sb.AppendLine(inv, $"  {"component",-24} {"total",16} {"per layer",14}  formula");
            foreach (var c in Count.Components)
                sb.AppendLine(inv, $"  {c.Name,-24} {N(c.Count),16} {(c.PerLayer > 0 ? N(c.PerLayer) : ""),14}  {c.Formula}");
            sb.AppendLine(inv, $"  {"by group:",-24}");
            foreach (var (g, v) in Count.ByGroup)
                sb.AppendLine(inv, $"  {g,-24} {N(v),16} {(100.0 * v / Count.Total).ToString("0.0", inv),13}%");
            sb.AppendLine(inv, $"  attention block / layer {N(Count.AttentionPerLayer),16}  {Count.AttentionFormula}");
            sb.AppendLine(inv, $"  one layer               {N(Count.PerLayer),16}  {Count.PerLayerFormula}");
            if (Input.File is { } f)
            {
                string verdict = f.Parameters == Count.Total ? "matches" : $"DIFFERS by {N(f.Parameters - Count.Total)}";
                sb.Append(inv, $"  in the file ({f.Format}): {N(f.Parameters)} parameters in {f.Tensors} tensors, {Bytes(f.Bytes)}: {verdict}")
                  .AppendLine(f.Excluded.Count > 0 ? $" (not counted: {string.Join(", ", f.Excluded.Take(4))}{(f.Excluded.Count > 4 ? ", ..." : "")})" : "");
            }
            sb.AppendLine();
            var i = Inference;
            sb.AppendLine(inv, $"inference memory ({i.WeightType.Name} weights, {i.KvType.Name} KV cache, context {i.Context}, batch {i.Batch}):");
            sb.AppendLine(inv, $"  {"weights",-12} {Bytes(i.Weights),12}  {i.WeightsFormula}");
            sb.AppendLine(inv, $"  {"KV cache",-12} {Bytes(i.KvCache),12}  {i.KvFormula}");
            sb.AppendLine(inv, $"  {"activations",-12} {Bytes(i.Activations),12}  {i.ActivationsFormula}");
            sb.AppendLine(inv, $"  {"total",-12} {Bytes(i.Total),12}");
            if (Training is { } t)
            {
                sb.AppendLine();
                sb.Append(inv, $"training memory per GPU ({t.Optimizer.ToString().ToLowerInvariant()}, {(t.Precision == Precision.Mixed ? "mixed precision" : "fp32")}, ")
                  .AppendLine(inv, $"{t.ParamBytes}+{t.GradBytes}+{t.OptimizerBytes} bytes/param, ZeRO-{t.ZeroStage} over {t.Gpus} GPU{(t.Gpus > 1 ? "s" : "")}, micro-batch {t.Batch} × {t.Sequence} tokens, recompute {t.Recompute.ToString().ToLowerInvariant()}):");
                sb.AppendLine(inv, $"  {"weights",-16} {Bytes(t.Weights),12}");
                sb.AppendLine(inv, $"  {"gradients",-16} {Bytes(t.Gradients),12}");
                sb.AppendLine(inv, $"  {"optimizer",-16} {Bytes(t.OptimizerStates),12}");
                sb.AppendLine(inv, $"  {"model states",-16} {Bytes(t.ModelStates),12}  {t.ModelStatesFormula}");
                sb.AppendLine(inv, $"  {"activations",-16} {Bytes(t.Activations),12}  {t.ActivationsFormula}");
                sb.AppendLine(inv, $"  {"total",-16} {Bytes(t.Total),12}");
            }
            sb.AppendLine();
            sb.AppendLine(inv, $"FLOPs per token at context {Flops.Context} (N = {N(Flops.MatmulParameters)} parameters in matrix multiplies):");
            sb.AppendLine(inv, $"  forward   {Short(Flops.ForwardPerToken)}FLOP  {Flops.ForwardFormula}");
            sb.AppendLine(inv, $"  training  {Short(Flops.TrainPerToken)}FLOP  {Flops.TrainFormula}");
            if (Tflops is { } tf)
            {
                double tokens = (double)Inference.Context * Inference.Batch;
                sb.Append(inv, $"  at {tf.ToString("0.##", inv)} TFLOP/s: prefill of {Inference.Batch} × {Inference.Context} tokens {Time(FlopEstimate.Seconds(tokens, Flops.ForwardPerToken, tf))}, ")
                  .AppendLine(inv, $"one decoded token (compute bound) {Time(FlopEstimate.Seconds(Inference.Batch, Flops.ForwardPerToken, tf))}");
                if (Training is { } tr)
                {
                    sb.AppendLine(inv, $"  training step ({tr.Gpus} × {tr.Batch} × {tr.Sequence} tokens) {Time(FlopEstimate.Seconds((double)tr.Batch * tr.Sequence, Flops.TrainPerToken, tf))}");
                    if (TrainTokens is { } tt)
                        sb.AppendLine(inv, $"  {Short(tt)} training tokens on {tr.Gpus} GPU{(tr.Gpus > 1 ? "s" : "")}: {Time(FlopEstimate.Seconds(tt, Flops.TrainPerToken, tf, tr.Gpus))}");
                }
                sb.AppendLine("  (times assume the throughput is sustained; divide by your utilisation)");
            }
            return sb.ToString();
        }

        public string Json()
        {
            var a = Count.Config;
            using var ms = new MemoryStream();
            using (var j = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                j.WriteStartObject();
                j.WriteString("source", Input.Source);
                j.WriteStartObject("architecture");
                j.WriteString("model_type", a.Architecture);
                j.WriteNumber("vocab_size", a.Vocab);
                j.WriteNumber("hidden_size", a.Width);
                j.WriteNumber("num_layers", a.Layers);
                j.WriteNumber("stored_layers", a.LayerGroups);
                j.WriteNumber("num_heads", a.Heads);
                j.WriteNumber("num_kv_heads", a.KvHeads);
                j.WriteNumber("head_dim", a.HeadSize);
                j.WriteNumber("intermediate_size", a.FfnWidth);
                j.WriteNumber("embedding_size", a.EmbeddingWidth);
                j.WriteNumber("context_length", a.Context);
                j.WriteBoolean("tied_embeddings", a.TiedEmbeddings);
                j.WriteNumber("experts", a.Experts);
                j.WriteNumber("experts_per_token", a.ExpertsPerToken);
                j.WriteEndObject();
                j.WriteNumber("parameters", Count.Total);
                j.WriteNumber("parameters_active", Count.Active);
                j.WriteStartObject("breakdown");
                foreach (var (g, v) in Count.ByGroup) j.WriteNumber(g, v);
                j.WriteEndObject();
                j.WriteStartArray("components");
                foreach (var c in Count.Components)
                {
                    j.WriteStartObject();
                    j.WriteString("name", c.Name);
                    j.WriteString("group", c.Group);
                    j.WriteNumber("count", c.Count);
                    j.WriteNumber("per_layer", c.PerLayer);
                    j.WriteString("formula", c.Formula);
                    j.WriteEndObject();
                }
                j.WriteEndArray();
                j.WriteStartObject("per_layer");
                j.WriteNumber("parameters", Count.PerLayer);
                j.WriteString("formula", Count.PerLayerFormula);
                j.WriteNumber("attention", Count.AttentionPerLayer);
                j.WriteString("attention_formula", Count.AttentionFormula);
                j.WriteEndObject();
                if (Input.File is { } f)
                {
                    j.WriteStartObject("file");
                    j.WriteString("path", f.Path);
                    j.WriteString("format", f.Format);
                    j.WriteNumber("tensors", f.Tensors);
                    j.WriteNumber("parameters", f.Parameters);
                    j.WriteNumber("bytes", f.Bytes);
                    j.WriteBoolean("matches", f.Parameters == Count.Total);
                    j.WriteStartArray("not_counted");
                    foreach (var x in f.Excluded) j.WriteStringValue(x);
                    j.WriteEndArray();
                    j.WriteEndObject();
                }
                var i = Inference;
                j.WriteStartObject("inference_bytes");
                j.WriteString("dtype", i.WeightType.Name);
                j.WriteString("kv_dtype", i.KvType.Name);
                j.WriteNumber("context", i.Context);
                j.WriteNumber("batch", i.Batch);
                j.WriteNumber("weights", i.Weights);
                j.WriteNumber("kv_cache", i.KvCache);
                j.WriteNumber("activations", i.Activations);
                j.WriteNumber("total", i.Total);
                j.WriteString("weights_formula", i.WeightsFormula);
                j.WriteString("kv_cache_formula", i.KvFormula);
                j.WriteString("activations_formula", i.ActivationsFormula);
                j.WriteEndObject();
                if (Training is { } t)
                {
                    j.WriteStartObject("training_bytes");
                    j.WriteString("optimizer", t.Optimizer.ToString().ToLowerInvariant());
                    j.WriteString("precision", t.Precision == Precision.Mixed ? "mixed" : "fp32");
                    j.WriteNumber("zero_stage", t.ZeroStage);
                    j.WriteNumber("gpus", t.Gpus);
                    j.WriteNumber("batch", t.Batch);
                    j.WriteNumber("sequence", t.Sequence);
                    j.WriteString("recompute", t.Recompute.ToString().ToLowerInvariant());
                    j.WriteNumber("bytes_per_param_weights", t.ParamBytes);
                    j.WriteNumber("bytes_per_param_gradients", t.GradBytes);
                    j.WriteNumber("bytes_per_param_optimizer", t.OptimizerBytes);
                    j.WriteNumber("weights", t.Weights);
                    j.WriteNumber("gradients", t.Gradients);
                    j.WriteNumber("optimizer_states", t.OptimizerStates);
                    j.WriteNumber("model_states", t.ModelStates);
                    j.WriteNumber("activations", t.Activations);
                    j.WriteNumber("total", t.Total);
                    j.WriteString("model_states_formula", t.ModelStatesFormula);
                    j.WriteString("activations_formula", t.ActivationsFormula);
                    j.WriteEndObject();
                }
                j.WriteStartObject("flops");
                j.WriteNumber("context", Flops.Context);
                j.WriteNumber("matmul_parameters", Flops.MatmulParameters);
                j.WriteNumber("forward_per_token", Flops.ForwardPerToken);
                j.WriteNumber("train_per_token", Flops.TrainPerToken);
                j.WriteString("forward_formula", Flops.ForwardFormula);
                j.WriteString("train_formula", Flops.TrainFormula);
                if (Tflops is { } tf)
                {
                    j.WriteNumber("tflops", tf);
                    j.WriteNumber("prefill_seconds", FlopEstimate.Seconds((double)Inference.Context * Inference.Batch, Flops.ForwardPerToken, tf));
                    j.WriteNumber("decode_token_seconds", FlopEstimate.Seconds(Inference.Batch, Flops.ForwardPerToken, tf));
                    if (Training is { } tr)
                    {
                        j.WriteNumber("train_step_seconds", FlopEstimate.Seconds((double)tr.Batch * tr.Sequence, Flops.TrainPerToken, tf));
                        if (TrainTokens is { } tt) j.WriteNumber("train_total_seconds", FlopEstimate.Seconds(tt, Flops.TrainPerToken, tf, tr.Gpus));
                    }
                }
                j.WriteEndObject();
                j.WriteEndObject();
            }
            return Encoding.UTF8.GetString(ms.ToArray()) + Environment.NewLine;
        }
    }
}
