using System.Globalization;
using System.Text.Json.Nodes;
using SharpLM.Models;
using SharpLM.Sizing;
using SharpLM.Training;
using SharpLM.Training.Data;
using static SharpLM.Lab.LabReport;

namespace SharpLM.Lab.Experiments;

/// <summary>
/// <c>albert-sharing</c> (note 1 z+): ALBERT stores one layer and runs it L times. Three small BERT masked-LM encoders
/// trained the same way on the Brown corpus: L separate layers, L layers sharing one set of weights
/// (<see cref="ModelConfig.LayerGroups"/> = 1, the encoder's ALBERT path, trained by the same <see cref="TrainModel"/>),
/// and one layer (the parameters of the shared model, 1/L of its compute). Parameters, the weight multiply-adds each
/// token goes through, forward time, and held-out masked-LM loss.
/// </summary>
internal sealed class AlbertSharing : LabExperiment
{
    public override string Name => "albert-sharing";
    public override string Summary => "ALBERT's shared layers: parameters, forward time (the note: unchanged) and masked-LM quality, against separate layers and one layer";

    public override LabReport Run(LabContext ctx)
    {
        var r = new LabReport(Name, "ALBERT's shared layers: fewer parameters, the same time");
        r.Claims.Add(new("1 z+ (Albert是通过什么方法压缩网络参数的？有什么问题？)", "多层transformer共享参数，推断需要重复使用这些参数，时间没有减少",
            "How does ALBERT compress the network's parameters, and what is the catch? The transformer layers share their parameters; inference must still apply them once per layer, so the time does not go down."));
        string brown = ctx.Asset("brown.txt") ?? throw new FileNotFoundException("albert-sharing needs the Brown corpus (brown.txt): run scripts/fetch-test-assets.sh");
        var tok = new ByteTokenizer();
        var text = File.ReadLines(brown).Take(ctx.Quick ? 300 : 6000).ToArray();
        int heldLines = text.Length / 10;
        int[] heldOut = tok.Encode(string.Join("\n", text.Take(heldLines))), train = tok.Encode(string.Join("\n", text.Skip(heldLines)));
        int width = ctx.Quick ? 32 : 128, layers = ctx.Quick ? 3 : 6, heads = ctx.Quick ? 2 : 4, t = ctx.Quick ? 16 : 64, batch = ctx.Quick ? 4 : 16;
        int steps = ctx.Quick ? 12 : 600, warm = ctx.Quick ? 2 : 50, evalBatches = ctx.Quick ? 2 : 16, repeats = ctx.Quick ? 3 : 9;
        double lr = 1e-3;
        int vocab = tok.VocabSize + 1, maskId = vocab - 1;
        var separate = TrainModel.NewConfig("bert", vocab, width, layers, heads, heads, 4 * width, t, normEps: 1e-12);
        (string Name, ModelConfig Config)[] variants =
        [
            ($"separate ×{layers}", separate),
            ($"shared ×{layers} (ALBERT)", separate with { LayerGroups = 1 }),
            ("separate ×1", TrainModel.NewConfig("bert", vocab, width, 1, heads, heads, 4 * width, t, normEps: 1e-12)),
        ];
        r.Method.Add($"**Models.** BERT masked-LM encoders (`TrainModel`, post-norm, GELU, learned positions) of width {width}, {heads} heads, MLP {4 * width}, byte vocabulary ({tok.VocabSize} bytes + [MASK]), sequences of {t}: " +
                     $"{layers} separate layers; {layers} layers sharing one set of weights (`ModelConfig.LayerGroups` = 1: the encoder binds every layer to the same weights and the backward pass adds every layer's gradient into them); and 1 layer, which holds as many parameters as the shared model.");
        r.Method.Add($"**Training.** The same initial seed, data order and masks (BERT's 15% with 80/10/10, `MlmMasking`) for all three: {steps} AdamW steps of {batch} random windows of the Brown corpus (its last {text.Length - heldLines} lines), peak lr {lr.ToString(CultureInfo.InvariantCulture)}, warmup {warm}, cosine decay. " +
                     $"**Quality**: masked-LM loss on {evalBatches} fixed masked batches of the first {heldLines} lines (held out). **Time**: the median of {repeats} forward passes of one batch (logits, no loss) after training, {ctx.Options.Threads} thread(s). " +
                     "**Compute**: the weight multiply-adds a token goes through (every matrix of every executed layer, and the MLM head), counted from the shapes.");

        var rows = new List<IReadOnlyList<string>>();
        var runs = new JsonArray();
        var curves = new List<ChartSeries>();
        for (int vi = 0; vi < variants.Length; vi++)
        {
            var (name, cfg) = variants[vi];
            var model = new TrainModel(cfg);
            model.Initialize(ctx.Seed);
            var data = ctx.Random(9);
            double from = (double)vi / variants.Length;
            var losses = LabTraining.Run(model, steps, batch, t, lr, warm, (s, x, y) => MaskedWindows(train, data, batch, t, maskId, tok.VocabSize, ctx.Seed, s, x, y),
                s => ctx.Report(name, from + (s + 1.0) / steps / variants.Length));
            var evalRng = ctx.Random(1234);
            double held = 0;
            var ex = new int[batch * t];
            var ey = new int[batch * t];
            for (int e = 0; e < evalBatches; e++)
            {
                MaskedWindows(heldOut, evalRng, batch, t, maskId, tok.VocabSize, ctx.Seed + 1, e, ex, ey);
                held += model.Forward(ex, ey, batch, t);
            }
            held /= evalBatches;
            double seconds = LabContext.MedianSeconds(repeats, () => model.Forward(ex, [], batch, t));
            long stored = model.Parameters.Count;
            long macs = WeightMacsPerToken(cfg);
            var pc = new ParameterCount(cfg);
            rows.Add([name, stored.ToString("N0", CultureInfo.InvariantCulture), macs.ToString("N0", CultureInfo.InvariantCulture), F(seconds * 1e3), F(LabTraining.Final(losses)), F(held)]);
            runs.Add((JsonNode)new JsonObject
            {
                ["variant"] = name, ["layers"] = cfg.Layers, ["layer_groups"] = cfg.LayerGroups, ["parameters"] = stored, ["calc_parameters"] = pc.Total, ["mlm_head_parameters"] = MlmHeadParameters(cfg),
                ["weight_macs_per_token"] = macs, ["calc_forward_flops_per_token"] = J(FlopEstimate.Estimate(pc, t).ForwardPerToken),
                ["final_train_loss"] = J(LabTraining.Final(losses)), ["held_out_loss"] = J(held), ["losses"] = new JsonArray([.. losses.Select(J)]),
            });
            r.Timings[name] = new JsonObject { ["forward_seconds"] = seconds };
            curves.Add(new ChartSeries(name, [.. losses.Select((l, i) => ((double)i, l))]));
        }
        r.Data["runs"] = runs;
        r.Tables.Add(new($"**The three encoders** (chance: ln {tok.VocabSize} = {F(Math.Log(tok.VocabSize))}):",
            ["model", "parameters", "weight multiply-adds / token", "forward ms / batch", "final train loss", "held-out MLM loss"], rows));

        var o = runs.Select(x => x!.AsObject()).ToArray();
        double T(int i) => (double)r.Timings[(string)o[i]["variant"]!]!["forward_seconds"]!;
        long P(int i) => (long)o[i]["parameters"]!;
        double H(int i) => (double?)o[i]["held_out_loss"] ?? double.NaN;
        r.Findings.Add($"Parameters: sharing stores {P(1):N0} instead of {P(0):N0} ({F((double)P(1) / P(0))}×; the same as one layer, {P(2):N0}); the embeddings and the MLM head are not shared, so the saving is (L−1)/L of the layers only. " +
                       $"(The trainer's counts include the MLM head, {(long)o[0]["mlm_head_parameters"]!:N0} parameters, which `sharplm calc`'s base-model count leaves out.)");
        r.Findings.Add($"Time (the note's point): a forward pass took {F(T(1) * 1e3)} ms shared against {F(T(0) * 1e3)} ms separate ({F(T(1) / T(0))}×), and {F(T(2) * 1e3)} ms for one layer: sharing leaves the compute as it was, " +
                       $"{(long)o[1]["weight_macs_per_token"]!:N0} weight multiply-adds per token either way. The note is right: ALBERT saves memory and model size, not time.");
        r.Findings.Add($"Quality: held-out masked-LM loss {F(H(0))} separate, {F(H(1))} shared, {F(H(2))} one layer. " +
                       (H(1) < H(2) ? "Running the shared layer several times is better than running it once: depth helps even without new parameters" : "Here the shared depth did not beat a single layer") +
                       (H(1) > H(0) ? ", and separate layers do better still: the parameters sharing saves were worth something." : "; separate layers were not better at this size and training length."));
        double calcShared = (double)o[1]["calc_forward_flops_per_token"]!, calcSeparate = (double)o[0]["calc_forward_flops_per_token"]!;
        r.Findings.Add($"`sharplm calc`'s forward FLOPs per token (`FlopEstimate`: 2 × the parameters in matrix products + attention, counting a shared layer once per layer it runs as) gives {F(calcShared)} for the shared model and {F(calcSeparate)} for the separate one" +
                       (Math.Abs(calcShared - calcSeparate) <= 1e-6 * calcSeparate ? ": the same compute, as the executed multiply-adds above." : ": they differ, which the executed multiply-adds above do not."));
        if (ctx.Quick) r.Findings.Add("Quick form: a few steps only; the figures check the mechanism.");
        r.Panels.Add(new ChartPanel { Title = "training loss", XLabel = "step", YLabel = "mlm loss", Series = curves });
        r.Panels.Add(new ChartPanel
        {
            Title = "parameters and time, relative to separate", Kind = ChartKind.Bar, Categories = ["parameters", "forward time", "weight macs"], YLabel = "x separate",
            Series = [.. Enumerable.Range(1, 2).Select(i => new ChartSeries((string)o[i]["variant"]!,
                [(0, (double)P(i) / P(0)), (1, T(i) / T(0)), (2, (double)(long)o[i]["weight_macs_per_token"]! / (long)o[0]["weight_macs_per_token"]!)]))],
        });
        r.ChartWidth = 1200;
        return r;
    }

