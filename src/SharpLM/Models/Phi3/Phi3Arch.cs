using System.Text.Json.Nodes;
using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.HuggingFace;
using static SharpLM.Models.TensorDecl;

namespace SharpLM.Models.Phi3;

/// <summary>
/// Phi-3 and Phi-4-mini (transformers' Phi3ForCausalLM, llama.cpp's LLM_ARCH_PHI3): a LLaMA block with the q/k/v
/// projections fused into one matrix (q rows, then k, then v) and the gate/up projections fused into one (gate rows
/// first), rotate-half RoPE over all or part of each head (partial_rotary_factor), and LongRoPE ("su") scaling for the
/// 128k models. llama.cpp ignores Phi-3's sliding_window (its PR 13676), and so does SharpLM, to match it.
/// </summary>
internal static class Phi3Arch
{
    public static readonly TensorDecl[] Tensors =
    [
        Llama.LlamaArch.Decl("token_embd"),
        Llama.LlamaArch.Decl("output_norm"),
        Llama.LlamaArch.Decl("output"),
        new("rope_factors_long", "rope_factors_long.weight", "", "R/2", "rope", c => c.RopeScaling == RopeScalingType.LongRope ? TensorNeed.Optional : TensorNeed.Absent) { NotAParameter = true },
        new("rope_factors_short", "rope_factors_short.weight", "", "R/2", "rope", c => c.RopeScaling == RopeScalingType.LongRope ? TensorNeed.Optional : TensorNeed.Absent) { NotAParameter = true },
        Llama.LlamaArch.Decl("attn_norm"),
        new("attn_qkv", "blk.{N}.attn_qkv.weight", "model.layers.{N}.self_attn.qkv_proj.weight", "NH*HS+2*KVH*HS, C", "attention.qkv.weight", Always),
        Llama.LlamaArch.Decl("attn_output"),
        Llama.LlamaArch.Decl("ffn_norm"),
        new("ffn_up", "blk.{N}.ffn_up.weight", "model.layers.{N}.mlp.gate_up_proj.weight", "2*F, C", "mlp.gate_up.weight", Always),
        Llama.LlamaArch.Decl("ffn_down"),
    ];

    public static Architecture Create() =>
        new("phi3", ArchFamily.Llama, "phi3", ["phi3"], ["Phi3ForCausalLM"], Tensors, FromHf, FromGguf, ToGguf, ToHf);

    /// <summary>transformers' Phi3Config defaults: context 4096, rms_norm_eps 1e-5, rope_theta 10000.</summary>
    private static ModelConfig FromHf(JsonReader r, string arch) =>
        RotaryHf.Read(r, arch, new RotaryHf.Defaults(Context: 4096, Theta: 10000f, Eps: 1e-5f));

    private static ModelConfig FromGguf(GgufFile g, string arch) => RotaryGguf.Read(g, arch);

    private static void ToGguf(ModelConfig c, GgufWriter w) => RotaryGguf.Write(c, w);

    private static JsonObject ToHf(ModelConfig c) => RotaryHf.Write(c);
}
