using System.Text.Json.Nodes;
using SharpLM.Formats.Gguf;
using SharpLM.Inference;
using SharpLM.Models;
using SharpLM.Quantization;
using SharpLM.Testing;
using SharpLM.Tests.Models;
using Xunit.Abstractions;

namespace SharpLM.Tests.Quantization;

/// <summary>
/// Every file type SharpLM writes, run in SharpLM and in llama.cpp on the same quantized GGUF (made by SharpLM's quantizer,
/// byte-identical to llama.cpp's). llama.cpp rounds the activations to 8 bits before each quantized matmul (Q8_0 for
/// the legacy types, Q8_K for the k-quants and IQ4) while SharpLM multiplies f32 activations with the dequantized
/// weights, so the logits agree within a tolerance (stated per type: a few times what was measured), and the greedy
/// choices are compared step by step along llama.cpp's own greedy continuation: at least 60 of 64 must agree.
/// </summary>
public sealed class QuantizedParityTests(ITestOutputHelper output)
{
    private static readonly Lazy<(RandomModel Model, string F32)> s_llama = new(() =>
    {
        var m = RandomModel.Create(SmallLlamaShapeTests.Config(256, 8, 2, 512, 300, 10000, tied: false, layers: 1), 7, attentionGain: 1f);
        return (m, m.Gguf());
    });

    private static readonly Lazy<(RandomModel Model, string F32)> s_qwen = new(() =>
    {
        var c = SmallLlamaShapeTests.Config(160, 5, 1, 288, 320, 1000000, tied: true, layers: 3);
        c["architectures"] = new JsonArray("Qwen2ForCausalLM");
        c["model_type"] = "qwen2";
        var m = RandomModel.Create(c, 8, attentionGain: 1f);
        return (m, m.Gguf());
    });

    /// <summary>File type, the model (C 256: k-quant blocks; C 160: the fallbacks to Q5_0/Q5_1/Q8_0/IQ4_NL/Q4_0), and the
    /// tolerance on max |diff| / max |logit|: about twice what was measured here (F16 5.5e-4, BF16 5.0e-3, Q8_0 1.5e-2,
    /// the 4- to 6-bit types 1.5e-2 to 2.5e-2, Q3_K 2.2e-2 to 2.8e-2, Q2_K 2.5e-2), all from llama.cpp's 8-bit
    /// activations (F16 and BF16: its 16-bit ones).</summary>
    public static TheoryData<string, string, double> Cases => new()
    {
        { "f16", "llama", 2e-3 },
        { "bf16", "llama", 1.5e-2 },
        { "q8_0", "llama", 4e-2 },
        { "q6_k", "llama", 5e-2 },
        { "q5_k_m", "llama", 5e-2 },
        { "q5_k_s", "llama", 5e-2 },
        { "q5_1", "llama", 5e-2 },
        { "q5_0", "llama", 5e-2 },
        { "q4_k_m", "llama", 5e-2 },
        { "q4_k_s", "llama", 5e-2 },
        { "q4_1", "llama", 5e-2 },
        { "q4_0", "llama", 5e-2 },
        { "iq4_xs", "llama", 5e-2 },
        { "iq4_nl", "llama", 5e-2 },
        { "q3_k_l", "llama", 6e-2 },
        { "q3_k_m", "llama", 6e-2 },
        { "q3_k_s", "llama", 6e-2 },
        { "q2_k", "llama", 6e-2 },
        { "q4_k_m", "qwen2-C160", 5e-2 },
        { "iq4_xs", "qwen2-C160", 5e-2 },
        { "q3_k_m", "qwen2-C160", 6e-2 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_within_the_tolerance_and_60_of_64_greedy_choices_match_llama_cpp(string fileType, string model, double tolerance)
    {
        var ft = QuantFileType.Parse(fileType);
        var (m, f32) = model == "llama" ? s_llama.Value : s_qwen.Value;
        var path = Path.Combine(TestPaths.NewTempDir("quant-parity"), $"{model}-{fileType}.gguf");
        using (var src = GgufFile.Open(f32)) GgufRequantize.Build(src, ft).Write(path);
        var prompt = m.Prompt(33, seed: 9);
        using var ours = LanguageModel.Load(path, new ModelLoadOptions { ContextSize = 256, BatchSize = 64 });
        using var cpp = new LlamaCppOracle(path, 256);
        var expected = cpp.Logits(prompt);
        var logits = LlamaParityTests.OurLogits(ours, prompt);
        int v = m.Config.Vocab;
        double rel = LlamaParityTests.MaxRelativeDiff(expected, r => logits.AsSpan(r * v, v), out int row);

        // llama.cpp's greedy continuation; SharpLM's choice at each step of it (the same context for both)
        var cppIds = cpp.Greedy(prompt, 64);
        var all = ours.CreateState().Forward([.. prompt, .. cppIds], allLogits: true);
        int agree = 0;
        for (int i = 0; i < 64; i++)
            if (Argmax(all.Slice((prompt.Length - 1 + i) * v, v)) == cppIds[i]) agree++;
        var free = LlamaParityTests.OurGreedy(ours, prompt, 64);
        int prefix = free.Zip(cppIds).TakeWhile(p => p.First == p.Second).Count();
        output.WriteLine($"{model} {ft}: max |diff| / max |logit| = {rel:E2} (row {row}); {agree} of 64 greedy choices agree along llama.cpp's path; free-running greedy identical for {prefix}");
        Assert.True(rel < tolerance, $"{model} {ft}: logits differ from llama.cpp by {rel:E2} of the largest logit (tolerance {tolerance:E1}) at position {row}");
        Assert.True(agree >= 60, $"{model} {ft}: only {agree} of 64 greedy choices agree with llama.cpp");
        Assert.True(cppIds.Distinct().Count() > 5, $"degenerate greedy run: {string.Join(' ', cppIds)}");
    }

    private static int Argmax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
