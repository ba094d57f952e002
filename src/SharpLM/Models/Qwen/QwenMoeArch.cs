using System.Text.Json.Nodes;
using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.HuggingFace;
using static SharpLM.Models.TensorDecl;

namespace SharpLM.Models.Qwen;

/// <summary>
/// Qwen2-MoE and Qwen3-MoE (transformers' Qwen2MoeForCausalLM / Qwen3MoeForCausalLM, llama.cpp's QWEN2MOE / QWEN3MOE):
/// Qwen2 / Qwen3 attention with every MLP a mixture of experts: a router picks the top-k of X experts per token (softmax
/// weights, renormalised for Qwen3), each a SwiGLU of width FE; Qwen2-MoE adds a shared expert of width FS whose output is
/// gated by sigmoid(h . w_gate). Hugging Face stores each expert separately ({E}); GGUF stacks them (X, FE, C).
/// </summary>
internal static class QwenMoeArch
{
    private static readonly Func<ModelConfig, TensorNeed> Shared = When(c => c.SharedExpertFfnWidth > 0);

    public static readonly TensorDecl[] Tensors =
    [
        .. Llama.LlamaArch.Tensors.Where(d => d.Role is "token_embd" or "output_norm" or "output" or "attn_norm" or "attn_q" or "attn_k" or "attn_v"
                                              or "attn_output" or "attn_q.bias" or "attn_k.bias" or "attn_v.bias" or "attn_q_norm" or "attn_k_norm" or "ffn_norm"),
        new("ffn_gate_inp", "blk.{N}.ffn_gate_inp.weight", "model.layers.{N}.mlp.gate.weight", "X, C", "mlp.router", Always),
        new("ffn_gate_exps", "blk.{N}.ffn_gate_exps.weight", "model.layers.{N}.mlp.experts.{E}.gate_proj.weight", "X, FE, C", "mlp.gate.weight", Always),
        new("ffn_up_exps", "blk.{N}.ffn_up_exps.weight", "model.layers.{N}.mlp.experts.{E}.up_proj.weight", "X, FE, C", "mlp.up.weight", Always),
        new("ffn_down_exps", "blk.{N}.ffn_down_exps.weight", "model.layers.{N}.mlp.experts.{E}.down_proj.weight", "X, C, FE", "mlp.down.weight", Always),
        new("ffn_gate_inp_shexp", "blk.{N}.ffn_gate_inp_shexp.weight", "model.layers.{N}.mlp.shared_expert_gate.weight", "1, C", "mlp.shared.router", Shared),
        new("ffn_gate_shexp", "blk.{N}.ffn_gate_shexp.weight", "model.layers.{N}.mlp.shared_expert.gate_proj.weight", "FS, C", "mlp.shared.gate.weight", Shared),
        new("ffn_up_shexp", "blk.{N}.ffn_up_shexp.weight", "model.layers.{N}.mlp.shared_expert.up_proj.weight", "FS, C", "mlp.shared.up.weight", Shared),
        new("ffn_down_shexp", "blk.{N}.ffn_down_shexp.weight", "model.layers.{N}.mlp.shared_expert.down_proj.weight", "C, FS", "mlp.shared.down.weight", Shared),
    ];

    public static Architecture Create(string name, string modelType, string[] classes) =>
        new(name, ArchFamily.Llama, name, [modelType], classes, Tensors, FromHf, FromGguf, ToGguf, ToHf);

    /// <summary>transformers' Qwen2MoeConfig / Qwen3MoeConfig: 60 / 128 experts, 4 / 8 per token.</summary>
    private static ModelConfig FromHf(JsonReader r, string arch)
    {
        bool q3 = arch == "qwen3moe";
        var c = RotaryHf.Read(r, arch, new RotaryHf.Defaults(Context: q3 ? 32768 : 8192, Theta: 10000f));
        int experts = r.OptionalSize("num_experts") ?? (q3 ? 128 : 60);
        string? why = c.Activation != "silu" ? $"hidden_act '{r.String("hidden_act")}' is not supported for {arch} (only silu)" : null;
        if ((r.OptionalSize("decoder_sparse_step") ?? 1) != 1 || r.Root.TryGetProperty("mlp_only_layers", out var dense) && dense.GetArrayLength() > 0)
            why ??= "dense MLP layers among the expert layers (decoder_sparse_step > 1 or mlp_only_layers) are not supported";
        return c with
        {
            QkvBias = !q3 || (r.Bool("attention_bias") ?? false),
            QkNorm = q3,
            Experts = experts,
            ExpertsPerToken = r.OptionalSize("num_experts_per_tok") ?? (q3 ? 8 : 4),
            ExpertFfnWidth = r.OptionalSize("moe_intermediate_size") ?? (q3 ? 768 : 1408),
            SharedExpertFfnWidth = q3 ? 0 : r.OptionalSize("shared_expert_intermediate_size") ?? 5632,
            // llama.cpp renormalises for Qwen3-MoE and not for Qwen2-MoE whatever norm_topk_prob says; the released
            // checkpoints agree with it
            ExpertWeightsNorm = r.Bool("norm_topk_prob") ?? q3,
            Unsupported = c.Unsupported ?? why,
        };
    }

    private static ModelConfig FromGguf(GgufFile g, string arch)
    {
        string a = g.Architecture;
        return Llama.LlamaArch.FromGguf(g, arch) with
        {
            ExpertFfnWidth = GgufMeta.Int(g, GgufKeys.ExpertFeedForwardLength(a)) ?? 0,
            SharedExpertFfnWidth = GgufMeta.Int(g, GgufKeys.ExpertSharedFeedForwardLength(a)) ?? 0,
            ExpertWeightsNorm = arch == "qwen3moe", // llama.cpp's build_moe_ffn norm_w for QWEN3MOE / QWEN2MOE
        };
    }

    private static void ToGguf(ModelConfig c, GgufWriter w)
    {
        string a = c.Arch.GgufName;
        RotaryGguf.Write(c, w);
        w.Set(GgufKeys.ExpertCount(a), (uint)c.Experts)
         .Set(GgufKeys.ExpertUsedCount(a), (uint)c.ExpertsPerToken)
         .Set(GgufKeys.ExpertFeedForwardLength(a), (uint)c.Dim("FE"));
        if (c.SharedExpertFfnWidth > 0) w.Set(GgufKeys.ExpertSharedFeedForwardLength(a), (uint)c.SharedExpertFfnWidth);
    }

    private static JsonObject ToHf(ModelConfig c)
    {
        var o = RotaryHf.Write(c);
        o["num_experts"] = c.Experts;
        o["num_experts_per_tok"] = c.ExpertsPerToken;
        o["moe_intermediate_size"] = c.Dim("FE");
        o["norm_topk_prob"] = c.ExpertWeightsNorm;
        if (c.SharedExpertFfnWidth > 0) o["shared_expert_intermediate_size"] = c.SharedExpertFfnWidth;
        return o;
    }
}
