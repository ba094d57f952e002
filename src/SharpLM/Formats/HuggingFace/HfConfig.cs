using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace SharpLM.Formats.HuggingFace;

/// <summary>config.json rope_scaling. For "llama3": factor, low/high_freq_factor and original_max_position_embeddings;
/// "linear"/"dynamic"/"yarn" use <see cref="Factor"/> (and yarn the original context).</summary>
internal sealed record HfRopeScaling(
    string Type,
    float Factor,
    float? LowFreqFactor,
    float? HighFreqFactor,
    int? OriginalMaxPositionEmbeddings);

/// <summary>
/// The fields of a Hugging Face decoder config.json (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) as the
/// file states them, with the transformers defaults filled in where a key is absent (noted per field).
/// <see cref="Raw"/> keeps the whole JSON for anything else.
/// </summary>
internal sealed record HfConfig
{
    public required string ModelType { get; init; }
    public required IReadOnlyList<string> Architectures { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumHiddenLayers { get; init; }
    public required int NumAttentionHeads { get; init; }
    /// <summary>Defaults to <see cref="NumAttentionHeads"/>.</summary>
    public required int NumKeyValueHeads { get; init; }
    /// <summary>As stated; null when absent (then hidden_size / num_attention_heads). See <see cref="HeadSize"/>.</summary>
    public int? HeadDim { get; init; }
    public required float RmsNormEps { get; init; }
    /// <summary>Defaults to 10000.</summary>
    public required float RopeTheta { get; init; }
    public HfRopeScaling? RopeScaling { get; init; }
    public required int MaxPositionEmbeddings { get; init; }
    public required int VocabSize { get; init; }
    /// <summary>Defaults to false.</summary>
    public required bool TieWordEmbeddings { get; init; }
    /// <summary>llama/mistral attention_bias (default false); qwen2 always has q/k/v biases (true).</summary>
    public required bool AttentionBias { get; init; }
    public int? BosTokenId { get; init; }
    /// <summary>eos_token_id as a list (it may be an int or a list in config.json).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }
    public string? TorchDtype { get; init; }
    public int? SlidingWindow { get; init; }
    public string? HiddenAct { get; init; }
    public required JsonElement Raw { get; init; }

    public int HeadSize => HeadDim ?? HiddenSize / NumAttentionHeads;

    /// <summary>The architecture name llama.cpp uses in GGUF ("llama" for llama and mistral, "qwen2").</summary>
    public string GgufArchitecture => ModelType switch
    {
        "llama" or "mistral" => "llama",
        "qwen2" => "qwen2",
        _ => throw new NotSupportedException($"model_type '{ModelType}' ({string.Join(", ", Architectures)}) is not supported; supported: llama, mistral, qwen2"),
    };

    public static HfConfig Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException e)
        {
            throw new FileNotFoundException($"'{path}' does not exist: a Hugging Face model folder needs config.json", path, e);
        }
        return Parse(bytes, path);
    }

    public static HfConfig Parse(ReadOnlySpan<byte> json, string source)
    {
        if (!System.Text.Unicode.Utf8.IsValid(json)) throw new InvalidDataException($"{source}: not valid UTF-8 text");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 32, AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: invalid JSON: {e.Message}", e);
        }
        using (doc)
        {
            var r = new JsonReader(doc.RootElement.Clone(), source);
            if (r.Root.ValueKind != JsonValueKind.Object) r.Fail("$", $"is a {r.Root.ValueKind}, expected an object");
            string modelType = r.String("model_type") ?? r.Fail<string>("model_type", "is missing");
            int hidden = r.RequiredInt("hidden_size");
            int heads = r.RequiredInt("num_attention_heads");
            if (hidden <= 0 || heads <= 0) r.Fail("hidden_size", $"hidden_size {hidden} and num_attention_heads {heads} must be positive");
            int? headDim = r.Int("head_dim");
            if (headDim is null && hidden % heads != 0) r.Fail("hidden_size", $"{hidden} is not divisible by num_attention_heads {heads}, and head_dim is not given");
            HfRopeScaling? scaling = null;
            if (r.Root.TryGetProperty("rope_scaling", out var rs) && rs.ValueKind == JsonValueKind.Object)
            {
                var s = new JsonReader(rs, source, "rope_scaling.");
                string type = s.String("rope_type") ?? s.String("type") ?? s.Fail<string>("rope_type", "is missing");
                scaling = new HfRopeScaling(type, s.Float("factor") ?? 1f, s.Float("low_freq_factor"), s.Float("high_freq_factor"), s.Int("original_max_position_embeddings"));
            }
            else if (r.Root.TryGetProperty("rope_scaling", out var rs2) && rs2.ValueKind != JsonValueKind.Null)
                r.Fail("rope_scaling", $"is a {rs2.ValueKind}, expected an object or null");
            var archs = r.Root.TryGetProperty("architectures", out var a) && a.ValueKind == JsonValueKind.Array
                ? a.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!).ToArray()
                : [];
            int layers = r.RequiredInt("num_hidden_layers");
            int kv = r.Int("num_key_value_heads") ?? heads;
            if (kv <= 0 || heads % kv != 0) r.Fail("num_key_value_heads", $"{kv} must divide num_attention_heads {heads}");
            return new HfConfig
            {
                ModelType = modelType,
                Architectures = archs,
                HiddenSize = hidden,
                IntermediateSize = r.RequiredInt("intermediate_size"),
                NumHiddenLayers = layers,
                NumAttentionHeads = heads,
                NumKeyValueHeads = kv,
                HeadDim = headDim,
                RmsNormEps = r.Float("rms_norm_eps") ?? 1e-6f,
                RopeTheta = r.Float("rope_theta") ?? 10000f,
                RopeScaling = scaling,
                MaxPositionEmbeddings = r.Int("max_position_embeddings") ?? 2048,
                VocabSize = r.RequiredInt("vocab_size"),
                TieWordEmbeddings = r.Bool("tie_word_embeddings") ?? false,
                AttentionBias = modelType == "qwen2" || (r.Bool("attention_bias") ?? false),
                BosTokenId = r.Int("bos_token_id"),
                EosTokenIds = r.IntOrList("eos_token_id"),
                PadTokenId = r.Int("pad_token_id"),
                TorchDtype = r.String("torch_dtype") ?? r.String("dtype"),
                SlidingWindow = r.Int("sliding_window"),
                HiddenAct = r.String("hidden_act"),
                Raw = r.Root,
            };
        }
    }
}

