using SharpLM.Kernels.Naive;

namespace SharpLM.Kernels;

/// <summary>LayerNorm: x (T,C), weight (C), bias (C) -> y (T,C); y = (x - mean)/sqrt(var + eps) * weight + bias.</summary>
internal static class LayerNorm
{
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> y, int c, float eps) =>
        NaiveOps.LayerNorm(x, weight, bias, y, c, eps);
}
