using SharpLM.Inference;
using SharpLM.Models;
using SharpLM.Tensors;
using SharpLM.Testing;
using Xunit.Abstractions;

namespace SharpLM.Tests.Models;

/// <summary>
/// Quantized weights against llama.cpp. llama.cpp rounds the activations to the weight's dot type before each matmul
/// (F16 for F16 weights, Q8_0 for Q8_0/Q4_0, Q8_K for k-quants) while SharpLM multiplies F32 activations with
/// dequantized weights, so logits agree only within a tolerance; the bounds below are a few times what was measured.
/// </summary>
public sealed class LlamaQuantParityTests(ITestOutputHelper output)
{
    [Theory]
    // Measured on this model (seed 21), max |diff| / max |logit| and greedy tokens identical of 32:
    // F16 3.9e-3 (32), BF16 1.2e-2 (32), Q8_0 3.1e-2 (32), Q4_0 2.9e-2 (0: a near tie at the first step),
    // Q4_K 5.6e-2 (25), Q6_K 5.5e-2 (20). Greedy agreement is required only where activation rounding is mild.
    [InlineData(DType.F16, 1e-2, 32)]
    [InlineData(DType.BF16, 3e-2, 32)]
    [InlineData(DType.Q8_0, 8e-2, 32)]
    [InlineData(DType.Q4_0, 8e-2, 0)]
    [InlineData(DType.Q4_K, 1.2e-1, 0)]
    [InlineData(DType.Q6_K, 1.2e-1, 0)]
    [InlineData(DType.Q5_0, 8e-2, 0)]
    [InlineData(DType.Q5_K, 1.2e-1, 0)]
    [InlineData(DType.Q4_1, 8e-2, 0)]
    [InlineData(DType.Q5_1, 8e-2, 0)]
    public void Quantized_logits_match_llama_cpp_within_the_stated_tolerance(DType type, double tolerance, int sameTokens)
    {
        var spec = new TinySpec("llama", Dim: 256, Layers: 2, Heads: 4, KvHeads: 2, Ffn: type is DType.Q4_K or DType.Q5_K or DType.Q6_K ? 512 : 352, Vocab: 320);
        var tiny = TinyLlama.Random(spec, seed: 21);
        var path = Path.Combine(TestPaths.NewTempDir(), $"tiny-{type}.gguf");
        tiny.WriteGguf(path, type);
        var prompt = tiny.RandomPrompt(33, seed: 9);
        using var model = LanguageModel.Load(path, new ModelLoadOptions { ContextSize = spec.Ctx, BatchSize = 64 });
        using var cpp = new LlamaCppOracle(path, spec.Ctx);
        var expected = cpp.Logits(prompt);
        var ours = LlamaParityTests.OurLogits(model, prompt);
        int v = spec.Vocab;
        double rel = LlamaParityTests.MaxRelativeDiff(expected, r => ours.AsSpan(r * v, v), out int row);
        var cppIds = cpp.Greedy(prompt, 32);
        var ourIds = LlamaParityTests.OurGreedy(model, prompt, 32);
        int same = 0;
        while (same < cppIds.Length && cppIds[same] == ourIds[same]) same++;
        output.WriteLine($"{type}: max |diff| / max |logit| = {rel:E2} (row {row}); greedy tokens identical for {same} of 32");
        Assert.True(rel < tolerance, $"{type}: logits differ from llama.cpp by {rel:E2} of the largest logit (tolerance {tolerance:E0}) at position {row}");
        Assert.True(same >= sameTokens, $"{type}: greedy output diverged from llama.cpp after {same} tokens (expected {sameTokens})");
    }
}
