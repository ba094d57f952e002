using SharpLM.Kernels.Naive;
using SharpLM.Tensors;

namespace SharpLM.Kernels;

/// <summary>y = x W^T for a weight of any supported dtype. x (T,C) f32, w (OC,C) -> y (T,OC).</summary>
internal static class MatMul
{
    public static void Forward(ReadOnlySpan<float> x, in WeightMatrix w, Span<float> y, int t)
    {
        if (x.Length < t * w.Cols) throw new ArgumentException($"x holds {x.Length} floats, need T*C = {t}*{w.Cols}", nameof(x));
        if (y.Length < t * w.Rows) throw new ArgumentException($"y holds {y.Length} floats, need T*OC = {t}*{w.Rows}", nameof(y));
        NaiveMatMul.Forward(x, w, y, t);
    }
}
