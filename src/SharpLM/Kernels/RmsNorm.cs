using SharpLM.Kernels.Naive;

namespace SharpLM.Kernels;

/// <summary>RMSNorm: x (T,C), weight (C) -> y (T,C); y = x / sqrt(mean(x^2) + eps) * weight.</summary>
internal static class RmsNorm
{
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, int c, float eps) =>
        NaiveOps.RmsNorm(x, weight, y, c, eps);
}
