using System.Globalization;
using System.Text.Json.Nodes;
using SharpLM.Sizing;
using SharpLM.Training;
using static SharpLM.Lab.LabReport;

namespace SharpLM.Lab.Experiments;

/// <summary>
/// <c>heads</c> (note 1 i, j): one attention head against several at the same width (head size = width / heads, so the
/// same parameters), and separate Q, K, V projections against one shared projection (<see cref="Models.ModelConfig.SharedQkv"/>),
/// trained on a task that needs two look-backs at once; parameters from the tensor table and calc.
/// </summary>
internal sealed class Heads : LabExperiment
{
    public override string Name => "heads";
    public override string Summary => "one head vs several at equal parameters, separate vs shared Q/K/V: parameters (calc) and loss on a two-look-back task";

    /// <summary>The look-backs of the task: the target of row i is the pair (x[i − A], x[i − B]).</summary>
    internal const int A = 2, B = 5;

    public override LabReport Run(LabContext ctx)
    {
        var r = new LabReport(Name, "several heads and separate Q, K, V: what they buy");
        r.Claims.Add(new("1 i (transformer为什么要用三个不一样的QKV？)", "八股，增强网络的容量和表达能力。",
            "Why does the transformer use three different Q, K, V? (The stock answer.) To increase the network's capacity and expressiveness."));
        r.Claims.Add(new("1 j (为什么要多头？举例说明多头相比单头注意力的优势)", "八股，增强网络的容量和表达能力。",
            "Why several heads, and an example of their advantage over a single head? (The stock answer.) To increase the network's capacity and expressiveness."));

        bool q = ctx.Quick;
        int k = 8, vocab = k * k, width = q ? 32 : 64, layers = 1, t = q ? 16 : 32, batch = q ? 4 : 8;
        int steps = q ? 15 : 400, warmup = q ? 3 : 30, evalBatches = q ? 2 : 16;
        int[] headCounts = q ? [1, 4] : [1, 2, 4, 8];
        double lr = 3e-3;
        r.Method.Add($"**Task: two look-backs at once.** Inputs are random symbols 0..{k - 1}; the target of row i (i ≥ {B}) is the pair " +
                     $"(x[i−{A}], x[i−{B}]) as one of {vocab} classes, {k}·x[i−{A}] + x[i−{B}]. A row must fetch two different earlier tokens and keep them apart. " +
                     $"Chance is ln {vocab} = {F(Math.Log(vocab))}; getting one of the two right and guessing the other is ln {k} = {F(Math.Log(k))}; both right is 0.");
        r.Method.Add($"**Models.** A 1-layer LLaMA (`TrainModel`: RMSNorm, RoPE, SwiGLU {2 * width} wide), width C = {width}, with " +
                     $"{string.Join(", ", headCounts)} heads of size C / heads, so the matrices are the same shapes whatever the count: the same parameters. " +
                     "Each with separate Q, K, V projections (three C×C matrices) and with one shared projection (`ModelConfig.SharedQkv`: q = k = v = h·W, " +
                     "before RoPE rotates q and k; the backward pass adds the three gradients into W). Parameters are read from the trainer's tensor table " +
                     "(`ParameterSet`) and from `sharplm calc` (`ParameterCount`), not typed. One layer, so that both look-backs have to happen in the " +
                     "same attention: a 2-layer version of this experiment (run while it was built, otherwise the same) solved the task with every head " +
                     "count, one head taking about twice the steps of two or four: one head can fetch one look-back per layer.");
        r.Method.Add($"**Training.** {steps} AdamW steps of {batch} sequences of {t}, lr {lr.ToString(CultureInfo.InvariantCulture)} (warmup {warmup}, cosine to lr/10), " +
                     $"clip 1; the same batches for every model. Held out: {evalBatches} fresh batches: loss, accuracy of the pair, and of each look-back alone " +
                     $"(the predicted class's x[i−{A}] or x[i−{B}] part).");

        var rows = new List<IReadOnlyList<string>>();
        var runs = new JsonArray();
        var curves = new List<ChartSeries>();
        int total = headCounts.Length * 2, done = 0;
        foreach (int h in headCounts)
            foreach (bool shared in new[] { false, true })
            {
                string name = $"{h} head{(h == 1 ? "" : "s")}, {(shared ? "shared" : "separate")} QKV";
                var cfg = LabTraining.Llama(vocab, width, layers, h, t) with { SharedQkv = shared };
                var model = new TrainModel(cfg);
                model.Initialize(ctx.Seed);
                var data = ctx.Random(31);
                double from = (double)done / total;
                var losses = LabTraining.Run(model, steps, batch, t, lr, warmup, (s, x, y) => TwoLookbacks(data, k, batch, t, x, y),
                    s => ctx.Report($"train {name}", from + (s + 1.0) / steps / total));
                done++;
                var eval = Evaluate(model, k, evalBatches, batch, t, ctx.Random(555));
                var pc = new ParameterCount(cfg);
                runs.Add((JsonNode)new JsonObject
                {
                    ["heads"] = h, ["head_size"] = cfg.HeadSize, ["shared_qkv"] = shared,
                    ["parameters"] = (long)model.Parameters.Count, ["calc_parameters"] = pc.Total, ["calc_attention_per_layer"] = pc.AttentionPerLayer,
                    ["calc_attention_formula"] = pc.AttentionFormula,
                    ["initial_loss"] = J(losses[0]), ["final_train_loss"] = J(LabTraining.Final(losses)), ["held_out_loss"] = J(eval.Loss),
                    ["accuracy_pair"] = J(eval.Pair), ["accuracy_first"] = J(eval.First), ["accuracy_second"] = J(eval.Second),
                    ["steps_to_loss_1"] = LabTraining.StepsTo(losses, 1.0), ["steps_to_loss_0_1"] = LabTraining.StepsTo(losses, 0.1),
                    ["losses"] = new JsonArray([.. losses.Select(J)]),
                });
                rows.Add([h.ToString(CultureInfo.InvariantCulture), cfg.HeadSize.ToString(CultureInfo.InvariantCulture), shared ? "shared" : "separate",
                          model.Parameters.Count.ToString("N0", CultureInfo.InvariantCulture), $"{pc.AttentionPerLayer:N0} ({pc.AttentionFormula})",
                          Steps(LabTraining.StepsTo(losses, 0.1)), F(LabTraining.Final(losses)), F(eval.Loss), F(eval.Pair), F(eval.First), F(eval.Second)]);
                if (!shared || h == headCounts[^1]) curves.Add(new ChartSeries(name, [.. losses.Select((l, i) => ((double)i, l))]));
            }
        r.Data["runs"] = runs;
        r.Tables.Add(new($"**Two look-backs** (chance ln {vocab} = {F(Math.Log(vocab))}, one of two right = ln {k} = {F(Math.Log(k))}; final train loss = mean of the last 10% of {steps} steps):",
            ["heads", "head size", "Q/K/V", "parameters", "attention / layer (calc)", "steps to loss < 0.1", "final train loss", "held-out loss", $"accuracy: pair", $"x[i−{A}]", $"x[i−{B}]"], rows));

        var o = runs.Select(n => n!.AsObject()).ToArray();
        JsonObject Run(int h, bool shared) => o.First(x => (int)x["heads"]! == h && (bool)x["shared_qkv"]! == shared);
        double D(JsonObject x, string f) => (double?)x[f] ?? double.NaN;
        var sep = headCounts.Select(h => Run(h, false)).ToArray();
        var shr = headCounts.Select(h => Run(h, true)).ToArray();
        long p0 = (long)sep[0]["parameters"]!;
        bool equal = sep.All(x => (long)x["parameters"]! == p0);
        r.Findings.Add($"Parameters: {p0:N0} for every head count with separate projections ({(equal ? "equal, as the shapes say: heads split the width, they do not add weights" : "NOT equal")}); " +
                       $"the shared projection has {(long)shr[0]["parameters"]!:N0}, {p0 - (long)shr[0]["parameters"]!:N0} fewer (two C×C matrices per layer: the attention block goes from " +
                       $"{(string)sep[0]["calc_attention_formula"]!} to {(string)shr[0]["calc_attention_formula"]!} in calc's formula). So \"more heads = more capacity\" is not about parameters.");
        double Acc(JsonObject x) => D(x, "accuracy_pair");
        string HeadsName(JsonObject x) => $"{(int)x["heads"]!} head{((int)x["heads"]! == 1 ? "" : "s")}";
        var bestMulti = sep.Skip(1).OrderByDescending(Acc).FirstOrDefault();
        r.Findings.Add("Held-out loss / pair accuracy with separate Q, K, V: " + string.Join("; ", sep.Select(x => $"{HeadsName(x)} {F(D(x, "held_out_loss"))} / {F(Acc(x))}")) + ". " +
                       (sep.All(x => Acc(x) >= 0.99)
                           ? "Every head count solved the task: one head was enough in the end, and the note's \"capacity\" did not show as a final loss. " +
                             $"It showed as speed: one head needed {Steps((int)sep[0]["steps_to_loss_0_1"]!)} steps to bring the loss below 0.1, against " +
                             $"{string.Join(", ", sep.Skip(1).Select(x => $"{Steps((int)x["steps_to_loss_0_1"]!)} ({HeadsName(x)})"))}. A likely reason (not measured here): one softmax has to put weight on both " +
                             "look-backs and the MLP must untangle their blended values, while several heads can each take one."
                           : bestMulti is not null && Acc(bestMulti) > Acc(sep[0]) + 0.1
                               ? $"Several heads beat one at the same parameters ({HeadsName(bestMulti)}: {F(Acc(bestMulti))} against {F(Acc(sep[0]))}; one head gets x[i−{A}] right {F(D(sep[0], "accuracy_first"))} and x[i−{B}] {F(D(sep[0], "accuracy_second"))} of the time). " +
                                 $"Each head is its own softmax, so different heads can look at x[i−{A}] and x[i−{B}] at once, while one head has to split a single distribution over both and gets their values blended. This is the note's 1 j made concrete: not more parameters, but several attention patterns in one layer."
                               : "One head did about as well as several here; the note's \"capacity\" did not show at this size."));
        int hurt = shr.Zip(sep).Count(p => Acc(p.First) < Acc(p.Second) - 0.1);
        r.Findings.Add("Shared against separate Q/K/V (pair accuracy): " + string.Join("; ", headCounts.Select((h, i) => $"{h} head{(h == 1 ? "" : "s")} {F(Acc(shr[i]))} vs {F(Acc(sep[i]))}")) + ". " +
                       (hurt > headCounts.Length / 2
                           ? "Sharing hurts at every head count. A likely reason: with q = k = v a head's score of a key is a symmetric form hᵢᵀWᵀWhⱼ (RoPE aside), largest for keys that look like the query itself, and what it fetches is the same vector it matched on, so it cannot look for one thing and carry another. Separate projections are not only \"more capacity\" (the note's 1 i): they let attention ask, match and carry different things."
                           : "Sharing did not cost much here; RoPE rotates q and k by different angles, which breaks the symmetry of q = k, and the task's values are the tokens themselves."));
        if (ctx.Quick) r.Findings.Add("Quick form: a few training steps only; the parameter counts are exact, the losses only check the mechanism.");

        r.Panels.Add(new ChartPanel { Title = "two look-backs, training loss", XLabel = "step", YLabel = "loss", Series = curves });
        r.Panels.Add(new ChartPanel
        {
            Title = "held-out pair accuracy", Kind = ChartKind.Bar, Categories = [.. headCounts.Select(h => $"{h} head{(h == 1 ? "" : "s")}")], YLabel = "accuracy",
            Series =
            [
                new("separate QKV", [.. sep.Select((x, i) => ((double)i, D(x, "accuracy_pair")))]),
                new("shared QKV", [.. shr.Select((x, i) => ((double)i, D(x, "accuracy_pair")))]),
            ],
        });
        r.ChartWidth = 1200;
        return r;
    }

