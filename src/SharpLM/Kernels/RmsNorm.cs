using System.Runtime.Intrinsics;

namespace SharpLM.Kernels;

/// <summary>RMSNorm: x (T,C), weight (C) -> y (T,C); y = x / sqrt(mean(x^2) + eps) * weight. y may alias x.</summary>
internal static unsafe class RmsNorm
{
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, int c, float eps)
    {
        if (c <= 0) throw new ArgumentOutOfRangeException(nameof(c), c, "C must be positive");
        if (weight.Length < c) throw new ArgumentException($"weight holds {weight.Length} floats, need C = {c}", nameof(weight));
        if (y.Length < x.Length / c * c) throw new ArgumentException($"y holds {y.Length} floats, need {x.Length / c * c}", nameof(y));
        var isa = KernelIsaSelector.Current;
        fixed (float* px = x)
        fixed (float* pw = weight)
        fixed (float* py = y)
        {
            for (int r = 0; r < x.Length / c; r++)
            {
                float* xr = px + (long)r * c, yr = py + (long)r * c;
                float ss = Dot.Compute(xr, xr, c, isa);
                float inv = (float)(1.0 / Math.Sqrt((double)ss / c + eps));
                int i = 0;
                if (isa == KernelIsa.Avx512)
                    for (var vi = Vector512.Create(inv); i + 16 <= c; i += 16) (Vector512.Load(xr + i) * vi * Vector512.Load(pw + i)).Store(yr + i);
                else if (isa == KernelIsa.Avx2)
                    for (var vi = Vector256.Create(inv); i + 8 <= c; i += 8) (Vector256.Load(xr + i) * vi * Vector256.Load(pw + i)).Store(yr + i);
                for (; i < c; i++) yr[i] = xr[i] * inv * pw[i];
            }
        }
    }
}
