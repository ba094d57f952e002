using System.Globalization;
using System.Text.Json;

namespace SharpLM.Models.Llama;

/// <summary>How RoPE frequencies are rescaled for long contexts.</summary>
public enum RopeScalingType
{
    None,
    /// <summary>Positions divided by <see cref="LlamaConfig.RopeScalingFactor"/>.</summary>
    Linear,
    /// <summary>LLaMA-3.1 per-frequency smoothing (factor, low/high frequency factors, original context).</summary>
    Llama3,
}

/// <summary>
/// The hyper-parameters of a LLaMA-family decoder (LLaMA 1/2/3, Mistral, Qwen2, TinyLlama), read from GGUF metadata
/// (<c>llama.*</c>, <c>mistral.*</c>, <c>qwen2.*</c> keys) or a Hugging Face <c>config.json</c>.
/// </summary>
public sealed record LlamaConfig
{
    /// <summary>"llama", "mistral" or "qwen2".</summary>
    public required string Architecture { get; init; }
    /// <summary>C: model width.</summary>
    public required int Dim { get; init; }
    /// <summary>L: number of blocks.</summary>
    public required int Layers { get; init; }
    /// <summary>NH: query heads.</summary>
    public required int Heads { get; init; }
    /// <summary>KVH: key/value heads (GQA when smaller than NH; NH must be a multiple).</summary>
    public required int KvHeads { get; init; }
    /// <summary>HS: head size (C / NH unless the file says otherwise).</summary>
    public required int HeadDim { get; init; }
    /// <summary>F: MLP hidden size.</summary>
    public required int FfnDim { get; init; }
    /// <summary>V: vocabulary size (rows of the embedding).</summary>
    public required int VocabSize { get; init; }
    /// <summary>The context length the model was trained for.</summary>
    public required int ContextLength { get; init; }
    public float NormEps { get; init; } = 1e-5f;
    public float RopeTheta { get; init; } = 10000f;
    /// <summary>Rotated dimensions per head (= HS normally).</summary>
    public int RopeDim { get; init; }
    /// <summary>Rotate-half pairs (i, i+HS/2) as Hugging Face and Qwen2 do; false = adjacent pairs (GGUF LLaMA, q/k permuted).</summary>
    public bool RopeNeox { get; init; }
    public RopeScalingType RopeScaling { get; init; }
    public float RopeScalingFactor { get; init; } = 1f;
    public float RopeLowFreqFactor { get; init; } = 1f;
    public float RopeHighFreqFactor { get; init; } = 4f;
    public int RopeOriginalContext { get; init; } = 8192;
    /// <summary>Q/K/V projections carry biases (Qwen2).</summary>
    public bool AttentionBias { get; init; }
    /// <summary>The output head is the token embedding (no separate output weight).</summary>
    public bool TiedEmbeddings { get; init; }
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    internal static readonly string[] KnownArchitectures = ["llama", "mistral", "qwen2"];

    /// <summary>Checks the numbers are consistent; throws naming the field, the value and what was expected.</summary>
    internal void Validate(string source)
    {
        void Positive(string name, long v)
        {
            if (v <= 0) throw new InvalidDataException($"{source}: {name} = {v}, expected a positive number");
        }
        Positive("dim", Dim); Positive("layers", Layers); Positive("heads", Heads); Positive("kv heads", KvHeads);
        Positive("head dim", HeadDim); Positive("ffn dim", FfnDim); Positive("vocab size", VocabSize); Positive("context length", ContextLength);
        if (Heads % KvHeads != 0)
            throw new InvalidDataException($"{source}: {Heads} attention heads is not a multiple of {KvHeads} key/value heads");
        if (HeadDim % 2 != 0 || RopeDim % 2 != 0 || RopeDim > HeadDim)
            throw new InvalidDataException($"{source}: head dim {HeadDim} / rope dim {RopeDim} must be even with rope dim <= head dim");
        if (!(NormEps > 0) || !(RopeTheta > 0))
            throw new InvalidDataException($"{source}: norm eps {NormEps} and rope theta {RopeTheta} must be positive");
    }

