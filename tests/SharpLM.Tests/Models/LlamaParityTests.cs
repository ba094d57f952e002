using SharpLM.Inference;
using SharpLM.Inference.Sampling;
using SharpLM.Models;
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
            // a comparison of NaNs or of all-zero rows would pass whatever the engines did
            Assert.True(scale > 0 && double.IsFinite(scale), $"row {r}: the reference logits are {(scale == 0 ? "all zero" : "not finite")}");
            for (int i = 0; i < e.Length; i++)
            {
                Assert.True(float.IsFinite(a[i]), $"row {r}: logit {i} is {a[i]}");
                d = Math.Max(d, Math.Abs(e[i] - a[i]));
            }
            if (d / scale > worst) { worst = d / scale; worstRow = r; }
        }
        return worst;
    }

    internal static float[] OurLogits(LanguageModel model, int[] ids)
    {
        var state = model.CreateState();
        return state.Forward(ids, allLogits: true).ToArray();
    }

    internal static int[] OurGreedy(LanguageModel model, int[] prompt, int n)
    {
        var gen = new Generator(model.CreateState(), new Sampler(SamplingOptions.Greedy, model.Config.Vocab), eosIds: []);
        return [.. gen.Generate(prompt, n)];
    }

    [Fact]
    public void Llama3_rope_frequency_factors_in_the_gguf_match_llama_cpp()
    {
        // LLaMA-3.1 GGUFs carry rope_freqs.weight (HS/2 divisors of the frequencies) instead of rope_scaling metadata
        var spec = Shape("hs64-gqa4");
        var tiny = TinyLlama.Random(spec, seed: 99);
        var path = Path.Combine(TestPaths.NewTempDir(), "tiny-ropefreqs.gguf");
        var factors = Enumerable.Range(0, spec.HeadDim / 2).Select(i => 1f + i * 0.75f).ToArray();
        tiny.WriteGguf(path, DType.F32, tweak: w => w.AddTensor("rope_freqs.weight", [factors.Length], factors));
        var prompt = tiny.RandomPrompt(40, seed: 2);
        using var model = LanguageModel.Load(path, new ModelLoadOptions { ContextSize = spec.Ctx, BatchSize = 64 });
        Assert.Equal(model.Config.InverseFrequencies()[5] / factors[5], model.Weights.InvFreq[5], 1e-8);
        using var cpp = new LlamaCppOracle(path, spec.Ctx);
        var expected = cpp.Logits(prompt);
        var ours = OurLogits(model, prompt);
        int v = spec.Vocab;
        double rel = MaxRelativeDiff(expected, r => ours.AsSpan(r * v, v), out int row);
        output.WriteLine($"{spec} + rope_freqs: max |diff| / max |logit| = {rel:E2} (row {row})");
        Assert.True(rel < 1e-4, $"logits differ from llama.cpp by {rel:E2} at position {row}");
    }

    [Fact]
    public void Decoding_a_token_allocates_nothing_on_the_calling_thread()
    {
        var spec = Shape("hs64-gqa4");
        var tiny = TinyLlama.Random(spec, seed: 1);
        var path = Path.Combine(TestPaths.NewTempDir(), "tiny.gguf");
        tiny.WriteGguf(path, DType.F32);
        using var model = LanguageModel.Load(path, new ModelLoadOptions { ContextSize = 64 });
        var state = model.CreateState();
        state.Forward(tiny.RandomPrompt(20, 3), allLogits: false);
        int[] one = [7];
        for (int i = 0; i < 3; i++) state.Forward(one, false); // warm-up: JIT, per-thread kernel scratch
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) state.Forward(one, false);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated == 0, $"10 decode steps allocated {allocated} bytes");
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

        using var model = LanguageModel.Load(path, new ModelLoadOptions { ContextSize = spec.Ctx, BatchSize = 64 });
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

/// <summary>
/// A Hugging Face folder read directly (rotate-half RoPE, LLaMA-3 rope_scaling computed from config.json) against
/// llama.cpp on the GGUF that the formats helper's converter makes from the same folder (q/k permuted, rope_freqs).
/// </summary>
public sealed class LlamaHfConvertedParityTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("llama", true)]
    [InlineData("qwen2", false)]
    public void Hf_folder_logits_match_llama_cpp_on_the_converted_gguf(string arch, bool llama3Scaling)
    {
        var spec = new TinySpec(arch, Dim: 128, Layers: 2, Heads: 2, KvHeads: 1, Ffn: 200, Vocab: 32000, Ctx: 128, Theta: 500000f,
                                Bias: arch == "qwen2", Tied: arch == "qwen2");
        var tiny = TinyLlama.Random(spec, seed: 31);
        var dir = TestPaths.NewTempDir("hfconv");
        string scaling = llama3Scaling
            ? """, "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64, "rope_type": "llama3"}"""
            : "";
        File.WriteAllText(Path.Combine(dir, "config.json"), LlamaLayoutTests.HfConfigJson(spec, scaling));
        var w = new SharpLM.Formats.Safetensors.SafetensorsWriter();
        foreach (var (name, (shape, data)) in tiny.Tensors) w.Add(name, shape, data);
        w.Write(Path.Combine(dir, "model.safetensors"));
        File.Copy(TestPaths.Asset("npm", "tokenizer-llama2", "models", "tokenizer.json"), Path.Combine(dir, "tokenizer.json"));

        var gguf = Path.Combine(TestPaths.NewTempDir(), "converted.gguf");
        using (var folder = SharpLM.Formats.HuggingFace.HfModelFolder.Open(dir))
            SharpLM.Formats.HuggingFace.HfToGguf.Build(folder, new(DType.F32)).Write(gguf);

        using var model = LanguageModel.Load(dir, new ModelLoadOptions { ContextSize = spec.Ctx, BatchSize = 128 });
        Assert.Equal(llama3Scaling ? RopeScalingType.Llama3 : RopeScalingType.None, model.Config.RopeScaling);
        using var cpp = new LlamaCppOracle(gguf, spec.Ctx);
        var prompt = tiny.RandomPrompt(100, seed: 6); // past the original 64 positions, where the scaling matters
        var expected = cpp.Logits(prompt);
        var ours = LlamaParityTests.OurLogits(model, prompt);
        int v = spec.Vocab;
        double rel = LlamaParityTests.MaxRelativeDiff(expected, r => ours.AsSpan(r * v, v), out int row);
        output.WriteLine($"{spec}{(llama3Scaling ? " llama3 rope" : "")}: HF folder vs llama.cpp on the converted GGUF: {rel:E2} (row {row})");
        Assert.True(rel < 1e-4, $"logits differ by {rel:E2} of the largest logit at position {row}");
    }
}
