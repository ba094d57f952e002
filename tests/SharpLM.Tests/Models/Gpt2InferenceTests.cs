using System.Text.Json.Nodes;
using SharpLM.Inference;
using SharpLM.Inference.Sampling;
using SharpLM.Models;
using SharpLM.Testing;
using SharpLM.Training;
using SharpLM.Training.Checkpoints;
using Xunit.Abstractions;

namespace SharpLM.Tests.Models;

/// <summary>
/// GPT-2 as a loadable model: a Hugging Face GPT2LMHeadModel folder (Conv1D matrices stored (in, out)) and its GGUF
/// against llama.cpp, and a GPT-2 trained by SharpLM loading from its checkpoint folder and generating through the same
/// inference path.
/// </summary>
[Collection("TrainParallel")]
public sealed class Gpt2InferenceTests(ITestOutputHelper output)
{
    internal static JsonObject Config(int c, int layers, int heads, int vocab, int positions) => new()
    {
        ["architectures"] = new JsonArray("GPT2LMHeadModel"),
        ["model_type"] = "gpt2",
        ["vocab_size"] = vocab,
        ["n_embd"] = c,
        ["n_layer"] = layers,
        ["n_head"] = heads,
        ["n_positions"] = positions,
        ["activation_function"] = "gelu_new",
        ["layer_norm_epsilon"] = 1e-5,
    };

    [Theory]
    [InlineData(64, 2, 4, 301)]
    [InlineData(96, 3, 2, 290)]
    public void Hf_folder_and_its_gguf_match_llama_cpp(int c, int layers, int heads, int vocab)
    {
        var m = RandomModel.Create(Config(c, layers, heads, vocab, 256), seed: c + layers);
        var gguf = m.Gguf();
        var prompt = m.Prompt(40, seed: 9);
        // ggml's GELU goes through an f16 table (GGML_GELU_FP16): ~1e-3 off exact math
        Parity.AgainstLlamaCpp(gguf, gguf, prompt, 3e-3, greedy: 64, output, $"gpt2 C{c} L{layers} NH{heads} GGUF", minGreedyEqual: 60);
        Parity.AgainstLlamaCpp(m.HfDir, gguf, prompt, 3e-3, greedy: 0, output, $"gpt2 C{c} L{layers} NH{heads} HF folder");
    }

    /// <summary>The converter's writer reads the rows after Build has returned; GPT-2's Conv1D matrices are transposed
    /// into pinned copies that the binding owns. A full collection between Build and Write, then fresh pinned memory
    /// filled with NaN, must not change what is written (it did: the binding was collectable, and the writer read freed
    /// memory, or crashed the process).</summary>
    [Fact]
    public void A_gpt2_conversion_survives_a_collection_between_build_and_write()
    {
        var m = RandomModel.Create(Config(64, 2, 4, 301, 256), seed: 11);
        var gguf = Path.Combine(TestPaths.NewTempDir(), "gpt2.gguf");
        using (var folder = SharpLM.Formats.HuggingFace.HfModelFolder.Open(m.HfDir))
        {
            var w = SharpLM.Formats.HuggingFace.HfToGguf.Build(folder, new(SharpLM.Quantization.QuantFileType.Parse("f32"), "random-model"));
            TinyLlama.WriteVocab(w, m.Config.Vocab);
            for (int i = 0; i < 3; i++) { GC.Collect(); GC.WaitForPendingFinalizers(); }
            var junk = new List<float[]>();
            for (int i = 0; i < 64; i++) { var a = GC.AllocateArray<float>(64 * 256, pinned: true); a.AsSpan().Fill(float.NaN); junk.Add(a); }
            w.Write(gguf);
            GC.KeepAlive(junk);
        }
        int[] ids = m.Prompt(24, seed: 3);
        using var fromHf = LanguageModel.Load(m.HfDir);
        using var fromGguf = LanguageModel.Load(gguf);
        var a1 = LlamaParityTests.OurLogits(fromHf, ids);
        var b1 = LlamaParityTests.OurLogits(fromGguf, ids);
        double d = a1.Zip(b1, (x, y) => Math.Abs(x - y)).Max();
        Assert.True(d < 1e-5, $"HF folder vs its conversion: max |diff| {d:E3}");
    }

    [Fact]
    public void A_gpt2_trained_by_sharplm_loads_from_its_checkpoint_and_generates()
    {
        var spec = TrainModel.NewConfig("gpt2", 256, 64, 2, 4, 4, 96, 48);
        var m = new TrainModel(spec);
        m.Initialize(7);
        var r = new TrainRandom(9);
        foreach (var info in m.Parameters.Infos) if (info.Shape.Length == 2) r.FillNormal(m.Parameters.P(info), 0.15);
        var dir = Path.Combine(TestPaths.NewTempDir(), "ck");
        TrainCheckpoint.Save(dir, spec, m.Parameters, new SharpLM.Training.Optim.AdamW(m.Parameters.Count), new JsonObject(), null);
        int[] ids = [.. "a gpt-2 checkpoint"u8.ToArray().Select(b => (int)b)];
        m.Forward(ids, default, 1, ids.Length);
        var training = m.Logits.ToArray();

        using var model = LanguageModel.Load(dir);
        Assert.Equal("gpt2", model.Config.Architecture);
        var ours = LlamaParityTests.OurLogits(model, ids);
        double d = training.Zip(ours, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(d < 1e-4, $"checkpoint folder vs training forward: max |diff| {d:E3}");
        var gen = new Generator(model.CreateState(), new Sampler(SamplingOptions.Greedy, model.Config.Vocab), eosIds: []);
        var next = gen.Generate(ids, 16).ToArray();
        Assert.Equal(16, next.Length);
        // the same greedy continuation as the training model's own argmax, step by step
        var all = ids.ToList();
        foreach (int t in next)
        {
            m.Forward([.. all], default, 1, all.Count);
            var last = m.Logits.Slice((all.Count - 1) * spec.Vocab, spec.Vocab);
            int best = 0;
            for (int i = 1; i < last.Length; i++) if (last[i] > last[best]) best = i;
            Assert.Equal(best, t);
            all.Add(t);
        }
    }
}