    /// <summary>
    /// From GGUF metadata (key -> value as the GGUF reader returns it: numbers, strings, arrays).
    /// <paramref name="vocabFallback"/> supplies V when <c>ARCH.vocab_size</c> is absent (token list length or embedding rows).
    /// </summary>
    internal static LlamaConfig FromGguf(IReadOnlyDictionary<string, object> md, string source, int? vocabFallback)
    {
        string arch = md.TryGetValue("general.architecture", out var a) ? a as string ?? "" :
            throw new InvalidDataException($"{source}: GGUF metadata has no general.architecture");
        if (!KnownArchitectures.Contains(arch))
            throw new NotSupportedException($"{source}: architecture '{arch}' is not supported (supported: {string.Join(", ", KnownArchitectures)})");
        int Req(string key) => GetInt(md, $"{arch}.{key}") ?? throw new InvalidDataException($"{source}: GGUF metadata key '{arch}.{key}' is missing");
        int dim = Req("embedding_length"), heads = Req("attention.head_count");
        int headDim = GetInt(md, $"{arch}.attention.key_length") ?? dim / Math.Max(heads, 1);
        var scalingType = md.TryGetValue($"{arch}.rope.scaling.type", out var st) ? st as string : null;
        float factor = GetFloat(md, $"{arch}.rope.scaling.factor") ?? 1f;
        var eos = new List<int>();
        if (GetInt(md, "tokenizer.ggml.eos_token_id") is int e) eos.Add(e);
        if (GetInt(md, "tokenizer.ggml.eot_token_id") is int eot && !eos.Contains(eot)) eos.Add(eot);
        var cfg = new LlamaConfig
        {
            Architecture = arch,
            Dim = dim,
            Layers = Req("block_count"),
            Heads = heads,
            KvHeads = GetInt(md, $"{arch}.attention.head_count_kv") ?? heads,
            HeadDim = headDim,
            FfnDim = Req("feed_forward_length"),
            VocabSize = GetInt(md, $"{arch}.vocab_size") ?? vocabFallback
                        ?? throw new InvalidDataException($"{source}: the vocabulary size is unknown ({arch}.vocab_size and tokenizer.ggml.tokens are both missing)"),
            ContextLength = Req("context_length"),
            NormEps = GetFloat(md, $"{arch}.attention.layer_norm_rms_epsilon") ?? 1e-5f,
            RopeTheta = GetFloat(md, $"{arch}.rope.freq_base") ?? 10000f,
            RopeDim = GetInt(md, $"{arch}.rope.dimension_count") ?? headDim,
            RopeNeox = arch == "qwen2",
            RopeScaling = scalingType == "linear" && factor != 1f ? RopeScalingType.Linear : RopeScalingType.None,
            RopeScalingFactor = factor,
            BosTokenId = GetInt(md, "tokenizer.ggml.bos_token_id"),
            EosTokenIds = eos,
        };
        cfg.Validate(source);
        return cfg;
    }

