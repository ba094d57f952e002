using SharpLM.Inference;
using SharpLM.Inference.Sampling;
using SharpLM.Models;
using SharpLM.Models.Bert;
using SharpLM.Tensors;
using SharpLM.Testing;
using SharpLM.Training;
using SharpLM.Training.Checkpoints;
using SharpLM.Training.Data;
using Xunit.Abstractions;

namespace SharpLM.Tests.Models;

/// <summary>
/// The one model layer: inference and training run the same definition (so they agree exactly on the same weights),
/// and many sequences go through one forward pass with the results each would have alone.
/// </summary>
[Collection("TrainParallel")]
public sealed class OneModelLayerTests(ITestOutputHelper output)
{
    private static TrainModel Trained(string arch, int vocab = 64, ulong seed = 5)
    {
        var m = new TrainModel(TrainModel.NewConfig(arch, vocab, 64, 2, 4, arch == "llama" ? 2 : 4, 96, 48, normEps: arch == "bert" ? 1e-12 : 1e-5));
        m.Initialize(seed);
        var r = new TrainRandom(seed + 1);
        foreach (var info in m.Parameters.Infos)
            if (info.Shape.Length == 2) r.FillNormal(m.Parameters.P(info), 0.15);
            else foreach (ref var v in m.Parameters.P(info)) v += (float)(0.1 * r.NextGaussian());
        return m;
    }

    /// <summary>The inference model bound over the trainer's own parameter memory (no copy).</summary>
    private static LanguageModel InferenceOver(TrainModel m, int batch = 64) =>
        new(m.Parameters.ValueSource, DecoderWeights.Bind(BoundTensors.Bind(m.Parameters.ValueSource, m.Config, TensorNaming.HuggingFace)), null,
            new ModelLoadOptions { ContextSize = m.Config.Context, BatchSize = batch });

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void Inference_and_training_give_the_same_logits_on_the_same_weights(string arch)
    {
        var m = Trained(arch);
        int[] ids = [3, 17, 42, 8, 8, 1, 60, 33, 12, 5, 9, 61, 0, 2, 44, 19, 27, 7, 30, 11];
        m.Forward(ids, default, 1, ids.Length);
        var training = m.Logits.ToArray();
        using var model = InferenceOver(m);
        var inference = model.CreateState().Forward(ids, allLogits: true).ToArray();
        // the same definition over the same kernels with the same rows: identical, not merely close
        Assert.Equal(training, inference);
    }

    [Fact]
    public void Bert_inference_and_training_give_the_same_hidden_states_and_mlm_logits()
    {
        var m = Trained("bert");
        int b = 2, t = 12;
        var ids = new int[b * t];
        for (int i = 0; i < ids.Length; i++) ids[i] = (i * 7 + 3) % 63;
        m.Forward(ids, default, b, t);
        var training = m.Logits.ToArray();
        var model = BertModel.Create(m.Parameters.ValueSource, m.Config, withMlmHead: true);
        var hidden = model.Forward(BertBatch.FromSequences([ids[..t], ids[t..]]));
        var logits = model.MlmLogits(hidden, [.. Enumerable.Range(0, b * t)]);
        Assert.Equal(training, logits);
    }

    private static LanguageModel Tiny(int batch = 256)
    {
        var spec = LlamaParityTests.Shape("hs64-gqa4");
        var tiny = TinyLlama.Random(spec, seed: 21);
        var path = Path.Combine(TestPaths.NewTempDir(), "tiny.gguf");
        tiny.WriteGguf(path, DType.F32);
        return LanguageModel.Load(path, new ModelLoadOptions { ContextSize = 128, BatchSize = batch });
    }

