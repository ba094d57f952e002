using System.Numerics;
using System.Runtime.Intrinsics;

namespace SharpLM.Kernels;

/// <summary>
/// LayerNorm (GPT-2, BERT). Forward: x (N,C), w (C), b (C) -> y (N,C), mean (N), rstd (N):
/// xhat = (x - mean) * rstd with rstd = 1/sqrt(var + eps) (biased variance), y = xhat * w + b. y may alias x.
/// Backward (accumulating): g = dy * w; dx += rstd * (g - mean(g) - xhat * mean(g * xhat)); dw += dy * xhat; db += dy.
/// </summary>
internal static unsafe class LayerNorm
{
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> y, int c, float eps) =>
        Forward(x, weight, bias, y, default, default, c, eps);

    /// <summary>As the other overload, also writing mean and rstd (N) when they are not empty (for the backward pass).</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> y,
                               Span<float> mean, Span<float> rstd, int c, float eps)
    {
        if (c <= 0) throw new ArgumentOutOfRangeException(nameof(c), c, "C must be positive");
        if (weight.Length < c || bias.Length < c) throw new ArgumentException($"weight ({weight.Length}) and bias ({bias.Length}) need C = {c} floats");
        int n = x.Length / c;
        if (y.Length < n * c) throw new ArgumentException($"y holds {y.Length} floats, need {n * c}", nameof(y));
        var isa = KernelIsaSelector.Current;
        fixed (float* px = x)
        fixed (float* pw = weight)
        fixed (float* pb = bias)
        fixed (float* py = y)
        {
            for (int r = 0; r < n; r++)
            {
                float* xr = px + (long)r * c, yr = py + (long)r * c;
                float m = Sum.Compute(xr, c, isa) / c;
                // variance, second pass over (x - mean)
                float var = 0;
                int i = 0;
                if (isa == KernelIsa.Avx512)
                {
                    Vector512<float> acc = default, vm = Vector512.Create(m);
                    for (; i + 16 <= c; i += 16) { var d = Vector512.Load(xr + i) - vm; acc = Vector512.FusedMultiplyAdd(d, d, acc); }
                    var = Horizontal.Sum(acc);
                }
                else if (isa == KernelIsa.Avx2)
                {
                    Vector256<float> acc = default, vm = Vector256.Create(m);
                    for (; i + 8 <= c; i += 8) { var d = Vector256.Load(xr + i) - vm; acc = Vector256.FusedMultiplyAdd(d, d, acc); }
                    var = Horizontal.Sum(acc);
                }
                for (; i < c; i++) { float d = xr[i] - m; var += d * d; }
                float inv = (float)(1.0 / Math.Sqrt((double)var / c + eps));
                if (!mean.IsEmpty) mean[r] = m;
                if (!rstd.IsEmpty) rstd[r] = inv;
                i = 0;
                if (isa == KernelIsa.Avx512)
                {
                    var vm = Vector512.Create(m);
                    var vi = Vector512.Create(inv);
                    for (; i + 16 <= c; i += 16) Vector512.FusedMultiplyAdd((Vector512.Load(xr + i) - vm) * vi, Vector512.Load(pw + i), Vector512.Load(pb + i)).Store(yr + i);
                }
                else if (isa == KernelIsa.Avx2)
                {
                    var vm = Vector256.Create(m);
                    var vi = Vector256.Create(inv);
                    for (; i + 8 <= c; i += 8) Vector256.FusedMultiplyAdd((Vector256.Load(xr + i) - vm) * vi, Vector256.Load(pw + i), Vector256.Load(pb + i)).Store(yr + i);
                }
                for (; i < c; i++) yr[i] = (xr[i] - m) * inv * pw[i] + pb[i];
            }
        }
    }

    /// <summary>dy, x (N,C), w (C), mean, rstd (N) -> dx (N,C) +=, dw, db (C) +=. Rows run in order (deterministic).</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> mean,
                                ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dw, Span<float> db, int n, int c)
    {
        float invC = 1f / c;
        for (int r = 0; r < n; r++)
        {
            var xr = x.Slice(r * c, c);
            var dyr = dy.Slice(r * c, c);
            var dxr = dx.Slice(r * c, c);
            float m = mean[r], rs = rstd[r];
            float gMean = 0, gxMean = 0;
            for (int i = 0; i < c; i++)
            {
                float g = dyr[i] * w[i];
                gMean += g;
                gxMean += g * (xr[i] - m) * rs;
            }
            gMean *= invC;
            gxMean *= invC;
            for (int i = 0; i < c; i++)
            {
                float xhat = (xr[i] - m) * rs;
                dxr[i] += rs * (dyr[i] * w[i] - gMean - xhat * gxMean);
                dw[i] += dyr[i] * xhat;
                db[i] += dyr[i];
            }
        }
    }

    /// <summary>The readable oracle, generic so the gradient checks run it in double.</summary>
    public static class Naive
    {
        public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b, Span<T> y, Span<T> mean, Span<T> rstd, int n, int c, T eps)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            T invC = T.One / T.CreateTruncating(c);
            for (int r = 0; r < n; r++)
            {
                T m = T.Zero, v = T.Zero;
                for (int i = 0; i < c; i++) m += x[r * c + i];
                m *= invC;
                for (int i = 0; i < c; i++) { T d = x[r * c + i] - m; v += d * d; }
                T rs = T.One / T.Sqrt(v * invC + eps);
                if (!mean.IsEmpty) mean[r] = m;
                if (!rstd.IsEmpty) rstd[r] = rs;
                for (int i = 0; i < c; i++) y[r * c + i] = (x[r * c + i] - m) * rs * w[i] + b[i];
            }
        }

        public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd,
                                       Span<T> dx, Span<T> dw, Span<T> db, int n, int c)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            T invC = T.One / T.CreateTruncating(c);
            for (int r = 0; r < n; r++)
            {
                T m = mean[r], rs = rstd[r], gMean = T.Zero, gxMean = T.Zero;
                for (int i = 0; i < c; i++)
                {
                    T g = dy[r * c + i] * w[i];
                    gMean += g;
                    gxMean += g * (x[r * c + i] - m) * rs;
                }
                gMean *= invC;
                gxMean *= invC;
                for (int i = 0; i < c; i++)
                {
                    T xhat = (x[r * c + i] - m) * rs;
                    dx[r * c + i] += rs * (dy[r * c + i] * w[i] - gMean - xhat * gxMean);
                    dw[i] += dy[r * c + i] * xhat;
                    db[i] += dy[r * c + i];
                }
            }
        }
    }
}
