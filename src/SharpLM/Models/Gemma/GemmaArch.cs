using System.Text.Json.Nodes;
using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.HuggingFace;
using static SharpLM.Models.TensorDecl;

namespace SharpLM.Models.Gemma;

/// <summary>
/// Gemma, Gemma 2 and Gemma 3 (text): LLaMA blocks with a GeGLU MLP (tanh GELU), the token embedding scaled by sqrt(C),
/// a head tied to the embedding, and RMSNorms whose weight Hugging Face stores as w for x * (1 + w) while GGUF stores
/// 1 + w (<see cref="TensorDecl.HfAddOne"/>). Gemma 2 adds norms after the attention and the MLP, soft caps of the
/// attention scores and the logits, and a sliding window on every other layer; Gemma 3 drops the soft caps, adds q/k
/// RMSNorms, slides on five layers of six and gives the sliding layers their own RoPE base (10000).
/// </summary>
internal static class GemmaArch
{
    private static readonly Func<ModelConfig, TensorNeed> Post = When(c => c.PostNorms);

    public static readonly TensorDecl[] Tensors =
    [
        Llama.LlamaArch.Decl("token_embd"),
        Llama.LlamaArch.Decl("output_norm") with { HfAddOne = true },
        Llama.LlamaArch.Decl("output"),
        Llama.LlamaArch.Decl("attn_norm") with { HfAddOne = true },
        Llama.LlamaArch.Decl("attn_q"),
        Llama.LlamaArch.Decl("attn_k"),
        Llama.LlamaArch.Decl("attn_v"),
        Llama.LlamaArch.Decl("attn_output"),
        Llama.LlamaArch.Decl("attn_q_norm") with { HfAddOne = true },
        Llama.LlamaArch.Decl("attn_k_norm") with { HfAddOne = true },
        new("attn_post_norm", "blk.{N}.post_attention_norm.weight", "model.layers.{N}.post_attention_layernorm.weight", "C", "norms.layer", Post) { HfAddOne = true },
        // Gemma 1 names the MLP's norm as LLaMA does; Gemma 2 and 3 call it pre_feedforward (post_attention is the new norm above)
        Llama.LlamaArch.Decl("ffn_norm") with { HfAddOne = true, Need = When(c => !c.PostNorms) },
        new("ffn_norm", "blk.{N}.ffn_norm.weight", "model.layers.{N}.pre_feedforward_layernorm.weight", "C", "norms.layer", Post) { HfAddOne = true },
        Llama.LlamaArch.Decl("ffn_gate"),
        Llama.LlamaArch.Decl("ffn_up"),
        Llama.LlamaArch.Decl("ffn_down"),
        new("ffn_post_norm", "blk.{N}.post_ffw_norm.weight", "model.layers.{N}.post_feedforward_layernorm.weight", "C", "norms.layer", Post) { HfAddOne = true },
    ];

    public static Architecture Create(string name, string[] modelTypes, string[] classes) =>
        new(name, ArchFamily.Llama, name, modelTypes, classes, Tensors, FromHf, FromGguf, ToGguf, ToHf);

    /// <summary>transformers' GemmaConfig, Gemma2Config and Gemma3TextConfig defaults.</summary>
    private static RotaryHf.Defaults Defaults(string arch) => arch == "gemma3"
        ? new(Context: 131072, Theta: 1_000_000f, HeadDim: 256, Activation: "gelu_pytorch_tanh", Tied: true)
        : new(Context: 8192, Theta: 10000f, HeadDim: 256, Activation: "gelu_pytorch_tanh", Tied: true);

    private static ModelConfig FromHf(JsonReader r, string arch)
    {
        if (r.Object("text_config") is not null)
            throw new NotSupportedException($"{r.Source}: multimodal Gemma 3 checkpoints (Gemma3ForConditionalGeneration) are not supported; convert the text model (Gemma3ForCausalLM) or use its GGUF");
        var c = RotaryHf.Read(r, arch, Defaults(arch));
        bool g2 = arch == "gemma2", g3 = arch == "gemma3";
        // transformers runs every Gemma with the tanh GELU unless hidden_activation says otherwise
        string act = r.String("hidden_activation") ?? "gelu_pytorch_tanh";
        int window = r.OptionalSize("sliding_window") ?? 4096;
        var (pattern, why) = g3 ? Pattern(r) : (2, null);
        float? Cap(string key, float fallback) => r.Root.TryGetProperty(key, out _) ? r.Float(key) : fallback;
        return c with
        {
            Activation = ModelConfigReader.Activation(act) ?? "gelu_tanh",
            EmbeddingScale = MathF.Sqrt(c.Width),
            AttentionScale = 1f / MathF.Sqrt(r.Float("query_pre_attn_scalar") ?? c.HeadSize),
            AttnLogitSoftcap = g2 ? Cap("attn_logit_softcapping", 50f) ?? 0f : 0f,
            FinalLogitSoftcap = g2 ? Cap("final_logit_softcapping", 30f) ?? 0f : g3 ? r.Float("final_logit_softcapping") ?? 0f : 0f,
            PostNorms = g2 || g3,
            QkNorm = g3,
            SlidingWindow = g2 || g3 ? window : null,
            SlidingWindowPattern = pattern,
            RopeThetaSliding = g3 ? r.Float("rope_local_base_freq") ?? 10000f : null,
            Unsupported = c.Unsupported ?? why ?? (ModelConfigReader.Activation(act) is null ? $"hidden_activation '{act}' is not supported" : null),
        };
    }

