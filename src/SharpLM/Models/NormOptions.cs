using System.Text.Json.Nodes;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.HuggingFace;

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

    /// <summary>config.json's key for <see cref="ModelConfig.NormPlacement"/> (written only when not pre-norm; SharpLM's own,
    /// transformers ignores it).</summary>
    public const string HfPlacementKey = "sharplm_norm_placement";
    /// <summary>config.json's key for <see cref="ModelConfig.Norm"/> (written only when set).</summary>
    public const string HfNormKey = "sharplm_norm";
    /// <summary>The GGUF keys of the same (llama.cpp does not read them: it would run such a file as pre-norm).</summary>
    public const string GgufPlacementKey = "sharplm.norm_placement", GgufNormKey = "sharplm.norm";

    private static readonly (string Name, NormPlacement Value)[] PlacementNames = [("pre", NormPlacement.Pre), ("post", NormPlacement.Post), ("deepnorm", NormPlacement.DeepNorm)];
    private static readonly (string Name, NormKind Value)[] KindNames =
        [("layernorm", NormKind.LayerNorm), ("rmsnorm", NormKind.RmsNorm), ("batchnorm", NormKind.BatchNorm), ("none", NormKind.None)];

    private static string Name(NormPlacement p) => PlacementNames.First(x => x.Value == p).Name;
    private static string Name(NormKind k) => KindNames.First(x => x.Value == k).Name;

    private static ModelConfig Parse(ModelConfig c, string? placement, string? kind, Func<string, string, Exception> fail, string placementKey, string kindKey)
    {
        if (placement != null)
        {
            var p = PlacementNames.FirstOrDefault(x => x.Name == placement);
            if (p.Name is null) throw fail(placementKey, $"is '{placement}', expected one of {string.Join(", ", PlacementNames.Select(x => x.Name))}");
            c = c with { NormPlacement = p.Value };
        }
        if (kind != null)
        {
            var k = KindNames.FirstOrDefault(x => x.Name == kind);
            if (k.Name is null) throw fail(kindKey, $"is '{kind}', expected one of {string.Join(", ", KindNames.Select(x => x.Name))}");
            c = c with { Norm = k.Value };
        }
        if (c.NormPlacement != NormPlacement.Pre && c.Family == ArchFamily.Bert)
            throw fail(placementKey, $"is '{Name(c.NormPlacement)}', but {c.Architecture} is an encoder, which is post-norm by definition");
        return c;
    }

    /// <summary>The norm options of a config.json (absent keys leave the architecture's own).</summary>
    public static ModelConfig FromHf(JsonReader r, ModelConfig c) =>
        Parse(c, r.String(HfPlacementKey), r.String(HfNormKey), (key, msg) => new InvalidDataException($"{r.Source}: '{key}' {msg}"), HfPlacementKey, HfNormKey);

    public static void ToHf(ModelConfig c, JsonObject o)
    {
        if (c.NormPlacement != NormPlacement.Pre) o[HfPlacementKey] = Name(c.NormPlacement);
        if (c.Norm is NormKind k) o[HfNormKey] = Name(k);
    }

    public static ModelConfig FromGguf(GgufFile g, ModelConfig c) =>
        Parse(c, g.GetStringOrNull(GgufPlacementKey), g.GetStringOrNull(GgufNormKey), (key, msg) => new InvalidDataException($"{g.Path}: metadata '{key}' {msg}"), GgufPlacementKey, GgufNormKey);

    public static void ToGguf(ModelConfig c, GgufWriter w)
    {
        if (c.NormPlacement != NormPlacement.Pre) w.Set(GgufPlacementKey, Name(c.NormPlacement));
        if (c.Norm is NormKind k) w.Set(GgufNormKey, Name(k));
    }
}
