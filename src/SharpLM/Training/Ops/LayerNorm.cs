using System.Numerics;

namespace SharpLM.Training.Ops;

/// <summary>
/// LayerNorm (GPT-2, BERT). Forward: x (N,C), w (C), b (C) -> y (N,C), mean (N), rstd (N):
/// xhat = (x - mean) * rstd with rstd = 1/sqrt(var + eps) (biased variance), y = xhat * w + b.
/// Backward (+=): g = dy * w; dx = rstd * (g - mean(g) - xhat * mean(g * xhat)); dw += dy * xhat; db += dy.
/// </summary>
internal static class LayerNorm
{
    public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b, Span<T> y,
                                  Span<T> mean, Span<T> rstd, int n, int c, T eps)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T invC = T.One / T.CreateTruncating(c);
        for (int r = 0; r < n; r++)
        {
            var xr = x.Slice(r * c, c);
            var yr = y.Slice(r * c, c);
            T m = T.Zero;
            for (int i = 0; i < c; i++) m += xr[i];
            m *= invC;
            T v = T.Zero;
            for (int i = 0; i < c; i++) { T d = xr[i] - m; v += d * d; }
            v *= invC;
            T rs = T.One / T.Sqrt(v + eps);
            mean[r] = m;
            rstd[r] = rs;
            for (int i = 0; i < c; i++) yr[i] = (xr[i] - m) * rs * w[i] + b[i];
        }
    }

    public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> mean,
                                   ReadOnlySpan<T> rstd, Span<T> dx, Span<T> dw, Span<T> db, int n, int c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T invC = T.One / T.CreateTruncating(c);
        for (int r = 0; r < n; r++)
        {
            var xr = x.Slice(r * c, c);
            var dyr = dy.Slice(r * c, c);
            var dxr = dx.Slice(r * c, c);
            T m = mean[r], rs = rstd[r];
            T gMean = T.Zero, gxMean = T.Zero;
            for (int i = 0; i < c; i++)
            {
                T g = dyr[i] * w[i];
                gMean += g;
                gxMean += g * (xr[i] - m) * rs;
            }
            gMean *= invC;
            gxMean *= invC;
            for (int i = 0; i < c; i++)
            {
                T xhat = (xr[i] - m) * rs;
                dxr[i] += rs * (dyr[i] * w[i] - gMean - xhat * gxMean);
                dw[i] += dyr[i] * xhat;
                db[i] += dyr[i];
            }
        }
    }
}
