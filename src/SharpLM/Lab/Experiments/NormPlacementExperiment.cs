using System.Globalization;
using System.Text.Json.Nodes;
using SharpLM.Models;
using SharpLM.Training;
using static SharpLM.Lab.LabReport;

namespace SharpLM.Lab.Experiments;

/// <summary>
/// <c>norm-placement</c> (note 5): the same small LLaMA decoder with its norms before each sublayer (pre-norm, LLaMA),
/// after each residual add (post-norm, the original transformer) and after a residual scaled by α with DeepNet's β
/// initialisation (DeepNorm, GLM), all from <see cref="ModelConfig.NormPlacement"/> of the one <see cref="Decoder"/>,
/// trained on the copy task at increasing depth with and without warmup at a high learning rate: divergence, blow-ups,
/// final loss and the loss curves.
/// </summary>
internal sealed class NormPlacementExperiment : LabExperiment
{
    public override string Name => "norm-placement";
    public override string Summary => "pre-norm, post-norm and DeepNorm at increasing depth, with and without warmup: divergence and final loss";

    private static readonly (string Name, NormPlacement Placement)[] Placements =
        [("pre-norm", NormPlacement.Pre), ("post-norm", NormPlacement.Post), ("DeepNorm", NormPlacement.DeepNorm)];