    /// <summary>From a Hugging Face config.json (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM).</summary>
    internal static LlamaConfig FromHfJson(string json, string source)
    {
        using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        var r = doc.RootElement;
        string? archName = r.TryGetProperty("architectures", out var archs) && archs.ValueKind == JsonValueKind.Array && archs.GetArrayLength() > 0
            ? archs[0].GetString() : null;
        string? modelType = r.TryGetProperty("model_type", out var mt) ? mt.GetString() : null;
        string arch = (archName, modelType) switch
        {
            ("LlamaForCausalLM", _) or (null, "llama") => "llama",
            ("MistralForCausalLM", _) or (null, "mistral") => "mistral",
            ("Qwen2ForCausalLM", _) or (null, "qwen2") => "qwen2",
            _ => throw new NotSupportedException(
                $"{source}: architecture '{archName ?? modelType ?? "(none)"}' is not supported (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)"),
        };
        int Req(string key) => JInt(r, key) ?? throw new InvalidDataException($"{source}: '{key}' is missing");
        int dim = Req("hidden_size"), heads = Req("num_attention_heads");
        int headDim = JInt(r, "head_dim") ?? dim / Math.Max(heads, 1);
        var scaling = RopeScalingType.None;
        float factor = 1f, lo = 1f, hi = 4f;
        int orig = 8192;
        if (r.TryGetProperty("rope_scaling", out var rs) && rs.ValueKind == JsonValueKind.Object)
        {
            string? type = rs.TryGetProperty("rope_type", out var t1) ? t1.GetString() : rs.TryGetProperty("type", out var t2) ? t2.GetString() : null;
            factor = JFloat(rs, "factor") ?? 1f;
            scaling = type switch
            {
                "llama3" => RopeScalingType.Llama3,
                "linear" => RopeScalingType.Linear,
                "default" or null => RopeScalingType.None,
                _ => throw new NotSupportedException($"{source}: rope_scaling type '{type}' is not supported (supported: llama3, linear)"),
            };
            lo = JFloat(rs, "low_freq_factor") ?? 1f;
            hi = JFloat(rs, "high_freq_factor") ?? 4f;
            orig = JInt(rs, "original_max_position_embeddings") ?? 8192;
        }
        var eos = new List<int>();
        if (r.TryGetProperty("eos_token_id", out var eosEl))
        {
            if (eosEl.ValueKind == JsonValueKind.Number) eos.Add(eosEl.GetInt32());
            else if (eosEl.ValueKind == JsonValueKind.Array) foreach (var x in eosEl.EnumerateArray()) if (x.ValueKind == JsonValueKind.Number) eos.Add(x.GetInt32());
        }
        var cfg = new LlamaConfig
        {
            Architecture = arch,
            Dim = dim,
            Layers = Req("num_hidden_layers"),
            Heads = heads,
            KvHeads = JInt(r, "num_key_value_heads") ?? heads,
            HeadDim = headDim,
            FfnDim = Req("intermediate_size"),
            VocabSize = Req("vocab_size"),
            ContextLength = JInt(r, "max_position_embeddings") ?? 2048,
            NormEps = JFloat(r, "rms_norm_eps") ?? 1e-6f,
            RopeTheta = JFloat(r, "rope_theta") ?? 10000f,
            RopeDim = headDim,
            RopeNeox = true, // HF checkpoints are not permuted: rotate-half pairs
            RopeScaling = scaling,
            RopeScalingFactor = factor,
            RopeLowFreqFactor = lo,
            RopeHighFreqFactor = hi,
            RopeOriginalContext = orig,
            AttentionBias = arch == "qwen2" || (r.TryGetProperty("attention_bias", out var ab) && ab.ValueKind == JsonValueKind.True),
            TiedEmbeddings = r.TryGetProperty("tie_word_embeddings", out var tie) && tie.ValueKind == JsonValueKind.True,
            BosTokenId = JInt(r, "bos_token_id"),
            EosTokenIds = eos,
        };
        cfg.Validate(source);
        return cfg;
    }

    /// <summary>
    /// Inverse RoPE frequencies (RopeDim/2): invFreq[i] = theta^(-2i/RopeDim), then the scaling of <see cref="RopeScaling"/>,
    /// then divided by per-frequency factors (GGUF <c>rope_freqs.weight</c>) when given.
    /// </summary>
    internal float[] InverseFrequencies(ReadOnlySpan<float> freqFactors = default)
    {
        int half = RopeDim / 2;
        var inv = new float[half];
        for (int i = 0; i < half; i++)
        {
            double f = 1.0 / Math.Pow(RopeTheta, 2.0 * i / RopeDim);
            switch (RopeScaling)
            {
                case RopeScalingType.Linear:
                    f /= RopeScalingFactor;
                    break;
                case RopeScalingType.Llama3:
                    double lowWavelen = RopeOriginalContext / RopeLowFreqFactor, highWavelen = RopeOriginalContext / RopeHighFreqFactor;
                    double wavelen = 2 * Math.PI / f;
                    if (wavelen > lowWavelen) f /= RopeScalingFactor;
                    else if (wavelen >= highWavelen)
                    {
                        double smooth = (RopeOriginalContext / wavelen - RopeLowFreqFactor) / (RopeHighFreqFactor - RopeLowFreqFactor);
                        f = (1 - smooth) * f / RopeScalingFactor + smooth * f;
                    }
                    break;
            }
            if (!freqFactors.IsEmpty) f /= freqFactors[i];
            inv[i] = (float)f;
        }
        return inv;
    }

    private static int? GetInt(IReadOnlyDictionary<string, object> md, string key) =>
        md.TryGetValue(key, out var v) && v is IConvertible c and not string ? Convert.ToInt32(c, CultureInfo.InvariantCulture) : null;

    private static float? GetFloat(IReadOnlyDictionary<string, object> md, string key) =>
        md.TryGetValue(key, out var v) && v is IConvertible c and not string ? Convert.ToSingle(c, CultureInfo.InvariantCulture) : null;

    private static int? JInt(JsonElement e, string key) =>
        e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : null;

    private static float? JFloat(JsonElement e, string key) =>
        e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetSingle() : null;
}
