using System.Globalization;
using System.Text.Json.Nodes;
using SharpLM.Training;
using static SharpLM.Lab.LabReport;

namespace SharpLM.Lab.Experiments;

/// <summary>
/// <c>warmup</c> (note 1 w): the same small LLaMA trained on the copy task with a linear warmup and without, at several
/// peak learning rates (the trainer's own schedule and step): loss curves, the early spike, divergence, final loss.
/// </summary>
internal sealed class Warmup : LabExperiment
{
    public override string Name => "warmup";
    public override string Summary => "linear warmup vs none at several peak learning rates: loss curves, early spikes, divergence";

    public override LabReport Run(LabContext ctx)
    {
        var r = new LabReport(Name, "what the learning-rate warmup does");
        r.Claims.Add(new("1 w (Bert为什么要使用warmup的学习率trick)", "八股，为了让开始阶段的数据分布更好，更容易训练，防止过拟合到少数几个batch上。",
            "(The stock answer.) To give the start of training a better distribution of values, make it easier to train, and keep it from overfitting to the first few batches."));
        double[] lrs = ctx.Quick ? [3e-3, 3e-2] : [1e-3, 3e-3, 1e-2, 3e-2, 1e-1];
        int steps = ctx.Quick ? 10 : 200, warm = ctx.Quick ? 4 : 40, batch = ctx.Quick ? 4 : 8, t = ctx.Quick ? 16 : 32, vocab = 64, width = 64;
        r.Method.Add($"A 2-layer LLaMA (`TrainModel`, width {width}, 2 heads, vocabulary {vocab}) on the copy task (`LabTraining.CopyBatch`, sequences of {t}), " +
                     $"{steps} AdamW steps of {batch} sequences (β 0.9/0.95, clip 1, cosine decay to lr/10), the same initial weights and batches for every run. " +
                     $"Peak learning rates {string.Join(", ", lrs.Select(l => l.ToString(CultureInfo.InvariantCulture)))}, each with a linear warmup over {warm} steps " +
                     $"and with none. Reported: the final loss (mean of the last 10%), the worst loss of the first {warm} steps relative to the first loss " +
                     "(an early spike shows as > 1), runs stuck at chance (final loss above 95% of ln(V−1)), and divergence (a non-finite loss or gradient).");
        var rows = new List<IReadOnlyList<string>>();
        var runs = new JsonArray();
        var curves = new List<ChartSeries>();
        var finals = new List<(double, double)>[] { [], [] };
        int total = lrs.Length * 2, done = 0;
        foreach (double lr in lrs)
        {
            var row = new List<string> { lr.ToString(CultureInfo.InvariantCulture) };
            foreach (int w in new[] { warm, 0 })
            {
                var model = new TrainModel(LabTraining.Llama(vocab, width, 2, 2, t));
                model.Initialize(ctx.Seed);
                var data = ctx.Random(77);
                double from = (double)done / total;
                var losses = LabTraining.Run(model, steps, batch, t, lr, w, (s, x, y) => LabTraining.CopyBatch(data, vocab, batch, t, x, y),
                    s => ctx.Report($"lr {lr} warmup {w}", from + (s + 1.0) / steps / total));
                done++;
                double fin = LabTraining.Final(losses);
                double spike = losses.Take(warm).Max() / losses[0];
                bool diverged = losses.Any(double.IsNaN);
                row.Add(diverged ? "diverged" : $"{F(fin)} (spike {F(spike)})");
                runs.Add((JsonNode)new JsonObject { ["lr"] = lr, ["warmup"] = w, ["final_loss"] = J(fin), ["early_max_over_first"] = J(spike), ["diverged"] = diverged, ["losses"] = new JsonArray([.. losses.Select(J)]) });
                if (lr == lrs[^2] || lr == lrs[^1]) curves.Add(new ChartSeries($"lr {lr.ToString(CultureInfo.InvariantCulture)} {(w > 0 ? "warmup" : "no warmup")}", [.. losses.Select((l, i) => ((double)i, l))]));
                finals[w > 0 ? 0 : 1].Add((lr, double.IsFinite(fin) ? fin : double.NaN));
            }
            rows.Add(row);
        }
        r.Data["runs"] = runs;
        r.Tables.Add(new($"**Final copy loss** (in brackets the early spike; chance is ln {vocab - 1} = {F(Math.Log(vocab - 1))}):", ["peak lr", $"warmup {warm}", "no warmup"], rows));

        var o = runs.Select(n => n!.AsObject()).ToArray();
        int better = 0, worse = 0, divNo = 0, divW = 0;
        foreach (double lr in lrs)
        {
            var a = o.First(x => (double)x["lr"]! == lr && (int)x["warmup"]! > 0);
            var b = o.First(x => (double)x["lr"]! == lr && (int)x["warmup"]! == 0);
            double fa = a["final_loss"]?.GetValue<double>() ?? double.PositiveInfinity, fb = b["final_loss"]?.GetValue<double>() ?? double.PositiveInfinity;
            if (fa < fb / 1.2) better++;
            else if (fb < fa / 1.2) worse++;
            if ((bool)a["diverged"]!) divW++;
            if ((bool)b["diverged"]!) divNo++;
        }
        double chance = 0.95 * Math.Log(vocab - 1);
        int stuckW = o.Count(x => (int)x["warmup"]! > 0 && (x["final_loss"]?.GetValue<double>() ?? double.PositiveInfinity) > chance);
        int stuckN = o.Count(x => (int)x["warmup"]! == 0 && (x["final_loss"]?.GetValue<double>() ?? double.PositiveInfinity) > chance);
        var worstSpikeN = o.Where(x => (int)x["warmup"]! == 0).Max(x => x["early_max_over_first"]?.GetValue<double>() ?? double.NaN);
        var worstSpikeW = o.Where(x => (int)x["warmup"]! > 0).Max(x => x["early_max_over_first"]?.GetValue<double>() ?? double.NaN);
        r.Findings.Add($"Runs that never left chance: {stuckW} of {lrs.Length} with warmup, {stuckN} of {lrs.Length} without. The largest early spike was {F(worstSpikeW)}× the first loss with warmup and {F(worstSpikeN)}× without.");
        r.Findings.Add($"Across {lrs.Length} peak learning rates, warmup gave a clearly lower final loss (by more than 1.2×) at {better}, a clearly higher one at {worse}, and about the same at the rest; " +
                       $"runs that diverged: {divW} with warmup, {divNo} without.");
        var bestW = o.Where(x => (int)x["warmup"]! > 0 && x["final_loss"] != null).MinBy(x => (double)x["final_loss"]!);
        var bestN = o.Where(x => (int)x["warmup"]! == 0 && x["final_loss"] != null).MinBy(x => (double)x["final_loss"]!);
        if (bestW != null && bestN != null)
        {
            double lw = (double)bestW["lr"]!, ln = (double)bestN["lr"]!;
            r.Findings.Add($"The best run with warmup (lr {lw.ToString(CultureInfo.InvariantCulture)}) reached {F((double)bestW["final_loss"]!)}, the best without (lr {ln.ToString(CultureInfo.InvariantCulture)}) {F((double)bestN["final_loss"]!)}. " +
                           (lw > ln || divNo > divW
                               ? "Warmup let a higher peak rate train: in the first steps Adam's second-moment estimates are poor and the weights still random, and small steps there keep the large rate from blowing up."
                               : "In these runs warmup did not change which peak rate worked best."));
        }
        r.Findings.Add("The note's reason, \"overfitting to the first few batches\", is not something these curves can show (every batch is fresh data, so there is nothing to overfit); what they show is the early spike of a large rate without warmup.");
        if (ctx.Quick) r.Findings.Add("Quick form: a few steps only; the figures check the mechanism.");
        r.Panels.Add(new ChartPanel { Title = "final loss", XLabel = "peak lr", YLabel = "loss", LogX = true, Series = [new("warmup", finals[0]), new("no warmup", finals[1])] });
        r.Panels.Add(new ChartPanel { Title = "loss curves at the two largest rates", XLabel = "step", YLabel = "loss", Series = curves });
        r.ChartWidth = 1200;
        return r;
    }
}
