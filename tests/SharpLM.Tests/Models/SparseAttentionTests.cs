using SharpLM.Formats;
using SharpLM.Kernels;
using SharpLM.Models;
using SharpLM.Testing;
using SharpLM.Tests.Training;
using SharpLM.Training;
using SharpLM.Training.Checkpoints;

namespace SharpLM.Tests.Models;

/// <summary>
/// Sparse attention (<see cref="ModelConfig.Sparse"/>: local window, stride, global tokens) and the sliding window as
/// training variants of the one decoder: whole-model gradients against finite differences, the keys a trained model's
/// rows actually depend on, and a sparse model loading from its checkpoint with the trainer's logits through the KV cache.
/// </summary>
[Collection("TrainParallel")]
public class SparseAttentionTests
{
    private static ModelConfig Tiny(SparsePattern p) =>
        TrainModel.NewConfig("llama", 11, 8, 2, 2, 2, 12, 8, tied: false) with { Sparse = p };

    [Theory]
    [InlineData(2, 0, 0)]
    [InlineData(0, 3, 0)]
    [InlineData(2, 0, 1)]
    [InlineData(1, 3, 1)]
    public void Sparse_gradients_match_finite_differences(int window, int stride, int global)
    {
        var m = ModelGradTests.Scaled(Tiny(new SparsePattern(window, stride, global)), 9);
        var (x, y) = ModelGradTests.Batch(2, 7, 11, 7);
        ModelGradTests.CheckAll(m, x, y, 2, 7);
    }

    [Theory]
    [InlineData(3, 1)]
    [InlineData(2, 2)]
    public void Sliding_window_gradients_match_finite_differences(int window, int pattern)
    {
        // Mistral's sliding window (every layer) and Gemma's alternation (pattern 2: the last of every two layers is global)
        var c = TrainModel.NewConfig("llama", 11, 8, 2, 2, 2, 12, 8, tied: false) with { SlidingWindow = window, SlidingWindowPattern = pattern };
        Assert.Null(Decoder.NoBackward(c));
        var m = ModelGradTests.Scaled(c, 9);
        var (x, y) = ModelGradTests.Batch(2, 7, 11, 7);
        ModelGradTests.CheckAll(m, x, y, 2, 7);
    }

    /// <summary>Row i's logits change when input token j changes exactly where the pattern (composed over layers) lets
    /// information flow: with one layer, exactly the kept keys.</summary>
    [Fact]
    public void A_one_layer_models_rows_depend_on_exactly_the_kept_keys()
    {
        var p = new SparsePattern(Window: 2, Stride: 4, Global: 1);
        var c = TrainModel.NewConfig("llama", 11, 8, 1, 2, 2, 12, 12, tied: false) with { Sparse = p };
        var m = ModelGradTests.Scaled(c, 4);
        int t = 12;
        var x = Enumerable.Range(0, t).Select(i => (i * 5 + 3) % 11).ToArray();
        m.Forward(x, default, 1, t);
        var baseLogits = m.Logits.ToArray();
        int v = c.Vocab;
        for (int j = 0; j < t; j++)
        {
            var x2 = (int[])x.Clone();
            x2[j] = (x[j] + 1) % 11;
            m.Forward(x2, default, 1, t);
            var l2 = m.Logits.ToArray();
            for (int i = 0; i < t; i++)
            {
                double d = 0;
                for (int k = 0; k < v; k++) d = Math.Max(d, Math.Abs(l2[i * v + k] - baseLogits[i * v + k]));
                bool expected = j <= i && p.Sees(i, j);
                Assert.True(expected == d > 1e-6, $"row {i}, input {j}: changed by {d:E2}, pattern says {(expected ? "kept" : "hole")}");
            }
        }
    }

    [Fact]
    public void A_trained_sparse_model_loads_from_its_checkpoint_with_the_same_logits()
    {
        var spec = TrainModel.NewConfig("llama", 64, 32, 2, 4, 4, 48, 40, tied: false) with { Sparse = new SparsePattern(4, 8, 2) };
        var (m, dir) = ModelGradTests.RandomCheckpoint(spec);
        var read = ModelConfigReader.FromHfConfigFile(Path.Combine(dir, "config.json"));
        Assert.Equal(spec.Sparse, read.Sparse);
        int[] ids = [.. Enumerable.Range(0, 30).Select(i => (i * 37 + 11) % 64)];
        m.Forward(ids, default, 1, ids.Length);
        var ours = m.Logits.ToArray();
        using var model = LanguageModel.Load(dir);
        var state = model.CreateState();
        var first = state.Forward(ids[..13], allLogits: true).ToArray();
        var rest = new List<float>(first);
        foreach (int id in ids[13..]) rest.AddRange(state.Forward([id], allLogits: true).ToArray()); // decode one by one
        float d = 0, size = 0;
        for (int i = 0; i < ours.Length; i++) { d = Math.Max(d, Math.Abs(ours[i] - rest[i])); size = Math.Max(size, Math.Abs(ours[i])); }
        Assert.True(size > 0.1f, $"logits too small to compare ({size})");
        Assert.True(d < 1e-4, $"checkpoint + KV cache vs training forward: max |diff| {d:E3}");
        // the same weights run dense compute something else: the pattern is not a no-op at this length
        var dense = new TrainModel(spec with { Sparse = default });
        m.Parameters.Values.CopyTo(dense.Parameters.Values, 0);
        dense.Forward(ids, default, 1, ids.Length);
        var denseLogits = dense.Logits.ToArray();
        float dd = 0;
        for (int i = 0; i < ours.Length; i++) dd = Math.Max(dd, Math.Abs(ours[i] - denseLogits[i]));
        Assert.True(dd > 1e-3, $"dense and sparse logits differ by only {dd:E3}");
    }

    [Fact]
    public void Invalid_or_unstorable_patterns_are_refused_with_the_reason()
    {
        var gpt2 = TrainModel.NewConfig("gpt2", 11, 8, 1, 2, 2, 12, 6) with { Sparse = new SparsePattern(2) };
        Assert.Contains("sparse attention", Assert.Throws<InvalidDataException>(() => gpt2.Validate("test")).Message);
        var sliding = Tiny(new SparsePattern(2)) with { SlidingWindow = 4 };
        Assert.Contains("sliding window", Assert.Throws<InvalidDataException>(() => sliding.Validate("test")).Message);
        var e = Assert.Throws<NotSupportedException>(() => ModelConfigReader.ToGguf(Tiny(new SparsePattern(2, 0, 1)), new SharpLM.Formats.Gguf.GgufWriter()));
        Assert.Contains("sparse attention (local 2 + global 1)", e.Message);
    }
}