    private static string Steps(int s) => s < 0 ? "never" : s.ToString(CultureInfo.InvariantCulture);

    /// <summary>A batch of the task: x (B*T) random symbols 0..k−1; y[i] = k·x[i−A] + x[i−B] for rows i ≥ max(A, B), else −1.</summary>
    internal static void TwoLookbacks(TrainRandom rng, int k, int b, int t, int[] x, int[] y)
    {
        for (int s = 0; s < b; s++)
            for (int i = 0; i < t; i++)
            {
                int at = s * t + i;
                x[at] = rng.Next(k);
                y[at] = i >= Math.Max(A, B) ? k * x[at - A] + x[at - B] : -1;
            }
    }

    /// <summary>Held-out loss and the accuracies of the pair and of each look-back (the argmax class split into its two symbols).</summary>
    internal static (double Loss, double Pair, double First, double Second) Evaluate(TrainModel model, int k, int batches, int b, int t, TrainRandom rng)
    {
        var x = new int[b * t];
        var y = new int[b * t];
        int v = model.VocabSize;
        double loss = 0;
        long pair = 0, first = 0, second = 0, count = 0;
        for (int e = 0; e < batches; e++)
        {
            TwoLookbacks(rng, k, b, t, x, y);
            loss += model.Forward(x, y, b, t);
            var logits = model.Logits;
            for (int i = 0; i < b * t; i++)
            {
                if (y[i] < 0) continue;
                int p = Inference.Sampling.Sampler.ArgMax(logits.Slice(i * v, v));
                count++;
                if (p == y[i]) pair++;
                if (p / k == y[i] / k) first++;
                if (p % k == y[i] % k) second++;
            }
        }
        return (loss / batches, (double)pair / count, (double)first / count, (double)second / count);
    }
}
