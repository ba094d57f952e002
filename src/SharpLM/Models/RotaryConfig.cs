using System.Text.Json.Nodes;
using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.HuggingFace;

namespace SharpLM.Models;

/// <summary>
/// The config.json keys every rotary decoder shares (LLaMA, Mistral, Qwen, Gemma, Phi-3): sizes, norm epsilon, RoPE base and
/// scaling, partial rotary, activation, tied head, special ids. Each family's reader starts from <see cref="Read"/> and adds
/// what is its own with <c>with { }</c>.
/// </summary>
internal static class RotaryHf
{
    /// <summary>transformers' defaults of a config class where a key is absent.</summary>
    public sealed record Defaults(int Context, float Theta, float Eps = 1e-6f, int? HeadDim = null, string Activation = "silu", bool Tied = false);

    public static ModelConfig Read(JsonReader r, string arch, Defaults d)
    {
        int width = r.Size("hidden_size"), heads = r.Size("num_attention_heads");
        int? headDim = r.OptionalSize("head_dim") ?? d.HeadDim;
        if (headDim is null && width % heads != 0) r.Fail("hidden_size", $"{width} is not a multiple of num_attention_heads {heads}, and head_dim is not given");
        int hs = headDim ?? width / heads;
        int kv = r.OptionalSize("num_key_value_heads") ?? heads;
        if (heads % kv != 0) r.Fail("num_attention_heads", $"{heads} is not a multiple of 'num_key_value_heads' {kv}");
        int ctx = r.OptionalSize("max_position_embeddings") ?? d.Context;
        string? unsupported = null;
        string actName = r.String("hidden_activation") ?? r.String("hidden_act") ?? d.Activation;
        string? known = ModelConfigReader.Activation(actName);
        string act = known is "silu" or "gelu_tanh" or "gelu" ? known : "silu";
        if (act != known) unsupported = $"activation '{actName}' is not supported (silu, gelu_pytorch_tanh, gelu)";

        // partial rotary (Phi-4-mini rotates 3/4 of each head)
        float partial = r.Float("partial_rotary_factor") ?? 1f;
        int ropeDim = (int)(hs * partial) & ~1;
        if (ropeDim <= 0 || ropeDim > hs) r.Fail("partial_rotary_factor", $"is {partial}, expected a fraction in (0, 1]");

        var scaling = RopeScalingType.None;
        float factor = 1f, lo = 1f, hi = 4f, attnFactor = 1f;
        int orig = r.OptionalSize("original_max_position_embeddings") ?? 8192;
        float[]? longF = null, shortF = null;
        if (r.Object("rope_scaling") is { } rs)
        {
            string type = rs.String("rope_type") ?? rs.String("type") ?? "default";
            factor = rs.Float("factor") ?? 1f;
            lo = rs.Float("low_freq_factor") ?? 1f;
            hi = rs.Float("high_freq_factor") ?? 4f;
            orig = rs.OptionalSize("original_max_position_embeddings") ?? orig;
            switch (type)
            {
                case "llama3": scaling = RopeScalingType.Llama3; break;
                case "linear": scaling = RopeScalingType.Linear; break;
                case "default": break;
                case "longrope" or "su":
                    scaling = RopeScalingType.LongRope;
                    longF = rs.FloatList("long_factor") ?? rs.Fail<float[]>("long_factor", "is missing (LongRoPE needs long_factor and short_factor)");
                    shortF = rs.FloatList("short_factor") ?? rs.Fail<float[]>("short_factor", "is missing (LongRoPE needs long_factor and short_factor)");
                    // transformers' _compute_longrope_parameters: sqrt(1 + ln(s) / ln(original)) for s = max / original > 1
                    float s = (float)ctx / orig;
                    attnFactor = rs.Float("attention_factor") ?? (s <= 1f ? 1f : MathF.Sqrt(1f + MathF.Log(s) / MathF.Log(orig)));
                    break;
                // calc sizes such models; the engine refuses them when it binds the weights
                default: unsupported ??= $"rope_scaling type '{type}' is not supported (supported: llama3, linear, longrope)"; break;
            }
        }
        int layers = r.Size("num_hidden_layers");
        return new ModelConfig
        {
            Architecture = arch,
            Vocab = r.Size("vocab_size"),
            Width = width,
            Layers = layers,
            Heads = heads,
            KvHeads = kv,
            HeadSize = hs,
            FfnWidth = r.Size("intermediate_size"),
            Context = ctx,
            EmbeddingWidth = width,
            LayerGroups = layers,
            NormEps = r.Float("rms_norm_eps") ?? d.Eps,
            Activation = act,
            RopeTheta = r.Float("rope_theta") ?? d.Theta,
            RopeDim = ropeDim,
            RopeNeox = true, // Hugging Face checkpoints are not permuted: rotate-half pairs
            RopeScaling = scaling,
            RopeScalingFactor = factor,
            RopeLowFreqFactor = lo,
            RopeHighFreqFactor = hi,
            RopeOriginalContext = orig,
            RopeLongFactors = longF,
            RopeShortFactors = shortF,
            RopeAttnFactor = attnFactor,
            TiedEmbeddings = r.Bool("tie_word_embeddings") ?? d.Tied,
            BosTokenId = r.Int("bos_token_id"),
            EosTokenIds = r.IntOrList("eos_token_id"),
            PadTokenId = r.Int("pad_token_id"),
            Unsupported = unsupported,
        };
    }

