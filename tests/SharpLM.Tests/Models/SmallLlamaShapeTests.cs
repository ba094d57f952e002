using System.Text.Json.Nodes;
using SharpLM.Testing;
using Xunit.Abstractions;

namespace SharpLM.Tests.Models;

/// <summary>
/// The block shapes of the small LLaMA-family models people download (SmolLM2, Llama-3.2): exact widths, head counts,
/// head sizes, FFN widths, RoPE bases, tied heads and Llama-3 RoPE scaling, with two layers and a smaller vocabulary
/// (the vocabulary only changes the embedding's row count). Against llama.cpp from the converted GGUF and the folder.
/// </summary>
public sealed class SmallLlamaShapeTests(ITestOutputHelper output)
{
    internal static JsonObject Config(int c, int heads, int kv, int ffn, int vocab, double theta, bool tied, int layers = 2, JsonObject? ropeScaling = null)
    {
        var o = RandomModel.RotaryConfig("LlamaForCausalLM", "llama", c, layers, heads, kv, ffn, vocab, theta, tied, context: 8192, eps: 1e-5);
        o["rope_scaling"] = ropeScaling;
        return o;
    }

    private static JsonObject Llama3Scaling() => new()
    {
        ["rope_type"] = "llama3", ["factor"] = 32.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 8192,
    };

    public static TheoryData<string> Shapes => new() { "SmolLM2-135M", "SmolLM2-360M" };

    internal static JsonObject Shape(string name) => name switch
    {
        // HuggingFaceTB/SmolLM2-135M: C 576, NH 9, KVH 3 (HS 64), F 1536, theta 100000, tied (V 49152 there)
        "SmolLM2-135M" => Config(576, 9, 3, 1536, 1003, 100000, tied: true),
        // HuggingFaceTB/SmolLM2-360M: C 960, NH 15, KVH 5 (HS 64), F 2560, theta 100000, tied
        "SmolLM2-360M" => Config(960, 15, 5, 2560, 997, 100000, tied: true),
        // meta-llama/Llama-3.2-1B: C 2048, NH 32, KVH 8 (HS 64), F 8192, theta 500000, tied, llama3 scaling x32
        "Llama-3.2-1B" => Config(2048, 32, 8, 8192, 1001, 500000, tied: true, layers: 1, ropeScaling: Llama3Scaling()),
        // meta-llama/Llama-3.2-3B: C 3072, NH 24, KVH 8 (HS 128), F 8192, theta 500000, tied, llama3 scaling x32
        "Llama-3.2-3B" => Config(3072, 24, 8, 8192, 1001, 500000, tied: true, layers: 1, ropeScaling: Llama3Scaling()),
        _ => throw new ArgumentException(name),
    };

    private void Check(string shape)
    {
        var m = RandomModel.Create(Shape(shape), seed: shape.Length * 3);
        var gguf = m.Gguf();
        var prompt = m.Prompt(40, seed: 4);
        Parity.AgainstLlamaCpp(gguf, gguf, prompt, 1e-4, greedy: 64, output, $"{shape} GGUF");
        Parity.AgainstLlamaCpp(m.HfDir, gguf, prompt, 1e-4, greedy: 0, output, $"{shape} HF folder");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Logits_and_64_greedy_tokens_match_llama_cpp(string shape) => Check(shape);

    /// <summary>Llama-3.2's layers are ~250 MB of F32 each: one layer, only in the long run.</summary>
    [LongFact]
    public void Llama_3_2_1B_and_3B_layer_shapes_match_llama_cpp()
    {
        Check("Llama-3.2-1B");
        Check("Llama-3.2-3B");
    }
}
