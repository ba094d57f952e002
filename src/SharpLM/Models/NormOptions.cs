namespace SharpLM.Models;

/// <summary>Which normalisation a model's norms compute (<see cref="ModelConfig.Norm"/>; the study note's section 5 and 1 e, f).
/// Every kind keeps the norm's tensors (weight, and bias where the table has one) as its affine part.</summary>
public enum NormKind
{
    /// <summary>Per row: (x − mean) / sqrt(var + eps) · w + b (GPT-2, BERT).</summary>
    LayerNorm,
    /// <summary>Per row: x / sqrt(mean(x²) + eps) · w (+ b when the table has a bias): LayerNorm without re-centring (LLaMA).</summary>
    RmsNorm,
    /// <summary>Per feature, over every row of the batch (padding rows included, as PyTorch's BatchNorm1d over (N, C) in
    /// training mode): (x − mean_rows) / sqrt(var_rows + eps) · w + b. Batch statistics always (no running averages).</summary>
    BatchNorm,
    /// <summary>No normalisation: only the affine part, x · w (+ b).</summary>
    None,
}

/// <summary>Where a decoder block's norms sit (<see cref="ModelConfig.NormPlacement"/>; the study note's section 5).</summary>
public enum NormPlacement
{
    /// <summary>x = x + f(Norm(x)) (LLaMA, GPT-2): the residual stream is never normalised, one final norm at the end.</summary>
    Pre,
    /// <summary>x = Norm(x + f(x)) (the original transformer, BERT).</summary>
    Post,
    /// <summary>x = Norm(α·x + f(x)) with α = (2N)^(1/4) and the β = (8N)^(-1/4) initialisation of DeepNet (Wang et al.
    /// 2022, for an N-layer decoder-only or encoder-only model), as GLM-130B uses it.</summary>
    DeepNorm,
}

/// <summary>What the norm options imply for buffers and initialisation.</summary>
internal static class NormOptions
{
    /// <summary>Floats a norm's saved statistics (mean, rstd) need for <paramref name="rows"/> rows: one per row, or one per
    /// feature for BatchNorm.</summary>
    public static int StatLength(ModelConfig c, int rows) =>
        c.Norm == NormKind.BatchNorm ? Math.Max(rows, Math.Max(c.Width, c.EmbeddingWidth)) : rows;

    /// <summary>DeepNorm's residual scale α = (2N)^(1/4) (DeepNet, decoder-only / encoder-only with N layers); 1 otherwise.</summary>
    public static float ResidualScale(ModelConfig c) =>
        c.NormPlacement == NormPlacement.DeepNorm ? (float)Math.Pow(2.0 * c.Layers, 0.25) : 1f;

    /// <summary>DeepNorm's initialisation gain β = (8N)^(-1/4) for the value, output and MLP projections; 1 otherwise.</summary>
    public static double InitScale(ModelConfig c) =>
        c.NormPlacement == NormPlacement.DeepNorm ? Math.Pow(8.0 * c.Layers, -0.25) : 1.0;
}
