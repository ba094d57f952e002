using System.Globalization;
using SharpLM.Inference;
using SharpLM.Models;
using SharpLM.Tensors;
using SharpLM.Testing;
using Xunit.Abstractions;

namespace SharpLM.Tests.Models;

/// <summary>Hugging Face layout (rotate-half RoPE, unpermuted q/k) against the same weights converted to GGUF.</summary>
public sealed class LlamaLayoutTests(ITestOutputHelper output)
{
    internal static string HfConfigJson(TinySpec s, string? extra = null) => string.Create(CultureInfo.InvariantCulture, $$"""
        {
          "architectures": ["{{s.Arch switch { "qwen2" => "Qwen2ForCausalLM", "mistral" => "MistralForCausalLM", _ => "LlamaForCausalLM" }}}"],
          "model_type": "{{s.Arch}}",
          "hidden_size": {{s.Dim}}, "num_hidden_layers": {{s.Layers}}, "num_attention_heads": {{s.Heads}},
          "num_key_value_heads": {{s.KvHeads}}, "intermediate_size": {{s.Ffn}}, "vocab_size": {{s.Vocab}},
          "max_position_embeddings": {{s.Ctx}}, "rms_norm_eps": {{s.Eps:R}}, "rope_theta": {{s.Theta:R}},
          "tie_word_embeddings": {{(s.Tied ? "true" : "false")}}, "bos_token_id": 1, "eos_token_id": 2{{extra}}
        }
        """);

    internal static LanguageModel FromHfMemory(TinyLlama tiny, ModelLoadOptions options)
    {
        var cfg = SharpLM.Formats.ModelConfigReader.FromHfJson(HfConfigJson(tiny.Spec), "config.json");
        var src = new MemoryWeightSource("memory-hf", tiny.Tensors);
        return new LanguageModel(src, DecoderWeights.Bind(BoundTensors.Bind(src, cfg, TensorNaming.HuggingFace)), null, options);
    }

    [Theory]
    [InlineData("hs64-gqa4")]
    [InlineData("hs128-gqa3")]
    [InlineData("qwen2-bias-tied")]
    public void Hf_layout_with_rotate_half_gives_the_logits_of_the_permuted_gguf(string shape)
    {
        var spec = LlamaParityTests.Shape(shape);
        var tiny = TinyLlama.Random(spec, seed: 11);
        var path = Path.Combine(TestPaths.NewTempDir(), "tiny.gguf");
        tiny.WriteGguf(path, DType.F32);
        var opts = new ModelLoadOptions { ContextSize = spec.Ctx, BatchSize = 64 };
        using var gguf = LanguageModel.Load(path, opts);
        using var hf = FromHfMemory(tiny, opts);
        Assert.True(hf.Config.RopeNeox);
        Assert.Equal(spec.Arch == "qwen2", gguf.Config.RopeNeox);
        var prompt = tiny.RandomPrompt(29, seed: 3);
        var a = LlamaParityTests.OurLogits(gguf, prompt);
        var b = LlamaParityTests.OurLogits(hf, prompt);
        int v = spec.Vocab;
        var rows = Enumerable.Range(0, prompt.Length).Select(r => a.AsSpan(r * v, v).ToArray()).ToArray();
        double rel = LlamaParityTests.MaxRelativeDiff(rows, r => b.AsSpan(r * v, v), out int row);
        output.WriteLine($"{spec}: HF vs GGUF max |diff| / max |logit| = {rel:E2} (row {row})");
        Assert.True(rel < 1e-5, $"HF layout differs from the GGUF by {rel:E2} at position {row}");
    }

    [Fact]
    public void Decoding_token_by_token_gives_the_logits_of_one_batched_pass()
    {
        var spec = LlamaParityTests.Shape("hs64-gqa4");
        var tiny = TinyLlama.Random(spec, seed: 5);
        using var model = FromHfMemory(tiny, new ModelLoadOptions { ContextSize = 64, BatchSize = 7 });
        var prompt = tiny.RandomPrompt(20, seed: 1);
        var batched = model.CreateState(); // batch 7: the prompt goes in chunks of 7, 7, 6
        var full = new List<float[]>();
        for (int s = 0; s < prompt.Length; s += batched.Owner.MaxBatchTokens)
        {
            var chunk = prompt.AsSpan(s, Math.Min(batched.Owner.MaxBatchTokens, prompt.Length - s));
            var rows = batched.Forward(chunk, allLogits: true);
            for (int i = 0; i < chunk.Length; i++) full.Add(rows.Slice(i * spec.Vocab, spec.Vocab).ToArray());
        }
        var stepwise = model.CreateState();
        var step = new List<float[]>();
        foreach (var id in prompt) step.Add(stepwise.Forward([id], allLogits: false).ToArray());
        double rel = LlamaParityTests.MaxRelativeDiff([.. full], r => step[r], out _);
        Assert.True(rel < 1e-5, $"chunked prefill vs one-token decode differ by {rel:E2}");
        Assert.Equal(prompt.Length, stepwise.Length);
    }
}

