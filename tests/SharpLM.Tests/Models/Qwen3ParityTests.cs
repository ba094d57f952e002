using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace SharpLM.Tests.Models;

/// <summary>Qwen3 (per-head RMSNorm of q and k before RoPE) against llama.cpp, from GGUF and from the Hugging Face folder.</summary>
public sealed class Qwen3ParityTests(ITestOutputHelper output)
{
    /// <summary>A config.json of transformers' Qwen3Config: head_dim independent of C/NH, as Qwen3 has it.</summary>
    internal static JsonObject Config(int c, int layers, int heads, int kv, int hs, int ffn, int vocab, bool tied) => new()
    {
        ["architectures"] = new JsonArray("Qwen3ForCausalLM"),
        ["model_type"] = "qwen3",
        ["vocab_size"] = vocab,
        ["hidden_size"] = c,
        ["intermediate_size"] = ffn,
        ["num_hidden_layers"] = layers,
        ["num_attention_heads"] = heads,
        ["num_key_value_heads"] = kv,
        ["head_dim"] = hs,
        ["max_position_embeddings"] = 512,
        ["rms_norm_eps"] = 1e-6,
        ["rope_theta"] = 1000000.0,
        ["tie_word_embeddings"] = tied,
        ["hidden_act"] = "silu",
    };

    public static TheoryData<string> Shapes => new() { "hs64-gqa2-tied", "hs128-gqa4", "hs32-mha-oddffn" };

    internal static JsonObject Shape(string name) => name switch
    {
        // Qwen3-0.6B's head layout (NH 16, KVH 8, HS 128 > C/NH) shrunk to two layers
        "hs128-gqa4" => Config(256, 2, 8, 2, 128, 384, 333, tied: false),
        "hs64-gqa2-tied" => Config(192, 2, 4, 2, 64, 288, 301, tied: true),
        "hs32-mha-oddffn" => Config(96, 3, 3, 3, 32, 257, 290, tied: false),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Gguf_and_hf_folder_logits_and_64_greedy_tokens_match_llama_cpp(string shape)
    {
        var m = RandomModel.Create(Shape(shape), seed: shape.Length * 7);
        Assert.True(m.Config.QkNorm);
        var gguf = m.Gguf();
        var prompt = m.Prompt(40, seed: 3);
        Parity.AgainstLlamaCpp(gguf, gguf, prompt, 1e-4, greedy: 64, output, $"qwen3 {shape} GGUF");
        Parity.AgainstLlamaCpp(m.HfDir, gguf, prompt, 1e-4, greedy: 0, output, $"qwen3 {shape} HF folder");
    }
}
