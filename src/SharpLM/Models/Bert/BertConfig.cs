using System.Globalization;
using System.Text.Json;

namespace SharpLM.Models.Bert;

/// <summary>The encoder families that share <see cref="BertModel"/>: they differ in tensor names and small details.</summary>
internal enum BertArch
{
    /// <summary>BERT, MiniLM, sentence-transformers: token + position + segment embeddings, post-LN blocks.</summary>
    Bert,

    /// <summary>DistilBERT: no segment embeddings, different tensor names (q_lin, sa_layer_norm, ffn.lin1 ...).</summary>
    DistilBert,

    /// <summary>ALBERT: factorized embedding (E &lt; H, projected E->H) and layer weights shared across layers.</summary>
    Albert,
}

/// <summary>
/// Hyper-parameters of a BERT-family encoder. Dimension letters: V vocab, E embedding size (= H except ALBERT),
/// H hidden (C), NH heads, HS = H/NH head size, F intermediate (FFN) size, L layers, P max positions.
/// </summary>
internal sealed record BertConfig
{
    public BertArch Arch { get; init; } = BertArch.Bert;
    public int VocabSize { get; init; }
    public int HiddenSize { get; init; }
    public int EmbeddingSize { get; init; }
    public int NumLayers { get; init; }
    public int NumHeads { get; init; }
    public int IntermediateSize { get; init; }
    public int MaxPositions { get; init; }

    /// <summary>Segment (token type) vocabulary; 0 when the model has no segment embeddings (DistilBERT).</summary>
    public int TypeVocabSize { get; init; }

    public float LayerNormEps { get; init; } = 1e-12f;

    /// <summary>"gelu" (erf, BERT), "gelu_new"/"gelu_pytorch_tanh" (tanh approximation, ALBERT), or "relu".</summary>
    public string HiddenAct { get; init; } = "gelu";

    /// <summary>ALBERT: number of distinct layer-weight groups (1 = one set of weights shared by all layers).</summary>
    public int NumHiddenGroups { get; init; } = 1;

    public int HeadSize => HiddenSize / NumHeads;

    /// <summary>Checks the numbers fit together; throws naming the bad one.</summary>
    public void Validate(string source)
    {
        void Need(bool ok, string what)
        {
            if (!ok) throw new InvalidDataException($"{source}: {what}");
        }
        Need(VocabSize > 0, $"vocab size must be positive, got {VocabSize}");
        Need(HiddenSize > 0, $"hidden size must be positive, got {HiddenSize}");
        Need(EmbeddingSize > 0, $"embedding size must be positive, got {EmbeddingSize}");
        Need(NumLayers > 0, $"number of layers must be positive, got {NumLayers}");
        Need(NumHeads > 0 && HiddenSize % NumHeads == 0, $"hidden size {HiddenSize} is not divisible by the number of heads {NumHeads}");
        Need(IntermediateSize > 0, $"intermediate size must be positive, got {IntermediateSize}");
        Need(MaxPositions > 0, $"max positions must be positive, got {MaxPositions}");
        Need(LayerNormEps > 0 && float.IsFinite(LayerNormEps), $"layer_norm_eps must be positive, got {LayerNormEps}");
        Need(HiddenAct is "gelu" or "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" or "relu",
            $"hidden_act '{HiddenAct}' is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)");
        Need(NumHiddenGroups > 0 && NumLayers % NumHiddenGroups == 0, $"num_hidden_groups {NumHiddenGroups} must divide num_hidden_layers {NumLayers}");
    }

    /// <summary>Reads a Hugging Face config.json of a BERT, DistilBERT, ALBERT, MiniLM or sentence-transformers model.</summary>
    public static BertConfig FromJsonFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"config.json not found: {path}", path);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        return FromJson(doc.RootElement, path);
    }

    public static BertConfig FromJson(JsonElement root, string source)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{source}: expected a JSON object");
        string modelType = Str(root, "model_type") ?? "bert";
        int Int(string key, int? fallback = null)
        {
            if (root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i)) return i;
            if (root.TryGetProperty(key, out var bad)) throw new InvalidDataException($"{source}: '{key}' must be an integer, got {bad.GetRawText()}");
            return fallback ?? throw new InvalidDataException($"{source}: '{key}' is missing; a {modelType} config.json needs it");
        }
        float Float(string key, float fallback) =>
            root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetSingle() : fallback;

        BertConfig c;
        switch (modelType)
        {
            case "distilbert":
                c = new BertConfig
                {
                    Arch = BertArch.DistilBert,
                    VocabSize = Int("vocab_size"),
                    HiddenSize = Int("dim"),
                    EmbeddingSize = Int("dim"),
                    NumLayers = Int("n_layers"),
                    NumHeads = Int("n_heads"),
                    IntermediateSize = Int("hidden_dim"),
                    MaxPositions = Int("max_position_embeddings", 512),
                    TypeVocabSize = 0,
                    LayerNormEps = 1e-12f,
                    HiddenAct = Str(root, "activation") ?? "gelu",
                };
                break;
            case "albert":
                c = new BertConfig
                {
                    Arch = BertArch.Albert,
                    VocabSize = Int("vocab_size"),
                    HiddenSize = Int("hidden_size"),
                    EmbeddingSize = Int("embedding_size", 128),
                    NumLayers = Int("num_hidden_layers"),
                    NumHeads = Int("num_attention_heads"),
                    IntermediateSize = Int("intermediate_size"),
                    MaxPositions = Int("max_position_embeddings", 512),
                    TypeVocabSize = Int("type_vocab_size", 2),
                    LayerNormEps = Float("layer_norm_eps", 1e-12f),
                    HiddenAct = Str(root, "hidden_act") ?? "gelu_new",
                    NumHiddenGroups = Int("num_hidden_groups", 1),
                };
                if (Int("inner_group_num", 1) != 1)
                    throw new NotSupportedException($"{source}: ALBERT inner_group_num {Int("inner_group_num", 1)} is not supported (only 1, as every released ALBERT)");
                break;
            case "bert" or "minilm" or "sentence-transformers":
                c = new BertConfig
                {
                    Arch = BertArch.Bert,
                    VocabSize = Int("vocab_size"),
                    HiddenSize = Int("hidden_size"),
                    EmbeddingSize = Int("hidden_size"),
                    NumLayers = Int("num_hidden_layers"),
                    NumHeads = Int("num_attention_heads"),
                    IntermediateSize = Int("intermediate_size"),
                    MaxPositions = Int("max_position_embeddings", 512),
                    TypeVocabSize = Int("type_vocab_size", 2),
                    LayerNormEps = Float("layer_norm_eps", 1e-12f),
                    HiddenAct = Str(root, "hidden_act") ?? "gelu",
                };
                if (Str(root, "position_embedding_type") is { } pet && pet != "absolute")
                    throw new NotSupportedException($"{source}: position_embedding_type '{pet}' is not supported (only 'absolute')");
                break;
            default:
                throw new NotSupportedException($"{source}: model_type '{modelType}' is not a supported encoder (bert, distilbert, albert)");
        }
        c.Validate(source);
        return c;
    }

    private static string? Str(JsonElement root, string key) =>
        root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Arch} V={VocabSize} E={EmbeddingSize} H={HiddenSize} L={NumLayers} NH={NumHeads} F={IntermediateSize} P={MaxPositions} types={TypeVocabSize} eps={LayerNormEps} act={HiddenAct}");
}
