using SharpLM.Kernels;
using SharpLM.Tensors;

namespace SharpLM.Models;

/// <summary>A norm's weights: RMSNorm (weight only, LLaMA) or LayerNorm (weight and bias, GPT-2, BERT) by default, or the
/// kind <see cref="ModelConfig.Norm"/> asks for (BatchNorm, no norm, or the other of the two), with the same tensors.</summary>
internal readonly struct NormWeights(FloatView weight, FloatView bias, float eps, NormKind? kind = null)
{
    public readonly FloatView Weight = weight;
    /// <summary>Empty for RMSNorm.</summary>
    public readonly FloatView Bias = bias;
    public readonly float Eps = eps;
    /// <summary>What the norm computes: the configured kind, else LayerNorm with a bias and RMSNorm without.</summary>
    public readonly NormKind Kind = kind ?? (bias.IsEmpty ? NormKind.RmsNorm : NormKind.LayerNorm);

    public bool IsLayerNorm => Kind == NormKind.LayerNorm;

    public static NormWeights Bind(BoundTensors t, string role, int layer, ModelConfig c) =>
        new(t.Vector(role, layer), t.Has(role + ".bias", layer) ? t.Vector(role + ".bias", layer) : default, c.NormEps, c.Norm);

    /// <summary>x (N,C) -> y (N,C), saving mean and rstd for the backward pass: (N) per row, (C) per feature for BatchNorm
    /// (whose statistics span all N rows, so a row's output depends on the rest of the batch).</summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y, Span<float> mean, Span<float> rstd, int c)
    {
        switch (Kind)
        {
            case NormKind.LayerNorm:
                if (Bias.IsEmpty) throw new NotSupportedException("LayerNorm needs a norm bias, which this model's table does not have");
                LayerNorm.Forward(x, Weight.Span, Bias.Span, y, mean, rstd, c, Eps);
                break;
            case NormKind.RmsNorm:
                RmsNorm.Forward(x, Weight.Span, y, rstd, c, Eps);
                if (!Bias.IsEmpty) Kernels.Bias.Forward(y[..x.Length], Bias.Span);
                break;
            case NormKind.BatchNorm:
                BatchNorm.Forward(x, Weight.Span, Bias.IsEmpty ? default : Bias.Span, y, mean, rstd, x.Length / c, c, Eps);
                break;
            default:
                Affine.Forward(x, Weight.Span, Bias.IsEmpty ? default : Bias.Span, y, c);
                break;
        }
    }

    /// <summary>dx (N,C) += the input gradient; the gradients of <paramref name="grad"/>'s weight (and bias) +=.</summary>
    public void Backward(in NormWeights grad, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
                         Span<float> dx, int n, int c)
    {
        var db = Bias.IsEmpty ? default : grad.Bias.Span;
        switch (Kind)
        {
            case NormKind.LayerNorm: LayerNorm.Backward(dy, x, Weight.Span, mean, rstd, dx, grad.Weight.Span, db, n, c); break;
            case NormKind.RmsNorm:
                RmsNorm.Backward(dy, x, Weight.Span, rstd, dx, grad.Weight.Span, n, c);
                if (!db.IsEmpty) Kernels.Bias.Backward(dy[..(n * c)], db);
                break;
            case NormKind.BatchNorm: BatchNorm.Backward(dy, x, Weight.Span, mean, rstd, dx, grad.Weight.Span, db, n, c); break;
            default: Affine.Backward(dy, x, Weight.Span, dx, grad.Weight.Span, db, n, c); break;
        }
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
    public unsafe LinearWeights Rows(int start, int count) => W.GroupedRows > 0
        ? throw new InvalidOperationException("the rows of a regrouped matrix are sliced before it is regrouped")
        : new(new WeightMatrix(W.Type, W.Data + start * W.RowBytes, count, W.Cols), B.IsEmpty ? default : B.Slice(start, count));

    /// <summary>x (N,C) -> y (N,OC).</summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y, int n) => MatMul.Forward(x, W, B.IsEmpty ? default : B.Span, y, n);

    /// <summary>ya = a(x), yb = b(x) and, when <paramref name="c"/> has rows, yc = c(x), over one x (attention's Q, K and V;
    /// the MLP's gate and up): the bits of separate <see cref="Forward"/> calls, with x quantized and packed once when
    /// the integer GEMM serves all of them (<see cref="MatMul.ForwardShared"/>).</summary>
    public static void ForwardShared(ReadOnlySpan<float> x, int n, in LinearWeights a, Span<float> ya, in LinearWeights b, Span<float> yb,
                                     in LinearWeights c, Span<float> yc)
    {
        MatMul.ForwardShared(x, n, a.W, ya, b.W, yb, c.W, yc);
        if (!a.B.IsEmpty) Kernels.Bias.Forward(ya[..(n * a.W.Rows)], a.B.Span);
        if (!b.B.IsEmpty) Kernels.Bias.Forward(yb[..(n * b.W.Rows)], b.B.Span);
        if (c.W.Rows > 0 && !c.B.IsEmpty) Kernels.Bias.Forward(yc[..(n * c.W.Rows)], c.B.Span);
    }

    /// <summary>These weights with W packed for the packed GEMM (<see cref="Gemm.Pack"/>) when its type can be, the panels
    /// added to <paramref name="keep"/> (whose owner keeps them alive); for weights that never change (inference).</summary>
    public unsafe LinearWeights Packed(List<float[]> keep)
    {
        if (W.Packed != null || !Gemm.CanPack(W.Type)) return this;
        keep.Add(Gemm.Pack(W, out float* p));
        return new LinearWeights(new WeightMatrix(W.Type, W.Data, W.Rows, W.Cols, p), B);
    }

    /// <summary>dy (N,OC), x (N,C) -> dx (N,C) += (when not empty), grad.W +=, grad.B +=.</summary>
    public void Backward(in LinearWeights grad, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, int n)
    {
        MatMul.Backward(dy, x, W, dx, grad.W.Span, n);
        if (!B.IsEmpty) Bias.Backward(dy[..(n * W.Rows)], grad.B.Span);
    }
}