    private static int Argmax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    private static (int[] Ids, float[][] Logits) Alone(LanguageModel model, int[] prompt, int n)
    {
        var s = model.CreateState();
        var ids = new List<int>();
        var rows = new List<float[]>();
        var logits = s.Forward(prompt, allLogits: false).ToArray();
        var one = new int[1];
        for (int i = 0; i < n; i++)
        {
            rows.Add(logits);
            int next = Argmax(logits);
            ids.Add(next);
            one[0] = next;
            logits = s.Forward(one, allLogits: false).ToArray();
        }
        return ([.. ids], [.. rows]);
    }

    /// <summary>
    /// K sequences of different lengths, prefilled in one pass and then decoded together step by step, give exactly the
    /// token ids each gives alone. The logits agree within f32 rounding: together, the prefill rows go through the blocked
    /// GEMM where a short prompt alone takes the row-by-row matvec, which sums in another order (measured below 1e-6 of
    /// the largest logit; the test allows 1e-5).
    /// </summary>
    [Fact]
    public void Sequences_of_different_lengths_in_one_pass_give_each_ones_own_results()
    {
        using var model = Tiny();
        int[][] prompts = [[5, 9, 2], [.. Enumerable.Range(1, 17)], [7], [.. Enumerable.Range(0, 40).Select(i => (i * 13 + 4) % 300)]];
        const int n = 12;
        var alone = prompts.Select(p => Alone(model, p, n)).ToArray();

        using var batch = model.CreateBatch();
        var seqs = prompts.Select(_ => batch.AddSequence()).ToArray();
        batch.Decode([.. seqs.Select((s, i) => new SequenceInput(s, prompts[i]))]);
        var ids = prompts.Select(_ => new List<int>()).ToArray();
        double worst = 0;
        for (int step = 0; step < n; step++)
        {
            var inputs = new List<SequenceInput>();
            for (int k = 0; k < seqs.Length; k++)
            {
                var l = seqs[k].Logits;
                var e = alone[k].Logits[step];
                double scale = e.Max(Math.Abs);
                for (int i = 0; i < e.Length; i++) worst = Math.Max(worst, Math.Abs(e[i] - l[i]) / scale);
                int next = Argmax(l);
                ids[k].Add(next);
                inputs.Add(new SequenceInput(seqs[k], new[] { next }));
            }
            batch.Decode([.. inputs]);
        }
        output.WriteLine($"{prompts.Length} sequences together vs alone: max |diff| / max |logit| = {worst:E2}");
        for (int k = 0; k < prompts.Length; k++) Assert.Equal(alone[k].Ids, ids[k]);
        Assert.True(worst < 1e-5, $"batched logits differ from alone by {worst:E2}");
    }

    [Fact]
    public void A_pass_larger_than_the_batch_is_split_and_gives_the_same_results()
    {
        using var model = Tiny(batch: 8);
        int[] a = [.. Enumerable.Range(3, 21)], b = [4, 4, 4, 9, 200, 17, 1, 2, 3, 4, 5];
        var aloneA = Alone(model, a, 5);
        var aloneB = Alone(model, b, 5);
        using var batch = model.CreateBatch(maxBatchTokens: 8);
        var sa = batch.AddSequence();
        var sb = batch.AddSequence();
        batch.Decode([new(sa, a), new(sb, b)]); // 32 rows in passes of 8
        Assert.Equal(aloneA.Ids[0], Argmax(sa.Logits));
        Assert.Equal(aloneB.Ids[0], Argmax(sb.Logits));
        Assert.Equal(a.Length, sa.Length);
        Assert.Equal(b.Concat(Array.Empty<int>()), sb.Tokens);
    }

