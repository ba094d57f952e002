using SharpLM.Models;

namespace SharpLM.Sizing;

internal enum NormKind
{
    /// <summary>weight only: h parameters.</summary>
    RmsNorm,
    /// <summary>weight and bias: 2h parameters.</summary>
    LayerNorm,
}

/// <summary>
/// calc's view of a <see cref="ModelConfig"/> (read by the one configuration reader from a config.json, a GGUF header or
/// a preset): the sizes and switches that decide a transformer's parameter tensors. Letters as in the README glossary: V vocab, h = C hidden, L layers, NH heads, KVH key/value heads,
/// HS head size, F MLP width, E embedding width (ALBERT), P learned positions, T token types.
/// </summary>
internal sealed record ModelArchitecture
{
    /// <summary>The config's model_type (llama, mistral, qwen2, qwen3, mixtral, gpt2, bert, albert, distilbert).</summary>
    public required string ModelType { get; init; }
    public required ArchFamily Family { get; init; }
    public required long VocabSize { get; init; }
    public required long Hidden { get; init; }
    public required long Layers { get; init; }
    public required long Heads { get; init; }
    public long KvHeads { get; init; }
    public long HeadDim { get; init; }
    public required long Intermediate { get; init; }
    /// <summary>max_position_embeddings: the longest context the model was trained for.</summary>
    public long ContextLength { get; init; }
    /// <summary>Rows of a learned position table (GPT-2, BERT); 0 for RoPE models.</summary>
    public long LearnedPositions { get; init; }
    /// <summary>Rows of BERT's token-type (segment) table; 0 if none.</summary>
    public long TokenTypes { get; init; }
    /// <summary>Width of the embedding tables; ALBERT factorises them (E &lt; h), everyone else has E = h.</summary>
    public long EmbeddingSize { get; init; }
    /// <summary>ALBERT's E -> h projection (embedding_hidden_mapping_in).</summary>
    public bool EmbeddingProjection { get; init; }
    /// <summary>A LayerNorm right after the embeddings (BERT family).</summary>
    public bool EmbeddingNorm { get; init; }
    public NormKind Norm { get; init; } = NormKind.RmsNorm;
    public bool QkvBias { get; init; }
    public bool OutBias { get; init; }
    public bool MlpBias { get; init; }
    /// <summary>gate, up and down matrices (SwiGLU) instead of up and down.</summary>
    public bool GatedMlp { get; init; }
    /// <summary>RMSNorm over each head of q and k (Qwen3, Gemma 3): 2 HS parameters per layer.</summary>
    public bool QkNorm { get; init; }
    /// <summary>Norms after the attention and the MLP too (Gemma 2 and 3): four norms per layer instead of two.</summary>
    public bool PostNorms { get; init; }
    /// <summary>The output head reuses the token embedding matrix.</summary>
    public bool TiedEmbeddings { get; init; }
    /// <summary>Has an LM head at all (decoders); encoders as BertModel have none.</summary>
    public bool HasLmHead { get; init; }
    /// <summary>BERT's pooler (dense h -> h with bias), part of BertModel/AlbertModel.</summary>
    public bool Pooler { get; init; }
    public bool FinalNorm { get; init; }
    /// <summary>Distinct layer parameter sets stored; ALBERT shares one set across all layers.</summary>
    public long StoredLayers { get; init; }
    /// <summary>Mixture of experts: experts per layer (0 = dense) and how many each token uses.</summary>
    public long Experts { get; init; }
    public long ExpertsPerToken { get; init; }
    /// <summary>Qwen2-MoE's shared expert width (0 = none): a gated MLP every token uses, with a 1 x h router.</summary>
    public long SharedExpertIntermediate { get; init; }

    public long QDim => Heads * HeadDim;
    public long KvDim => KvHeads * HeadDim;
    public bool IsMoe => Experts > 0;

    /// <summary>
    /// The sizing view of <paramref name="c"/>, counted as the bare base model (BertModel, AlbertModel and RoBERTa with
    /// their pooler, DistilBertModel without; decoders with their LM head).
    /// </summary>
    public static ModelArchitecture From(ModelConfig c) => new()
    {
        ModelType = c.Architecture,
        Family = c.Family,
        VocabSize = c.Vocab,
        Hidden = c.Width,
        Layers = c.Layers,
        Heads = c.Heads,
        KvHeads = c.KvHeads,
        HeadDim = c.HeadSize,
        Intermediate = c.Experts > 0 ? (int)c.Dim("FE") : c.FfnWidth,
        SharedExpertIntermediate = c.SharedExpertFfnWidth,
        ContextLength = c.Context,
        LearnedPositions = c.Family == ArchFamily.Llama ? 0 : c.Context,
        TokenTypes = c.TokenTypes,
        EmbeddingSize = c.EmbeddingWidth,
        EmbeddingProjection = c.EmbeddingWidth != c.Width,
        EmbeddingNorm = c.Family == ArchFamily.Bert,
        Norm = c.Family == ArchFamily.Llama ? NormKind.RmsNorm : NormKind.LayerNorm,
        QkvBias = c.QkvBias,
        OutBias = c.OutputBias,
        MlpBias = c.MlpBias,
        GatedMlp = c.Family == ArchFamily.Llama,
        QkNorm = c.QkNorm,
        PostNorms = c.PostNorms,
        TiedEmbeddings = c.TiedEmbeddings,
        HasLmHead = c.Family != ArchFamily.Bert,
        Pooler = c.Pooler || (c.Family == ArchFamily.Bert && c.Architecture != "distilbert"),
        FinalNorm = c.Family != ArchFamily.Bert,
        StoredLayers = c.LayerGroups,
        Experts = c.Experts,
        ExpertsPerToken = c.ExpertsPerToken,
        Config = c,
    };

    /// <summary>Parses config.json text with the one configuration reader.</summary>
    public static ModelArchitecture Parse(string json, string source) => From(Formats.ModelConfigReader.FromHfJson(json, source));

    /// <summary>The configuration this view was made from.</summary>
    public required ModelConfig Config { get; init; }
}
