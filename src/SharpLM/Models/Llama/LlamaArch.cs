using System.Text.Json.Nodes;
using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.HuggingFace;
using static SharpLM.Models.TensorDecl;

namespace SharpLM.Models.Llama;

/// <summary>
/// The LLaMA family (LLaMA 1/2/3, Mistral, Qwen2, Qwen3, Mixtral, TinyLlama): its tensor table and its hyper-parameters
/// as config.json and GGUF state them. Pre-norm blocks with RMSNorm, rotary positions, grouped-query attention and a
/// SwiGLU MLP (<see cref="Decoder"/> runs them).
/// </summary>
internal static class LlamaArch
{
    private static readonly Func<ModelConfig, TensorNeed> Dense = When(c => c.Experts == 0);
    private static readonly Func<ModelConfig, TensorNeed> Moe = When(c => c.Experts > 0);

    /// <summary>llama.cpp LLM_ARCH_LLAMA / QWEN2 / QWEN3 names against transformers' LlamaForCausalLM names.</summary>
    public static readonly TensorDecl[] Tensors =
    [
        new("token_embd", "token_embd.weight", "model.embed_tokens.weight", "V, C", "embeddings.token", Always),
        new("output_norm", "output_norm.weight", "model.norm.weight", "C", "norms.final", Always),
        new("output", "output.weight", "lm_head.weight", "V, C", "output_head", c => c.TiedEmbeddings ? TensorNeed.Unused : TensorNeed.Required),
        new("rope_freqs", "rope_freqs.weight", "", "R/2", "rope", _ => TensorNeed.Optional) { NotAParameter = true },
        new("attn_norm", "blk.{N}.attn_norm.weight", "model.layers.{N}.input_layernorm.weight", "C", "norms.layer", Always),
        new("attn_q", "blk.{N}.attn_q.weight", "model.layers.{N}.self_attn.q_proj.weight", "NH*HS, C", "attention.q.weight", Always),
        new("attn_k", "blk.{N}.attn_k.weight", "model.layers.{N}.self_attn.k_proj.weight", "KVH*HS, C", "attention.k.weight", Always),
        new("attn_v", "blk.{N}.attn_v.weight", "model.layers.{N}.self_attn.v_proj.weight", "KVH*HS, C", "attention.v.weight", Always),
        new("attn_output", "blk.{N}.attn_output.weight", "model.layers.{N}.self_attn.o_proj.weight", "C, NH*HS", "attention.o.weight", Always),
        new("attn_q.bias", "blk.{N}.attn_q.bias", "model.layers.{N}.self_attn.q_proj.bias", "NH*HS", "attention.q.bias", When(c => c.QkvBias)),
        new("attn_k.bias", "blk.{N}.attn_k.bias", "model.layers.{N}.self_attn.k_proj.bias", "KVH*HS", "attention.k.bias", When(c => c.QkvBias)),
        new("attn_v.bias", "blk.{N}.attn_v.bias", "model.layers.{N}.self_attn.v_proj.bias", "KVH*HS", "attention.v.bias", When(c => c.QkvBias)),
        new("attn_output.bias", "blk.{N}.attn_output.bias", "model.layers.{N}.self_attn.o_proj.bias", "C", "attention.o.bias", When(c => c.OutputBias)),
        new("attn_q_norm", "blk.{N}.attn_q_norm.weight", "model.layers.{N}.self_attn.q_norm.weight", "HS", "norms.qk", When(c => c.QkNorm)),
        new("attn_k_norm", "blk.{N}.attn_k_norm.weight", "model.layers.{N}.self_attn.k_norm.weight", "HS", "norms.qk", When(c => c.QkNorm)),
        new("ffn_norm", "blk.{N}.ffn_norm.weight", "model.layers.{N}.post_attention_layernorm.weight", "C", "norms.layer", Always),
        new("ffn_gate", "blk.{N}.ffn_gate.weight", "model.layers.{N}.mlp.gate_proj.weight", "F, C", "mlp.gate.weight", Dense),
        new("ffn_up", "blk.{N}.ffn_up.weight", "model.layers.{N}.mlp.up_proj.weight", "F, C", "mlp.up.weight", Dense),
        new("ffn_down", "blk.{N}.ffn_down.weight", "model.layers.{N}.mlp.down_proj.weight", "C, F", "mlp.down.weight", Dense),
        new("ffn_gate.bias", "blk.{N}.ffn_gate.bias", "model.layers.{N}.mlp.gate_proj.bias", "F", "mlp.gate.bias", When(c => c.MlpBias && c.Experts == 0)),
        new("ffn_up.bias", "blk.{N}.ffn_up.bias", "model.layers.{N}.mlp.up_proj.bias", "F", "mlp.up.bias", When(c => c.MlpBias && c.Experts == 0)),
        new("ffn_down.bias", "blk.{N}.ffn_down.bias", "model.layers.{N}.mlp.down_proj.bias", "C", "mlp.down.bias", When(c => c.MlpBias && c.Experts == 0)),
        // Mixtral: transformers stores each expert separately (block_sparse_moe.experts.E.w1/w3/w2); llama.cpp merges them.
        new("ffn_gate_inp", "blk.{N}.ffn_gate_inp.weight", "model.layers.{N}.block_sparse_moe.gate.weight", "X, C", "mlp.router", Moe),
        new("ffn_gate_exps", "blk.{N}.ffn_gate_exps.weight", "model.layers.{N}.block_sparse_moe.experts.*.w1.weight", "X, F, C", "mlp.gate.weight", Moe),
        new("ffn_up_exps", "blk.{N}.ffn_up_exps.weight", "model.layers.{N}.block_sparse_moe.experts.*.w3.weight", "X, F, C", "mlp.up.weight", Moe),
        new("ffn_down_exps", "blk.{N}.ffn_down_exps.weight", "model.layers.{N}.block_sparse_moe.experts.*.w2.weight", "X, C, F", "mlp.down.weight", Moe),
    ];

