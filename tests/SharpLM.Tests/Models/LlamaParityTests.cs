using SharpLM.Inference;
using SharpLM.Inference.Sampling;
using SharpLM.Models.Llama;
using SharpLM.Tensors;
using SharpLM.Testing;
using Xunit.Abstractions;

namespace SharpLM.Tests.Models;

/// <summary>SharpLM's LLaMA-family forward pass against llama.cpp on the same GGUF file, fed the same token ids.</summary>
public sealed class LlamaParityTests(ITestOutputHelper output)
{
    public static TheoryData<string> Shapes => new() { "hs32-mha", "hs64-gqa4", "hs128-gqa3", "qwen2-bias-tied" };

    internal static TinySpec Shape(string name) => name switch
    {
        "hs32-mha" => new TinySpec("llama", Dim: 64, Layers: 2, Heads: 2, KvHeads: 2, Ffn: 96, Vocab: 300),
        "hs64-gqa4" => new TinySpec("llama", Dim: 256, Layers: 2, Heads: 4, KvHeads: 1, Ffn: 300, Vocab: 333, Theta: 500000f),
        "hs128-gqa3" => new TinySpec("llama", Dim: 384, Layers: 1, Heads: 3, KvHeads: 1, Ffn: 257, Vocab: 301, Eps: 1e-6f),
        "qwen2-bias-tied" => new TinySpec("qwen2", Dim: 192, Layers: 2, Heads: 6, KvHeads: 2, Ffn: 200, Vocab: 290, Theta: 1000000f, Bias: true, Tied: true, Eps: 1e-6f),
        _ => throw new ArgumentException(name),
    };

    /// <summary>Max over rows of max|a-b| / max|b|, the comparison every parity test states.</summary>
    internal static double MaxRelativeDiff(float[][] expected, Func<int, ReadOnlySpan<float>> actual, out int worstRow)
    {
        double worst = 0;
        worstRow = -1;
        for (int r = 0; r < expected.Length; r++)
        {
            var e = expected[r];
            var a = actual(r);
            Assert.Equal(e.Length, a.Length);
            double scale = e.Max(Math.Abs), d = 0;
            for (int i = 0; i < e.Length; i++) d = Math.Max(d, Math.Abs(e[i] - a[i]));
            if (d / scale > worst) { worst = d / scale; worstRow = r; }
        }
        return worst;
    }

    internal static float[] OurLogits(LlamaModel model, int[] ids)
    {
        var state = model.CreateState();
        return state.Forward(ids, allLogits: true).ToArray();
    }

    internal static int[] OurGreedy(LlamaModel model, int[] prompt, int n)
    {
        var gen = new Generator(model.CreateState(), new Sampler(SamplingOptions.Greedy, model.Config.VocabSize), eosIds: []);
        return [.. gen.Generate(prompt, n)];
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void F32_logits_at_every_prompt_position_and_64_greedy_tokens_match_llama_cpp(string shape)
    {
        var spec = Shape(shape);
        var tiny = TinyLlama.Random(spec, seed: shape.Length * 31 + shape[^1]);
        var path = Path.Combine(TestPaths.NewTempDir(), "tiny.gguf");
        tiny.WriteGguf(path, DType.F32);
        var prompt = tiny.RandomPrompt(37, seed: 7);

        using var model = LlamaModel.Load(path, new ModelLoadOptions { ContextSize = spec.Ctx, BatchSize = 64 });
        using var cpp = new LlamaCppOracle(path, spec.Ctx);
        Assert.Equal(spec.Vocab, cpp.VocabSize);

        var expected = cpp.Logits(prompt);
        var ours = OurLogits(model, prompt);
        int v = spec.Vocab;
        double rel = MaxRelativeDiff(expected, r => ours.AsSpan(r * v, v), out int row);
        output.WriteLine($"{spec}: max |diff| / max |logit| = {rel:E2} (row {row})");
        Assert.True(rel < 1e-4, $"{spec}: logits differ from llama.cpp by {rel:E2} of the largest logit at prompt position {row}");

        var cppIds = cpp.Greedy(prompt, 64);
        var ourIds = OurGreedy(model, prompt, 64);
        Assert.Equal(cppIds, ourIds);
        Assert.True(ourIds.Distinct().Count() > 5, $"the greedy run is degenerate ({string.Join(' ', ourIds)}): the comparison would prove little");
    }
}
