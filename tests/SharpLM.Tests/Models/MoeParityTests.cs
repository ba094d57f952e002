using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace SharpLM.Tests.Models;

/// <summary>
/// Mixtures of experts against llama.cpp: Mixtral (a LLaMA with 8 experts, top 2, renormalised), Qwen2-MoE (top-k softmax
/// weights as they are, plus a sigmoid-gated shared expert, q/k/v biases) and Qwen3-MoE (q/k norms, renormalised).
/// Random Hugging Face folders with one tensor per expert; llama.cpp runs SharpLM's GGUF, where they are stacked.
/// </summary>
public sealed class MoeParityTests(ITestOutputHelper output)
{
    internal static JsonObject Config(string arch, int c, int layers, int heads, int kv, int experts, int topK, int expertFfn, int vocab, int sharedFfn = 0)
    {
        var o = SmallLlamaShapeTests.Config(c, heads, kv, expertFfn * 2, vocab, 1000000, tied: false, layers: layers);
        switch (arch)
        {
            case "mixtral":
                o["architectures"] = new JsonArray("MixtralForCausalLM");
                o["model_type"] = "mixtral";
                o["intermediate_size"] = expertFfn;
                o["num_local_experts"] = experts;
                break;
            default:
                bool q3 = arch == "qwen3moe";
                o["architectures"] = new JsonArray(q3 ? "Qwen3MoeForCausalLM" : "Qwen2MoeForCausalLM");
                o["model_type"] = q3 ? "qwen3_moe" : "qwen2_moe";
                o["num_experts"] = experts;
                o["moe_intermediate_size"] = expertFfn;
                o["norm_topk_prob"] = q3;
                if (!q3) o["shared_expert_intermediate_size"] = sharedFfn;
                if (q3) o["head_dim"] = 2 * c / heads;
                break;
        }
        o["num_experts_per_tok"] = topK;
        return o;
    }

    public static TheoryData<string> Shapes => new() { "mixtral-8x2", "qwen2moe-6x2-shared", "qwen3moe-16x4" };

    internal static JsonObject Shape(string name) => name switch
    {
        "mixtral-8x2" => Config("mixtral", 128, 2, 4, 2, 8, 2, 160, 300),
        "qwen2moe-6x2-shared" => Config("qwen2moe", 128, 2, 4, 4, 6, 2, 96, 290, sharedFfn: 224),
        "qwen3moe-16x4" => Config("qwen3moe", 128, 2, 4, 2, 16, 4, 64, 311),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Gguf_and_hf_folder_logits_and_64_greedy_tokens_match_llama_cpp(string shape)
    {
        var m = RandomModel.Create(Shape(shape), seed: shape.Length * 5);
        Assert.True(m.Config.Experts > 0);
        var gguf = m.Gguf();
        var prompt = m.Prompt(40, seed: 13);
        Parity.AgainstLlamaCpp(gguf, gguf, prompt, 1e-4, greedy: 64, output, $"{shape} GGUF");
        Parity.AgainstLlamaCpp(m.HfDir, gguf, prompt, 1e-4, greedy: 0, output, $"{shape} HF folder");
    }
}