    public static Architecture Create(string name, string ggufName, string[] modelTypes, string[] classes, string? notRunnable = null) =>
        new(name, ArchFamily.Llama, ggufName, modelTypes, classes, Tensors, FromHf, FromGguf, ToGguf, ToHf, notRunnable);

    /// <summary>transformers' defaults where a key is absent (LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config, MixtralConfig).</summary>
    private static (int Context, float Theta, int Experts) Defaults(string arch) => arch switch
    {
        "mistral" => (131072, 10000f, 0),
        "qwen2" or "qwen3" => (32768, 10000f, 0),
        "mixtral" => (131072, 1e6f, 8),
        _ => (2048, 10000f, 0),
    };

    private static ModelConfig FromHf(JsonReader r, string arch)
    {
        var d = Defaults(arch);
        int width = r.Size("hidden_size"), heads = r.Size("num_attention_heads");
        if (width <= 0 || heads <= 0) r.Fail("hidden_size", $"hidden_size {width} and num_attention_heads {heads} must be positive");
        int? headDim = r.OptionalSize("head_dim");
        if (headDim is null && width % heads != 0) r.Fail("hidden_size", $"{width} is not a multiple of num_attention_heads {heads}, and head_dim is not given");
        int hs = headDim ?? width / heads;
        int kv = r.OptionalSize("num_key_value_heads") ?? heads;
        if (kv <= 0 || heads % kv != 0) r.Fail("num_attention_heads", $"{heads} is not a multiple of 'num_key_value_heads' {kv}");
        string? unsupported = null;
        var scaling = RopeScalingType.None;
        float factor = 1f, lo = 1f, hi = 4f;
        int orig = 8192;
        if (r.Object("rope_scaling") is { } rs)
        {
            string type = rs.String("rope_type") ?? rs.String("type") ?? "default";
            factor = rs.Float("factor") ?? 1f;
            scaling = type switch
            {
                "llama3" => RopeScalingType.Llama3,
                "linear" => RopeScalingType.Linear,
                "default" => RopeScalingType.None,
                // calc sizes such models; the engine refuses them when it binds the weights
                _ => (RopeScalingType)(-1),
            };
            lo = rs.Float("low_freq_factor") ?? 1f;
            hi = rs.Float("high_freq_factor") ?? 4f;
            orig = rs.Int("original_max_position_embeddings") ?? 8192;
            if (scaling == (RopeScalingType)(-1)) unsupported = $"rope_scaling type '{type}' is not supported (supported: llama3, linear)";
        }
        bool attnBias = r.Bool("attention_bias") ?? false;
        int experts = r.OptionalSize("num_local_experts") ?? d.Experts;
        string act = r.String("hidden_act") ?? "silu";
        if (act is not ("silu" or "swish")) unsupported ??= $"hidden_act '{act}' is not supported for {arch} (only silu)";
        bool slidingOn = arch != "qwen2" && arch != "qwen3" || (r.Bool("use_sliding_window") ?? false);
        return new ModelConfig
        {
            Architecture = arch,
            Vocab = r.Size("vocab_size"),
            Width = width,
            Layers = r.Size("num_hidden_layers"),
            Heads = heads,
            KvHeads = kv,
            HeadSize = hs,
            FfnWidth = r.Size("intermediate_size"),
            Context = r.OptionalSize("max_position_embeddings") ?? d.Context,
            EmbeddingWidth = width,
            LayerGroups = r.Size("num_hidden_layers"),
            NormEps = r.Float("rms_norm_eps") ?? 1e-6f,
            Activation = "silu",
            RopeTheta = r.Float("rope_theta") ?? d.Theta,
            RopeDim = hs,
            RopeNeox = true, // Hugging Face checkpoints are not permuted: rotate-half pairs
            RopeScaling = scaling == (RopeScalingType)(-1) ? RopeScalingType.None : scaling,
            RopeScalingFactor = factor,
            RopeLowFreqFactor = lo,
            RopeHighFreqFactor = hi,
            RopeOriginalContext = orig,
            QkvBias = arch == "qwen2" || attnBias,
            OutputBias = arch != "qwen2" && attnBias,
            MlpBias = r.Bool("mlp_bias") ?? false,
            QkNorm = arch == "qwen3",
            TiedEmbeddings = r.Bool("tie_word_embeddings") ?? false,
            SlidingWindow = slidingOn ? r.Int("sliding_window") : null,
            Experts = experts,
            ExpertsPerToken = experts > 0 ? r.OptionalSize("num_experts_per_tok") ?? 2 : 0,
            BosTokenId = r.Int("bos_token_id"),
            EosTokenIds = r.IntOrList("eos_token_id"),
            PadTokenId = r.Int("pad_token_id"),
            Unsupported = unsupported,
        };
    }