/// <summary>The same weights saved as a Hugging Face folder (config.json + safetensors) and as GGUF.</summary>
public sealed class LlamaHfFolderTests(ITestOutputHelper output)
{
    internal static string WriteHfFolder(TinyLlama tiny, SharpLM.Tensors.DType storeAs = SharpLM.Tensors.DType.F32, long? shardBytes = null)
    {
        var dir = TestPaths.NewTempDir("hf");
        File.WriteAllText(Path.Combine(dir, "config.json"), LlamaLayoutTests.HfConfigJson(tiny.Spec));
        var w = new SharpLM.Formats.Safetensors.SafetensorsWriter();
        foreach (var (name, (shape, data)) in tiny.Tensors) w.Add(name, shape, data, shape.Length == 1 ? SharpLM.Tensors.DType.F32 : storeAs); // norms F32, as in the GGUF
        if (shardBytes is long s) w.WriteSharded(dir, s);
        else w.Write(Path.Combine(dir, "model.safetensors"));
        return dir;
    }

    [Theory]
    [InlineData("hs32-mha", false)]
    [InlineData("hs64-gqa4", true)]
    [InlineData("qwen2-bias-tied", false)]
    public void Hf_safetensors_folder_gives_the_logits_of_the_gguf_conversion(string shape, bool sharded)
    {
        var spec = LlamaParityTests.Shape(shape);
        var tiny = TinyLlama.Random(spec, seed: 17);
        var gguf = Path.Combine(TestPaths.NewTempDir(), "tiny.gguf");
        tiny.WriteGguf(gguf);
        var folder = WriteHfFolder(tiny, shardBytes: sharded ? 200_000 : null);
        var opts = new ModelLoadOptions { ContextSize = spec.Ctx, BatchSize = 64 };
        using var a = LanguageModel.Load(gguf, opts);
        using var b = LanguageModel.Load(folder, opts);
        var prompt = tiny.RandomPrompt(25, seed: 4);
        var la = LlamaParityTests.OurLogits(a, prompt);
        var lb = LlamaParityTests.OurLogits(b, prompt);
        int v = spec.Vocab;
        var rows = Enumerable.Range(0, prompt.Length).Select(r => la.AsSpan(r * v, v).ToArray()).ToArray();
        double rel = LlamaParityTests.MaxRelativeDiff(rows, r => lb.AsSpan(r * v, v), out int row);
        output.WriteLine($"{spec}: safetensors folder vs GGUF max rel diff {rel:E2} (row {row})");
        Assert.True(rel < 1e-5, $"HF folder differs from the GGUF by {rel:E2} at position {row}");
    }

    [Fact]
    public void Bf16_safetensors_give_the_logits_of_the_bf16_gguf()
    {
        // the BF16 GGUF itself is checked against llama.cpp in LlamaQuantParityTests
        var spec = LlamaParityTests.Shape("hs32-mha");
        var tiny = TinyLlama.Random(spec, seed: 2);
        var folder = WriteHfFolder(tiny, SharpLM.Tensors.DType.BF16);
        var gguf = Path.Combine(TestPaths.NewTempDir(), "tiny-bf16.gguf");
        tiny.WriteGguf(gguf, SharpLM.Tensors.DType.BF16);
        using var a = LanguageModel.Load(folder, new ModelLoadOptions { ContextSize = spec.Ctx });
        using var b = LanguageModel.Load(gguf, new ModelLoadOptions { ContextSize = spec.Ctx });
        Assert.Equal(SharpLM.Tensors.DType.BF16, a.Weights.Layers[0].Q.W.Type);
        var prompt = tiny.RandomPrompt(10, seed: 4);
        var la = LlamaParityTests.OurLogits(a, prompt);
        var lb = LlamaParityTests.OurLogits(b, prompt);
        int v = spec.Vocab;
        var rows = Enumerable.Range(0, prompt.Length).Select(r => lb.AsSpan(r * v, v).ToArray()).ToArray();
        double rel = LlamaParityTests.MaxRelativeDiff(rows, r => la.AsSpan(r * v, v), out int row);
        Assert.True(rel < 1e-5, $"BF16 folder differs from the BF16 GGUF by {rel:E2} at position {row}");
    }
}
