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
    /// [<paramref name="window"/>(i).Start, .End); and the number of q·k products it makes.</summary>
    public static unsafe (double Seconds, long Products) Time(LabContext ctx, int l, int heads, int hs, Func<int, (int Start, int End)> window, int repeats)
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
            products += (long)(e - s) * heads;
        }
        batch.GroupBySlot();
        fixed (float* pk = k, pv = v)
        {
            batch.KBase[0] = (nint)pk;
            batch.VBase[0] = (nint)pv;
            var rows = batch.AttentionRows;
            double t = LabContext.MedianSeconds(repeats, () => Attention.Forward(q, y, default, l, heads, heads, hs, rows, WorkerPool.Shared));
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

/// <summary>
/// <c>sparse-attention</c> (note 1 r, s): dense attention against a local window of w keys per row, through the same
/// kernel with each row's visible keys narrowed: time and the keys read against L, O(L²) against O(L·w).
/// </summary>
internal sealed class SparseAttention : LabExperiment
{
    public override string Name => "sparse-attention";
    public override string Summary => "dense vs local-window attention: time and keys read against L, O(L²) vs O(L·w)";

    public override LabReport Run(LabContext ctx)
    {
        var r = new LabReport(Name, "sparse attention: what a local window saves");
        r.Claims.Add(new("1 s (有什么技术降低复杂度提升输入长度的？)", "Sparse attention,sparse attention放弃对全文的关注，只关心局部的语义组合，在整个计算矩阵上挖了空格子。这样做的好处是，下游任务的语义关联性的体现往往是局部的。",
            "Sparse attention gives up attending to the whole text and only cares about local combinations: it digs empty cells into the attention matrix. This works because the semantic relations downstream tasks need are mostly local."));
        int[] ls = ctx.Quick ? [64, 128, 256] : [128, 256, 512, 1024, 2048];
        int window = ctx.Quick ? 16 : 64, hs = 64, heads = 4, repeats = ctx.Quick ? 3 : 5;
        r.Method.Add($"The attention kernel on one sequence of L rows ({heads} heads of {hs}), bidirectional: **dense**, every row sees all L keys; **local**, row i sees " +
                     $"the keys [i − {window / 2}, i + {window / 2}) clipped to the sequence (a window of w = {window}), which the kernel skips as it skips a causal " +
                     $"mask (each row's key range; `ForwardBatch.KvStart/KvEnd`, the mechanism of the decoder's sliding window). L in {string.Join(", ", ls)}; " +
                     $"median of {repeats} timings. Keys read = q·k products; the score memory a kernel that materialises the attention matrix would need is " +
                     "products × 4 bytes (SharpLM's kernel keeps one row of scores per thread).");
        var rows = new List<IReadOnlyList<string>>();
        var dense = new List<(double, double)>();
        var local = new List<(double, double)>();
        var jd = new JsonArray();
        var jt = new JsonArray();
        for (int i = 0; i < ls.Length; i++)
        {
            int l = ls[i];
            ctx.Report($"L={l}", (double)i / ls.Length);
            var (td, pd) = AttentionBench.Time(ctx, l, heads, hs, _ => (0, l), repeats);
            var (tl, pl) = AttentionBench.Time(ctx, l, heads, hs, j => (Math.Max(0, j - window / 2), Math.Min(l, j + window / 2)), repeats);
            dense.Add((l, td * 1e3));
            local.Add((l, tl * 1e3));
            rows.Add([l.ToString(CultureInfo.InvariantCulture), pd.ToString("N0", CultureInfo.InvariantCulture), pl.ToString("N0", CultureInfo.InvariantCulture),
                      F(pd * 4 / 1e6), F(pl * 4 / 1e6), F(td * 1e3), F(tl * 1e3), F(td / tl)]);
            jd.Add((JsonNode)new JsonObject { ["L"] = l, ["window"] = window, ["dense_products"] = pd, ["local_products"] = pl });
            jt.Add((JsonNode)new JsonObject { ["L"] = l, ["dense_seconds"] = td, ["local_seconds"] = tl });
        }
        r.Data["points"] = jd;
        r.Timings["points"] = jt;
        r.Tables.Add(new("", ["L", "keys read, dense", "keys read, local", "score MB, dense", "score MB, local", "dense (ms)", "local (ms)", "dense / local"], rows));
        double ed = AttentionBench.Exponent(dense), el = AttentionBench.Exponent(local);
        r.Data["window"] = window;
        r.Findings.Add($"Fitted over all lengths, the dense time grows as L^{F(ed)} and the local-window time as L^{F(el)} (O(L²) predicts 2, O(L·w) 1); " +
                       $"at L = {ls[^1]} the window reads {F((double)(long)jd[^1]!["dense_products"]! / (long)jd[^1]!["local_products"]!)}× fewer keys and runs {F(dense[^1].Item2 / local[^1].Item2)}× faster.");
        r.Findings.Add("The note's \"digging empty cells into the matrix\" is exactly a narrower key range per row; what it costs in quality (the claim that the relations tasks need are mostly local) needs training with the window, which this experiment does not do yet: the decoder's sliding window (Mistral, Gemma) runs in inference but has no backward pass, and strided or global-token patterns (not a single key range per row) are not in the kernel.");
        r.Panels.Add(new ChartPanel { Title = "attention time", XLabel = "L", YLabel = "ms", LogX = true, LogY = true, Series = [new("dense", dense), new($"local w={window}", local)] });
        var cells = new double[32, 32];
        for (int i = 0; i < 32; i++) for (int j = Math.Max(0, i - 4); j < Math.Min(32, i + 4); j++) cells[i, j] = 1;
        r.Panels.Add(new ChartPanel { Title = "local mask (32 rows, w=8)", Kind = ChartKind.Heat, Cells = cells });
        r.ChartWidth = 1100;
        return r;
    }
}
