using SharpLM.Kernels;

namespace SharpLM.Models;

/// <summary>
/// The decoder's post-norm and DeepNorm blocks (<see cref="ModelConfig.NormPlacement"/>; the study note's section 5:
/// "GLM使用post DeepNorm ... LayerNorm(x * α + f(x))"). Each sublayer f sees the residual stream itself and its sum is
/// normalised: x = Norm(α·x + f(x)), α = 1 for post-norm (the original transformer, BERT) and (2N)^(1/4) for DeepNorm
/// (<see cref="NormOptions.ResidualScale"/>). <see cref="Decoder.Forward"/> and <see cref="Decoder.Backward"/> call these
/// where a pre-norm block adds the residual.
/// </summary>
internal static partial class Decoder
{
    /// <summary>sum (N,C) = α·x + f; y (N,C) = norm(sum), its statistics saved in mean, rstd. y may alias x.</summary>
    private static void ResidualNorm(ModelConfig c, in NormWeights norm, ReadOnlySpan<float> x, ReadOnlySpan<float> f, Span<float> sum,
                                     Span<float> y, Span<float> mean, Span<float> rstd)
    {
        float alpha = NormOptions.ResidualScale(c);
        var s = sum[..x.Length];
        if (alpha == 1f) Add.Forward(x, f[..x.Length], s);
        else
        {
            f[..x.Length].CopyTo(s);
            Add.Scaled(x, alpha, s);
        }
        norm.Forward(s, y, mean, rstd, c.Width);
    }

    /// <summary>From dy (N,C), the gradient of norm(α·x + f): dsum (N,C) = d norm input (the gradient f receives), and
    /// dy becomes α·dsum (the gradient x receives through the residual; the sublayer's own input gradient is added to it
    /// by the caller). The norm's weight gradients are added to <paramref name="grad"/>.</summary>
    private static void ResidualNormBackward(ModelConfig c, in NormWeights norm, in NormWeights grad, Span<float> dy, ReadOnlySpan<float> sum,
                                             ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, Span<float> dsum)
    {
        int n = dy.Length / c.Width;
        dsum.Clear();
        norm.Backward(grad, dy, sum, mean, rstd, dsum, n, c.Width);
        dsum.CopyTo(dy);
        float alpha = NormOptions.ResidualScale(c);
        if (alpha != 1f) Scale.InPlace(dy, alpha);
    }
}
