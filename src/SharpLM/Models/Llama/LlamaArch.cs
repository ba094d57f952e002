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
    /// <summary>k and v have their own projections unless the one query projection is shared (<see cref="ModelConfig.SharedQkv"/>).</summary>
    private static readonly Func<ModelConfig, TensorNeed> SeparateKv = When(c => !c.SharedQkv);

    /// <summary>llama.cpp LLM_ARCH_LLAMA / QWEN2 / QWEN3 names against transformers' LlamaForCausalLM names.</summary>
    public static readonly TensorDecl[] Tensors =
    [
        new("token_embd", "token_embd.weight", "model.embed_tokens.weight", "V, C", "embeddings.token", Always),
        new("output_norm", "output_norm.weight", "model.norm.weight", "C", "norms.final", Always),
        new("output", "output.weight", "lm_head.weight", "V, C", "output_head", c => c.TiedEmbeddings ? TensorNeed.Unused : TensorNeed.Required),
        new("rope_freqs", "rope_freqs.weight", "", "R/2", "rope", _ => TensorNeed.Optional) { NotAParameter = true },
        new("attn_norm", "blk.{N}.attn_norm.weight", "model.layers.{N}.input_layernorm.weight", "C", "norms.layer", Always),
        new("attn_q", "blk.{N}.attn_q.weight", "model.layers.{N}.self_attn.q_proj.weight", "NH*HS, C", "attention.q.weight", Always),
        new("attn_k", "blk.{N}.attn_k.weight", "model.layers.{N}.self_attn.k_proj.weight", "KVH*HS, C", "attention.k.weight", SeparateKv),
        new("attn_v", "blk.{N}.attn_v.weight", "model.layers.{N}.self_attn.v_proj.weight", "KVH*HS, C", "attention.v.weight", SeparateKv),
        new("attn_output", "blk.{N}.attn_output.weight", "model.layers.{N}.self_attn.o_proj.weight", "C, NH*HS", "attention.o.weight", Always),
        new("attn_q.bias", "blk.{N}.attn_q.bias", "model.layers.{N}.self_attn.q_proj.bias", "NH*HS", "attention.q.bias", When(c => c.QkvBias)),
        new("attn_k.bias", "blk.{N}.attn_k.bias", "model.layers.{N}.self_attn.k_proj.bias", "KVH*HS", "attention.k.bias", When(c => c.QkvBias && !c.SharedQkv)),
        new("attn_v.bias", "blk.{N}.attn_v.bias", "model.layers.{N}.self_attn.v_proj.bias", "KVH*HS", "attention.v.bias", When(c => c.QkvBias && !c.SharedQkv)),
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
        // Mixtral: transformers stores each expert separately ({E}: block_sparse_moe.experts.E.w1/w3/w2); llama.cpp stacks them.
        new("ffn_gate_inp", "blk.{N}.ffn_gate_inp.weight", "model.layers.{N}.block_sparse_moe.gate.weight", "X, C", "mlp.router", Moe),
        new("ffn_gate_exps", "blk.{N}.ffn_gate_exps.weight", "model.layers.{N}.block_sparse_moe.experts.{E}.w1.weight", "X, FE, C", "mlp.gate.weight", Moe),
        new("ffn_up_exps", "blk.{N}.ffn_up_exps.weight", "model.layers.{N}.block_sparse_moe.experts.{E}.w3.weight", "X, FE, C", "mlp.up.weight", Moe),
        new("ffn_down_exps", "blk.{N}.ffn_down_exps.weight", "model.layers.{N}.block_sparse_moe.experts.{E}.w2.weight", "X, C, FE", "mlp.down.weight", Moe),
        // a learned absolute position table instead of RoPE (ModelConfig.Positions, the lab's positions experiment)
        new("position_embd", "position_embd.weight", "model.embed_positions.weight", "P, C", "embeddings.position", When(c => c.PositionEncoding == PositionKind.Learned)),
    ];

    public static Architecture Create(string name, string ggufName, string[] modelTypes, string[] classes, string? notRunnable = null) =>
        new(name, ArchFamily.Llama, ggufName, modelTypes, classes, Tensors, FromHf, FromGguf, ToGguf, ToHf, notRunnable);

    /// <summary>The table entry for <paramref name="role"/> (other rotary families share these matrices).</summary>
    public static TensorDecl Decl(string role) => Tensors.First(t => t.Role == role);

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
        var c = RotaryHf.Read(r, arch, new RotaryHf.Defaults(d.Context, d.Theta));
        bool attnBias = r.Bool("attention_bias") ?? false;
        int experts = r.OptionalSize("num_local_experts") ?? d.Experts;
        bool slidingOn = arch != "qwen2" && arch != "qwen3" || (r.Bool("use_sliding_window") ?? false);
        return c with
        {
            QkvBias = arch == "qwen2" || attnBias,
            OutputBias = arch != "qwen2" && attnBias,
            MlpBias = r.Bool("mlp_bias") ?? false,
            QkNorm = arch == "qwen3",
            SlidingWindow = slidingOn ? r.OptionalSize("sliding_window") : null,
            Experts = experts,
            ExpertsPerToken = experts > 0 ? r.OptionalSize("num_experts_per_tok") ?? 2 : 0,
            Unsupported = c.Unsupported ?? (c.Activation != "silu" ? $"hidden_act '{r.String("hidden_act")}' is not supported for {arch} (only silu)" : null),
            Positions = PositionKindFromHf(r),
            SharedQkv = r.Bool(SharedQkvKey) ?? false,
            EmbeddingScale = r.Float(EmbeddingScaleKey) ?? 1f,
            Sparse = new Kernels.SparsePattern(r.OptionalSize(SparseWindowKey) ?? 0, r.OptionalSize(SparseStrideKey) ?? 0, r.OptionalSize(SparseGlobalKey) ?? 0),
        };
    }

    /// <summary>SharpLM's own config.json keys for a decoder trained with another position encoding, shared q/k/v
    /// projections, a scaled token embedding or sparse attention (written only then; transformers does not know these variants).</summary>
    private const string PositionKindKey = "sharplm_position_kind", SharedQkvKey = "sharplm_shared_qkv", EmbeddingScaleKey = "sharplm_embedding_scale",
        SparseWindowKey = "sharplm_sparse_window", SparseStrideKey = "sharplm_sparse_stride", SparseGlobalKey = "sharplm_sparse_global";

    private static PositionKind PositionKindFromHf(JsonReader r) => r.String(PositionKindKey) switch
    {
        null => PositionKind.Default,
        "rotary" => PositionKind.Rotary,
        "learned" => PositionKind.Learned,
        "sinusoidal" => PositionKind.Sinusoidal,
        "none" => PositionKind.None,
        var other => r.Fail<PositionKind>(PositionKindKey, $"is '{other}', expected rotary, learned, sinusoidal or none"),
    };

    /// <summary>The LLaMA family's GGUF hyper-parameters; the tensors present say which options a file uses (biases, q/k
    /// norms), as llama.cpp's loader decides.</summary>
    internal static ModelConfig FromGguf(GgufFile g, string arch)
    {
        string a = g.Architecture;
        var c = RotaryGguf.Read(g, arch);
        int experts = GgufMeta.Int(g, GgufKeys.ExpertCount(a)) ?? 0;
        return c with
        {
            QkvBias = g.Tensors.ContainsKey("blk.0.attn_q.bias"),
            OutputBias = g.Tensors.ContainsKey("blk.0.attn_output.bias"),
            MlpBias = g.Tensors.ContainsKey("blk.0.ffn_up.bias"),
            QkNorm = g.Tensors.ContainsKey("blk.0.attn_q_norm.weight"),
            SlidingWindow = GgufMeta.Int(g, GgufKeys.SlidingWindow(a)) is > 0 and int sw ? sw : null,
            Experts = experts,
            ExpertsPerToken = experts > 0 ? GgufMeta.Int(g, GgufKeys.ExpertUsedCount(a)) ?? 2 : 0,
        };
    }

    /// <summary>The hyper-parameter keys llama.cpp reads (as convert_hf_to_gguf.py writes them).</summary>
    private static void ToGguf(ModelConfig c, GgufWriter w)
    {
        // the lab's position and projection variants have SharpLM's own config.json keys only: a GGUF file would load
        // (in SharpLM and llama.cpp) as a plain rotary model and compute something else
        var variants = new List<string>();
        if (c.Positions != PositionKind.Default && c.Positions != PositionKind.Rotary) variants.Add($"{c.Positions.ToString().ToLowerInvariant()} positions");
        if (c.SharedQkv) variants.Add("shared q/k/v projections");
        if (c.EmbeddingScale != 1f) variants.Add("a scaled token embedding");
        if (!c.Sparse.IsDense) variants.Add($"sparse attention ({c.Sparse})");
        if (variants.Count > 0)
            throw new NotSupportedException($"GGUF cannot hold this {c.Architecture} model's {string.Join(", ", variants)} (llama.cpp has no such options); save it as a Hugging Face folder (config.json + safetensors) instead");
        RotaryGguf.Write(c, w);
        string a = c.Arch.GgufName;
        if (c.SlidingWindow is int sw) w.Set(GgufKeys.SlidingWindow(a), (uint)sw);
        if (c.Experts > 0) w.Set(GgufKeys.ExpertCount(a), (uint)c.Experts).Set(GgufKeys.ExpertUsedCount(a), (uint)c.ExpertsPerToken);
    }

    /// <summary>A config.json transformers loads as LlamaForCausalLM (or the architecture's own class).</summary>
    private static JsonObject ToHf(ModelConfig c)
    {
        var o = RotaryHf.Write(c);
        o["attention_bias"] = c.QkvBias;
        o["mlp_bias"] = c.MlpBias;
        if (c.Positions != PositionKind.Default) o[PositionKindKey] = c.Positions.ToString().ToLowerInvariant();
        if (c.SharedQkv) o[SharedQkvKey] = true;
        if (c.EmbeddingScale != 1f) o[EmbeddingScaleKey] = c.EmbeddingScale;
        if (c.Sparse.Window > 0) o[SparseWindowKey] = c.Sparse.Window;
        if (c.Sparse.Stride > 0) o[SparseStrideKey] = c.Sparse.Stride;
        if (c.Sparse.Global > 0) o[SparseGlobalKey] = c.Sparse.Global;
        if (c.Experts > 0)
        {
            o["num_local_experts"] = c.Experts;
            o["num_experts_per_tok"] = c.ExpertsPerToken;
        }
        if (c.SlidingWindow is int sw)
        {
            o["sliding_window"] = sw;
            if (c.Architecture is "qwen2" or "qwen3") o["use_sliding_window"] = true;
        }
        return o;
    }
}