    /// <summary>Gemma 3's sliding layers: layer_types (newer transformers) or sliding_window_pattern (6 by default), as
    /// llama.cpp's pattern N (the last layer of every N is global).</summary>
    private static (int Pattern, string? Unsupported) Pattern(JsonReader r)
    {
        if (r.StringList("layer_types") is not { Length: > 0 } types) return (r.OptionalSize("sliding_window_pattern") ?? 6, null);
        int firstFull = Array.IndexOf(types, "full_attention");
        int n = firstFull < 0 ? 1 : firstFull + 1;
        for (int l = 0; l < types.Length; l++)
            if ((types[l] == "sliding_attention") != (n == 1 || l % n < n - 1))
                return (n, $"layer_types [{string.Join(", ", types)}] is not a repeating pattern of sliding layers and one global layer");
        return (n, null);
    }

    private static ModelConfig FromGguf(GgufFile g, string arch)
    {
        string a = g.Architecture;
        var c = RotaryGguf.Read(g, arch);
        bool g2 = arch == "gemma2", g3 = arch == "gemma3";
        int? window = GgufMeta.Int(g, GgufKeys.SlidingWindow(a)) is > 0 and int w ? w : g2 ? 4096 : null;
        // llama.cpp's f_attention_scale: the 27B models (46 and 62 layers) scale by C/NH, the others by the head size
        bool big = g2 && c.Layers == 46 || g3 && c.Layers == 62;
        return c with
        {
            Activation = "gelu_tanh",
            EmbeddingScale = MathF.Sqrt(c.Width),
            AttentionScale = big ? 1f / MathF.Sqrt((float)c.Width / c.Heads) : null,
            AttnLogitSoftcap = g2 ? GgufMeta.Float(g, GgufKeys.AttnLogitSoftcapping(a)) ?? 50f : 0f,
            FinalLogitSoftcap = g2 ? GgufMeta.Float(g, GgufKeys.FinalLogitSoftcapping(a)) ?? 30f : g3 ? GgufMeta.Float(g, GgufKeys.FinalLogitSoftcapping(a)) ?? 0f : 0f,
            PostNorms = g2 || g3,
            QkNorm = g3,
            SlidingWindow = g2 || g3 ? window : null,
            SlidingWindowPattern = g3 ? 6 : 2,
            RopeThetaSliding = g3 && window is not null ? 10000f : null, // llama.cpp: rope_freq_base_train_swa
        };
    }

    private static void ToGguf(ModelConfig c, GgufWriter w)
    {
        string a = c.Arch.GgufName;
        RotaryGguf.Write(c, w);
        w.Set(GgufKeys.KeyLength(a), (uint)c.HeadSize).Set(GgufKeys.ValueLength(a), (uint)c.HeadSize);
        if (c.SlidingWindow is int sw) w.Set(GgufKeys.SlidingWindow(a), (uint)sw);
        if (c.AttnLogitSoftcap > 0) w.Set(GgufKeys.AttnLogitSoftcapping(a), c.AttnLogitSoftcap);
        if (c.FinalLogitSoftcap > 0) w.Set(GgufKeys.FinalLogitSoftcapping(a), c.FinalLogitSoftcap);
    }

    private static JsonObject ToHf(ModelConfig c)
    {
        var o = RotaryHf.Write(c);
        o["hidden_activation"] = "gelu_pytorch_tanh";
        float scale = c.AttentionScale ?? 1f / MathF.Sqrt(c.HeadSize);
        o["query_pre_attn_scalar"] = 1f / (scale * scale);
        if (c.SlidingWindow is int sw)
        {
            o["sliding_window"] = sw;
            if (c.Architecture == "gemma3")
            {
                o["sliding_window_pattern"] = c.SlidingWindowPattern;
                o["layer_types"] = new JsonArray([.. Enumerable.Range(0, c.Layers).Select(l => (JsonNode)(c.IsSlidingLayer(l) ? "sliding_attention" : "full_attention"))]);
            }
        }
        if (c.RopeThetaSliding is float local) o["rope_local_base_freq"] = local;
        o["attn_logit_softcapping"] = c.AttnLogitSoftcap > 0 ? c.AttnLogitSoftcap : null;
        o["final_logit_softcapping"] = c.FinalLogitSoftcap > 0 ? c.FinalLogitSoftcap : null;
        return o;
    }
}
