using System.Text.Json.Nodes;
using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.HuggingFace;
using static SharpLM.Models.TensorDecl;

namespace SharpLM.Models.Gpt2;

/// <summary>
/// GPT-2: the study note's one-directional decoder. Pre-norm blocks with LayerNorm (weight and bias), learned absolute
/// positions, a fused q/k/v projection with biases, a GELU (tanh) MLP and a head tied to the token embedding
/// (<see cref="Decoder"/> runs it). SharpLM keeps every matrix as (out, in), as nn.Linear and GGUF do; Hugging Face's
/// GPT2LMHeadModel stores its Conv1D matrices transposed (<see cref="TensorDecl.HfTransposed"/>).
/// </summary>
internal static class Gpt2Arch
{
    public static readonly TensorDecl[] Tensors =
    [
        new("token_embd", "token_embd.weight", "transformer.wte.weight", "V, C", "embeddings.token", Always),
        new("position_embd", "position_embd.weight", "transformer.wpe.weight", "P, C", "embeddings.position", Always),
        new("attn_norm", "blk.{N}.attn_norm.weight", "transformer.h.{N}.ln_1.weight", "C", "norms.layer", Always),
        new("attn_norm.bias", "blk.{N}.attn_norm.bias", "transformer.h.{N}.ln_1.bias", "C", "norms.layer", Always),
        new("attn_qkv", "blk.{N}.attn_qkv.weight", "transformer.h.{N}.attn.c_attn.weight", "3*C, C", "attention.qkv.weight", Always) { HfTransposed = true },
        new("attn_qkv.bias", "blk.{N}.attn_qkv.bias", "transformer.h.{N}.attn.c_attn.bias", "3*C", "attention.qkv.bias", Always),
        new("attn_output", "blk.{N}.attn_output.weight", "transformer.h.{N}.attn.c_proj.weight", "C, C", "attention.o.weight", Always) { HfTransposed = true },
        new("attn_output.bias", "blk.{N}.attn_output.bias", "transformer.h.{N}.attn.c_proj.bias", "C", "attention.o.bias", Always),
        new("ffn_norm", "blk.{N}.ffn_norm.weight", "transformer.h.{N}.ln_2.weight", "C", "norms.layer", Always),
        new("ffn_norm.bias", "blk.{N}.ffn_norm.bias", "transformer.h.{N}.ln_2.bias", "C", "norms.layer", Always),
        new("ffn_up", "blk.{N}.ffn_up.weight", "transformer.h.{N}.mlp.c_fc.weight", "F, C", "mlp.up.weight", Always) { HfTransposed = true },
        new("ffn_up.bias", "blk.{N}.ffn_up.bias", "transformer.h.{N}.mlp.c_fc.bias", "F", "mlp.up.bias", Always),
        new("ffn_down", "blk.{N}.ffn_down.weight", "transformer.h.{N}.mlp.c_proj.weight", "C, F", "mlp.down.weight", Always) { HfTransposed = true },
        new("ffn_down.bias", "blk.{N}.ffn_down.bias", "transformer.h.{N}.mlp.c_proj.bias", "C", "mlp.down.bias", Always),
        new("output_norm", "output_norm.weight", "transformer.ln_f.weight", "C", "norms.final", Always),
        new("output_norm.bias", "output_norm.bias", "transformer.ln_f.bias", "C", "norms.final", Always),
        new("output", "output.weight", "lm_head.weight", "V, C", "output_head", c => c.TiedEmbeddings ? TensorNeed.Unused : TensorNeed.Required),
    ];

    public static Architecture Create() =>
        new("gpt2", ArchFamily.Gpt2, "gpt2", ["gpt2"], ["GPT2LMHeadModel", "GPT2Model"], Tensors, FromHf, FromGguf, ToGguf, ToHf);

    /// <summary>transformers' GPT2Config defaults: n_inner = 4 n_embd, n_positions 1024, layer_norm_epsilon 1e-5,
    /// activation gelu_new (the tanh approximation), tied head.</summary>
    private static ModelConfig FromHf(JsonReader r, string arch)
    {
        int width = r.Size("n_embd"), heads = r.Size("n_head");
        if (width <= 0 || heads <= 0 || width % heads != 0) r.Fail("n_embd", $"{width} is not a positive multiple of n_head {heads}");
        int layers = r.Size("n_layer");
        string act = r.String("activation_function") ?? "gelu_new";
        string? known = ModelConfigReader.Activation(act) is { } a and not "silu" ? a : null;
        return new ModelConfig
        {
            Architecture = arch,
            Vocab = r.OptionalSize("vocab_size") ?? 50257,
            Width = width,
            Layers = layers,
            Heads = heads,
            KvHeads = heads,
            HeadSize = width / heads,
            FfnWidth = r.OptionalSize("n_inner") ?? 4 * width,
            Context = r.OptionalSize("n_positions") ?? r.OptionalSize("n_ctx") ?? 1024,
            EmbeddingWidth = width,
            LayerGroups = layers,
            NormEps = r.Float("layer_norm_epsilon") ?? 1e-5f,
            Activation = known ?? "gelu_tanh",
            QkvBias = true,
            OutputBias = true,
            MlpBias = true,
            TiedEmbeddings = r.Bool("tie_word_embeddings") ?? true,
            BosTokenId = r.Int("bos_token_id"),
            EosTokenIds = r.IntOrList("eos_token_id"),
            Unsupported = known is null ? $"activation_function '{act}' is not supported" : null,
        };
    }

    private static ModelConfig FromGguf(GgufFile g, string arch)
    {
        var c = GgufMeta.Sizes(g, arch, context: GgufMeta.TableRows(g, "position_embd.weight"), ffn: 4 * GgufMeta.Required(g, GgufKeys.EmbeddingLength("gpt2")));
        return c with
        {
            KvHeads = c.Heads,
            NormEps = GgufMeta.Float(g, GgufKeys.LayerNormEpsilon("gpt2")) ?? 1e-5f,
            Activation = "gelu_tanh",
            QkvBias = true,
            OutputBias = true,
            MlpBias = true,
        };
    }

    private static void ToGguf(ModelConfig c, GgufWriter w) =>
        GgufMeta.WriteSizes(c, w).Set(GgufKeys.LayerNormEpsilon("gpt2"), c.NormEps);

    private static JsonObject ToHf(ModelConfig c) => new()
    {
        ["architectures"] = new JsonArray("GPT2LMHeadModel"),
        ["model_type"] = "gpt2",
        ["vocab_size"] = c.Vocab,
        ["n_embd"] = c.Width,
        ["n_inner"] = c.FfnWidth,
        ["n_layer"] = c.Layers,
        ["n_head"] = c.Heads,
        ["n_positions"] = c.Context,
        ["n_ctx"] = c.Context,
        ["layer_norm_epsilon"] = c.NormEps,
        ["activation_function"] = c.Activation == "gelu_tanh" ? "gelu_new" : c.Activation,
        ["tie_word_embeddings"] = c.TiedEmbeddings,
        ["torch_dtype"] = "float32",
    };
}