/// <summary>Typed reads from a JSON object with errors naming the file and the JSON path.</summary>
internal readonly struct JsonReader(JsonElement root, string source, string prefix = "")
{
    public JsonElement Root => root;

    [DoesNotReturn]
    public void Fail(string key, string message) => throw new InvalidDataException($"{source}: '{prefix}{key}' {message}");

    [DoesNotReturn]
    public T Fail<T>(string key, string message) => throw new InvalidDataException($"{source}: '{prefix}{key}' {message}");

    private bool TryGet(string key, out JsonElement e) =>
        root.TryGetProperty(key, out e) && e.ValueKind != JsonValueKind.Null;

    public string? String(string key) => !TryGet(key, out var e) ? null
        : e.ValueKind == JsonValueKind.String ? e.GetString() : Fail<string>(key, $"is {e.GetRawText()}, expected a string");

    public int? Int(string key)
    {
        if (!TryGet(key, out var e)) return null;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v)) return v;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) return (int)d;
        return Fail<int>(key, $"is {Short(e)}, expected an integer");
    }

    public int RequiredInt(string key) => Int(key) ?? Fail<int>(key, "is missing (expected an integer)");

    public float? Float(string key)
    {
        if (!TryGet(key, out var e)) return null;
        return e.ValueKind == JsonValueKind.Number ? (float)e.GetDouble() : Fail<float>(key, $"is {Short(e)}, expected a number");
    }

    public bool? Bool(string key)
    {
        if (!TryGet(key, out var e)) return null;
        return e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => Fail<bool>(key, $"is {Short(e)}, expected true or false"),
        };
    }

    public int[] IntOrList(string key)
    {
        if (!TryGet(key, out var e)) return [];
        if (e.ValueKind == JsonValueKind.Array)
        {
            var r = new List<int>();
            foreach (var x in e.EnumerateArray())
                r.Add(x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out int v) ? v : Fail<int>(key, $"holds {Short(x)}, expected integers"));
            return [.. r];
        }
        return [Int(key)!.Value];
    }

    private static string Short(JsonElement e)
    {
        var t = e.GetRawText();
        return t.Length > 60 ? t[..60] + "..." : t;
    }
}
