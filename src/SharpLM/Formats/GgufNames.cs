namespace SharpLM.Formats;

/// <summary>
/// GGUF metadata keys, as llama.cpp's src/llama-arch.cpp (LLM_KV_NAMES) spells them. Per-architecture keys take the
/// architecture name ("llama", "qwen2"): <c>GgufKeys.BlockCount("llama")</c> = "llama.block_count".
/// </summary>
internal static class GgufKeys
{
    public const string Architecture = "general.architecture";
    public const string Name = "general.name";
    public const string Alignment = "general.alignment";
    public const string FileType = "general.file_type";
    public const string QuantizationVersion = "general.quantization_version";

    public static string ContextLength(string arch) => arch + ".context_length";
    public static string EmbeddingLength(string arch) => arch + ".embedding_length";
    public static string BlockCount(string arch) => arch + ".block_count";
    public static string FeedForwardLength(string arch) => arch + ".feed_forward_length";
    public static string HeadCount(string arch) => arch + ".attention.head_count";
    public static string HeadCountKv(string arch) => arch + ".attention.head_count_kv";
    public static string KeyLength(string arch) => arch + ".attention.key_length";
    public static string ValueLength(string arch) => arch + ".attention.value_length";
    public static string RmsEpsilon(string arch) => arch + ".attention.layer_norm_rms_epsilon";
    public static string LayerNormEpsilon(string arch) => arch + ".attention.layer_norm_epsilon";
    public static string RopeFreqBase(string arch) => arch + ".rope.freq_base";
    public static string RopeDimensionCount(string arch) => arch + ".rope.dimension_count";
    public static string RopeScalingType(string arch) => arch + ".rope.scaling.type";
    public static string RopeScalingFactor(string arch) => arch + ".rope.scaling.factor";
    public static string RopeScalingOriginalContext(string arch) => arch + ".rope.scaling.original_context_length";
    public static string VocabSize(string arch) => arch + ".vocab_size";

    public const string TokenizerModel = "tokenizer.ggml.model";
    public const string TokenizerPre = "tokenizer.ggml.pre";
    public const string Tokens = "tokenizer.ggml.tokens";
    public const string Scores = "tokenizer.ggml.scores";
    public const string TokenType = "tokenizer.ggml.token_type";
    public const string Merges = "tokenizer.ggml.merges";
    public const string BosId = "tokenizer.ggml.bos_token_id";
    public const string EosId = "tokenizer.ggml.eos_token_id";
    public const string UnkId = "tokenizer.ggml.unknown_token_id";
    public const string PadId = "tokenizer.ggml.padding_token_id";
    public const string SepId = "tokenizer.ggml.seperator_token_id"; // sic: llama.cpp's spelling
    public const string EotId = "tokenizer.ggml.eot_token_id";
    public const string AddBos = "tokenizer.ggml.add_bos_token";
    public const string AddEos = "tokenizer.ggml.add_eos_token";
    public const string AddSpacePrefix = "tokenizer.ggml.add_space_prefix";
    public const string ChatTemplate = "tokenizer.chat_template";
}

