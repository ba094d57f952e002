using System.Globalization;
using System.Text.Json.Nodes;
using SharpLM.Kernels;
using SharpLM.Models;
using static SharpLM.Lab.LabReport;

namespace SharpLM.Lab.Experiments;

/// <summary>Times the attention kernel (<c>Attention.Forward</c>) on one sequence of L rows, each seeing a range of
/// keys, the way the models call it: rows and their visible keys in a <see cref="ForwardBatch"/>.</summary>
internal static class AttentionBench
{
    /// <summary>Median seconds of one attention pass over L rows (NH heads of HS, bidirectional), each row seeing the keys
    /// [<paramref name="window"/>(i).Start, .End) that <paramref name="pattern"/> keeps; and the number of (row, key) pairs
    /// kept times the heads: the q·k products a kernel that computes only the kept pairs makes.</summary>
    public static unsafe (double Seconds, long Products) Time(LabContext ctx, int l, int heads, int hs, Func<int, (int Start, int End)> window, int repeats,
                                                              SparsePattern pattern = default)
    {
        var rng = ctx.Random(l * 31 + hs);
        int w = heads * hs;
        var q = new float[l * w];
        var k = GC.AllocateArray<float>(l * w, pinned: true);
        var v = GC.AllocateArray<float>(l * w, pinned: true);
        var y = new float[l * w];
        rng.FillNormal(q, 1);
        rng.FillNormal(k, 1);
        rng.FillNormal(v, 1);
        var batch = new ForwardBatch(l, 1);
        long products = 0;
        for (int i = 0; i < l; i++)
        {
            var (s, e) = window(i);
            batch.Add(0, i, 0, s, e, output: false);
            for (int key = s; key < e; key++) if (pattern.IsDense || pattern.Sees(i, key)) products += heads;
        }
        batch.GroupBySlot();
        fixed (float* pk = k, pv = v)
        {
            batch.KBase[0] = (nint)pk;
            batch.VBase[0] = (nint)pv;
            var rows = batch.AttentionRows;
            rows.Pattern = pattern;
            double t = LabContext.MedianSeconds(repeats, () => Attention.Forward(q, y, default, l, heads, heads, hs, rows, WorkerPool.Shared));
            GC.KeepAlive(batch); // rows points into its pinned arrays: without this the collector may free them mid-timing
            return (t, products);
        }
    }

    /// <summary>The slope of log t against log x (least squares): the exponent a of t ∝ x^a.</summary>
    public static double Exponent(IReadOnlyList<(double X, double T)> pts)
    {
        var l = pts.Where(p => p.X > 0 && p.T > 0).Select(p => (Math.Log(p.X), Math.Log(p.T))).ToArray();
        double mx = l.Average(p => p.Item1), my = l.Average(p => p.Item2);
        double sxy = l.Sum(p => (p.Item1 - mx) * (p.Item2 - my)), sxx = l.Sum(p => (p.Item1 - mx) * (p.Item1 - mx));
        return sxx == 0 ? double.NaN : sxy / sxx;
    }

    /// <summary>Least-squares c in t = c·x (through the origin).</summary>
    public static double Proportional(IEnumerable<(double X, double T)> pts)
    {
        double sxy = 0, sxx = 0;
        foreach (var (x, t) in pts) { sxy += x * t; sxx += x * x; }
        return sxx == 0 ? 0 : sxy / sxx;
    }
}

/// <summary>
/// <c>complexity</c> (note 1 r): the attention kernel's time against the sequence length L and the head size d,
/// fitted to c·d·L², with the exact number of multiply-adds (2·L²·d per head for q·k and p·v).
/// </summary>
internal sealed class Complexity : LabExperiment
{
    public override string Name => "complexity";
    public override string Summary => "attention time against L and d, fitted to O(d·L²)";

