using SharpLM.Kernels;
using SharpLM.Tensors;
using SharpLM.Tests.Training;

namespace SharpLM.Tests.Kernels;

/// <summary>
/// Each kernel's backward pass: its readable oracle (generic, run in double) against central finite differences of its
/// forward pass, and the fast f32 backward against the oracle. The loss is sum(y * R) for a fixed random R, so dL/dy = R.
/// </summary>
public class BackwardTests
{
    private static double[] R(int n, ulong seed, double s = 1) => GradCheck.Rand(n, seed, s);

    [Theory]
    [InlineData(3, 5, 7, true)]
    [InlineData(4, 33, 17, false)]
    [InlineData(1, 1, 1, true)]
    public void Linear_backward_matches_finite_differences(int n, int c, int oc, bool bias)
    {
        var x = R(n * c, 1); var w = R(oc * c, 2); var b = bias ? R(oc, 3) : []; var r = R(n * oc, 4);
        var y = new double[n * oc];
        double Loss() { MatMul.Naive.Forward<double>(x, w, b, y, n, c, oc); return GradCheck.WeightedSum(y, r); }
        var dx = new double[n * c]; var dw = new double[oc * c]; var db = new double[b.Length];
        MatMul.Naive.Backward<double>(r, x, w, dx, dw, db, n, c, oc);
        GradCheck.Check("dx", x, dx, Loss);
        GradCheck.Check("dw", w, dw, Loss);
        if (bias) GradCheck.Check("db", b, db, Loss);
    }

    [Fact]
    public void Linear_backward_accumulates_into_existing_gradients()
    {
        int n = 2, c = 3, oc = 4;
        var x = R(n * c, 1); var w = R(oc * c, 2); var dy = R(n * oc, 3);
        var dx1 = new double[n * c]; var dw1 = new double[oc * c];
        MatMul.Naive.Backward<double>(dy, x, w, dx1, dw1, default, n, c, oc);
        var dx2 = (double[])dx1.Clone(); var dw2 = (double[])dw1.Clone();
        MatMul.Naive.Backward<double>(dy, x, w, dx2, dw2, default, n, c, oc);
        for (int i = 0; i < dx1.Length; i++) Assert.Equal(2 * dx1[i], dx2[i], 12);
        for (int i = 0; i < dw1.Length; i++) Assert.Equal(2 * dw1[i], dw2[i], 12);
    }

    [Fact]
    public unsafe void Embedding_backward_scatters_the_gradient_rows()
    {
        int n = 6, c = 4, v = 5;
        int[] ids = [1, 4, 1, 0, 2, 1];
        var table = R(v * c, 1).Select(d => (float)d).ToArray();
        var y = new float[n * c];
        fixed (float* pt = table)
            Embedding.Forward(new WeightMatrix(DType.F32, (byte*)pt, v, c), ids, y);
        for (int i = 0; i < n; i++) Assert.Equal(table.AsSpan(ids[i] * c, c).ToArray(), y.AsSpan(i * c, c).ToArray());
        var dy = R(n * c, 2).Select(d => (float)d).ToArray();
        var dt = new float[v * c];
        Embedding.Backward(dy, ids, dt, c);
        for (int row = 0; row < v; row++)
            for (int j = 0; j < c; j++)
            {
                double want = 0;
                for (int i = 0; i < n; i++) if (ids[i] == row) want += dy[i * c + j];
                Assert.Equal(want, dt[row * c + j], 5);
            }
    }

    [Theory]
    [InlineData(3, 8)]
    [InlineData(2, 37)]
    public void RmsNorm_backward_matches_finite_differences(int n, int c)
    {
        var x = R(n * c, 1); var w = R(c, 2); var r = R(n * c, 3);
        var y = new double[n * c]; var rstd = new double[n];
        double Loss() { RmsNorm.Naive.Forward<double>(x, w, y, rstd, n, c, 1e-5); return GradCheck.WeightedSum(y, r); }
        Loss();
        var dx = new double[n * c]; var dw = new double[c];
        RmsNorm.Naive.Backward<double>(r, x, w, rstd, dx, dw, n, c);
        GradCheck.Check("dx", x, dx, Loss);
        GradCheck.Check("dw", w, dw, Loss);
    }

