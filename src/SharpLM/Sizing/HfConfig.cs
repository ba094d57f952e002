using System.Text.Json;

namespace SharpLM.Sizing;

/// <summary>
/// Reads a Hugging Face config.json into a <see cref="ModelArchitecture"/>. Supported model_type values:
/// llama, mistral, mixtral, qwen2, qwen3 (decoders); gpt2; bert, roberta, xlm-roberta, albert, distilbert (encoders,
/// counted as the bare BertModel/AlbertModel/DistilBertModel: with the pooler where that class has one, no MLM head).
/// Errors name the file and the JSON field.
/// </summary>
internal static class HfConfig
{
    public static readonly string[] SupportedTypes =
        ["llama", "mistral", "mixtral", "qwen2", "qwen3", "gpt2", "bert", "roberta", "xlm-roberta", "albert", "distilbert"];

    public static ModelArchitecture Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"config file '{path}' does not exist.", path);
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses config.json text; <paramref name="source"/> names it in errors.</summary>
    public static ModelArchitecture Parse(string json, string source)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}): {e.Message}", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{source}: expected a JSON object at the top level, got {root.ValueKind}.");
            var c = new Reader(root, source);
            string type = c.String("model_type") ?? throw new InvalidDataException(
                $"{source}: missing 'model_type'. Expected one of: {string.Join(", ", SupportedTypes)}.");
            return (type switch
            {
                "llama" or "mistral" or "mixtral" or "qwen2" or "qwen3" => Decoder(c, type),
                "gpt2" => Gpt2(c),
                "bert" or "roberta" or "xlm-roberta" => Bert(c, type),
                "albert" => Albert(c),
                "distilbert" => DistilBert(c),
                _ => throw new InvalidDataException(
                    $"{source}: unknown 'model_type' \"{type}\". Supported: {string.Join(", ", SupportedTypes)}."),
            }).Normalize(source);
        }
    }

    private static ModelArchitecture Decoder(Reader c, string type)
    {
        bool qwen2 = type == "qwen2";
        bool attnBias = c.Bool("attention_bias") ?? false;
        long experts = c.Long("num_local_experts") ?? 0;
        return new ModelArchitecture
        {
            ModelType = type,
            Family = ArchFamily.Decoder,
            VocabSize = c.Required("vocab_size", "V, the vocabulary size"),
            Hidden = c.Required("hidden_size", "h, the model width"),
            Layers = c.Required("num_hidden_layers", "L, the number of layers"),
            Heads = c.Required("num_attention_heads", "NH, the number of attention heads"),
            KvHeads = c.Long("num_key_value_heads") ?? 0,
            HeadDim = c.Long("head_dim") ?? 0,
            Intermediate = c.Required("intermediate_size", "F, the MLP width"),
            ContextLength = c.Long("max_position_embeddings") ?? 0,
            Norm = NormKind.RmsNorm,
            QkvBias = qwen2 || attnBias,          // Qwen2 always has q/k/v biases; LLaMA/Qwen3 only with attention_bias
            OutBias = !qwen2 && attnBias,
            MlpBias = c.Bool("mlp_bias") ?? false,
            GatedMlp = true,
            QkNorm = type == "qwen3",
            TiedEmbeddings = c.Bool("tie_word_embeddings") ?? false,
            HasLmHead = true,
            FinalNorm = true,
            Experts = experts,
            ExpertsPerToken = experts > 0 ? c.Long("num_experts_per_tok") ?? 2 : 0,
        };
    }

    private static ModelArchitecture Gpt2(Reader c)
    {
        long h = c.Required("n_embd", "h, the model width");
        long positions = c.Long("n_positions") ?? c.Required("n_ctx", "the context length");
        return new ModelArchitecture
        {
            ModelType = "gpt2",
            Family = ArchFamily.Gpt2,
            VocabSize = c.Required("vocab_size", "V, the vocabulary size"),
            Hidden = h,
            Layers = c.Required("n_layer", "L, the number of layers"),
            Heads = c.Required("n_head", "NH, the number of attention heads"),
            Intermediate = c.Long("n_inner") ?? 4 * h,
            LearnedPositions = positions,
            ContextLength = positions,
            Norm = NormKind.LayerNorm,
            QkvBias = true,
            OutBias = true,
            MlpBias = true,
            TiedEmbeddings = true,
            HasLmHead = true,
            FinalNorm = true,
        };
    }

    private static ModelArchitecture Bert(Reader c, string type)
    {
        long positions = c.Required("max_position_embeddings", "P, rows of the position table");
        return new ModelArchitecture
        {
            ModelType = type,
            Family = ArchFamily.Encoder,
            VocabSize = c.Required("vocab_size", "V, the vocabulary size"),
            Hidden = c.Required("hidden_size", "h, the model width"),
            Layers = c.Required("num_hidden_layers", "L, the number of layers"),
            Heads = c.Required("num_attention_heads", "NH, the number of attention heads"),
            Intermediate = c.Required("intermediate_size", "F, the MLP width"),
            LearnedPositions = positions,
            ContextLength = positions,
            TokenTypes = c.Long("type_vocab_size") ?? 2,
            EmbeddingNorm = true,
            Norm = NormKind.LayerNorm,
            QkvBias = true,
            OutBias = true,
            MlpBias = true,
            Pooler = true,
        };
    }

    private static ModelArchitecture Albert(Reader c)
    {
        long positions = c.Required("max_position_embeddings", "P, rows of the position table");
        long groups = c.Long("num_hidden_groups") ?? 1;
        long inner = c.Long("inner_group_num") ?? 1;
        if (groups <= 0) throw new InvalidDataException($"{c.Source}: 'num_hidden_groups' must be positive, got {groups}.");
        if (inner <= 0) throw new InvalidDataException($"{c.Source}: 'inner_group_num' must be positive, got {inner}.");
        return new ModelArchitecture
        {
            ModelType = "albert",
            Family = ArchFamily.Encoder,
            VocabSize = c.Required("vocab_size", "V, the vocabulary size"),
            EmbeddingSize = c.Required("embedding_size", "E, the embedding width"),
            EmbeddingProjection = true,
            Hidden = c.Required("hidden_size", "h, the model width"),
            Layers = c.Required("num_hidden_layers", "L, the number of layers"),
            StoredLayers = groups * inner,
            Heads = c.Required("num_attention_heads", "NH, the number of attention heads"),
            Intermediate = c.Required("intermediate_size", "F, the MLP width"),
            LearnedPositions = positions,
            ContextLength = positions,
            TokenTypes = c.Long("type_vocab_size") ?? 2,
            EmbeddingNorm = true,
            Norm = NormKind.LayerNorm,
            QkvBias = true,
            OutBias = true,
            MlpBias = true,
            Pooler = true,
        };
    }

    private static ModelArchitecture DistilBert(Reader c)
    {
        long positions = c.Required("max_position_embeddings", "P, rows of the position table");
        return new ModelArchitecture
        {
            ModelType = "distilbert",
            Family = ArchFamily.Encoder,
            VocabSize = c.Required("vocab_size", "V, the vocabulary size"),
            Hidden = c.Required("dim", "h, the model width"),
            Layers = c.Required("n_layers", "L, the number of layers"),
            Heads = c.Required("n_heads", "NH, the number of attention heads"),
            Intermediate = c.Required("hidden_dim", "F, the MLP width"),
            LearnedPositions = positions,
            ContextLength = positions,
            EmbeddingNorm = true,
            Norm = NormKind.LayerNorm,
            QkvBias = true,
            OutBias = true,
            MlpBias = true,
        };
    }

    /// <summary>Typed access to the top-level fields, with errors naming the field.</summary>
    private readonly struct Reader(JsonElement root, string source)
    {
        public string Source => source;

        public string? String(string name) =>
            root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null
                ? v.ValueKind == JsonValueKind.String ? v.GetString() : throw new InvalidDataException($"{source}: '{name}' must be a string, got {v.ValueKind} {v.GetRawText()}.")
                : null;

        public long? Long(string name)
        {
            if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long x)) return x;
            if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) < 1e15) return (long)d;
            throw new InvalidDataException($"{source}: '{name}' must be an integer, got {v.GetRawText()}.");
        }

        public long Required(string name, string what) =>
            Long(name) ?? throw new InvalidDataException($"{source}: missing '{name}' ({what}).");

        public bool? Bool(string name)
        {
            if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            return v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw new InvalidDataException($"{source}: '{name}' must be true or false, got {v.GetRawText()}."),
            };
        }
    }
}