    public override LabReport Run(LabContext ctx)
    {
        var r = new LabReport(Name, "pre-norm, post-norm and DeepNorm as the decoder gets deeper");
        r.Claims.Add(new("5 (各种norm方式优缺点)", "LLaMA使用pre RMSNorm，是比较主流的方式。\nGLM使用post DeepNorm。DEEPNORM在进行layer-norm之前会扩大残差连接。\nLayerNorm(x * α + f(x))",
            "(Pros and cons of the norm schemes.) LLaMA uses pre-RMSNorm, the mainstream choice. GLM uses post-DeepNorm: DeepNorm scales up the residual connection before the layer norm, LayerNorm(x·α + f(x))."));
        int[] depths = ctx.Quick ? [2, 6] : [6, 12, 24, 48];
        int seeds = ctx.Quick ? 1 : 3;
        int steps = ctx.Quick ? 12 : 150, warm = ctx.Quick ? 4 : 30, batch = ctx.Quick ? 4 : 8, t = 16, vocab = 32, width = ctx.Quick ? 32 : 64;
        double lr = 1e-2;
        r.Method.Add($"**Model.** A LLaMA decoder (`TrainModel`: RMSNorm, RoPE, SwiGLU MLP 2·C, untied head) of width {width}, 2 heads, vocabulary {vocab}, " +
                     $"at depths {string.Join(", ", depths)}. Only `ModelConfig.NormPlacement` changes: **pre-norm** x = x + f(RMSNorm(x)) with one final norm " +
                     "(LLaMA); **post-norm** x = RMSNorm(x + f(x)) (the original transformer's placement; the final norm is kept, so the head is the same); " +
                     "**DeepNorm** x = RMSNorm(α·x + f(x)) with α = (2N)^(1/4) and the value, output and MLP projections initialised with gain β = (8N)^(−1/4) " +
                     "(DeepNet, Wang et al. 2022, the decoder-only/encoder-only setting with N layers; GLM-130B uses it). The same RMSNorm in all three, so " +
                     "only the placement differs. Initial weights N(0, 0.02); pre-norm adds GPT-2's 0.02/√(2N) on the residual projections (as `sharplm train`), " +
                     "post-norm and DeepNorm do not (that is a pre-norm remedy; BERT's post-norm encoder uses 0.02 everywhere). Every block's backward pass is " +
                     "the library's (checked against finite differences in tests/SharpLM.Tests/Training/NormVariantTests.cs).");
        r.Method.Add($"**Training.** The copy task (`LabTraining.CopyBatch`, sequences of {t}, the loss on the copied half; chance is ln {vocab - 1} = {F(Math.Log(vocab - 1))}), " +
                     $"{steps} AdamW steps of {batch} sequences (β 0.9/0.95, no weight decay, gradient clip 1), peak lr {lr.ToString(CultureInfo.InvariantCulture)} " +
                     $"(high for Adam on purpose: the note's point is what breaks), with a linear warmup over {warm} steps or none, then cosine decay to lr/10. " +
                     $"Every setting runs with {seeds} seed(s) (initial weights and batches; seed k is the same for every placement, depth and warmup). Reported per run: **final loss** (mean of the last 10% of steps), **diverged** (a non-finite loss or " +
                     "gradient), **peak** (the largest loss after the first step over the first loss: > 1 is a blow-up), and whether the run **learned** " +
                     "(final loss below 90% of ln(V−1)); per setting, the median final loss and how many seeds learned.");

        var runs = new JsonArray();
        var rows = new List<IReadOnlyList<string>>();
        var finals = new Dictionary<string, List<(double, double)>>();
        var curves = new Dictionary<int, List<ChartSeries>>();
        int total = depths.Length * Placements.Length * 2 * seeds, done = 0;
        double chance = Math.Log(vocab - 1);
        // one training run: its figures into runs (and its curve, for the first seed), its summary back
        (double Final, bool Learned, bool Diverged, double Peak) Train(int depth, string pname, NormPlacement placement, int w, int seed, string setting)
        {
            var cfg = LabTraining.Llama(vocab, width, depth, 2, t) with { NormPlacement = placement };
            var model = new TrainModel(cfg);
            model.Initialize(ctx.Seed + (ulong)seed * 1000);
            var data = ctx.Random(31 + seed * 1000);
            double from = (double)done / total;
            string stage = $"{depth} layers {setting}{(seeds > 1 ? $" seed {seed + 1}/{seeds}" : "")}";
            var losses = LabTraining.Run(model, steps, batch, t, lr, w, (s, x, y) => LabTraining.CopyBatch(data, vocab, batch, t, x, y),
                s => ctx.Report(stage, from + (s + 1.0) / steps / total));
            done++;
            bool diverged = losses.Any(double.IsNaN);
            double fin = LabTraining.Final(losses);
            double peak = losses.Skip(1).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max() / losses[0];
            bool learned = double.IsFinite(fin) && fin < 0.9 * chance;
            if (seed == 0)
            {
                if (!curves.TryGetValue(depth, out var dc)) curves[depth] = dc = [];
                dc.Add(new ChartSeries(setting, [.. losses.Select((l, i) => ((double)i, l))]));
            }
            runs.Add((JsonNode)new JsonObject
            {
                ["layers"] = depth, ["placement"] = pname, ["warmup"] = w, ["seed"] = seed, ["alpha"] = (double)NormOptions.ResidualScale(cfg), ["beta"] = NormOptions.InitScale(cfg),
                ["final_loss"] = J(fin), ["diverged"] = diverged, ["peak_over_first"] = J(peak), ["learned"] = learned,
                ["losses"] = new JsonArray([.. losses.Select(J)]),
            });
            return (fin, learned, diverged, peak);
        }

        foreach (int depth in depths)
            foreach (var (pname, placement) in Placements)
            {
                var row = new List<string> { depth.ToString(CultureInfo.InvariantCulture), pname };
                foreach (int w in new[] { warm, 0 })
                {
                    string setting = $"{pname}, {(w > 0 ? "warmup" : "no warmup")}";
                    var cell = Enumerable.Range(0, seeds).Select(seed => Train(depth, pname, placement, w, seed, setting)).ToArray();
                    // the setting over its seeds: median final loss (diverged runs count as +inf), seeds that learned
                    var sorted = cell.Select(c => c.Diverged || !double.IsFinite(c.Final) ? double.PositiveInfinity : c.Final).Order().ToArray();
                    double median = sorted[sorted.Length / 2];
                    if (!finals.TryGetValue(setting, out var list)) finals[setting] = list = [];
                    list.Add((depth, double.IsFinite(median) ? median : double.NaN));
                    int nDiv = cell.Count(c => c.Diverged), nLearned = cell.Count(c => c.Learned);
                    row.Add((double.IsFinite(median) ? F(median) : "diverged") + $" ({nLearned}/{seeds} learned{(nDiv > 0 ? $", {nDiv} diverged" : "")}, peak ≤ {F(cell.Select(c => c.Peak).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max())})");
                }
                rows.Add(row);
            }
        r.Data["lr"] = lr;
        r.Data["runs"] = runs;
        r.Tables.Add(new($"**Final copy loss**, the median over {seeds} seed(s) (in brackets: seeds whose run left chance, and the largest loss after step 0 over the first loss; chance is {F(chance)}):",
            ["layers", "placement", $"warmup {warm}", "no warmup"], rows));
        r.Tables.Add(new("**α and β** of DeepNorm at each depth (DeepNet's decoder-only setting):", ["layers", "α = (2N)^(1/4)", "β = (8N)^(−1/4)"],
            [.. depths.Select(d => (IReadOnlyList<string>)[d.ToString(CultureInfo.InvariantCulture), F(Math.Pow(2.0 * d, 0.25)), F(Math.Pow(8.0 * d, -0.25))])]));

        // what the numbers say, from the runs
        var o = runs.Select(n => n!.AsObject()).ToArray();
        double Fin(JsonObject x) => x["final_loss"]?.GetValue<double>() ?? double.PositiveInfinity;
        string Summ(string p) => string.Join("; ", depths.Select(d =>
        {
            string S(bool warmup)
            {
                var cellRuns = o.Where(x => (string)x["placement"]! == p && (int)x["layers"]! == d && (((int)x["warmup"]! > 0) == warmup)).ToArray();
                var f = cellRuns.Select(x => (bool)x["diverged"]! ? double.PositiveInfinity : Fin(x)).Order().ToArray();
                double med = f[f.Length / 2];
                return (double.IsFinite(med) ? F(med) : "diverged") + (seeds > 1 ? $" ({cellRuns.Count(x => (bool)x["learned"]!)}/{seeds})" : "");
            }
            return $"{d} layers {S(true)} / {S(false)}";
        }));
        foreach (var (p, _) in Placements) r.Findings.Add($"{p} (median final loss with / without warmup{(seeds > 1 ? ", seeds that learned in brackets" : "")}): {Summ(p)}.");
        int Count(string p, Func<JsonObject, bool> f) => o.Count(x => (string)x["placement"]! == p && f(x));
        bool Bad(JsonObject x) => (bool)x["diverged"]! || !(bool)x["learned"]!;
        var bad = Placements.ToDictionary(p => p.Name, p => Count(p.Name, Bad));
        int perPlacement = depths.Length * 2 * seeds;
        r.Findings.Add($"Runs that diverged or never left chance, of {perPlacement} each: pre-norm {bad["pre-norm"]}, post-norm {bad["post-norm"]}, DeepNorm {bad["DeepNorm"]}. " +
                       $"Without warmup only: pre-norm {Count("pre-norm", x => (int)x["warmup"]! == 0 && Bad(x))}, post-norm {Count("post-norm", x => (int)x["warmup"]! == 0 && Bad(x))}, " +
                       $"DeepNorm {Count("DeepNorm", x => (int)x["warmup"]! == 0 && Bad(x))}.");
        var deepest = o.Where(x => (int)x["layers"]! == depths[^1]).ToArray();
        var best = deepest.Where(x => !(bool)x["diverged"]!).MinBy(Fin);
        if (!deepest.Any(x => (bool)x["learned"]!))
            r.Findings.Add($"At {depths[^1]} layers no run left chance in {steps} steps, whatever the placement and warmup: at this learning rate the deepest models need more steps (or a lower rate) than this form gives them.");
        else if (best != null)
            r.Findings.Add($"At {depths[^1]} layers the lowest final loss was {F(Fin(best))}, by {(string)best["placement"]!} {((int)best["warmup"]! > 0 ? "with" : "without")} warmup.");
        int divergedRuns = o.Count(x => (bool)x["diverged"]!);
        bool deepBest = bad["DeepNorm"] < bad["post-norm"] && bad["DeepNorm"] < bad["pre-norm"];
        int Learned(string p, int d) => o.Count(x => (string)x["placement"]! == p && (int)x["layers"]! == d && (bool)x["learned"]!);
        int[] rescued = [.. depths.Where(d => Learned("DeepNorm", d) > Learned("post-norm", d))];
        bool postWorst = bad["post-norm"] > bad["pre-norm"] && bad["post-norm"] > bad["DeepNorm"];
        r.Findings.Add((deepBest
                ? $"DeepNorm is the placement that trained most often ({perPlacement - bad["DeepNorm"]} of {perPlacement} runs left chance, against {perPlacement - bad["post-norm"]} for plain post-norm): scaling the residual by α before the norm, with the β initialisation, made post-norm trainable{(rescued.Length > 0 ? $" at {string.Join(" and ", rescued)} layers, where plain post-norm {(rescued.All(d => !o.Any(x => (string)x["placement"]! == "post-norm" && (int)x["layers"]! == d && (bool)x["learned"]!)) ? "never" : "less often")} left chance" : " more often")}, as the note (and DeepNet) say. "
                : "DeepNorm was not the placement that trained most often in these runs. ")
            + (postWorst ? "Plain post-norm failed most often" : "Plain post-norm was not the clear outlier")
            + (bad["post-norm"] == bad["pre-norm"] ? " (it failed as often as pre-norm)."
               : Math.Abs(bad["post-norm"] - bad["pre-norm"]) == 1 ? " (one run apart from pre-norm: not a significant difference)." : ".")
            + (divergedRuns == 0 ? " No run diverged to a non-finite loss: with the gradient clip and Adam the failure at this lr is a run that stays at chance, not a blow-up." : $" {divergedRuns} run(s) diverged to a non-finite loss."));
        if (bad["pre-norm"] * 2 >= perPlacement)
            r.Findings.Add($"Where this disagrees with the usual picture (pre-norm is the robust choice, the note's \"mainstream\"): at this high lr pre-norm stayed at chance in {bad["pre-norm"]} of {perPlacement} runs. " +
                           "The copy task is learnt in a sudden drop (the curves) once attention finds the token half a sequence back; a run that has not found it within the steps ends at chance. " +
                           $"These are {seeds} seed(s) at one learning rate, so read them as which placements can train at all at this rate, not as a ranking of final losses.");
        if (ctx.Quick) r.Findings.Add("Quick form: two depths and a dozen steps; the figures check the mechanism, not the claim.");
        var fseries = finals.Select(kv => new ChartSeries(kv.Key, kv.Value)).ToList();
        r.Panels.Add(new ChartPanel { Title = "final loss against depth", XLabel = "layers", YLabel = "loss", LogX = true, Series = fseries });
        // the curves of the depth where the placements differ most (the widest spread of final losses)
        int shown = depths.MaxBy(d =>
        {
            var f = o.Where(x => (int)x["layers"]! == d).Select(Fin).Where(double.IsFinite).ToArray();
            return f.Length == 0 ? 0 : f.Max() - f.Min();
        });
        r.Data["curves_shown_for_layers"] = shown;
        r.Panels.Add(new ChartPanel { Title = $"loss curves, {shown} layers", XLabel = "step", YLabel = "loss", Series = curves[shown] });
        r.ChartWidth = 1300;
        return r;
    }
}