    [Theory]
    [InlineData(3, 8)]
    [InlineData(2, 37)]
    public void LayerNorm_backward_matches_finite_differences(int n, int c)
    {
        var x = R(n * c, 1); var w = R(c, 2); var bb = R(c, 4); var r = R(n * c, 3);
        var y = new double[n * c]; var mean = new double[n]; var rstd = new double[n];
        double Loss() { LayerNorm.Naive.Forward<double>(x, w, bb, y, mean, rstd, n, c, 1e-5); return GradCheck.WeightedSum(y, r); }
        Loss();
        var dx = new double[n * c]; var dw = new double[c]; var db = new double[c];
        LayerNorm.Naive.Backward<double>(r, x, w, mean, rstd, dx, dw, db, n, c);
        GradCheck.Check("dx", x, dx, Loss);
        GradCheck.Check("dw", w, dw, Loss);
        GradCheck.Check("db", bb, db, Loss);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Rope_backward_matches_finite_differences(bool neox)
    {
        int t = 5, h = 3, hs = 8;
        int[] pos = [0, 3, 1, 7, 2];
        float[] inv = [1f, 0.3f, 0.05f, 0.001f];
        var x = R(t * h * hs, 1); var r = R(x.Length, 2);
        var y = new double[x.Length];
        double Loss() { x.CopyTo(y, 0); Rope.Naive.Forward<double>(y, t, h, hs, pos, inv, neox); return GradCheck.WeightedSum(y, r); }
        var dx = (double[])r.Clone();
        Rope.Naive.Forward<double>(dx, t, h, hs, pos, inv, neox, inverse: true);
        GradCheck.Check("dx", x, dx, Loss);
        // the fast backward is the same rotation
        var fast = r.Select(d => (float)d).ToArray();
        Rope.Backward(fast, t, h, hs, pos, inv, neox);
        for (int i = 0; i < fast.Length; i++) Assert.Equal(dx[i], fast[i], 5);
    }

    [Theory]
    [InlineData(2, 5, 4, 2, 6, true)]
    [InlineData(1, 4, 2, 2, 3, false)]
    [InlineData(2, 3, 3, 1, 4, true)]
    [InlineData(1, 4, 2, 1, 4, true, 0.9)]
    public void Attention_backward_matches_finite_differences(int b, int t, int nh, int kvh, int hs, bool causal, double scale = 0)
    {
        var q = R(b * t * nh * hs, 1); var k = R(b * t * kvh * hs, 2); var v = R(b * t * kvh * hs, 3); var r = R(b * t * nh * hs, 4);
        var att = new double[b * nh * t * t]; var y = new double[b * t * nh * hs];
        double Loss() { Attention.Naive.Forward<double>(q, k, v, att, y, b, t, nh, kvh, hs, causal, scale: scale); return GradCheck.WeightedSum(y, r); }
        Loss();
        var dq = new double[q.Length]; var dk = new double[k.Length]; var dv = new double[v.Length];
        Attention.Naive.Backward<double>(r, q, k, v, att, dq, dk, dv, b, t, nh, kvh, hs, causal, scale);
        GradCheck.Check("dq", q, dq, Loss);
        GradCheck.Check("dk", k, dk, Loss);
        GradCheck.Check("dv", v, dv, Loss);
    }

    [Fact]
    public void Attention_causal_mask_hides_the_future()
    {
        int t = 4, hs = 2;
        var q = R(t * hs, 1); var k = R(t * hs, 2); var v = R(t * hs, 3);
        var att = new double[t * t]; var y = new double[t * hs];
        Attention.Naive.Forward<double>(q, k, v, att, y, 1, t, 1, 1, hs, causal: true);
        for (int i = 0; i < t; i++)
        {
            double sum = 0;
            for (int s = 0; s < t; s++) { if (s > i) Assert.Equal(0.0, att[i * t + s]); sum += att[i * t + s]; }
            Assert.Equal(1.0, sum, 12);
        }
        Assert.Equal(v[0], y[0], 12); // position 0 sees only itself
    }

    [Fact]
    public void SwiGlu_and_gelus_backward_match_finite_differences()
    {
        int n = 23;
        var g = R(n, 1, 4); var u = R(n, 2, 4); var r = R(n, 3); var y = new double[n];
        double LossS() { SwiGlu.Naive.Forward<double>(g, u, y); return GradCheck.WeightedSum(y, r); }
        var dg = new double[n]; var du = new double[n];
        SwiGlu.Naive.Backward<double>(r, g, u, dg, du);
        GradCheck.Check("swiglu dgate", g, dg, LossS);
        GradCheck.Check("swiglu dup", u, du, LossS);

        double LossT() { GeluTanh.Naive.Forward<double>(g, y); return GradCheck.WeightedSum(y, r); }
        var dx = new double[n];
        GeluTanh.Naive.Backward<double>(r, g, dx);
        GradCheck.Check("gelu tanh", g, dx, LossT);

        double LossE() { Gelu.Naive.Forward<double>(g, y); return GradCheck.WeightedSum(y, r); }
        var dx2 = new double[n];
        Gelu.Naive.Backward<double>(r, g, dx2);
        GradCheck.Check("gelu erf", g, dx2, LossE);
    }

    [Theory]
    [InlineData(0.0, 0.0)]
    [InlineData(0.5, 0.5204998778130465)]
    [InlineData(-1.0, -0.8427007929497149)]
    [InlineData(2.5, 0.9995930479825550)]
    [InlineData(4.0, 0.9999999845827421)]
    public void Erf_matches_tabulated_values(double x, double expected) => Assert.Equal(expected, Gelu.Naive.Erf(x), 14);

    [Fact]
    public void CrossEntropy_backward_matches_finite_differences_and_skips_ignored_targets()
    {
        int n = 5, v = 7;
        int[] targets = [3, -1, 0, 6, 2];
        var logits = R(n * v, 1, 3); var probs = new double[n * v]; var losses = new double[n];
        double Loss() => CrossEntropy.Naive.Forward<double>(logits, targets, probs, losses, v).Mean;
        var (mean, count) = CrossEntropy.Naive.Forward<double>(logits, targets, probs, losses, v);
        Assert.Equal(4, count);
        // reference: -log softmax computed directly
        double refSum = 0;
        foreach (int row in new[] { 0, 2, 3, 4 })
        {
            double z = 0;
            for (int i = 0; i < v; i++) z += Math.Exp(logits[row * v + i]);
            refSum += Math.Log(z) - logits[row * v + targets[row]];
        }
        Assert.Equal(refSum / 4, mean, 12);
        var dl = new double[n * v];
        CrossEntropy.Naive.Backward<double>(probs, targets, dl, v, 1.0 / count);
        for (int i = 0; i < v; i++) Assert.Equal(0.0, dl[v + i]);
        GradCheck.Check("dlogits", logits, dl, Loss);
    }

    private static float[] F(double[] d) => Array.ConvertAll(d, x => (float)x);

    private static void Close(string what, ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double tol)
    {
        double maxDiff = 0, maxRef = 1e-3;
        for (int i = 0; i < expected.Length; i++) { maxDiff = Math.Max(maxDiff, Math.Abs(expected[i] - actual[i])); maxRef = Math.Max(maxRef, Math.Abs(expected[i])); }
        Assert.True(maxDiff / maxRef < tol, $"{what}: fast f32 vs double oracle, relative max |diff| {maxDiff / maxRef:E3} (tolerance {tol:E1})");
    }

    [Theory]
    [InlineData(9, 70, 13)]
    [InlineData(20, 33, 40)]
    public unsafe void Fast_matmul_backward_matches_the_oracle(int n, int c, int oc)
    {
        var x = R(n * c, 1); var w = R(oc * c, 2); var dy = R(n * oc, 3);
        var dx = new double[n * c]; var dw = new double[oc * c];
        MatMul.Naive.Backward<double>(dy, x, w, dx, dw, default, n, c, oc);
        var fw = F(w);
        var fdx = new float[n * c]; var fdw = new float[oc * c];
        fixed (float* pw = fw)
            MatMul.Backward(F(dy), F(x), new WeightMatrix(DType.F32, (byte*)pw, oc, c), fdx, fdw, n);
        Close("dx", dx, fdx, 1e-5);
        Close("dw", dw, fdw, 1e-5);
    }

    [Fact]
    public void Fast_norm_and_activation_backwards_match_the_oracles()
    {
        int n = 5, c = 37;
        var x = R(n * c, 1, 2); var w = R(c, 2); var b = R(c, 3); var dy = R(n * c, 4);
        // RMSNorm
        var y = new double[n * c]; var rstd = new double[n];
        RmsNorm.Naive.Forward<double>(x, w, y, rstd, n, c, 1e-5);
        var dx = new double[n * c]; var dw = new double[c];
        RmsNorm.Naive.Backward<double>(dy, x, w, rstd, dx, dw, n, c);
        var fy = new float[n * c]; var frs = new float[n];
        RmsNorm.Forward(F(x), F(w), fy, frs, c, 1e-5f);
        Close("rmsnorm y", y, fy, 1e-6);
        var fdx = new float[n * c]; var fdw = new float[c];
        RmsNorm.Backward(F(dy), F(x), F(w), frs, fdx, fdw, n, c);
        Close("rmsnorm dx", dx, fdx, 1e-5);
        Close("rmsnorm dw", dw, fdw, 1e-5);
        // LayerNorm
        var mean = new double[n];
        LayerNorm.Naive.Forward<double>(x, w, b, y, mean, rstd, n, c, 1e-5);
        dx = new double[n * c]; dw = new double[c]; var db = new double[c];
        LayerNorm.Naive.Backward<double>(dy, x, w, mean, rstd, dx, dw, db, n, c);
        var fm = new float[n];
        LayerNorm.Forward(F(x), F(w), F(b), fy, fm, frs, c, 1e-5f);
        Close("layernorm y", y, fy, 1e-6);
        fdx = new float[n * c]; fdw = new float[c]; var fdb = new float[c];
        LayerNorm.Backward(F(dy), F(x), F(w), fm, frs, fdx, fdw, fdb, n, c);
        Close("layernorm dx", dx, fdx, 1e-5);
        Close("layernorm dw", dw, fdw, 1e-5);
        Close("layernorm db", db, fdb, 1e-5);
        // activations
        var g = R(n * c, 5, 4); var u = R(n * c, 6, 4);
        var dg = new double[n * c]; var du = new double[n * c];
        SwiGlu.Naive.Backward<double>(dy, g, u, dg, du);
        var fdg = new float[n * c]; var fdu = new float[n * c];
        SwiGlu.Backward(F(dy), F(g), F(u), fdg, fdu);
        Close("swiglu dgate", dg, fdg, 1e-5);
        Close("swiglu dup", du, fdu, 1e-5);
        var da = new double[n * c]; var fda = new float[n * c];
        Gelu.Naive.Backward<double>(dy, g, da);
        Gelu.Backward(F(dy), F(g), fda);
        Close("gelu", da, fda, 1e-5);
        da = new double[n * c]; fda = new float[n * c];
        GeluTanh.Naive.Backward<double>(dy, g, da);
        GeluTanh.Backward(F(dy), F(g), fda);
        Close("gelu tanh", da, fda, 1e-5);
    }

    [Theory]
    [InlineData(2, 5, 4, 2, 8, true, 0)]
    [InlineData(1, 6, 2, 2, 16, false, 0)]
    [InlineData(3, 4, 3, 1, 8, true, 0)]
    [InlineData(2, 5, 2, 1, 16, true, 1.0)]   // no 1/sqrt(HS): the lab's attention-scale models
    public unsafe void Fast_attention_forward_and_backward_match_the_oracle(int b, int t, int nh, int kvh, int hs, bool causal, double scale)
    {
        var q = R(b * t * nh * hs, 1); var k = R(b * t * kvh * hs, 2); var v = R(b * t * kvh * hs, 3); var dy = R(b * t * nh * hs, 4);
        var att = new double[b * nh * t * t]; var y = new double[b * t * nh * hs];
        Attention.Naive.Forward<double>(q, k, v, att, y, b, t, nh, kvh, hs, causal, scale: scale);
        var dq = new double[q.Length]; var dk = new double[k.Length]; var dv = new double[v.Length];
        Attention.Naive.Backward<double>(dy, q, k, v, att, dq, dk, dv, b, t, nh, kvh, hs, causal, scale);

        FastAttention(KernelIsaSelector.Current, default, q, k, v, dy, y, dq, dk, dv, b, t, nh, kvh, hs, causal, scale);
    }

    /// <summary>Sparse patterns (local window, stride, global tokens and their unions; causal and bidirectional) through the
    /// blocked kernel's forward (which skips key blocks no row of a tile keeps) and its backward, against the double
    /// oracle, on every ISA variant; sequences longer than a key block so whole blocks are skipped.</summary>
    [Theory]
    [InlineData(2, 150, 4, 2, 16, true, 8, 0, 0)]
    [InlineData(1, 150, 2, 1, 16, false, 5, 0, 0)]
    [InlineData(2, 70, 4, 4, 8, true, 0, 7, 0)]
    [InlineData(1, 130, 3, 1, 16, true, 6, 0, 3)]
    [InlineData(2, 90, 2, 2, 16, false, 4, 9, 2)]
    [InlineData(1, 17, 2, 1, 8, true, 3, 4, 1)]
    public unsafe void Sparse_attention_forward_and_backward_match_the_oracle(int b, int t, int nh, int kvh, int hs, bool causal, int window, int stride, int global)
    {
        var pattern = new SparsePattern(window, stride, global);
        var q = R(b * t * nh * hs, 1); var k = R(b * t * kvh * hs, 2); var v = R(b * t * kvh * hs, 3); var dy = R(b * t * nh * hs, 4);
        var att = new double[b * nh * t * t]; var y = new double[b * t * nh * hs];
        Attention.Naive.Forward<double>(q, k, v, att, y, b, t, nh, kvh, hs, causal, pattern: pattern);
        // the oracle's probabilities are exactly zero in the pattern's holes, and the pattern is not dense
        int holes = 0, kept = 0;
        for (int bi = 0; bi < b; bi++)
            for (int h = 0; h < nh; h++)
                for (int i = 0; i < t; i++)
                    for (int j = 0; j < (causal ? i + 1 : t); j++)
                    {
                        double p = att[((bi * nh + h) * t + i) * t + j];
                        if (pattern.Sees(i, j)) { kept++; Assert.True(p > 0, $"kept key {j} of row {i} has probability {p}"); }
                        else { holes++; Assert.Equal(0.0, p); }
                    }
        Assert.True(holes > 0 && kept > 0, $"{holes} holes, {kept} kept");
        var dq = new double[q.Length]; var dk = new double[k.Length]; var dv = new double[v.Length];
        Attention.Naive.Backward<double>(dy, q, k, v, att, dq, dk, dv, b, t, nh, kvh, hs, causal);
        foreach (var isa in KernelTestUtil.Isas()) FastAttention(isa, pattern, q, k, v, dy, y, dq, dk, dv, b, t, nh, kvh, hs, causal);
    }

    /// <summary>The blocked kernel's forward and backward (variant <paramref name="isa"/>, training layout, B slots of T rows)
    /// against the oracle's y and gradients.</summary>
    private static unsafe void FastAttention(KernelIsa isa, SparsePattern pattern, double[] q, double[] k, double[] v, double[] dy, double[] y,
                                             double[] dq, double[] dk, double[] dv, int b, int t, int nh, int kvh, int hs, bool causal, double scale = 0)
    {
        using var _ = KernelIsaSelector.Force(isa);
        var batch = new SharpLM.Models.ForwardBatch(b * t, b);
        batch.SetTraining(new int[b * t], b, t);
        if (!causal) for (int i = 0; i < b * t; i++) batch.KvEnd[i] = t;
        var fk = F(k); var fv = F(v); var fy = new float[y.Length]; var lse = new float[b * t * nh];
        var fdq = new float[q.Length]; var fdk = new float[k.Length]; var fdv = new float[v.Length];
        fixed (float* pk = fk, pv = fv, pdk = fdk, pdv = fdv)
        {
            var dkb = stackalloc nint[b];
            var dvb = stackalloc nint[b];
            for (int s = 0; s < b; s++)
            {
                batch.KBase[s] = (nint)(pk + s * t * kvh * hs); batch.VBase[s] = (nint)(pv + s * t * kvh * hs);
                dkb[s] = (nint)(pdk + s * t * kvh * hs); dvb[s] = (nint)(pdv + s * t * kvh * hs);
            }
            var rows = batch.AttentionRows;
            rows.Pattern = pattern;
            Attention.Forward(F(q), fy, lse, b * t, nh, kvh, hs, rows, WorkerPool.Shared, scale > 0 ? new AttentionOptions((float)scale) : AttentionOptions.For(hs));
            Close($"{isa} y", y, fy, 1e-5);
            Attention.Backward(F(dy), F(q), fy, lse, fdq, b, batch.SlotRows, dkb, dvb, nh, kvh, hs, rows, WorkerPool.Shared, (float)scale);
            GC.KeepAlive(batch);
        }
        Close($"{isa} dq", dq, fdq, 1e-4);
        Close($"{isa} dk", dk, fdk, 1e-4);
        Close($"{isa} dv", dv, fdv, 1e-4);
    }

    [Theory]
    [InlineData(true, 2, 0, 0)]
    [InlineData(false, 2, 3, 0)]
    [InlineData(true, 0, 2, 1)]
    public void Sparse_attention_backward_matches_finite_differences(bool causal, int window, int stride, int global)
    {
        int b = 1, t = 6, nh = 2, kvh = 1, hs = 3;
        var pattern = new SparsePattern(window, stride, global);
        var q = R(b * t * nh * hs, 1); var k = R(b * t * kvh * hs, 2); var v = R(b * t * kvh * hs, 3); var r = R(b * t * nh * hs, 4);
        var att = new double[b * nh * t * t]; var y = new double[b * t * nh * hs];
        double Loss() { Attention.Naive.Forward<double>(q, k, v, att, y, b, t, nh, kvh, hs, causal, pattern: pattern); return GradCheck.WeightedSum(y, r); }
        Loss();
        var dq = new double[q.Length]; var dk = new double[k.Length]; var dv = new double[v.Length];
        Attention.Naive.Backward<double>(r, q, k, v, att, dq, dk, dv, b, t, nh, kvh, hs, causal);
        GradCheck.Check("dq", q, dq, Loss);
        GradCheck.Check("dk", k, dk, Loss);
        GradCheck.Check("dv", v, dv, Loss);
    }
}
