namespace SharpLM.Sizing;

/// <summary>How the blocks are wired, which decides the tensors a model has.</summary>
internal enum ArchFamily
{
    /// <summary>LLaMA-style decoder: RoPE, RMSNorm, gated (SwiGLU) MLP, optional GQA, biases, tying, experts.</summary>
    Decoder,
    /// <summary>GPT-2: learned positions, LayerNorm with bias, biases everywhere, 4h GELU MLP, tied head.</summary>
    Gpt2,
    /// <summary>BERT-style encoder (BERT, ALBERT, DistilBERT): learned positions, post-LN, no LM head.</summary>
    Encoder,
}

internal enum NormKind
{
    /// <summary>weight only: h parameters.</summary>
    RmsNorm,
    /// <summary>weight and bias: 2h parameters.</summary>
    LayerNorm,
}

/// <summary>
/// The sizes and switches that decide a transformer's parameter tensors, from a config.json, a GGUF header or a
/// preset. Letters as in the README glossary: V vocab, h = C hidden, L layers, NH heads, KVH key/value heads,
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
    /// <summary>RMSNorm over each head of q and k (Qwen3): 2 HS parameters per layer.</summary>
    public bool QkNorm { get; init; }
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

    public long QDim => Heads * HeadDim;
    public long KvDim => KvHeads * HeadDim;
    public bool IsMoe => Experts > 0;

    /// <summary>Fills defaults (KVH = NH, HS = h / NH, E = h, stored layers = L) and checks every size, naming the
    /// field that is wrong.</summary>
    public ModelArchitecture Normalize(string source)
    {
        void Positive(long v, string field, string what)
        {
            if (v <= 0) throw new InvalidDataException($"{source}: '{field}' ({what}) must be positive, got {v}.");
        }
        void NonNegative(long v, string field, string what)
        {
            if (v < 0) throw new InvalidDataException($"{source}: '{field}' ({what}) must not be negative, got {v}.");
        }
        Positive(VocabSize, "vocab_size", "V, the vocabulary size");
        Positive(Hidden, "hidden_size", "h, the model width");
        Positive(Layers, "num_hidden_layers", "L, the number of layers");
        Positive(Heads, "num_attention_heads", "NH, the number of attention heads");
        Positive(Intermediate, "intermediate_size", "F, the MLP width");
        NonNegative(KvHeads, "num_key_value_heads", "KVH");
        NonNegative(HeadDim, "head_dim", "HS");
        NonNegative(ContextLength, "max_position_embeddings", "the context length");
        NonNegative(LearnedPositions, "max_position_embeddings", "rows of the position table");
        NonNegative(TokenTypes, "type_vocab_size", "token types");
        NonNegative(EmbeddingSize, "embedding_size", "E");
        NonNegative(StoredLayers, "num_hidden_groups", "stored layer sets");
        NonNegative(Experts, "num_local_experts", "experts per layer");
        NonNegative(ExpertsPerToken, "num_experts_per_tok", "experts per token");
        long kvh = KvHeads == 0 ? Heads : KvHeads;
        long hs = HeadDim;
        if (hs == 0)
        {
            if (Hidden % Heads != 0)
                throw new InvalidDataException($"{source}: 'hidden_size' {Hidden} is not a multiple of 'num_attention_heads' {Heads}; give 'head_dim'.");
            hs = Hidden / Heads;
        }
        if (Heads % kvh != 0)
            throw new InvalidDataException($"{source}: 'num_attention_heads' {Heads} is not a multiple of 'num_key_value_heads' {kvh}.");
        if (Experts > 0 && (ExpertsPerToken <= 0 || ExpertsPerToken > Experts))
            throw new InvalidDataException($"{source}: 'num_experts_per_tok' must be in [1, {Experts}] for {Experts} experts, got {ExpertsPerToken}.");
        long stored = StoredLayers == 0 ? Layers : StoredLayers;
        if (stored > Layers)
            throw new InvalidDataException($"{source}: {stored} stored layer sets ('num_hidden_groups' x 'inner_group_num') exceed 'num_hidden_layers' {Layers}.");
        return this with
        {
            KvHeads = kvh,
            HeadDim = hs,
            EmbeddingSize = EmbeddingSize == 0 ? Hidden : EmbeddingSize,
            StoredLayers = stored,
            ContextLength = ContextLength == 0 ? LearnedPositions : ContextLength,
        };
    }
}