    private static ModelConfig FromGguf(GgufFile g, string arch)
    {
        string a = g.Architecture;
        int width = GgufMeta.Required(g, GgufKeys.EmbeddingLength(a)), heads = GgufMeta.Required(g, GgufKeys.HeadCount(a));
        int hs = GgufMeta.Int(g, GgufKeys.KeyLength(a)) ?? (heads > 0 ? width / heads : 0);
        int layers = GgufMeta.Required(g, GgufKeys.BlockCount(a));
        var scalingType = g.GetStringOrNull(GgufKeys.RopeScalingType(a));
        float factor = GgufMeta.Float(g, GgufKeys.RopeScalingFactor(a)) ?? 1f;
        int experts = GgufMeta.Int(g, a + ".expert_count") ?? 0;
        return new ModelConfig
        {
            Architecture = arch,
            Vocab = GgufMeta.Vocab(g, a),
            Width = width,
            Layers = layers,
            Heads = heads,
            KvHeads = GgufMeta.Int(g, GgufKeys.HeadCountKv(a)) ?? heads,
            HeadSize = hs,
            FfnWidth = GgufMeta.Required(g, GgufKeys.FeedForwardLength(a)),
            Context = GgufMeta.Required(g, GgufKeys.ContextLength(a)),
            EmbeddingWidth = width,
            LayerGroups = layers,
            NormEps = GgufMeta.Float(g, GgufKeys.RmsEpsilon(a)) ?? 1e-5f,
            Activation = "silu",
            RopeTheta = GgufMeta.Float(g, GgufKeys.RopeFreqBase(a)) ?? 10000f,
            RopeDim = GgufMeta.Int(g, GgufKeys.RopeDimensionCount(a)) ?? hs,
            RopeNeox = a != "llama", // llama.cpp: LLAMA_ROPE_TYPE_NORM for llama, NEOX for qwen2/qwen3
            RopeScaling = scalingType == "linear" && factor != 1f ? RopeScalingType.Linear : RopeScalingType.None,
            RopeScalingFactor = factor,
            QkvBias = g.Tensors.ContainsKey("blk.0.attn_q.bias"),
            OutputBias = g.Tensors.ContainsKey("blk.0.attn_output.bias"),
            MlpBias = g.Tensors.ContainsKey("blk.0.ffn_up.bias"),
            QkNorm = g.Tensors.ContainsKey("blk.0.attn_q_norm.weight"),
            TiedEmbeddings = !g.Tensors.ContainsKey("output.weight"),
            SlidingWindow = GgufMeta.Int(g, a + ".attention.sliding_window"),
            Experts = experts,
            ExpertsPerToken = experts > 0 ? GgufMeta.Int(g, a + ".expert_used_count") ?? 2 : 0,
            BosTokenId = GgufMeta.Int(g, GgufKeys.BosId),
            EosTokenIds = GgufMeta.EosIds(g),
        };
    }