    [Fact]
    public void Forking_a_prefix_continues_exactly_as_recomputing_it()
    {
        using var model = Tiny();
        using var batch = model.CreateBatch();
        int[] prompt = [.. Enumerable.Range(10, 20)];
        var a = batch.AddSequence();
        batch.Decode([new(a, prompt)]);
        var atPrompt = a.Logits.ToArray();
        // a goes on with other tokens; the fork must not see them
        batch.Decode([new(a, new[] { 1, 2, 3, 4, 5 })]);
        var fork = batch.Fork(a, prompt.Length);
        Assert.Equal(prompt, fork.Tokens);
        var fresh = batch.AddSequence();
        batch.Decode([new(fresh, prompt)]);
        Assert.Equal(atPrompt, fresh.Logits.ToArray());
        for (int i = 0; i < 8; i++)
        {
            int next = (i * 31 + 7) % 333;
            batch.Decode([new(fork, new[] { next }), new(fresh, new[] { next })]);
            Assert.Equal(fresh.Logits.ToArray(), fork.Logits.ToArray());
        }
        // a whole-sequence fork keeps the logits too
        var whole = batch.Fork(a);
        Assert.Equal(a.Logits.ToArray(), whole.Logits.ToArray());
        Assert.Equal(25, whole.Length);
    }

    [Fact]
    public void Bad_batches_are_refused_before_anything_is_evaluated()
    {
        using var model = Tiny();
        using var batch = model.CreateBatch();
        var s = batch.AddSequence(capacity: 4);
        var e = Assert.Throws<InvalidOperationException>(() => batch.Decode([new(s, new[] { 1, 2, 3, 4, 5 })]));
        Assert.Contains("context holds 4", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, s.Length);
        Assert.Throws<ArgumentException>(() => batch.Decode([new(s, new[] { 1 }), new(s, new[] { 2 })]));
        Assert.Throws<ArgumentOutOfRangeException>(() => batch.Decode([new(s, new[] { 333 })]));
        Assert.Throws<ArgumentException>(() => batch.Decode([new(s, Array.Empty<int>())]));
        batch.Drop(s);
        Assert.Contains("dropped", Assert.Throws<InvalidOperationException>(() => batch.Decode([new(s, new[] { 1 })])).Message, StringComparison.Ordinal);
        using var other = model.CreateBatch();
        Assert.Throws<ArgumentException>(() => other.Decode([new(batch.AddSequence(), new[] { 1 })]));
    }

    /// <summary>A GPT-2 trained by SharpLM, exported to GGUF, runs through the same inference path and in llama.cpp.</summary>
    [Fact]
    public void A_trained_gpt2_exported_to_gguf_runs_in_sharplm_and_llama_cpp()
    {
        var m = Trained("gpt2", vocab: 256);
        var path = Path.Combine(TestPaths.NewTempDir(), "gpt2.gguf");
        GgufExport.Write(path, m.Config, m.Parameters, new ByteTokenizer());
        int[] ids = [.. "GPT-2 in GGUF"u8.ToArray().Select(b => (int)b)];
        m.Forward(ids, default, 1, ids.Length);
        var training = m.Logits.ToArray();
        using var model = LanguageModel.Load(path);
        Assert.Equal("gpt2", model.Config.Architecture);
        var ours = LlamaParityTests.OurLogits(model, ids);
        double d = training.Zip(ours, (x, y) => Math.Abs(x - y)).Max();
        Assert.True(d < 1e-4, $"SharpLM GGUF inference vs training forward: max |diff| {d:E3}");
        using var cpp = new LlamaCppOracle(path, m.Config.Context);
        var flat = cpp.Logits(ids).SelectMany(r => r).ToArray();
        // ggml computes GELU through an f16 lookup table (GGML_GELU_FP16), so llama.cpp's GPT-2 is ~1e-3 off exact math
        double dc = training.Zip(flat, (x, y) => Math.Abs(x - y)).Max() / training.Max(Math.Abs);
        output.WriteLine($"GPT-2: llama.cpp vs SharpLM training forward max |diff| / max |logit| {dc:E3}");
        Assert.True(dc < 2e-3, $"llama.cpp vs training forward: max |diff| / max |logit| {dc:E3}");
        var greedy = LlamaParityTests.OurGreedy(model, ids, 8);
        Assert.Equal(8, greedy.Length);
    }
}
