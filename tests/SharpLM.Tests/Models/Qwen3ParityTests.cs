using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace SharpLM.Tests.Models;

/// <summary>Qwen3 (per-head RMSNorm of q and k before RoPE) against llama.cpp, from GGUF and from the Hugging Face folder.</summary>
public sealed class Qwen3ParityTests(ITestOutputHelper output)
{
    /// <summary>A config.json of transformers' Qwen3Config: head_dim independent of C/NH, as Qwen3 has it.</summary>
    internal static JsonObject Config(int c, int layers, int heads, int kv, int hs, int ffn, int vocab, bool tied)
    {
        var o = RandomModel.RotaryConfig("Qwen3ForCausalLM", "qwen3", c, layers, heads, kv, ffn, vocab, theta: 1000000, tied: tied);
        o["head_dim"] = hs;
        return o;
    }

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
