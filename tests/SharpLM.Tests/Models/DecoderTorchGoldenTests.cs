using SharpLM.Inference;
using SharpLM.Models;
using SharpLM.Testing;
using SharpLM.Tests.Bert;
using Xunit.Abstractions;

namespace SharpLM.Tests.Models;

/// <summary>
/// Mistral with a sliding window, Gemma 2 and Gemma 3 against an exact PyTorch forward written from the Hugging Face model
/// definitions (tools/decoder_golden.py, fixtures in tests/testdata/decoders): llama.cpp runs Mistral without its window
/// and computes GELU through an f16 table, so these logits are checked here at 1e-4. Each prompt is four windows long;
/// one run feeds it at once, the other one token at a time through the rolling KV window.
/// </summary>
public sealed class DecoderTorchGoldenTests(ITestOutputHelper output)
{
    private const string Magic = "sharplm-decoder-golden";

    [Theory]
    [InlineData("mistral-swa", "mistral")]
    [InlineData("gemma2", "gemma2")]
    [InlineData("gemma3", "gemma3")]
    public void Prompt_logits_match_pytorch_in_one_pass_and_token_by_token(string name, string arch)
    {
        string dir = Path.Combine(TestPaths.TestData, "decoders", name);
        using var golden = new TestSafetensors(Path.Combine(dir, "golden.safetensors"));
        string hint = "regenerate with: /usr/bin/python3 tools/decoder_golden.py";
        Assert.True(golden.Metadata.GetValueOrDefault("magic") == Magic, $"{golden.Path}: not a decoder golden file; {hint}");
        Assert.True(golden.Metadata.GetValueOrDefault("version") == "1", $"{golden.Path}: golden version '{golden.Metadata.GetValueOrDefault("version")}', expected 1; {hint}");
        var ids = golden.Floats("ids").Select(f => (int)f).ToArray();
        var expected = golden.Floats("logits");

        foreach (int batch in new[] { 64, 1 })
        {
            using var model = LanguageModel.Load(dir, new ModelLoadOptions { ContextSize = 256, BatchSize = batch });
            Assert.Equal(arch, model.Config.Architecture);
            Assert.True(model.Config.SlidingWindow < ids.Length / 3, "the prompt must be longer than the window");
            var s = model.CreateState();
            float[] ours;
            if (batch > 1) ours = s.Forward(ids, allLogits: true).ToArray();
            else
            {
                ours = new float[expected.Length];
                for (int i = 0; i < ids.Length; i++) s.Forward(ids.AsSpan(i, 1), allLogits: false).CopyTo(ours.AsSpan(i * model.Config.Vocab));
                // the sliding layers kept a rolling window, not the whole context
                Assert.Contains(Enumerable.Range(0, model.Config.Layers), l => s.Cache.Ring(l) > 0);
            }
            int v = model.Config.Vocab, rows = ids.Length;
            var exp = Enumerable.Range(0, rows).Select(r => expected.AsSpan(r * v, v).ToArray()).ToArray();
            double rel = LlamaParityTests.MaxRelativeDiff(exp, r => ours.AsSpan(r * v, v), out int row);
            output.WriteLine($"{name} (batch {batch}): max |diff| / max |logit| = {rel:E2} (row {row}) vs PyTorch");
            Assert.True(rel < 1e-4, $"{name} (batch {batch}): logits differ from PyTorch by {rel:E2} of the largest logit at position {row}");
        }
    }
}
