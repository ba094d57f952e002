using System.Runtime.Intrinsics;

namespace SharpLM.Kernels;

/// <summary>LayerNorm: x (T,C), weight (C), bias (C) -> y (T,C); y = (x - mean)/sqrt(var + eps) * weight + bias. y may alias x.</summary>
internal static unsafe class LayerNorm
{
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> y, int c, float eps)
    {
        if (c <= 0) throw new ArgumentOutOfRangeException(nameof(c), c, "C must be positive");
        if (weight.Length < c || bias.Length < c) throw new ArgumentException($"weight ({weight.Length}) and bias ({bias.Length}) need C = {c} floats");
        if (y.Length < x.Length / c * c) throw new ArgumentException($"y holds {y.Length} floats, need {x.Length / c * c}", nameof(y));
        var isa = KernelIsaSelector.Current;
        fixed (float* px = x)
        fixed (float* pw = weight)
        fixed (float* pb = bias)
        fixed (float* py = y)
        {
            for (int r = 0; r < x.Length / c; r++)
            {
                float* xr = px + (long)r * c, yr = py + (long)r * c;
                float mean = Sum.Compute(xr, c, isa) / c;
                // variance, second pass over (x - mean)
                float var = 0;
                int i = 0;
                if (isa == KernelIsa.Avx512)
                {
                    Vector512<float> acc = default, m = Vector512.Create(mean);
                    for (; i + 16 <= c; i += 16) { var d = Vector512.Load(xr + i) - m; acc = Vector512.FusedMultiplyAdd(d, d, acc); }
                    var = Vector512.Sum(acc);
                }
                else if (isa == KernelIsa.Avx2)
                {
                    Vector256<float> acc = default, m = Vector256.Create(mean);
                    for (; i + 8 <= c; i += 8) { var d = Vector256.Load(xr + i) - m; acc = Vector256.FusedMultiplyAdd(d, d, acc); }
                    var = Vector256.Sum(acc);
                }
                for (; i < c; i++) { float d = xr[i] - mean; var += d * d; }
                float inv = (float)(1.0 / Math.Sqrt((double)var / c + eps));
                i = 0;
                if (isa == KernelIsa.Avx512)
                {
                    var m = Vector512.Create(mean);
                    var vi = Vector512.Create(inv);
                    for (; i + 16 <= c; i += 16) Vector512.FusedMultiplyAdd((Vector512.Load(xr + i) - m) * vi, Vector512.Load(pw + i), Vector512.Load(pb + i)).Store(yr + i);
                }
                else if (isa == KernelIsa.Avx2)
                {
                    var m = Vector256.Create(mean);
                    var vi = Vector256.Create(inv);
                    for (; i + 8 <= c; i += 8) Vector256.FusedMultiplyAdd((Vector256.Load(xr + i) - m) * vi, Vector256.Load(pw + i), Vector256.Load(pb + i)).Store(yr + i);
                }
                for (; i < c; i++) yr[i] = (xr[i] - mean) * inv * pw[i] + pb[i];
            }
        }
    }
}
