using System.Globalization;
using System.Text.Json.Nodes;
using SharpLM.Inference;
using SharpLM.Models;
using static SharpLM.Lab.LabReport;

namespace SharpLM.Lab.Experiments;

/// <summary>
/// <c>kv-cache</c> (note 2's code, 1 q): the time of the next token at context length n with the KV cache (one row
/// through every matrix, n keys in attention) against recomputing the whole prefix (n rows, n(n+1)/2 key reads),
/// through the inference path (<see cref="BatchDecoder"/>, <see cref="KvCache"/>) on models/default.gguf, with the
/// logits of both checked equal and the times fitted to a + b·n and a + b·n + c·n².
/// </summary>
internal sealed class KvCacheExperiment : LabExperiment
{
    public override string Name => "kv-cache";
    public override string Summary => "next-token time with the KV cache vs recomputing the prefix, against length; fitted O(n) and O(n²)";

    public override LabReport Run(LabContext ctx)
    {
        var r = new LabReport(Name, "what the KV cache saves");
        r.Claims.Add(new("2 (手写代码)", "# 拼接kvcache … if past_key_value is not None: # reuse k, v, self_attention … key_states = torch.cat([past_key_value[0], key_states], dim=2)",
            "Concatenate the KV cache: when past keys and values exist, reuse them (k, v) and append the new ones, so only the new token's projections are computed."));
        r.Claims.Add(new("1 r (Bert中self attention 计算复杂度如何？)", "O(dL²)", "Self-attention costs O(d·L²)."));
        string path = Parameters.FindDefaultModel() ?? throw new FileNotFoundException("models/default.gguf was not found beside the binary or above the current folder");
        using var model = LanguageModel.Load(path);
        var c = model.Config;
        int ctxLen = Math.Min(model.ContextSize, 512);
        int[] lengths = ctx.Quick ? [8, 16, 32, 64] : [16, 32, 64, 128, 192, 256, 384, 512];
        lengths = [.. lengths.Where(n => n <= ctxLen)];
        int repeats = ctx.Quick ? 3 : 9;
        r.Method.Add($"The model is `models/default.gguf` ({c}), loaded by `LanguageModel.Load`, run by the inference engine (`BatchDecoder`, one " +
                     $"sequence with its `KvCache`). For each length n in {string.Join(", ", lengths)}: **cached**, the n−1 first tokens are fed once, then the " +
                     "n-th token is fed alone (truncating back each time): one row through every matrix and n keys in attention; **recomputed**, the n " +
                     "tokens are fed from an empty cache (what a model without a cache does for every new token): n rows, n(n+1)/2 key reads per head and layer. " +
                     $"Median of {repeats} timings after a warm-up, {ctx.Options.Threads} thread(s). The logits of the n-th token must be equal both ways (compared with exact f32 activations; " +
                     "the timings use the default path, 8-bit activations for quantized weights). " +
                     "The per-token times are fitted by least squares to a + b·n (cached) and a + b·n + c·n² (recomputed).");
        var rng = ctx.Random(7);
        var tokens = new int[lengths[^1]];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = rng.Next(c.Vocab);
        var seq = model.CreateState(ctxLen);
        var rows = new List<IReadOnlyList<string>>();
        var jd = new JsonArray();
        var jt = new JsonArray();
        var cached = new List<(double, double)>();
        var recomputed = new List<(double, double)>();
        // the equality is the cache's, so it is checked with exact f32 activations: with 8-bit activations for a
        // quantized model a one-row and an n-row pass may round an activation to a neighbouring step (~1e-3 in the
        // logits), which is the quantization's doing, not the cache's. Checked before the warm-up, so the exact path's
        // JIT work is over before anything is timed.
        var diffs = new double[lengths.Length];
        using (Kernels.MatMul.ExactActivations())
            for (int li = 0; li < lengths.Length; li++)
            {
                var prefix = tokens.AsSpan(0, lengths[li]);
                seq.Truncate(0);
                var full = seq.Forward(prefix, allLogits: false).ToArray();
                seq.Truncate(0);
                seq.Forward(prefix[..^1], allLogits: false);
                var step = seq.Forward(prefix[^1..], allLogits: false).ToArray();
                diffs[li] = full.Zip(step, (a, b) => (double)Math.Abs(a - b)).Max();
            }
        double maxDiff = diffs.Max();
        // warm-up: both paths at the longest length, so the JIT's optimised code is what gets timed (tiered compilation
        // promotes a method after 30 calls and a quiet 100 ms, on a background thread that competes with the timings)
        var warm = System.Diagnostics.Stopwatch.StartNew();
        for (int w = 0; ctx.Quick ? w < 3 : w < 30 || warm.ElapsedMilliseconds < 500; w++)
        {
            seq.Truncate(0);
            seq.Forward(tokens, allLogits: false);
            seq.Truncate(tokens.Length - 1);
            seq.Forward(tokens.AsSpan(tokens.Length - 1), allLogits: false);
        }
        for (int li = 0; li < lengths.Length; li++)
        {
            int n = lengths[li];
            ctx.Report($"n={n}", (double)li / lengths.Length);
            double diff = diffs[li];
            int last = tokens[n - 1];
            seq.Truncate(0);
            seq.Forward(tokens.AsSpan(0, n - 1), allLogits: false);
            double tc = LabContext.MedianSeconds(repeats, () => { seq.Truncate(n - 1); seq.Forward([last], allLogits: false); });
            double tr = LabContext.MedianSeconds(repeats, () => { seq.Truncate(0); seq.Forward(tokens.AsSpan(0, n), allLogits: false); });
            cached.Add((n, tc * 1e3));
            recomputed.Add((n, tr * 1e3));
            long keyReadsCached = (long)n * c.Heads * c.Layers, keyReadsFull = (long)n * (n + 1) / 2 * c.Heads * c.Layers;
            rows.Add([n.ToString(CultureInfo.InvariantCulture), F(tc * 1e3), F(tr * 1e3), F(tr / tc), "1", n.ToString(CultureInfo.InvariantCulture),
                      keyReadsCached.ToString("N0", CultureInfo.InvariantCulture), keyReadsFull.ToString("N0", CultureInfo.InvariantCulture), diff.ToString("0.##E+0", CultureInfo.InvariantCulture)]);
            jd.Add((JsonNode)new JsonObject { ["n"] = n, ["rows_cached"] = 1, ["rows_recomputed"] = n, ["key_reads_cached"] = keyReadsCached, ["key_reads_recomputed"] = keyReadsFull, ["max_logit_diff"] = diff });
            jt.Add((JsonNode)new JsonObject { ["n"] = n, ["cached_ms"] = tc * 1e3, ["recomputed_ms"] = tr * 1e3 });
        }
        r.Data["lengths"] = jd;
        r.Data["max_logit_diff"] = maxDiff;
        r.Timings["lengths"] = jt;
        var lin = Fit(cached, 1);
        var quad = Fit(recomputed, 2);
        r.Timings["fit_cached_ms"] = new JsonArray(J(lin[0]), J(lin[1]));
        r.Timings["fit_recomputed_ms"] = new JsonArray(J(quad[0]), J(quad[1]), J(quad[2]));
        r.Tables.Add(new("**Next token at length n** (times in ms; rows = rows through the matrices; key reads = q·k products, all heads and layers):",
            ["n", "cached", "recomputed", "ratio", "rows cached", "rows recomputed", "key reads cached", "key reads recomputed", "max |logit diff|"], rows));
        r.Tables.Add(new("**Fits** (ms):", ["path", "fit"], [
            ["cached", $"{F(lin[0])} + {F(lin[1])}·n"],
            ["recomputed", $"{F(quad[0])} + {F(quad[1])}·n + {F(quad[2])}·n²"]]));
        var (n0, c0) = cached[0];
        var (n1, c1) = cached[^1];
        r.Findings.Add($"The cache gives the same next-token logits as recomputing (largest difference {maxDiff:0.##E+0}), and the next token costs {F(c0)} ms at n = {n0} and {F(c1)} ms at n = {n1} with it, " +
                       $"against {F(recomputed[0].Item2)} and {F(recomputed[^1].Item2)} ms without: {F(recomputed[^1].Item2 / c1)}× at the longest length.");
        r.Findings.Add($"With the cache the time per token grows by {F(lin[1] * 1e3)} µs per position of context on a base of {F(lin[0] * 1e3)} µs: each token reads every weight once and only its attention grows with n. " +
                       $"Without it each token redoes the whole prefix, so its time grows with n ({F(quad[1] * 1e3)} µs per position in the fit)" +
                       (quad[2] > 0 ? $" plus a quadratic term for attention over every pair ({F(quad[2] * 1e6)} ns per pair)." : $"; the quadratic attention term is not measurable at these lengths (fit {F(quad[2] * 1e6)} ns per pair): in a model this small and this short (context {ctxLen}), the matrices dominate.") +
                       " Over a generation of N tokens that is O(N²) matrix work without the cache against O(N) with it.");
        r.Findings.Add("Timings vary from run to run (the machine is shared); the row and key-read counts in the JSON's `data` are exact.");
        r.Panels.Add(new ChartPanel { Title = "next-token time", XLabel = "context length n", YLabel = "ms", Series = [new("kv cache", cached), new("recompute prefix", recomputed)] });
        r.Panels.Add(new ChartPanel { Title = "next-token time, log-log", XLabel = "n", YLabel = "ms", LogX = true, LogY = true, Series = [new("kv cache", cached), new("recompute prefix", recomputed)] });
        r.ChartWidth = 1100;
        return r;
    }

    /// <summary>Least-squares polynomial coefficients (constant first) of degree <paramref name="degree"/>.</summary>
    internal static double[] Fit(IReadOnlyList<(double X, double Y)> pts, int degree)
    {
        int m = degree + 1;
        var a = new double[m, m + 1];
        foreach (var (x, y) in pts)
            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < m; j++) a[i, j] += Math.Pow(x, i + j);
                a[i, m] += y * Math.Pow(x, i);
            }
        for (int col = 0; col < m; col++)
        {
            int piv = col;
            for (int row = col + 1; row < m; row++) if (Math.Abs(a[row, col]) > Math.Abs(a[piv, col])) piv = row;
            for (int k = 0; k <= m; k++) (a[col, k], a[piv, k]) = (a[piv, k], a[col, k]);
            for (int row = 0; row < m; row++)
            {
                if (row == col || a[col, col] == 0) continue;
                double f = a[row, col] / a[col, col];
                for (int k = col; k <= m; k++) a[row, k] -= f * a[col, k];
            }
        }
        var coef = new double[m];
        for (int i = 0; i < m; i++) coef[i] = a[i, i] == 0 ? 0 : a[i, m] / a[i, i];
        return coef;
    }
}
