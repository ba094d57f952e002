using System.Globalization;
using System.Text.Json.Nodes;
using SharpLM.Models;
using SharpLM.Training;
using static SharpLM.Lab.LabReport;

namespace SharpLM.Lab.Experiments;

/// <summary>
/// <c>positions</c> (note 1 g, z): the same small LLaMA with no positions, the original transformer's sinusoidal table,
/// a learned table (BERT, GPT-2) and RoPE (<see cref="ModelConfig.Positions"/>, the one decoder), trained on the copy task,
/// which needs order; then each trained model's outputs for permuted inputs, bidirectional and causal, to show that
/// without positions attention is permutation-equivariant (and what the causal mask changes).
/// </summary>
internal sealed class PositionsExperiment : LabExperiment
{
    public override string Name => "positions";
    public override string Summary => "no positions vs sinusoidal vs learned vs RoPE on the copy task; without positions attention is permutation-equivariant";

    /// <summary>The variants: each position kind, and the sinusoidal table a second time with the original transformer's
    /// embedding scale (token embedding × √C, initialised N(0, 1/C), so the tokens and the table have the same size).</summary>
    internal static readonly (string Name, PositionKind Kind, bool Scaled)[] Variants =
    [
        ("none", PositionKind.None, false),
        ("sinusoidal", PositionKind.Sinusoidal, false),
        ("sinusoidal, embedding ×√C", PositionKind.Sinusoidal, true),
        ("learned", PositionKind.Learned, false),
        ("RoPE", PositionKind.Rotary, false),
    ];

