namespace SharpLM.Formats.Gguf;

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
    public static string RopeScalingAttnFactor(string arch) => arch + ".rope.scaling.attn_factor";
    public static string RopeFreqBaseSwa(string arch) => arch + ".rope.freq_base_swa";
    public static string SlidingWindow(string arch) => arch + ".attention.sliding_window";
    public static string AttnLogitSoftcapping(string arch) => arch + ".attn_logit_softcapping";
    public static string FinalLogitSoftcapping(string arch) => arch + ".final_logit_softcapping";
    public static string ExpertCount(string arch) => arch + ".expert_count";
    public static string ExpertUsedCount(string arch) => arch + ".expert_used_count";
    public static string ExpertFeedForwardLength(string arch) => arch + ".expert_feed_forward_length";
    public static string ExpertSharedFeedForwardLength(string arch) => arch + ".expert_shared_feed_forward_length";

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
    public const string EomId = "tokenizer.ggml.eom_token_id";
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
