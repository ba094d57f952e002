using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace SharpLM.Tests.Models;

/// <summary>
/// Gemma, Gemma 2 and Gemma 3 against llama.cpp on the GGUF that SharpLM's converter makes from a random Hugging Face
/// folder (norms stored as w there, 1 + w in GGUF), with prompts longer than the sliding window.
/// </summary>
public sealed class GemmaParityTests(ITestOutputHelper output)
{
    internal static JsonObject Config(string arch, int c, int layers, int heads, int kv, int hs, int ffn, int vocab, int window = 16)
    {
        var o = RandomModel.RotaryConfig(arch switch { "gemma" => "GemmaForCausalLM", "gemma2" => "Gemma2ForCausalLM", _ => "Gemma3ForCausalLM" },
            arch == "gemma3" ? "gemma3_text" : arch, c, layers, heads, kv, ffn, vocab, theta: arch == "gemma3" ? 1000000 : 10000, tied: true);
        o["head_dim"] = hs;
        o["hidden_activation"] = "gelu_pytorch_tanh";
        o["query_pre_attn_scalar"] = hs; // what llama.cpp assumes below 27B
        o["sliding_window"] = window;
        return o;
    }

    public static TheoryData<string> Shapes => new() { "gemma-hs64-mqa", "gemma2-hs32-gqa2", "gemma2-hs64-mha", "gemma3-hs64-gqa4", "gemma3-hs32-linear8" };

    internal static JsonObject Shape(string name)
    {
        switch (name)
        {
            case "gemma-hs64-mqa": return Config("gemma", 128, 2, 4, 1, 64, 200, 301);
            case "gemma2-hs32-gqa2":
                // small caps, so the soft capping really bends the scores and the logits
                var g2 = Config("gemma2", 128, 3, 4, 2, 32, 257, 290);
                g2["attn_logit_softcapping"] = 3.0;
                g2["final_logit_softcapping"] = 8.0;
                return g2;
            case "gemma2-hs64-mha":
                var g2b = Config("gemma2", 128, 2, 2, 2, 64, 192, 333, window: 9);
                g2b["attn_logit_softcapping"] = 50.0;
                g2b["final_logit_softcapping"] = 30.0;
                return g2b;
            case "gemma3-hs64-gqa4":
                return Config("gemma3", 128, 7, 4, 1, 64, 200, 299); // layers 5 global, the others slide
            case "gemma3-hs32-linear8":
                var g3 = Config("gemma3", 96, 6, 3, 3, 32, 160, 310, window: 12);
                g3["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 8.0 }; // global layers only
                return g3;
            default: throw new ArgumentException(name);
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Gguf_and_hf_folder_logits_and_greedy_tokens_match_llama_cpp(string shape)
    {
        var m = RandomModel.Create(Shape(shape), seed: shape.Length * 13);
        var gguf = m.Gguf();
        var prompt = m.Prompt(48, seed: 5); // longer than the window
        // llama.cpp computes GELU through a table of f16 values (GGML_GELU_FP16), so its Gemma is ~1e-3 off exact math
        Parity.AgainstLlamaCpp(gguf, gguf, prompt, 3e-3, greedy: 64, output, $"{shape} GGUF", minGreedyEqual: 60);
        Parity.AgainstLlamaCpp(m.HfDir, gguf, prompt, 3e-3, greedy: 0, output, $"{shape} HF folder");
    }
}