    public override LabReport Run(LabContext ctx)
    {
        var r = new LabReport(Name, "why a transformer needs positions, and which kind");
        r.Claims.Add(new("1 g (Bert为什么要搞一个position embedding？)", "八股，增强表达能力（位置上的）。因为transformer对位置不敏感，需要显示标示",
            "(The stock answer.) It strengthens the model's (positional) expressiveness: the transformer is insensitive to position, so position has to be marked explicitly."));
        r.Claims.Add(new("1 z (Bert中的transformer和原生的transformer有什么区别？)", "原生用的是周期函数对相对位置进行编码，Bert换成了position embedding，后面也有模型",
            "The original transformer encodes (relative) position with periodic functions; BERT replaced them with a learned position embedding; later models [use other schemes]."));

        bool q = ctx.Quick;
        int vocab = 64, width = q ? 32 : 64, layers = 2, heads = q ? 2 : 4, t = q ? 16 : 32, batch = q ? 4 : 8;
        int steps = q ? 15 : 500, warmup = q ? 3 : 30, evalBatches = q ? 2 : 16, perms = q ? 3 : 16;
        double lr = 3e-3;
        int m = (t + 1) / 2;
        r.Method.Add($"**Models.** One 2-layer LLaMA (`TrainModel`: RMSNorm, SwiGLU, width {width}, {heads} heads, vocabulary {vocab}, context {t}) in four " +
                     "variants of `ModelConfig.Positions`, read by the one `Decoder`: **none** (no position information at all), **sinusoidal** (the original " +
                     "transformer's fixed table, PE[p, 2i] = sin(p/10000^(2i/C)), PE[p, 2i+1] = cos(…), added to the token embedding), **learned** " +
                     "(a trainable (P, C) table added to the token embedding, initialised N(0, 0.02) as the token embedding is; " +
                     "tensor `position_embd`) and **RoPE** (q and k rotated by the position, LLaMA's default). Every variant's token embedding starts at " +
                     "N(0, 0.02), whose entries are 35× smaller than the sinusoidal table's (RMS 1/√2); so the sinusoidal table runs a second time as the " +
                     "original transformer uses it, **sinusoidal, embedding ×√C**: the token embedding multiplied by √C (`ModelConfig.EmbeddingScale`, " +
                     "with its backward pass) and initialised N(0, 1/C), so tokens and positions start at the same size.");
        r.Method.Add($"**Task.** The copy task (`LabTraining.CopyBatch`): {m} random tokens, then the same tokens again; the loss counts only the " +
                     $"copied half, where the answer is the token {m} places back. Order is the whole task: the set of tokens seen so far does not say " +
                     $"which one comes next. {steps} AdamW steps of {batch} sequences, lr {lr.ToString(CultureInfo.InvariantCulture)} (warmup {warmup}, " +
                     $"cosine to lr/10), clip 1; the same initial weights (where the tensors are shared) and batches for every variant. Held out: " +
                     $"{evalBatches} fresh batches, loss and top-1 accuracy on the copied half. Reference: a model that knows which tokens of the first " +
                     $"half were already copied but not their order can do no better than guess among the rest: loss ln(m!)/m = " +
                     $"{F(OrderBlindLoss(m))} and accuracy H_m/m = {F(OrderBlindAccuracy(m))} for m = {m} (ignoring repeated tokens).");
        r.Method.Add($"**Permutation test.** For each trained model, {perms} random sequences of {t} tokens and a random permutation π of each; " +
                     "the logits of every row are computed by `Decoder.Forward` for x and for x permuted (x'[i] = x[π(i)]). " +
                     "*Bidirectional* (every row sees all keys, as in BERT): equivariance means out'[i] = out[π(i)]. *Causal* (the decoder's mask): " +
                     "the same check over all rows, and the last row alone when only the tokens before it are permuted, both for the whole model and " +
                     "for its first block alone (the trained embeddings, block 0, final norm and head as a 1-layer model). Reported: the largest " +
                     "|difference| over the largest |logit| (0 up to float rounding when the property holds).");

        var rows = new List<IReadOnlyList<string>>();
        var prow = new List<IReadOnlyList<string>>();
        var runs = new JsonArray();
        var curves = new List<ChartSeries>();
        var bars = new List<(string Name, double Bi, double Causal, double Last)>();
        for (int ki = 0; ki < Variants.Length; ki++)
        {
            var (name, kind, scaled) = Variants[ki];
            var cfg = LabTraining.Llama(vocab, width, layers, heads, t) with { Positions = kind, EmbeddingScale = scaled ? MathF.Sqrt(width) : 1f };
            var model = new TrainModel(cfg);
            model.Initialize(ctx.Seed);
            if (scaled) ctx.Random(78).FillNormal(model.Parameters.P(model.Parameters["model.embed_tokens.weight"]), 1 / Math.Sqrt(width));
            var data = ctx.Random(77);
            double from = (double)ki / Variants.Length;
            var losses = LabTraining.Run(model, steps, batch, t, lr, warmup, (s, x, y) => LabTraining.CopyBatch(data, vocab, batch, t, x, y),
                s => ctx.Report($"train {name}", from + 0.9 / Variants.Length * (s + 1) / steps));
            var evalRng = ctx.Random(4321);
            var (heldLoss, heldAcc) = Evaluate(model, evalBatches, batch, t, (x, y) => LabTraining.CopyBatch(evalRng, vocab, batch, t, x, y));
            ctx.Report($"permute {name}", from + 0.95 / Variants.Length);
            var perm = PermutationTest(model, t, perms, ctx.Random(99));
            long parameters = model.Parameters.Count;
            runs.Add((JsonNode)new JsonObject
            {
                ["positions"] = name, ["embedding_scale"] = cfg.EmbeddingScale, ["parameters"] = parameters, ["calc_parameters"] = new Sizing.ParameterCount(cfg).Total,
                ["initial_loss"] = J(losses[0]), ["final_train_loss"] = J(LabTraining.Final(losses)), ["held_out_loss"] = J(heldLoss), ["held_out_accuracy"] = J(heldAcc),
                ["steps_to_loss_0_1"] = LabTraining.StepsTo(losses, 0.1),
                ["bidirectional_equivariance_error"] = J(perm.Bidirectional), ["causal_equivariance_error"] = J(perm.Causal),
                ["causal_last_row_prefix_error"] = J(perm.LastRow), ["first_block_last_row_prefix_error"] = J(perm.LastRowFirstBlock),
                ["losses"] = new JsonArray([.. losses.Select(J)]),
            });
            rows.Add([name, parameters.ToString("N0", CultureInfo.InvariantCulture), F(LabTraining.Final(losses)), F(heldLoss), F(heldAcc)]);
            prow.Add([name, E(perm.Bidirectional), E(perm.Causal), E(perm.LastRowFirstBlock), E(perm.LastRow)]);
            bars.Add((name, perm.Bidirectional, perm.Causal, perm.LastRowFirstBlock));
            curves.Add(new ChartSeries(ChartLabel(name), [.. losses.Select((l, i) => ((double)i, l))]));
        }
        r.Data["order_blind_reference"] = new JsonObject { ["m"] = m, ["loss"] = J(OrderBlindLoss(m)), ["accuracy"] = J(OrderBlindAccuracy(m)) };
        r.Data["runs"] = runs;
        r.Tables.Add(new($"**Copy task** (chance: ln {vocab - 1} = {F(Math.Log(vocab - 1))}; order-blind reference: loss {F(OrderBlindLoss(m))}, accuracy {F(OrderBlindAccuracy(m))}; final train loss = mean of the last 10% of {steps} steps):",
            ["positions", "parameters", "final train loss", "held-out loss", "held-out accuracy"], rows));
        r.Tables.Add(new("**Permutation test** (largest |out' − π(out)| / largest |logit|; ≈ 1e-7 is float rounding, i.e. the property holds):",
            ["positions", "bidirectional: all rows", "causal: all rows", "causal, first block only: last row, prefix permuted", "causal, both blocks: last row, prefix permuted"], prow));

        var o = runs.Select(n => n!.AsObject()).ToDictionary(n => (string)n["positions"]!);
        double Get(string k, string f) => (double?)o[k][f] ?? double.NaN;
        const double Tol = 1e-4;
        r.Findings.Add($"Without positions attention cannot see order: permuting the input rows of the position-free model permutes its bidirectional outputs the same way " +
                       $"(relative error {E(Get("none", "bidirectional_equivariance_error"))}, float rounding), while with sinusoidal, learned and RoPE positions the outputs change " +
                       $"({string.Join(", ", Variants.Skip(1).Select(k => $"{k.Name} {E(Get(k.Name, "bidirectional_equivariance_error"))}"))}). This is the note's 1 g, measured: " +
                       "a BERT-style (bidirectional) transformer without positions treats its input as a set.");
        double causalNone = Get("none", "causal_equivariance_error"), lastNone = Get("none", "causal_last_row_prefix_error"), firstNone = Get("none", "first_block_last_row_prefix_error");
        r.Findings.Add($"The note's claim needs a qualification for decoders: with the causal mask the position-free model is *not* permutation-equivariant " +
                       $"(all rows: {E(causalNone)}), because the mask itself orders the rows (row i sees i + 1 keys). In one block, a row is still blind to the order of the tokens " +
                       $"before it: permuting only the prefix leaves the last row of the first block unchanged ({E(firstNone)}{(firstNone < Tol ? ", float rounding" : " — it should be rounding; this is a bug")}). " +
                       $"Through two blocks it is not ({E(lastNone)}): the first block's outputs at the prefix rows depend on how many tokens each saw, so the second block's keys carry " +
                       "order. This is how decoders without positional encodings learn order at all.");
        double accNone = Get("none", "held_out_accuracy"), lossNone = Get("none", "held_out_loss");
        var best = Variants.Skip(1).Select(k => (k.Name, Acc: Get(k.Name, "held_out_accuracy"), Loss: Get(k.Name, "held_out_loss"))).OrderByDescending(x => x.Acc).ToArray();
        r.Findings.Add($"On the copy task (held out): none {F(lossNone)} loss / {F(accNone)} accuracy; " +
                       string.Join("; ", best.Select(b => $"{b.Name} {F(b.Loss)} / {F(b.Acc)}")) + ". " +
                       (accNone <= OrderBlindAccuracy(m) * 1.5
                           ? $"The position-free model does not beat the order-blind reference ({F(OrderBlindAccuracy(m))}): it can tell which tokens came, not in which order."
                           : $"The position-free model beats the order-blind reference ({F(OrderBlindAccuracy(m))}): a causal decoder can recover some position from the mask (row i attends over i + 1 keys, so it can count), which is why decoders without positional encodings train at all; it is still below every position encoding that learned the task."));
        double sRaw = Get("sinusoidal", "held_out_accuracy"), sScaled = Get("sinusoidal, embedding ×√C", "held_out_accuracy");
        r.Findings.Add($"The sinusoidal table needs the original transformer's embedding scale: added to token embeddings initialised as the others' it reached " +
                       $"{F(sRaw)} accuracy; with the token embedding ×√C, {F(sScaled)}. " +
                       (sScaled > sRaw + 0.1 ? "In the first, the fixed table (entries of size 1) drowns the tokens (size 0.02) and the model cannot see what to copy; the scale is part of the method, not a detail."
                                             : "The scale made little difference here."));
        var solved = best.Where(b => b.Acc >= 0.99).Select(b => b.Name).ToArray();
        string StepsTo(string name) => (int)o[name]["steps_to_loss_0_1"]! is var n && n >= 0 ? n.ToString(CultureInfo.InvariantCulture) : "never";
        double learnedAcc = Get("learned", "held_out_accuracy"), ropeAcc = Get("RoPE", "held_out_accuracy");
        r.Findings.Add((solved.Length > 0
                           ? $"{string.Join(" and ", solved)} solved the task (accuracy ≥ 0.99; steps to a loss below 0.1: {string.Join(", ", solved.Select(n => $"{n} {StepsTo(n)}"))})"
                           : $"{best[0].Name} did best ({F(best[0].Acc)} accuracy)") +
                       $"; {string.Join(", ", best.Where(b => b.Acc < 0.99).Select(b => $"{b.Name} reached {F(b.Acc)}"))} after {steps} steps. " +
                       "The note's 1 z is history (the original transformer's periodic functions, then BERT's learned table); measured on this task, the learned table " +
                       (learnedAcc > sScaled + 0.1 ? "was clearly better than the sinusoidal one, even with the embedding scale" : learnedAcc + 0.1 < sScaled ? "was worse than the sinusoidal one" : "and the sinusoidal one did about as well") +
                       ", and RoPE " + (Math.Abs(ropeAcc - learnedAcc) <= 0.05 ? "matched the learned table" : ropeAcc > learnedAcc ? "beat both" : "trailed the learned table") +
                       ". The sinusoidal table's property that PE[p + k] is a rotation of PE[p] (tested in `PositionVariantTests`), the original argument for it, " +
                       (sScaled >= best[0].Acc - 0.01 ? "went with the best result here." : "did not make it the fastest learner of a fixed offset here.") +
                       " (The learned table costs P·C parameters, counted by calc; the others none.)");
        if (ctx.Quick) r.Findings.Add("Quick form: a few training steps only; the permutation test holds at any step, the training figures only check the mechanism.");

        r.Panels.Add(new ChartPanel { Title = "copy task, training loss", XLabel = "step", YLabel = "loss", Series = curves });
        r.Panels.Add(new ChartPanel
        {
            Title = "permutation test: relative error", Kind = ChartKind.Bar, LogY = true, YLabel = "|out' - perm(out)| / |out|",
            Categories = [.. bars.Select(b => ChartLabel(b.Name))],
            Series =
            [
                new("bidirectional", [.. bars.Select((b, i) => ((double)i, Math.Max(b.Bi, 1e-9)))]),
                new("causal, all rows", [.. bars.Select((b, i) => ((double)i, Math.Max(b.Causal, 1e-9)))]),
                new("causal, 1st block, last row", [.. bars.Select((b, i) => ((double)i, Math.Max(b.Last, 1e-9)))]),
            ],
        });
        r.ChartWidth = 1200;
        return r;
    }