    /// <summary>The hyper-parameter keys llama.cpp reads (as convert_hf_to_gguf.py writes them).</summary>
    private static void ToGguf(ModelConfig c, GgufWriter w)
    {
        string a = c.Arch.GgufName;
        w.Set(GgufKeys.Architecture, a)
         .Set(GgufKeys.ContextLength(a), (uint)c.Context)
         .Set(GgufKeys.EmbeddingLength(a), (uint)c.Width)
         .Set(GgufKeys.BlockCount(a), (uint)c.Layers)
         .Set(GgufKeys.FeedForwardLength(a), (uint)c.FfnWidth)
         .Set(GgufKeys.HeadCount(a), (uint)c.Heads)
         .Set(GgufKeys.HeadCountKv(a), (uint)c.KvHeads)
         .Set(GgufKeys.RopeFreqBase(a), c.RopeTheta)
         .Set(GgufKeys.RmsEpsilon(a), c.NormEps)
         .Set(GgufKeys.VocabSize(a), (uint)c.Vocab)
         .Set(GgufKeys.RopeDimensionCount(a), (uint)c.RopeDim);
        if (c.HeadSize != c.Width / c.Heads)
        {
            w.Set(GgufKeys.KeyLength(a), (uint)c.HeadSize);
            w.Set(GgufKeys.ValueLength(a), (uint)c.HeadSize);
        }
        if (c.RopeScaling == RopeScalingType.Linear)
        {
            w.Set(GgufKeys.RopeScalingType(a), "linear");
            w.Set(GgufKeys.RopeScalingFactor(a), c.RopeScalingFactor);
        }
        if (c.SlidingWindow is int sw) w.Set(a + ".attention.sliding_window", (uint)sw);
    }

    /// <summary>A config.json transformers loads as LlamaForCausalLM (or the architecture's own class).</summary>
    private static JsonObject ToHf(ModelConfig c)
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(c.Arch.HfClasses[0]),
            ["model_type"] = c.Arch.HfModelTypes[0],
            ["vocab_size"] = c.Vocab,
            ["hidden_size"] = c.Width,
            ["intermediate_size"] = c.FfnWidth,
            ["num_hidden_layers"] = c.Layers,
            ["num_attention_heads"] = c.Heads,
            ["num_key_value_heads"] = c.KvHeads,
            ["head_dim"] = c.HeadSize,
            ["max_position_embeddings"] = c.Context,
            ["rms_norm_eps"] = c.NormEps,
            ["rope_theta"] = c.RopeTheta,
            ["hidden_act"] = "silu",
            ["tie_word_embeddings"] = c.TiedEmbeddings,
            ["attention_bias"] = c.QkvBias,
            ["mlp_bias"] = c.MlpBias,
            ["torch_dtype"] = "float32",
        };
        return o;
    }
}
