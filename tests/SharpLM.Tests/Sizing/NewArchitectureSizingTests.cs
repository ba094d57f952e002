using SharpLM.Sizing;

namespace SharpLM.Tests.Sizing;

/// <summary>calc on the architectures of the model-breadth issue: each preset's total (counted from the architecture
/// table) against the published count, and mixtures of experts against their closed form written out here.</summary>
public sealed class NewArchitectureSizingTests
{
    [Theory]
    // google/gemma-2-2b "2.6B", google/gemma-3-1b "1B", microsoft/Phi-3-mini-4k-instruct "3.8B",
    // HuggingFaceTB/SmolLM2-135M "135M", meta-llama/Llama-3.2-1B "1.23B", Qwen/Qwen3-0.6B "0.6B" (num_parameters())
    [InlineData("gemma-2-2b", 2_614_341_888L)]
    [InlineData("gemma-3-1b", 999_885_952L)]
    [InlineData("phi-3-mini-4k", 3_821_079_552L)]
    [InlineData("smollm2-135m", 134_515_008L)]
    [InlineData("llama-3.2-1b", 1_235_814_400L)]
    [InlineData("qwen3-0.6b", 596_049_920L)]
    public void Preset_totals_match_the_published_counts(string preset, long expected)
    {
        var p = new ParameterCount(ModelPresets.Load(preset));
        Assert.Equal(expected, p.Total);
        Assert.Equal(p.Total, p.ByGroup.Values.Sum());
    }

    /// <summary>Mixtures of experts: the table's count equals the closed form (attention, two norms, a 1 x h router
    /// per expert, X gated experts of width FE, Qwen2-MoE's shared expert and its 1 x h gate, q/k norms for Qwen3-MoE,
    /// qkv biases for Qwen2-MoE), and the active count leaves out the X - k experts a token does not use.</summary>
    [Theory]
    [InlineData("qwen2moe")]
    [InlineData("qwen3moe")]
    [InlineData("mixtral")]
    public void Moe_totals_equal_the_closed_form(string arch)
    {
        const int h = 256, layers = 3, heads = 4, kvHeads = 2, experts = 8, topK = 2, fe = 96, vocab = 1000, fs = 320;
        var json = SharpLM.Tests.Models.MoeParityTests.Config(arch, h, layers, heads, kvHeads, experts, topK, fe, vocab, sharedFfn: fs).ToJsonString();
        var p = new ParameterCount(SharpLM.Formats.ModelConfigReader.FromHfJson(json, arch + "/config.json"));
        long hs = arch == "qwen3moe" ? 2 * h / heads : h / heads, q = heads * hs, kv = kvHeads * hs;
        long layer = h * q + 2 * h * kv + q * h + 2 * h + (long)h * experts + (long)experts * 3 * h * fe;
        if (arch == "qwen2moe") layer += q + 2 * kv + 3L * h * fs + h;
        if (arch == "qwen3moe") layer += 2 * hs;
        long total = 2L * vocab * h + h + layers * layer;
        Assert.Equal(total, p.Total);
        Assert.Equal(total - (long)layers * (experts - topK) * 3 * h * fe, p.Active);
    }
}
