using System.Numerics;
using System.Runtime.Intrinsics;

namespace SharpLM.Kernels;

/// <summary>
/// RMSNorm (LLaMA). Forward: x (N,C), w (C) -> y (N,C), rstd (N): rstd = 1/sqrt(mean(x^2) + eps), y = x * rstd * w.
/// y may alias x. Backward (accumulating): with g = dy * w, dx += rstd * (g - x * rstd^2 * mean(g * x));
/// dw += sum_n dy * x * rstd.
/// </summary>
internal static unsafe class RmsNorm
{
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, int c, float eps) =>
        Forward(x, weight, y, default, c, eps);

    /// <summary>As the other overload, also writing rstd (N) when <paramref name="rstd"/> is not empty (for the backward pass).</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, Span<float> rstd, int c, float eps)
    {
        if (c <= 0) throw new ArgumentOutOfRangeException(nameof(c), c, "C must be positive");
        if (weight.Length < c) throw new ArgumentException($"weight holds {weight.Length} floats, need C = {c}", nameof(weight));
        int n = x.Length / c;
        if (y.Length < n * c) throw new ArgumentException($"y holds {y.Length} floats, need {n * c}", nameof(y));
        if (!rstd.IsEmpty && rstd.Length < n) throw new ArgumentException($"rstd holds {rstd.Length} floats, need N = {n}", nameof(rstd));
        var isa = KernelIsaSelector.Current;
        fixed (float* px = x)
        fixed (float* pw = weight)
        fixed (float* py = y)
        {
            for (int r = 0; r < n; r++)
            {
                float* xr = px + (long)r * c, yr = py + (long)r * c;
                float ss = Dot.Compute(xr, xr, c, isa);
                float inv = (float)(1.0 / Math.Sqrt((double)ss / c + eps));
                if (!rstd.IsEmpty) rstd[r] = inv;
                int i = 0;
                if (isa == KernelIsa.Avx512)
                    for (var vi = Vector512.Create(inv); i + 16 <= c; i += 16) (Vector512.Load(xr + i) * vi * Vector512.Load(pw + i)).Store(yr + i);
                else if (isa == KernelIsa.Avx2)
                    for (var vi = Vector256.Create(inv); i + 8 <= c; i += 8) (Vector256.Load(xr + i) * vi * Vector256.Load(pw + i)).Store(yr + i);
                for (; i < c; i++) yr[i] = xr[i] * inv * pw[i];
            }
        }
    }

    /// <summary>dy, x (N,C), w (C), rstd (N) -> dx (N,C) +=, dw (C) +=. Rows run in order, so dw is deterministic.</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> rstd,
                                Span<float> dx, Span<float> dw, int n, int c)
    {
        float invC = 1f / c;
        for (int r = 0; r < n; r++)
        {
            var xr = x.Slice(r * c, c);
            var dyr = dy.Slice(r * c, c);
            var dxr = dx.Slice(r * c, c);
            float rs = rstd[r];
            float dot = 0; // sum_i dy_i w_i x_i
            for (int i = 0; i < c; i++) dot += dyr[i] * w[i] * xr[i];
            float k = dot * invC * rs * rs;
            for (int i = 0; i < c; i++)
            {
                dxr[i] += rs * (dyr[i] * w[i] - xr[i] * k);
                dw[i] += dyr[i] * xr[i] * rs;
            }
        }
    }

    /// <summary>The readable oracle, generic so the gradient checks run it in double.</summary>
    public static class Naive
    {
        public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, Span<T> y, Span<T> rstd, int n, int c, T eps)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            for (int r = 0; r < n; r++)
            {
                T ss = T.Zero;
                for (int i = 0; i < c; i++) ss += x[r * c + i] * x[r * c + i];
                T rs = T.One / T.Sqrt(ss / T.CreateTruncating(c) + eps);
                if (!rstd.IsEmpty) rstd[r] = rs;
                for (int i = 0; i < c; i++) y[r * c + i] = x[r * c + i] * rs * w[i];
            }
        }

        public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> rstd,
                                       Span<T> dx, Span<T> dw, int n, int c)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            for (int r = 0; r < n; r++)
            {
                T rs = rstd[r], dot = T.Zero;
                for (int i = 0; i < c; i++) dot += dy[r * c + i] * w[i] * x[r * c + i];
                T k = dot / T.CreateTruncating(c) * rs * rs;
                for (int i = 0; i < c; i++)
                {
                    dx[r * c + i] += rs * (dy[r * c + i] * w[i] - x[r * c + i] * k);
                    dw[i] += dy[r * c + i] * x[r * c + i] * rs;
                }
            }
        }
    }
}