/// <summary>llama.cpp token types (tokenizer.ggml.token_type values, llama_token_type).</summary>
internal enum GgufTokenType
{
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>One tensor of an architecture: its GGUF name, its Hugging Face name ("{N}" = layer index), whether it
/// is per layer, and whether a model may lack it (biases of llama, output.weight when embeddings are tied).</summary>
internal sealed record TensorName(string Gguf, string Hf, bool PerLayer, bool Optional = false)
{
    public string GgufFor(int layer) => Gguf.Replace("{N}", layer.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
    public string HfFor(int layer) => Hf.Replace("{N}", layer.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
}

/// <summary>
/// HF &lt;-&gt; GGUF tensor names per architecture (llama.cpp src/llama-arch.cpp LLM_TENSOR_NAMES and
/// gguf-py tensor_mapping.py). Mistral uses the llama table; qwen2 adds q/k/v biases.
/// </summary>
internal static class TensorNames
{
    private static readonly TensorName[] Common =
    [
        new("token_embd.weight", "model.embed_tokens.weight", false),
        new("output_norm.weight", "model.norm.weight", false),
        new("output.weight", "lm_head.weight", false, Optional: true),
        new("blk.{N}.attn_norm.weight", "model.layers.{N}.input_layernorm.weight", true),
        new("blk.{N}.attn_q.weight", "model.layers.{N}.self_attn.q_proj.weight", true),
        new("blk.{N}.attn_k.weight", "model.layers.{N}.self_attn.k_proj.weight", true),
        new("blk.{N}.attn_v.weight", "model.layers.{N}.self_attn.v_proj.weight", true),
        new("blk.{N}.attn_output.weight", "model.layers.{N}.self_attn.o_proj.weight", true),
        new("blk.{N}.ffn_norm.weight", "model.layers.{N}.post_attention_layernorm.weight", true),
        new("blk.{N}.ffn_gate.weight", "model.layers.{N}.mlp.gate_proj.weight", true),
        new("blk.{N}.ffn_up.weight", "model.layers.{N}.mlp.up_proj.weight", true),
        new("blk.{N}.ffn_down.weight", "model.layers.{N}.mlp.down_proj.weight", true),
    ];

    private static readonly TensorName[] Biases =
    [
        new("blk.{N}.attn_q.bias", "model.layers.{N}.self_attn.q_proj.bias", true, Optional: true),
        new("blk.{N}.attn_k.bias", "model.layers.{N}.self_attn.k_proj.bias", true, Optional: true),
        new("blk.{N}.attn_v.bias", "model.layers.{N}.self_attn.v_proj.bias", true, Optional: true),
        new("blk.{N}.attn_output.bias", "model.layers.{N}.self_attn.o_proj.bias", true, Optional: true),
    ];

    /// <summary>llama / mistral (biases optional: attention_bias=true checkpoints have them).</summary>
    public static IReadOnlyList<TensorName> Llama { get; } = [.. Common, .. Biases];

    /// <summary>qwen2 (q/k/v biases present in every checkpoint).</summary>
    public static IReadOnlyList<TensorName> Qwen2 { get; } =
        [.. Common, .. Biases.Take(3).Select(b => b with { Optional = false }), Biases[3]];

    /// <summary>The table for a GGUF architecture name ("llama", "mistral", "qwen2"), or null.</summary>
    public static IReadOnlyList<TensorName>? For(string ggufArchitecture) => ggufArchitecture switch
    {
        "llama" or "mistral" => Llama,
        "qwen2" => Qwen2,
        _ => null,
    };

    /// <summary>The GGUF name of an HF tensor name, or null if the table has none.</summary>
    public static string? HfToGguf(IReadOnlyList<TensorName> table, string hfName) => Map(table, hfName, fromHf: true);

    /// <summary>The HF name of a GGUF tensor name, or null if the table has none.</summary>
    public static string? GgufToHf(IReadOnlyList<TensorName> table, string ggufName) => Map(table, ggufName, fromHf: false);

    private static string? Map(IReadOnlyList<TensorName> table, string name, bool fromHf)
    {
        foreach (var t in table)
        {
            string from = fromHf ? t.Hf : t.Gguf, to = fromHf ? t.Gguf : t.Hf;
            if (!t.PerLayer)
            {
                if (name == from) return to;
                continue;
            }
            int at = from.IndexOf("{N}", StringComparison.Ordinal);
            string prefix = from[..at], suffix = from[(at + 3)..];
            if (name.Length <= prefix.Length + suffix.Length || !name.StartsWith(prefix, StringComparison.Ordinal) || !name.EndsWith(suffix, StringComparison.Ordinal)) continue;
            var mid = name.AsSpan(prefix.Length, name.Length - prefix.Length - suffix.Length);
            if (!int.TryParse(mid, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int layer)) continue;
            return to.Replace("{N}", layer.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        }
        return null;
    }
}
