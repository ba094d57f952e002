using SharpLM.Kernels;
using SharpLM.Tensors;

namespace SharpLM.Models;

/// <summary>A norm's weights: RMSNorm (weight only, LLaMA) or LayerNorm (weight and bias, GPT-2, BERT).</summary>
internal readonly struct NormWeights(FloatView weight, FloatView bias, float eps)
{
    public readonly FloatView Weight = weight;
    /// <summary>Empty for RMSNorm.</summary>
    public readonly FloatView Bias = bias;
    public readonly float Eps = eps;

    public bool IsLayerNorm => !Bias.IsEmpty;

    public static NormWeights Bind(BoundTensors t, string role, int layer, ModelConfig c) =>
        new(t.Vector(role, layer), t.Has(role + ".bias", layer) ? t.Vector(role + ".bias", layer) : default, c.NormEps);

    /// <summary>x (N,C) -> y (N,C), saving mean (LayerNorm) and rstd (N) for the backward pass.</summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y, Span<float> mean, Span<float> rstd, int c)
    {
        if (IsLayerNorm) LayerNorm.Forward(x, Weight.Span, Bias.Span, y, mean, rstd, c, Eps);
        else RmsNorm.Forward(x, Weight.Span, y, rstd, c, Eps);
    }

    /// <summary>dx (N,C) += the input gradient; the gradients of <paramref name="grad"/>'s weight (and bias) +=.</summary>
    public void Backward(in NormWeights grad, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
                         Span<float> dx, int n, int c)
    {
        if (IsLayerNorm) LayerNorm.Backward(dy, x, Weight.Span, mean, rstd, dx, grad.Weight.Span, grad.Bias.Span, n, c);
        else RmsNorm.Backward(dy, x, Weight.Span, rstd, dx, grad.Weight.Span, n, c);
    }
}

/// <summary>A linear layer y = x W^T (+ b): W (OC, C) of any dtype, b (OC) or empty.</summary>
internal readonly struct LinearWeights(WeightMatrix w, FloatView b)
{
    public readonly WeightMatrix W = w;
    public readonly FloatView B = b;

    public static LinearWeights Bind(BoundTensors t, string role, int layer) =>
        new(t.Matrix(role, layer), t.Has(role + ".bias", layer) ? t.Vector(role + ".bias", layer) : default);

    /// <summary>Rows [start, start+count) of W and b (the q, k or v part of a fused projection).</summary>
    public unsafe LinearWeights Rows(int start, int count) =>
        new(new WeightMatrix(W.Type, W.Data + start * W.RowBytes, count, W.Cols), B.IsEmpty ? default : B.Slice(start, count));

    /// <summary>x (N,C) -> y (N,OC).</summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y, int n)
    {
        MatMul.Forward(x, W, y, n);
        if (!B.IsEmpty) Bias.Forward(y[..(n * W.Rows)], B.Span);
    }

    /// <summary>dy (N,OC), x (N,C) -> dx (N,C) += (when not empty), grad.W +=, grad.B +=.</summary>
    public void Backward(in LinearWeights grad, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, int n)
    {
        MatMul.Backward(dy, x, W, dx, grad.W.Span, n);
        if (!B.IsEmpty) Bias.Backward(dy[..(n * W.Rows)], grad.B.Span);
    }
}