    /// <summary>A variant's name in the picture (the chart font is ASCII, and the bar labels are narrow).</summary>
    private static string ChartLabel(string name) => name switch
    {
        "sinusoidal" => "sinus",
        "sinusoidal, embedding ×√C" => "sinus*sqrtC",
        _ => name,
    };

    private static string E(double v) => double.IsFinite(v) ? v.ToString("0.0E+0", CultureInfo.InvariantCulture) : "NaN";

    /// <summary>ln(m!)/m: the mean loss of guessing uniformly among the m − k first-half tokens not yet copied, k = 0..m−1.</summary>
    internal static double OrderBlindLoss(int m) => Enumerable.Range(1, m).Sum(k => Math.Log(k)) / m;

    /// <summary>H_m/m: the mean accuracy of that guess.</summary>
    internal static double OrderBlindAccuracy(int m) => Enumerable.Range(1, m).Sum(k => 1.0 / k) / m;

    /// <summary>Mean loss and top-1 accuracy over the target rows (targets ≥ 0) of <paramref name="batches"/> batches from <paramref name="fill"/>.</summary>
    internal static (double Loss, double Accuracy) Evaluate(TrainModel model, int batches, int b, int t, Action<int[], int[]> fill)
    {
        var x = new int[b * t];
        var y = new int[b * t];
        double loss = 0;
        long right = 0, count = 0;
        int v = model.VocabSize;
        for (int e = 0; e < batches; e++)
        {
            fill(x, y);
            loss += model.Forward(x, y, b, t);
            var logits = model.Logits;
            for (int i = 0; i < b * t; i++)
            {
                if (y[i] < 0) continue;
                count++;
                if (Inference.Sampling.Sampler.ArgMax(logits.Slice(i * v, v)) == y[i]) right++;
            }
        }
        return (loss / batches, count == 0 ? double.NaN : (double)right / count);
    }