    public override LabReport Run(LabContext ctx)
    {
        var r = new LabReport(Name, "self-attention costs O(d·L²)");
        r.Claims.Add(new("1 r (Bert中self attention 计算复杂度如何？)", "O(dL²)", "What is the complexity of BERT's self-attention? O(d·L²)."));
        int[] ls = ctx.Quick ? [32, 64, 128] : [64, 128, 256, 512, 1024];
        int[] ds = ctx.Quick ? [16, 64] : [32, 64, 128];
        int repeats = ctx.Quick ? 3 : 5, heads = 4;
        r.Method.Add($"The attention kernel (`Kernels/Attention.cs`, as the encoder calls it: every row sees all L keys) on one sequence of L rows, {heads} heads of " +
                     $"size d, random q, k, v; L in {string.Join(", ", ls)}, d in {string.Join(", ", ds)}; median of {repeats} timings, {ctx.Options.Threads} thread(s). " +
                     "The q·k products are counted exactly (L² per head); the time is fitted to t = c·d·L² through the origin, and the fit's error reported per point.");
        var pts = new List<(double X, double T, int L, int D, long Products)>();
        int total = ls.Length * ds.Length, done = 0;
        foreach (int d in ds)
            foreach (int l in ls)
            {
                ctx.Report($"L={l} d={d}", (double)done++ / total);
                var (t, products) = AttentionBench.Time(ctx, l, heads, d, _ => (0, l), repeats);
                pts.Add(((double)d * l * l, t, l, d, products));
            }
        double c = AttentionBench.Proportional(pts.Select(p => (p.X, p.T)));
        var rows = pts.Select(p => (IReadOnlyList<string>)[p.L.ToString(CultureInfo.InvariantCulture), p.D.ToString(CultureInfo.InvariantCulture),
            p.Products.ToString("N0", CultureInfo.InvariantCulture), F(p.T * 1e3), F(c * p.X * 1e3), F(p.T / (c * p.X))]).ToList();
        r.Tables.Add(new("", ["L", "d", "q·k products", "time (ms)", "c·d·L² (ms)", "measured / fit"], rows));
        r.Data["points"] = new JsonArray([.. pts.Select(p => (JsonNode)new JsonObject { ["L"] = p.L, ["d"] = p.D, ["heads"] = heads, ["qk_products"] = p.Products, ["multiply_adds"] = 2L * p.Products * p.D })]);
        r.Timings["points"] = new JsonArray([.. pts.Select(p => (JsonNode)new JsonObject { ["L"] = p.L, ["d"] = p.D, ["seconds"] = p.T })]);
        r.Timings["c_seconds_per_dL2"] = c;
        var ratios = pts.Where(p => p.L >= ls[^1] / 4).Select(p => p.T / (c * p.X)).ToArray();
        double rl = Ratio(pts, ls, 2), rd = RatioD(pts, ds);
        r.Findings.Add($"Fitted to c·d·L², c = {c * 1e9:0.###} ns (4 heads); over the larger sizes the points lie within a factor {F(ratios.Max() / ratios.Min())} of the fit. " +
                       $"Doubling L multiplied the time by {F(rl)} and doubling d by {F(rd)}; O(d·L²) predicts 4 and 2. " +
                       (rl is > 3 and < 5.5 && rd is > 1.5 and < 2.7 ? "The note's O(d·L²) holds." :
                        rl >= 5.5 ? "The time grows faster than L² at the largest sizes: the keys and values of a long sequence leave the CPU caches, and memory traffic adds to the arithmetic the formula counts." :
                        "The measured growth is below the formula's at these sizes: fixed costs per row still weigh."));
        r.Findings.Add("The exact counts: L² q·k products per head, each d multiply-adds, and as many for p·v: 2·d·L² per head. A decoder's causal mask halves the pairs (L(L+1)/2), which does not change the order.");
        r.Panels.Add(new ChartPanel
        {
            Title = "attention time", XLabel = "L", YLabel = "ms", LogX = true, LogY = true,
            Series = [.. ds.Select(d => new ChartSeries($"d={d}", [.. pts.Where(p => p.D == d).Select(p => ((double)p.L, p.T * 1e3))]))],
        });
        r.Panels.Add(new ChartPanel
        {
            Title = "time against d*L^2", XLabel = "d*L^2", YLabel = "ms", LogX = true, LogY = true,
            Series = [new("measured", [.. pts.OrderBy(p => p.X).Select(p => (p.X, p.T * 1e3))]), new("c*d*L^2", [.. pts.OrderBy(p => p.X).Select(p => (p.X, c * p.X * 1e3))])],
        });
        r.ChartWidth = 1100;
        return r;
    }

    private static double Ratio(List<(double X, double T, int L, int D, long Products)> pts, int[] ls, int f)
    {
        var last = pts.Where(p => p.L == ls[^1]).ToList();
        var half = pts.Where(p => p.L == ls[^1] / f).ToList();
        return last.Count == 0 || half.Count == 0 ? double.NaN : last.Sum(p => p.T) / half.Sum(p => p.T);
    }

    private static double RatioD(List<(double X, double T, int L, int D, long Products)> pts, int[] ds)
    {
        int lmax = pts.Max(p => p.L);
        double a = pts.First(p => p.L == lmax && p.D == ds[^1]).T, b = pts.First(p => p.L == lmax && p.D == ds[^2]).T;
        return a / b * ((double)ds[^2] * 2 / ds[^1]);
    }
}

