using SharpLM.Sizing;

namespace SharpLM.Tests.Sizing;

/// <summary>calc on the architectures of the model-breadth issue: each preset's total against the published count, and the
/// same total counted tensor by tensor from the architecture table.</summary>
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
    public void Preset_totals_match_the_published_counts_and_the_tensor_table(string preset, long expected)
    {
        var p = new ParameterCount(ModelPresets.Load(preset));
        Assert.Equal(expected, p.Total);
        Assert.Equal(p.Total, p.TableTotal);
    }

    /// <summary>Mixtures of experts: the formula (router, X experts of width FE, Qwen2-MoE's shared expert and its router)
    /// equals the count of the architecture table, tensor by tensor.</summary>
    [Theory]
    [InlineData("qwen2moe")]
    [InlineData("qwen3moe")]
    [InlineData("mixtral")]
    public void Moe_formula_totals_equal_the_tensor_table(string arch)
    {
        var json = SharpLM.Tests.Models.MoeParityTests.Config(arch, 256, 3, 4, 2, 8, 2, 96, 1000, sharedFfn: 320).ToJsonString();
        var p = new ParameterCount(ModelArchitecture.Parse(json, arch));
        Assert.Equal(p.Total, p.TableTotal);
        Assert.True(p.Active < p.Total);
    }
}
