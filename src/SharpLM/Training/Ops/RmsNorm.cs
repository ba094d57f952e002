using System.Numerics;

namespace SharpLM.Training.Ops;

/// <summary>
/// RMSNorm (LLaMA). Forward: x (N,C), w (C) -> y (N,C), rstd (N): rstd = 1/sqrt(mean(x^2) + eps), y = x * rstd * w.
/// Backward (+=): with g = dy * w, dx = rstd * (g - x * rstd^2 * mean(g * x)); dw += sum_n dy * x * rstd.
/// </summary>
internal static class RmsNorm
{
    public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, Span<T> y, Span<T> rstd, int n, int c, T eps)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T invC = T.One / T.CreateTruncating(c);
        for (int r = 0; r < n; r++)
        {
            var xr = x.Slice(r * c, c);
            var yr = y.Slice(r * c, c);
            T ss = TrainMath.Dot(xr, xr);
            T rs = T.One / T.Sqrt(ss * invC + eps);
            rstd[r] = rs;
            for (int i = 0; i < c; i++) yr[i] = xr[i] * rs * w[i];
        }
    }

    public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> rstd,
                                   Span<T> dx, Span<T> dw, int n, int c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T invC = T.One / T.CreateTruncating(c);
        for (int r = 0; r < n; r++)
        {
            var xr = x.Slice(r * c, c);
            var dyr = dy.Slice(r * c, c);
            var dxr = dx.Slice(r * c, c);
            T rs = rstd[r];
            T dot = T.Zero; // sum_i dy_i w_i x_i
            for (int i = 0; i < c; i++) dot += dyr[i] * w[i] * xr[i];
            T k = dot * invC * rs * rs;
            for (int i = 0; i < c; i++)
            {
                dxr[i] += rs * (dyr[i] * w[i] - xr[i] * k);
                dw[i] += dyr[i] * xr[i] * rs;
            }
        }
    }
}
