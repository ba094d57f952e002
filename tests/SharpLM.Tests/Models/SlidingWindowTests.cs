using SharpLM.Inference;
using SharpLM.Models;
using SharpLM.Testing;

namespace SharpLM.Tests.Models;

/// <summary>
/// The rolling KV window of sliding-window layers: its memory stops growing at W + B positions, a long generation
/// through it gives the tokens a whole-context cache gives, and rolling back is refused once the keys are gone.
/// </summary>
public sealed class SlidingWindowTests
{
    private static string Mistral => Path.Combine(TestPaths.TestData, "decoders", "mistral-swa"); // W = 5, every layer slides

    private static int Argmax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    private static (int[] Ids, float[] Last) Generate(string dir, int context, int batch, int[] prompt, int n, Tensors.DType kv = Tensors.DType.F32)
    {
        using var model = LanguageModel.Load(dir, new ModelLoadOptions { ContextSize = context, BatchSize = batch, KvCacheType = kv });
        var s = model.CreateState();
        var logits = s.Forward(prompt, allLogits: false).ToArray();
        var ids = new int[n];
        for (int i = 0; i < n; i++)
        {
            ids[i] = Argmax(logits);
            logits = s.Forward([ids[i]], allLogits: false).ToArray();
        }
        return (ids, logits);
    }

    [Theory]
    [InlineData("mistral-swa")]
    [InlineData("gemma2")]
    public void Memory_stops_growing_past_the_window(string name)
    {
        string dir = Path.Combine(TestPaths.TestData, "decoders", name);
        using var model = LanguageModel.Load(dir, new ModelLoadOptions { ContextSize = 4096, BatchSize = 8 });
        var c = model.Config;
        var small = new KvCache(c, 1024, 8);
        var large = new KvCache(c, 65536, 8);
        for (int l = 0; l < c.Layers; l++)
        {
            if (c.IsSlidingLayer(l))
            {
                Assert.Equal(c.SlidingWindow!.Value + 8, large.Ring(l));
                Assert.Equal(small.Rows(l), large.Rows(l));
                Assert.Equal(2 * (c.SlidingWindow.Value + 8), large.Rows(l));
            }
            else
            {
                Assert.Equal(0, large.Ring(l));
                Assert.Equal(65536, large.Rows(l));
            }
        }
    }

    [Theory]
    [InlineData("mistral-swa")]
    [InlineData("gemma2")]
    public void A_long_generation_through_the_rolling_window_equals_a_whole_context_cache(string name)
    {
        string dir = Path.Combine(TestPaths.TestData, "decoders", name);
        int[] prompt = [1, 40, 7, 93, 12, 55, 3, 8, 61, 20, 17, 44];
        // batch 4: R = W + 4, the cache rolls many times over 150 tokens; batch 256 and context 256: every position kept
        var rolling = Generate(dir, context: 512, batch: 4, prompt, 150);
        var whole = Generate(dir, context: 256, batch: 256, prompt, 150);
        Assert.Equal(whole.Ids, rolling.Ids);
        Assert.True(rolling.Ids.Distinct().Count() > 5, $"degenerate run: {string.Join(' ', rolling.Ids)}");
        double scale = whole.Last.Max(Math.Abs), d = whole.Last.Zip(rolling.Last, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(d / scale < 1e-5, $"the last logits differ by {d / scale:E2}");
    }

    /// <summary>An F16 cache through the rolling window (each position rounded once, written to both of its rows) gives the
    /// ids and logits of an F16 whole-context cache; the mistral-swa fixture's head size (16) is refused for Q8_0 with
    /// the reason.</summary>
    [Fact]
    public void A_compressed_cache_rolls_as_the_f32_one_does()
    {
        int[] prompt = [1, 40, 7, 93, 12, 55, 3, 8, 61, 20, 17, 44];
        var rolling = Generate(Mistral, context: 512, batch: 4, prompt, 150, Tensors.DType.F16);
        var whole = Generate(Mistral, context: 256, batch: 256, prompt, 150, Tensors.DType.F16);
        Assert.Equal(whole.Ids, rolling.Ids);
        double scale = whole.Last.Max(Math.Abs), d = whole.Last.Zip(rolling.Last, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(d / scale < 1e-5, $"the last logits differ by {d / scale:E2}");
        using var m = LanguageModel.Load(Mistral, new ModelLoadOptions { ContextSize = 64 });
        if (m.Config.HeadSize % 32 != 0)
        {
            var e = Assert.Throws<ArgumentException>(() => LanguageModel.Load(Mistral, new ModelLoadOptions { ContextSize = 64, KvCacheType = Tensors.DType.Q8_0 }));
            Assert.Contains("multiple of 32", e.Message, StringComparison.Ordinal);
        }
        else
        {
            var q8 = Generate(Mistral, context: 512, batch: 4, prompt, 150, Tensors.DType.Q8_0);
            var q8Whole = Generate(Mistral, context: 256, batch: 256, prompt, 150, Tensors.DType.Q8_0);
            Assert.Equal(q8Whole.Ids, q8.Ids);
        }
    }

    [Fact]
    public void Rolling_back_further_than_the_window_keeps_is_refused_and_a_short_roll_back_recomputes_exactly()
    {
        using var model = LanguageModel.Load(Mistral, new ModelLoadOptions { ContextSize = 512, BatchSize = 4 });
        int[] prompt = [.. Enumerable.Range(0, 40).Select(i => 3 + i * 7 % 90)];
        using var batch = model.CreateBatch(maxBatchTokens: 4);
        var a = batch.AddSequence();
        batch.Decode([new SequenceInput(a, prompt)]);
        // R = 5 + 4 = 9 positions held: going back 4 (to 36) keeps positions 32..35 for the next row's window; 20 does not
        var e = Assert.Throws<InvalidOperationException>(() => a.Truncate(20));
        Assert.Contains("sliding-window", e.Message, StringComparison.Ordinal);
        Assert.Equal(40, a.Length);
        a.Truncate(36);
        batch.Decode([new SequenceInput(a, new[] { 11, 12, 13 })]);
        var fresh = batch.AddSequence();
        batch.Decode([new SequenceInput(fresh, (int[])[.. prompt[..36], 11, 12, 13])]);
        Assert.Equal(Argmax(fresh.Logits), Argmax(a.Logits));
        double d = fresh.Logits.ToArray().Zip(a.Logits.ToArray(), (x, y) => Math.Abs(x - y)).Max();
        Assert.True(d < 1e-4, $"rolled-back logits differ from recomputed by {d:E2}");
        // a fork at the end keeps the rolling window and goes on as the source
        var fork = batch.Fork(a);
        batch.Decode([new SequenceInput(fork, new[] { 5 }), new SequenceInput(a, new[] { 5 })]);
        Assert.Equal(a.Logits.ToArray(), fork.Logits.ToArray());
    }
}
