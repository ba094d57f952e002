using SharpLM.Kernels;
using SharpLM.Tests.Training;

namespace SharpLM.Tests.Kernels;

/// <summary>The lab's norm kinds at the kernel level: BatchNorm (statistics per feature over the rows) and the affine part
/// alone ("no norm"): oracles against finite differences in double, the f32 kernels against the oracles, and BatchNorm
/// against LayerNorm of the transposed matrix (the same formula over the other axis, computed by another kernel).</summary>
public class NormKindTests
{
    private static double[] R(int n, ulong seed, double s = 1) => GradCheck.Rand(n, seed, s);
    private static float[] F(double[] a) => Array.ConvertAll(a, v => (float)v);

    private static void Close(string what, ReadOnlySpan<double> expected, ReadOnlySpan<float> got, double tol)
    {
        double worst = 0;
        for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(expected[i] - got[i]) / Math.Max(1, Math.Abs(expected[i])));
        Assert.True(worst < tol, $"{what}: max relative difference {worst:E3} > {tol:E1}");
    }

    [Theory]
    [InlineData(5, 3, true)]
    [InlineData(2, 7, false)]
    [InlineData(9, 1, true)]
    public void BatchNorm_backward_matches_finite_differences(int n, int c, bool bias)
    {
        var x = R(n * c, 1); var w = R(c, 2); var b = bias ? R(c, 4) : []; var r = R(n * c, 3);
        var y = new double[n * c]; var mean = new double[c]; var rstd = new double[c];
        double Loss() { BatchNorm.Naive.Forward<double>(x, w, b, y, mean, rstd, n, c, 1e-5); return GradCheck.WeightedSum(y, r); }
        Loss();
        var dx = new double[n * c]; var dw = new double[c]; var db = new double[b.Length];
        BatchNorm.Naive.Backward<double>(r, x, w, mean, rstd, dx, dw, db, n, c);
        GradCheck.Check("dx", x, dx, Loss);
        GradCheck.Check("dw", w, dw, Loss);
        if (bias) GradCheck.Check("db", b, db, Loss);
    }

    [Theory]
    [InlineData(4, 6, true)]
    [InlineData(3, 5, false)]
    public void Affine_backward_matches_finite_differences(int n, int c, bool bias)
    {
        var x = R(n * c, 1); var w = R(c, 2); var b = bias ? R(c, 4) : []; var r = R(n * c, 3);
        var y = new double[n * c];
        double Loss() { Affine.Naive.Forward<double>(x, w, b, y, n, c); return GradCheck.WeightedSum(y, r); }
        var dx = new double[n * c]; var dw = new double[c]; var db = new double[b.Length];
        Affine.Naive.Backward<double>(r, x, w, dx, dw, db, n, c);
        GradCheck.Check("dx", x, dx, Loss);
        GradCheck.Check("dw", w, dw, Loss);
        if (bias) GradCheck.Check("db", b, db, Loss);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 13)]
    [InlineData(64, 33)]
    [InlineData(3, 700)] // past the kernel's stack buffer
    public void The_f32_kernels_match_their_oracles(int n, int c)
    {
        var x = R(n * c, 11, 3); var w = R(c, 12); var b = R(c, 13); var dy = R(n * c, 14);
        var y = new double[n * c]; var mean = new double[c]; var rstd = new double[c];
        BatchNorm.Naive.Forward<double>(x, w, b, y, mean, rstd, n, c, 1e-5);
        var fy = new float[n * c]; var fm = new float[c]; var frs = new float[c];
        BatchNorm.Forward(F(x), F(w), F(b), fy, fm, frs, n, c, 1e-5f);
        Close("batchnorm y", y, fy, 1e-5);
        Close("batchnorm mean", mean, fm, 1e-6);
        var dx = new double[n * c]; var dw = new double[c]; var db = new double[c];
        BatchNorm.Naive.Backward<double>(dy, x, w, mean, rstd, dx, dw, db, n, c);
        var fdx = new float[n * c]; var fdw = new float[c]; var fdb = new float[c];
        BatchNorm.Backward(F(dy), F(x), F(w), fm, frs, fdx, fdw, fdb, n, c);
        Close("batchnorm dx", dx, fdx, 2e-4);
        Close("batchnorm dw", dw, fdw, 1e-4);
        Close("batchnorm db", db, fdb, 1e-4);

        Affine.Naive.Forward<double>(x, w, b, y, n, c);
        Affine.Forward(F(x), F(w), F(b), fy, c);
        Close("affine y", y, fy, 1e-6);
        dx = new double[n * c]; dw = new double[c]; db = new double[c];
        Affine.Naive.Backward<double>(dy, x, w, dx, dw, db, n, c);
        fdx = new float[n * c]; fdw = new float[c]; fdb = new float[c];
        Affine.Backward(F(dy), F(x), F(w), fdx, fdw, fdb, n, c);
        Close("affine dx", dx, fdx, 1e-6);
        Close("affine dw", dw, fdw, 1e-5);
    }

    [Fact]
    public void BatchNorm_is_LayerNorm_over_the_other_axis()
    {
        // BN over the N rows of x (N,C) with unit weight and zero bias = LayerNorm of each column (LN over rows of x^T)
        int n = 9, c = 5;
        var x = F(R(n * c, 21, 2));
        var bn = new float[n * c];
        BatchNorm.Forward(x, Enumerable.Repeat(1f, c).ToArray(), new float[c], bn, default, default, n, c, 1e-5f);
        var xt = new float[n * c];
        for (int r = 0; r < n; r++) for (int i = 0; i < c; i++) xt[i * n + r] = x[r * c + i];
        var ln = new float[n * c];
        LayerNorm.Forward(xt, Enumerable.Repeat(1f, n).ToArray(), new float[n], ln, n, 1e-5f);
        for (int r = 0; r < n; r++) for (int i = 0; i < c; i++) Assert.Equal(ln[i * n + r], bn[r * c + i], 5);
    }

    [Fact]
    public void Padding_rows_move_the_batch_statistics_by_their_share_of_the_rows()
    {
        // the study note's 1 f: rows of zeros (padding) pull every feature's mean toward 0 by the padding fraction
        int real = 6, pad = 10, c = 4;
        var x = F(R((real + pad) * c, 31, 1));
        for (int i = 0; i < real * c; i++) x[i] += 2f;
        Array.Clear(x, real * c, pad * c);
        var y = new float[(real + pad) * c]; var mAll = new float[c]; var rAll = new float[c];
        BatchNorm.Forward(x, Enumerable.Repeat(1f, c).ToArray(), default, y, mAll, rAll, real + pad, c, 1e-5f);
        var yReal = new float[real * c]; var mReal = new float[c]; var rReal = new float[c];
        BatchNorm.Forward(x.AsSpan(0, real * c), Enumerable.Repeat(1f, c).ToArray(), default, yReal, mReal, rReal, real, c, 1e-5f);
        for (int i = 0; i < c; i++) Assert.Equal(mReal[i] * real / (real + pad), mAll[i], 5);
        Assert.True(Enumerable.Range(0, real * c).Max(i => Math.Abs(y[i] - yReal[i])) > 0.1, "padding left the real rows' outputs unchanged");
    }
}