    /// <summary>The relative errors of the permutation test (see the method): bidirectional equivariance over all rows,
    /// causal equivariance over all rows, and the causal last row's change when only its prefix is permuted.</summary>
    internal static (double Bidirectional, double Causal, double LastRow, double LastRowFirstBlock) PermutationTest(TrainModel model, int t, int samples, TrainRandom rng)
    {
        var fwd = new DecoderProbe(model, t);
        var first = new DecoderProbe(FirstBlock(model), t);
        int v = model.VocabSize;
        double bi = 0, causal = 0, last = 0, lastFirst = 0;
        var x = new int[t];
        var px = new int[t];
        var pi = new int[t];
        for (int s = 0; s < samples; s++)
        {
            for (int i = 0; i < t; i++) x[i] = rng.Next(v);
            rng.Permutation(pi.AsSpan(0, t));
            for (int i = 0; i < t; i++) px[i] = x[pi[i]];
            foreach (bool bidirectional in new[] { true, false })
            {
                var a = fwd.Logits(x, bidirectional);
                var b = fwd.Logits(px, bidirectional);
                double err = Relative(a, b, v, pi, t);
                if (bidirectional) bi = Math.Max(bi, err);
                else causal = Math.Max(causal, err);
            }
            // causal, last row: permute the first t-1 tokens only
            rng.Permutation(pi.AsSpan(0, t - 1));
            pi[t - 1] = t - 1;
            for (int i = 0; i < t; i++) px[i] = x[pi[i]];
            last = Math.Max(last, LastRowChange(fwd, x, px, t, v));
            lastFirst = Math.Max(lastFirst, LastRowChange(first, x, px, t, v));
        }
        return (bi, causal, last, lastFirst);
    }