    /// <summary>The shared keys of a config.json transformers loads as the architecture's own class.</summary>
    public static JsonObject Write(ModelConfig c)
    {
        var o = ModelConfigReader.HfSizes(c, c.Arch.HfClasses[0]);
        o["num_key_value_heads"] = c.KvHeads;
        o["head_dim"] = c.HeadSize;
        o["rms_norm_eps"] = c.NormEps;
        o["rope_theta"] = c.RopeTheta;
        o["hidden_act"] = c.Activation == "gelu_tanh" ? "gelu_pytorch_tanh" : c.Activation;
        o["tie_word_embeddings"] = c.TiedEmbeddings;
        if (c.RopeDim != c.HeadSize) o["partial_rotary_factor"] = (double)c.RopeDim / c.HeadSize;
        switch (c.RopeScaling)
        {
            case RopeScalingType.Linear:
                o["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = c.RopeScalingFactor };
                break;
            case RopeScalingType.Llama3:
                o["rope_scaling"] = new JsonObject
                {
                    ["rope_type"] = "llama3", ["factor"] = c.RopeScalingFactor, ["low_freq_factor"] = c.RopeLowFreqFactor,
                    ["high_freq_factor"] = c.RopeHighFreqFactor, ["original_max_position_embeddings"] = c.RopeOriginalContext,
                };
                break;
            case RopeScalingType.LongRope:
                o["original_max_position_embeddings"] = c.RopeOriginalContext;
                o["rope_scaling"] = new JsonObject
                {
                    ["type"] = "longrope",
                    ["long_factor"] = new JsonArray([.. c.RopeLongFactors!.Select(f => (JsonNode)f)]),
                    ["short_factor"] = new JsonArray([.. c.RopeShortFactors!.Select(f => (JsonNode)f)]),
                };
                break;
        }
        return o;
    }
}

/// <summary>The GGUF keys every rotary decoder shares, as convert_hf_to_gguf.py writes them and llama.cpp reads them.</summary>
internal static class RotaryGguf
{
    /// <summary>The shared hyper-parameters of <paramref name="g"/> (key names under its general.architecture).</summary>
    public static ModelConfig Read(GgufFile g, string arch)
    {
        string a = g.Architecture;
        var c = GgufMeta.Sizes(g, arch);
        var scalingType = g.GetStringOrNull(GgufKeys.RopeScalingType(a));
        float factor = GgufMeta.Float(g, GgufKeys.RopeScalingFactor(a)) ?? 1f;
        bool longRope = g.Tensors.ContainsKey("rope_factors_long.weight") || g.Tensors.ContainsKey("rope_factors_short.weight");
        return c with
        {
            NormEps = GgufMeta.Float(g, GgufKeys.RmsEpsilon(a)) ?? 1e-5f,
            Activation = "silu",
            RopeTheta = GgufMeta.Float(g, GgufKeys.RopeFreqBase(a)) ?? 10000f,
            RopeDim = GgufMeta.Int(g, GgufKeys.RopeDimensionCount(a)) ?? c.HeadSize,
            RopeNeox = a != "llama", // llama.cpp: LLAMA_ROPE_TYPE_NORM for llama, NEOX for the others SharpLM runs
            RopeScaling = longRope ? RopeScalingType.LongRope
                : scalingType == "linear" && factor != 1f ? RopeScalingType.Linear : RopeScalingType.None,
            RopeScalingFactor = factor,
            RopeOriginalContext = GgufMeta.Int(g, GgufKeys.RopeScalingOriginalContext(a)) ?? c.Context,
            RopeAttnFactor = GgufMeta.Float(g, GgufKeys.RopeScalingAttnFactor(a)) ?? 1f,
        };
    }

    /// <summary>The shared keys llama.cpp reads (general.architecture included).</summary>
    public static void Write(ModelConfig c, GgufWriter w)
    {
        string a = c.Arch.GgufName;
        GgufMeta.WriteSizes(c, w)
         .Set(GgufKeys.HeadCountKv(a), (uint)c.KvHeads)
         .Set(GgufKeys.RopeFreqBase(a), c.RopeTheta)
         .Set(GgufKeys.RmsEpsilon(a), c.NormEps)
         .Set(GgufKeys.RopeDimensionCount(a), (uint)c.RopeDim);
        if (c.RopeScaling == RopeScalingType.Linear)
        {
            w.Set(GgufKeys.RopeScalingType(a), "linear");
            w.Set(GgufKeys.RopeScalingFactor(a), c.RopeScalingFactor);
        }
        if (c.RopeScaling == RopeScalingType.LongRope)
        {
            w.Set(GgufKeys.RopeScalingOriginalContext(a), (uint)c.RopeOriginalContext);
            w.Set(GgufKeys.RopeScalingAttnFactor(a), c.RopeAttnFactor);
        }
    }

    /// <summary>The RoPE tables a GGUF file carries as tensors for <paramref name="c"/> (convert_hf_to_gguf.py's extra
    /// tensors): LLaMA-3.1's rope_freqs, LongRoPE's rope_factors_long and rope_factors_short.</summary>
    public static IEnumerable<(string Name, float[] Data)> RopeTensors(ModelConfig c)
    {
        if (c.RopeScaling == RopeScalingType.Llama3) yield return ("rope_freqs.weight", c.Llama3RopeFactors());
        if (c.RopeScaling == RopeScalingType.LongRope)
        {
            yield return ("rope_factors_long.weight", [.. c.RopeLongFactors!]);
            yield return ("rope_factors_short.weight", [.. c.RopeShortFactors!]);
        }
    }
}
