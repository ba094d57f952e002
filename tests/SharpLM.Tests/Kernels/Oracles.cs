using SharpLM.Kernels;

namespace SharpLM.Tests.Kernels;

/// <summary>The kernels' naive oracles (generic, in double) behind float signatures, for the tests of the fast variants.</summary>
internal static class Oracles
{
    private static double[] D(ReadOnlySpan<float> x)
    {
        var d = new double[x.Length];
        for (int i = 0; i < x.Length; i++) d[i] = x[i];
        return d;
    }

    private static void F(ReadOnlySpan<double> x, Span<float> y)
    {
        for (int i = 0; i < y.Length; i++) y[i] = (float)x[i];
    }

    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, int c, float eps)
    {
        int n = x.Length / c;
        var yd = new double[n * c];
        SharpLM.Kernels.RmsNorm.Naive.Forward<double>(D(x), D(w), yd, default, n, c, eps);
        F(yd, y);
    }

    public static void LayerNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, int c, float eps)
    {
        int n = x.Length / c;
        var yd = new double[n * c];
        SharpLM.Kernels.LayerNorm.Naive.Forward<double>(D(x), D(w), D(b), yd, default, default, n, c, eps);
        F(yd, y);
    }

    public static void Rope(Span<float> x, int t, int nh, int hs, ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq, bool neox)
    {
        var xd = D(x);
        SharpLM.Kernels.Rope.Naive.Forward<double>(xd, t, nh, hs, positions, invFreq, neox);
        F(xd, x);
    }

    public static void SwiGlu(ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> y)
    {
        var yd = new double[y.Length];
        SharpLM.Kernels.SwiGlu.Naive.Forward<double>(D(g), D(u), yd);
        F(yd, y);
    }

    public static void Gelu(Span<float> x)
    {
        var yd = new double[x.Length];
        SharpLM.Kernels.Gelu.Naive.Forward<double>(D(x), yd);
        F(yd, x);
    }

    public static void GeluTanh(Span<float> x)
    {
        var yd = new double[x.Length];
        SharpLM.Kernels.GeluTanh.Naive.Forward<double>(D(x), yd);
        F(yd, x);
    }

    /// <summary>One sequence's causal attention: q (T,NH,HS) at positions startPos.., k, v (S,KVH,HS) -> y.</summary>
    public static void Attention(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> y, int t, int nh, int kvh, int hs, int startPos)
    {
        var yd = new double[y.Length];
        SharpLM.Kernels.Attention.Naive.Forward<double>(D(q), D(k), D(v), default, yd, 1, t, nh, kvh, hs, causal: true, startPos);
        F(yd, y);
    }

    /// <summary>The fast kernel for one sequence laid out as <see cref="Attention"/> expects.</summary>
    public static unsafe void FastAttention(float[] q, float[] k, float[] v, float[] y, int t, int nh, int kvh, int hs, int startPos, WorkerPool? pool = null)
    {
        var slot = new int[t];
        var end = new int[t];
        for (int i = 0; i < t; i++) end[i] = startPos + i + 1;
        fixed (float* pk = k, pv = v)
        fixed (int* ps = slot, pe = end)
        {
            nint kb = (nint)pk, vb = (nint)pv;
            var rows = new AttentionRows { Slot = ps, KvEnd = pe, KBase = &kb, VBase = &vb };
            SharpLM.Kernels.Attention.Forward(q, y, default, t, nh, kvh, hs, rows, pool ?? WorkerPool.Shared);
        }
    }
}
