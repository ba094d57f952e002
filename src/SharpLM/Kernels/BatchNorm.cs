using System.Numerics;

namespace SharpLM.Kernels;

/// <summary>
/// BatchNorm over the rows of a batch (PyTorch's BatchNorm1d on (N, C) in training mode): statistics per feature over
/// every row, padding rows included. Forward: x (N,C), w (C), b (C) -> y (N,C), mean (C), rstd (C):
/// mean_c = Σ_r x[r,c] / N, var_c = Σ_r (x[r,c] − mean_c)² / N (biased), rstd_c = 1/sqrt(var_c + eps),
/// xhat = (x − mean_c) · rstd_c, y = xhat · w + b (b may be empty). y may alias x.
/// Backward (accumulating), LayerNorm's formula over the other axis: g = dy · w;
/// dx[r,c] += rstd_c · (g[r,c] − mean_r(g[·,c]) − xhat[r,c] · mean_r(g[·,c] · xhat[·,c])); dw_c += Σ_r dy · xhat; db_c += Σ_r dy.
/// </summary>
internal static class BatchNorm
{
    /// <summary>x (N,C) -> y (N,C); mean and rstd (C) are written when not empty. Sums run row by row in double (deterministic).</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> y,
                               Span<float> mean, Span<float> rstd, int n, int c, float eps)
    {
        if (c <= 0) throw new ArgumentOutOfRangeException(nameof(c), c, "C must be positive");
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "BatchNorm needs at least one row");
        if (x.Length < n * c || y.Length < n * c) throw new ArgumentException($"x ({x.Length}) and y ({y.Length}) need N*C = {n * c} floats");
        if (weight.Length < c || (!bias.IsEmpty && bias.Length < c)) throw new ArgumentException($"weight ({weight.Length}) and bias ({bias.Length}) need C = {c} floats");
        if ((!mean.IsEmpty && mean.Length < c) || (!rstd.IsEmpty && rstd.Length < c)) throw new ArgumentException($"mean and rstd need C = {c} floats");
        double[]? rented = c > 512 ? System.Buffers.ArrayPool<double>.Shared.Rent(2 * c) : null;
        Span<double> both = rented is null ? stackalloc double[2 * c] : rented.AsSpan(0, 2 * c);
        both.Clear();
        Span<double> m = both[..c], v = both[c..];
        for (int r = 0; r < n; r++)
        {
            var xr = x.Slice(r * c, c);
            for (int i = 0; i < c; i++) m[i] += xr[i];
        }
        for (int i = 0; i < c; i++) m[i] /= n;
        for (int r = 0; r < n; r++)
        {
            var xr = x.Slice(r * c, c);
            for (int i = 0; i < c; i++) { double d = xr[i] - m[i]; v[i] += d * d; }
        }
        // m and v become the float mean and rstd (kept in the same double spans)
        for (int i = 0; i < c; i++)
        {
            float inv = (float)(1.0 / Math.Sqrt(v[i] / n + eps)), mf = (float)m[i];
            m[i] = mf;
            v[i] = inv;
            if (!mean.IsEmpty) mean[i] = mf;
            if (!rstd.IsEmpty) rstd[i] = inv;
        }
        for (int r = 0; r < n; r++)
        {
            var xr = x.Slice(r * c, c);
            var yr = y.Slice(r * c, c);
            for (int i = 0; i < c; i++) yr[i] = (xr[i] - (float)m[i]) * (float)v[i] * weight[i] + (bias.IsEmpty ? 0f : bias[i]);
        }
        if (rented != null) System.Buffers.ArrayPool<double>.Shared.Return(rented);
    }

    /// <summary>dy, x (N,C), w (C), mean, rstd (C) -> dx (N,C) +=, dw (C) +=, db (C) += (when not empty).</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> mean,
                                ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dw, Span<float> db, int n, int c)
    {
        double[]? rented = c > 512 ? System.Buffers.ArrayPool<double>.Shared.Rent(2 * c) : null;
        Span<double> both = rented is null ? stackalloc double[2 * c] : rented.AsSpan(0, 2 * c);
        both.Clear();
        Span<double> gMean = both[..c], gxMean = both[c..];
        for (int r = 0; r < n; r++)
        {
            var xr = x.Slice(r * c, c);
            var dyr = dy.Slice(r * c, c);
            for (int i = 0; i < c; i++)
            {
                double g = dyr[i] * w[i], xhat = (xr[i] - mean[i]) * rstd[i];
                gMean[i] += g;
                gxMean[i] += g * xhat;
                dw[i] += (float)(dyr[i] * xhat);
                if (!db.IsEmpty) db[i] += dyr[i];
            }
        }
        for (int i = 0; i < c; i++) { gMean[i] /= n; gxMean[i] /= n; }
        for (int r = 0; r < n; r++)
        {
            var xr = x.Slice(r * c, c);
            var dyr = dy.Slice(r * c, c);
            var dxr = dx.Slice(r * c, c);
            for (int i = 0; i < c; i++)
            {
                float xhat = (xr[i] - mean[i]) * rstd[i];
                dxr[i] += (float)(rstd[i] * (dyr[i] * w[i] - gMean[i] - xhat * gxMean[i]));
            }
        }
        if (rented != null) System.Buffers.ArrayPool<double>.Shared.Return(rented);
    }

    /// <summary>The readable oracle, generic so the gradient checks run it in double.</summary>
    public static class Naive
    {
        public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b, Span<T> y, Span<T> mean, Span<T> rstd, int n, int c, T eps)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            T invN = T.One / T.CreateTruncating(n);
            for (int i = 0; i < c; i++)
            {
                T m = T.Zero, v = T.Zero;
                for (int r = 0; r < n; r++) m += x[r * c + i];
                m *= invN;
                for (int r = 0; r < n; r++) { T d = x[r * c + i] - m; v += d * d; }
                T rs = T.One / T.Sqrt(v * invN + eps);
                mean[i] = m;
                rstd[i] = rs;
                for (int r = 0; r < n; r++) y[r * c + i] = (x[r * c + i] - m) * rs * w[i] + (b.IsEmpty ? T.Zero : b[i]);
            }
        }

        public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd,
                                       Span<T> dx, Span<T> dw, Span<T> db, int n, int c)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            T invN = T.One / T.CreateTruncating(n);
            for (int i = 0; i < c; i++)
            {
                T gMean = T.Zero, gxMean = T.Zero;
                for (int r = 0; r < n; r++)
                {
                    T g = dy[r * c + i] * w[i];
                    gMean += g;
                    gxMean += g * (x[r * c + i] - mean[i]) * rstd[i];
                }
                gMean *= invN;
                gxMean *= invN;
                for (int r = 0; r < n; r++)
                {
                    T xhat = (x[r * c + i] - mean[i]) * rstd[i];
                    dx[r * c + i] += rstd[i] * (dy[r * c + i] * w[i] - gMean - xhat * gxMean);
                    dw[i] += dy[r * c + i] * xhat;
                    if (!db.IsEmpty) db[i] += dy[r * c + i];
                }
            }
        }
    }
}
