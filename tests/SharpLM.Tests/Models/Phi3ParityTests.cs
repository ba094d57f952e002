using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace SharpLM.Tests.Models;

/// <summary>Phi-3 / Phi-4-mini (fused qkv and gate_up, partial rotary, LongRoPE) against llama.cpp.</summary>
public sealed class Phi3ParityTests(ITestOutputHelper output)
{
    internal static JsonObject Config(int c, int layers, int heads, int kv, int ffn, int vocab, bool tied = false, double partial = 1.0,
                                      int ctx = 512, int origCtx = 512)
    {
        var o = RandomModel.RotaryConfig("Phi3ForCausalLM", "phi3", c, layers, heads, kv, ffn, vocab, tied: tied, context: ctx, eps: 1e-5);
        o["original_max_position_embeddings"] = origCtx;
        o["partial_rotary_factor"] = partial;
        o["sliding_window"] = 2047;
        return o;
    }

    /// <summary>LongRoPE factors (R/2 each), smooth ramps as the real ones are.</summary>
    private static JsonObject LongRope(int ropeDim) => new()
    {
        ["type"] = "longrope",
        ["short_factor"] = new JsonArray([.. Enumerable.Range(0, ropeDim / 2).Select(i => (JsonNode)(1.0 + 0.05 * i))]),
        ["long_factor"] = new JsonArray([.. Enumerable.Range(0, ropeDim / 2).Select(i => (JsonNode)(1.0 + 0.9 * i))]),
    };

    public static TheoryData<string, int> Shapes => new()
    {
        { "phi3-mini-mha", 256 },
        { "phi4-mini-gqa-partial-tied", 256 },
        { "longrope-short", 256 },  // a context within the original: the short factors
        { "longrope-long", 1024 },  // beyond it: the long factors
    };

    internal static JsonObject Shape(string name)
    {
        switch (name)
        {
            case "phi3-mini-mha": return Config(192, 2, 6, 6, 320, 320); // Phi-3-mini: MHA, HS 96
            case "phi4-mini-gqa-partial-tied": return Config(256, 2, 2, 1, 300, 301, tied: true, partial: 0.75); // Phi-4-mini: 3/4 rotary, tied
            case "longrope-short" or "longrope-long":
                var c = Config(128, 2, 4, 2, 200, 290, ctx: 2048, origCtx: 512);
                c["rope_scaling"] = LongRope(32);
                return c;
            default: throw new ArgumentException(name);
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Gguf_and_hf_folder_logits_and_64_greedy_tokens_match_llama_cpp(string shape, int context)
    {
        var m = RandomModel.Create(Shape(shape), seed: shape.Length * 17);
        var gguf = m.Gguf();
        var prompt = m.Prompt(40, seed: 11);
        Parity.AgainstLlamaCpp(gguf, gguf, prompt, 1e-4, greedy: 64, output, $"phi3 {shape} (context {context}) GGUF", context);
        Parity.AgainstLlamaCpp(m.HfDir, gguf, prompt, 1e-4, greedy: 0, output, $"phi3 {shape} HF folder", context);
    }
}