    /// <summary>max_j |b[T−1, j] − a[T−1, j]| / max |a[T−1]| for the causal logits of x and of px.</summary>
    private static double LastRowChange(DecoderProbe probe, int[] x, int[] px, int t, int v)
    {
        var la = probe.Logits(x, false).AsSpan((t - 1) * v, v).ToArray();
        var lb = probe.Logits(px, false).AsSpan((t - 1) * v, v).ToArray();
        double d = 0, size = 1e-30;
        for (int j = 0; j < v; j++) { d = Math.Max(d, Math.Abs(la[j] - lb[j])); size = Math.Max(size, Math.Abs(la[j])); }
        return d / size;
    }

    /// <summary>The model cut after its first block: a 1-layer model with the trained embeddings, block 0, final norm and head.</summary>
    internal static TrainModel FirstBlock(TrainModel model)
    {
        var one = new TrainModel(model.Config with { Layers = 1, LayerGroups = 1 });
        foreach (var info in one.Parameters.Infos) model.Parameters.P(model.Parameters[info.Name]).CopyTo(one.Parameters.P(info));
        return one;
    }

    /// <summary>max_i,j |b[i, j] − a[π(i), j]| / max |a|.</summary>
    private static double Relative(float[] a, float[] b, int v, int[] pi, int t)
    {
        double d = 0, size = 1e-30;
        for (int i = 0; i < t; i++)
            for (int j = 0; j < v; j++)
            {
                d = Math.Max(d, Math.Abs(b[i * v + j] - a[pi[i] * v + j]));
                size = Math.Max(size, Math.Abs(a[i * v + j]));
            }
        return d / size;
    }
}

/// <summary>
/// The one <see cref="Decoder"/> bound over a trained model's parameters, run on one sequence with every row an output,
/// either causal (row i sees keys 0..i, as in training) or bidirectional (every row sees all keys, as BERT's encoder).
/// </summary>
internal sealed class DecoderProbe
{
    private readonly DecoderWeights _w;
    private readonly DecoderBuffers _buf;
    private readonly ForwardBatch _batch;
    private readonly ActivationKv _kv;
    private readonly int _t, _v;

    public DecoderProbe(TrainModel model, int t)
    {
        var c = model.Config;
        _w = DecoderWeights.Bind(BoundTensors.Bind(model.Parameters.ValueSource, c, TensorNaming.HuggingFace));
        _buf = new DecoderBuffers(c, t, perLayer: false);
        _batch = new ForwardBatch(t, 1);
        _kv = new ActivationKv(_ => _buf.Layer(0).K, _ => _buf.Layer(0).V, _batch, c.KvWidth);
        _t = t;
        _v = c.Vocab;
    }

    /// <summary>tokens (T) -> logits (T, V), a copy.</summary>
    public float[] Logits(ReadOnlySpan<int> tokens, bool bidirectional)
    {
        _batch.SetTraining(tokens, 1, _t);
        if (bidirectional) for (int i = 0; i < _t; i++) _batch.KvEnd[i] = _t;
        return Decoder.Forward(_w, _batch, _buf, _kv).ToArray();
    }
}