    /// <summary>Weight multiply-adds per token of a BERT MLM encoder: each executed layer's Q, K, V, O (4·C²) and MLP
    /// (2·C·F), then the MLM head's dense (C·E) and decoder (E·V). Shared layers count once per use.</summary>
    internal static long WeightMacsPerToken(ModelConfig c) =>
        (long)c.Layers * (4L * c.Width * c.Width + 2L * c.Width * c.FfnWidth) + (long)c.Width * c.EmbeddingWidth + (long)c.EmbeddingWidth * c.Vocab;

    /// <summary>The MLM head's parameters, which calc's base-model count leaves out: dense C→E with bias, LayerNorm (2E), decoder bias (V; its matrix is the tied word embeddings).</summary>
    internal static long MlmHeadParameters(ModelConfig c) => (long)c.Width * c.EmbeddingWidth + c.EmbeddingWidth + 2L * c.EmbeddingWidth + c.Vocab;

    /// <summary>A batch of random windows of <paramref name="tokens"/>, masked as BERT (<see cref="MlmMasking"/>).</summary>
    private static void MaskedWindows(int[] tokens, TrainRandom rng, int b, int t, int maskId, int vocab, ulong seed, int index, int[] x, int[] y)
    {
        var clean = new int[b * t];
        for (int i = 0; i < b; i++)
        {
            int start = rng.Next(tokens.Length - t);
            tokens.AsSpan(start, t).CopyTo(clean.AsSpan(i * t, t));
        }
        MlmMasking.Apply(clean, x, y, maskId, vocab, seed, index);
    }
}
