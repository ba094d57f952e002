using SharpLM.Inference.Sampling;
using Xunit;

namespace SharpLM.Tests.Inference.Sampling;

public class SamplerTests
{
    private static float[] RandomLogits(int n, int seed, float scale = 3f)
    {
        var r = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(r.NextDouble() * 2 - 1) * scale;
        return x;
    }

    private static readonly SamplingOptions Plain = new() { TopK = 0, TopP = 1f, MinP = 0f, Temperature = 1f, Seed = 1 };

    [Fact]
    public void Greedy_IsArgMax_LowestIdOnTies()
    {
        for (int seed = 0; seed < 50; seed++)
        {
            var logits = RandomLogits(257, seed);
            int expected = Array.IndexOf(logits, logits.Max());
            var s = new Sampler(SamplingOptions.Greedy, logits.Length);
            Assert.Equal(expected, s.Sample(logits, []));
        }
        var tie = new float[] { 1f, 5f, float.NaN, 5f, 2f };
        Assert.Equal(1, new Sampler(SamplingOptions.Greedy, 5).Sample(tie, []));
        var nanFirst = new float[] { float.NaN, -3f, -1f };
        Assert.Equal(2, new Sampler(SamplingOptions.Greedy, 3).Sample(nanFirst, []));
    }

    [Fact]
    public void Seed_Reproduces_AndDifferentSeedsDiffer()
    {
        var logits = RandomLogits(500, 7, 1f);
        var o = SamplingOptions.Default with { Seed = 1234, TopK = 0, TopP = 1f, MinP = 0f, Temperature = 1.5f };
        int[] Run(SamplingOptions opts)
        {
            var s = new Sampler(opts, logits.Length);
            var ids = new int[200];
            for (int i = 0; i < ids.Length; i++) ids[i] = s.Sample((float[])logits.Clone(), []);
            return ids;
        }
        var a = Run(o);
        Assert.Equal(a, Run(o));
        Assert.NotEqual(a, Run(o with { Seed = 1235 }));
        Assert.True(a.Distinct().Count() > 50, "a flat distribution over 500 tokens should give many different ids");
    }

    [Fact]
    public void Xoshiro_MatchesReferenceSequence()
    {
        // xoshiro256** (https://prng.di.unimi.it/xoshiro256starstar.c) from state {1, 2, 3, 4}: the first output is
        // rotl(2 * 5, 7) * 9 = 11520 by hand; the next ones were computed with the reference algorithm in Python.
        var g = new Xoshiro256StarStar(1, 2, 3, 4);
        Assert.Equal(11520UL, g.NextUInt64());
        Assert.Equal(0UL, g.NextUInt64());
        Assert.Equal(1509978240UL, g.NextUInt64());
        Assert.Equal(1215971899390074240UL, g.NextUInt64());
        // seeding goes through splitmix64; its outputs for seed 0 start 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4,
        // 0x06C45D188009454F, 0xF88BB8A8724C81EC (splitmix64.c reference values)
        Assert.Equal((0xE220A8397B1DCDAFUL, 0x6E789E6AA1B965F4UL, 0x06C45D188009454FUL, 0xF88BB8A8724C81ECUL), new Xoshiro256StarStar(0).State);
        double sum = 0;
        for (int i = 0; i < 100_000; i++) { double d = g.NextDouble(); Assert.InRange(d, 0.0, 1.0 - 1e-17); sum += d; }
        Assert.InRange(sum / 100_000, 0.49, 0.51);
    }

    [Theory]
    [InlineData(0.7f, 1)]
    [InlineData(1.0f, 2)]
    [InlineData(2.5f, 3)]
    public void Frequencies_MatchSoftmaxAtTemperature_ChiSquare(float temperature, int seed)
    {
        var logits = new float[] { 1.2f, -0.3f, 0.5f, 2.0f, -1.0f, 0.0f, 1.7f, 0.9f };
        var o = Plain with { Temperature = temperature, Seed = (ulong)seed };
        var s = new Sampler(o, logits.Length);
        const int n = 40_000;
        var counts = new int[logits.Length];
        for (int i = 0; i < n; i++) counts[s.Sample((float[])logits.Clone(), [])]++;

        double Chi2(float t)
        {
            var e = logits.Select(l => Math.Exp(l / t)).ToArray();
            double z = e.Sum(), chi = 0;
            for (int i = 0; i < e.Length; i++)
            {
                double expected = n * e[i] / z;
                chi += (counts[i] - expected) * (counts[i] - expected) / expected;
            }
            return chi;
        }
        // 7 degrees of freedom: P(chi2 > 24.32) = 0.001.
        double chi2 = Chi2(temperature);
        Assert.True(chi2 < 24.32, $"chi2 = {chi2:F2} >= 24.32 (df 7, alpha 0.001): frequencies {string.Join(",", counts)}");
        // The same counts must be clearly inconsistent with a different temperature, so the test can fail.
        double wrong = Chi2(temperature * 1.5f);
        Assert.True(wrong > 100, $"chi2 against the wrong temperature is only {wrong:F2}");
    }

    /// <summary>The naive oracle: sort everything, then apply each filter as llama.cpp describes it.</summary>
    private static int[] NaiveKeep(float[] logits, SamplingOptions o)
    {
        var c = logits.Select((l, i) => (l, i)).OrderByDescending(x => x.l).ThenBy(x => x.i).ToList();
        if (o.TopK > 0) c = c.Take(o.TopK).ToList();
        if (o.TopP < 1f)
        {
            double max = c[0].l;
            var p = c.Select(x => Math.Exp(x.l - max)).ToArray();
            double z = p.Sum(), cum = 0;
            int keep = c.Count;
            for (int i = 0; i < c.Count; i++) { cum += p[i] / z; if (cum >= o.TopP) { keep = i + 1; break; } }
            c = c.Take(keep).ToList();
        }
        if (o.MinP > 0f)
        {
            double pmax = 1.0; // relative to the best kept token
            c = c.Where(x => Math.Exp(x.l - c[0].l) / pmax >= o.MinP * (1 - 1e-6)).ToList();
        }
        return c.Select(x => x.i).OrderBy(i => i).ToArray();
    }

    [Theory]
    [InlineData(40, 1f, 0f)]
    [InlineData(1, 1f, 0f)]
    [InlineData(0, 0.9f, 0f)]
    [InlineData(0, 0.5f, 0f)]
    [InlineData(0, 0f, 0f)]
    [InlineData(0, 1f, 0.05f)]
    [InlineData(0, 1f, 0.3f)]
    [InlineData(40, 0.95f, 0.05f)]
    [InlineData(5000, 0.8f, 0.1f)]
    [InlineData(100, 0.99f, 0.01f)]
    public void Filters_KeepExactlyTheNaiveSets(int topK, float topP, float minP)
    {
        for (int seed = 0; seed < 20; seed++)
        {
            var logits = RandomLogits(1000 + seed, seed, scale: 4f);
            // a few ties, so the tie rule is exercised
            logits[3] = logits[10] = logits[999] = logits.Max();
            var o = Plain with { TopK = topK, TopP = topP, MinP = minP, Temperature = 0.6f };
            var s = new Sampler(o, logits.Length);
            int n = s.Filter((float[])logits.Clone(), []);
            var got = s.Candidates.ToArray().Select(c => c.Id).OrderBy(i => i).ToArray();
            var want = NaiveKeep(logits, o);
            Assert.Equal(n, got.Length);
            Assert.Equal(want, got);
            // temperature scales the kept logits
            foreach (var c in s.Candidates.ToArray())
                Assert.True(Math.Abs(logits[c.Id] / 0.6f - c.Logit) <= 1e-5f * Math.Abs(c.Logit) + 1e-6f, $"id {c.Id}: {c.Logit} vs {logits[c.Id] / 0.6f}");
        }
    }

    /// <summary>Top-p without top-k takes a histogram shortcut instead of sorting the vocabulary: the set must still be
    /// exactly the full sort's, for flat and for very peaked logits (the shortcut's bucket range is max - 64 .. max).</summary>
    [Theory]
    [InlineData(0.001f)]
    [InlineData(0.5f)]
    [InlineData(4f)]
    [InlineData(40f)]
    [InlineData(500f)]
    public void TopPWithoutTopK_MatchesTheFullSort_AtAnyScale(float scale)
    {
        foreach (float p in new[] { 0.1f, 0.5f, 0.9f, 0.95f, 0.999f, 0.99999f })
        {
            for (int seed = 0; seed < 5; seed++)
            {
                var logits = RandomLogits(5000 + seed, 100 + seed, scale);
                if (seed == 1) logits[17] = float.NaN;
                if (seed == 2) logits[42] = float.NegativeInfinity;
                var o = Plain with { TopK = 0, TopP = p, MinP = 0f };
                var s = new Sampler(o, logits.Length);
                s.Filter((float[])logits.Clone(), []);
                var got = s.Candidates.ToArray().Select(c => c.Id).OrderBy(i => i).ToArray();
                var clean = logits.Select(l => float.IsNaN(l) ? float.NegativeInfinity : l).ToArray();
                Assert.Equal(NaiveKeep(clean, o), got);
            }
        }
    }

    [Fact]
    public void MinP_IsRelativeToTheBestToken()
    {
        // p(1) / p(0) = e^-2 = 0.135 >= 0.1 kept; p(2) / p(0) = e^-3 = 0.0498 < 0.1 dropped
        var logits = new float[] { 5f, 3f, 2f, -10f };
        var s = new Sampler(Plain with { MinP = 0.1f }, 4);
        s.Filter(logits, []);
        Assert.Equal([0, 1], s.Candidates.ToArray().Select(c => c.Id).Order().ToArray());
    }

    [Fact]
    public void TopP_IncludesTheTokenThatCrossesP()
    {
        // probabilities 0.5, 0.3, 0.2 (logits are their logs): p = 0.6 keeps the first two, p = 0.5 only the first
        var logits = new float[] { MathF.Log(0.3f), MathF.Log(0.5f), MathF.Log(0.2f) };
        var s = new Sampler(Plain with { TopP = 0.6f }, 3);
        s.Filter((float[])logits.Clone(), []);
        Assert.Equal([0, 1], s.Candidates.ToArray().Select(c => c.Id).Order().ToArray());
        s = new Sampler(Plain with { TopP = 0.45f }, 3);
        s.Filter((float[])logits.Clone(), []);
        Assert.Equal([1], s.Candidates.ToArray().Select(c => c.Id).ToArray());
    }

    [Fact]
    public void SampledTokens_AreAlwaysFromTheKeptSet()
    {
        var logits = RandomLogits(300, 3, 1f);
        var top3 = logits.Select((l, i) => (l, i)).OrderByDescending(x => x.l).Take(3).Select(x => x.i).ToHashSet();
        var s = new Sampler(Plain with { TopK = 3, Temperature = 5f, Seed = 9 }, logits.Length);
        var seen = new HashSet<int>();
        for (int i = 0; i < 2000; i++) seen.Add(s.Sample((float[])logits.Clone(), []));
        Assert.Equal(top3, seen);
    }

    [Fact]
    public void Penalties_AppliedAsSpecified()
    {
        var logits = new float[] { 2f, -1f, 3f, 0.5f, 1f, 4f };
        // window of the last 4: ids 1, 1, 2, 3 (id 0 and 4 are older, id 5 never seen)
        int[] history = [0, 4, 1, 1, 2, 3];
        var o = SamplingOptions.Greedy with { RepeatPenalty = 1.5f, RepeatLastN = 4, FrequencyPenalty = 0.1f, PresencePenalty = 0.2f };
        var s = new Sampler(o, logits.Length);
        var x = (float[])logits.Clone();
        int id = s.Sample(x, history);
        Assert.Equal(2f, x[0]);                                   // outside the window
        Assert.Equal(-1f * 1.5f - 2 * 0.1f - 0.2f, x[1], 5);     // negative: multiplied; seen twice
        Assert.Equal(3f / 1.5f - 0.1f - 0.2f, x[2], 5);           // positive: divided; seen once
        Assert.Equal(0.5f / 1.5f - 0.1f - 0.2f, x[3], 5);
        Assert.Equal(1f, x[4]);
        Assert.Equal(4f, x[5]);
        Assert.Equal(5, id);

        // -1 = the whole history; 0 = off
        x = (float[])logits.Clone();
        new Sampler(o with { RepeatLastN = -1 }, 6).Sample(x, history);
        Assert.Equal(2f / 1.5f - 0.1f - 0.2f, x[0], 5);
        x = (float[])logits.Clone();
        new Sampler(o with { RepeatLastN = 0 }, 6).Sample(x, history);
        Assert.Equal(logits, x);

        // applied a second time with the same history: same result (no state leaks between calls)
        var y1 = (float[])logits.Clone();
        var y2 = (float[])logits.Clone();
        s.Sample(y1, history);
        s.Sample(y2, history);
        Assert.Equal(y1, y2);
    }

    [Fact]
    public void RepeatPenalty_ChangesTheGreedyChoice()
    {
        var logits = new float[] { 2f, 1.9f, 0f };
        var o = SamplingOptions.Greedy with { RepeatPenalty = 1.1f };
        Assert.Equal(1, new Sampler(o, 3).Sample((float[])logits.Clone(), [0]));
        Assert.Equal(0, new Sampler(SamplingOptions.Greedy, 3).Sample((float[])logits.Clone(), [0]));
    }

    [Fact]
    public void Sample_DoesNotAllocate()
    {
        var logits = RandomLogits(32000, 5);
        var buf = new float[logits.Length];
        int[] history = [1, 2, 3, 4, 5, 5, 5];
        var s = new Sampler(SamplingOptions.Default with { Seed = 3, RepeatPenalty = 1.1f, PresencePenalty = 0.5f }, logits.Length);
        var s2 = new Sampler(SamplingOptions.Default with { Seed = 3, TopK = 0 }, logits.Length);
        var s3 = new Sampler(SamplingOptions.Default with { Seed = 3, TopK = 0, TopP = 1f }, logits.Length);
        long Round()
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 20; i++)
            {
                logits.CopyTo(buf, 0);
                s.Sample(buf, history);
                logits.CopyTo(buf, 0);
                s2.Sample(buf, history);
                logits.CopyTo(buf, 0);
                s3.Sample(buf, history);
            }
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }
        // warm up past tiered JIT (its one-off bookkeeping can allocate on this thread), then take the best of
        // three rounds: a per-call allocation would show in every round
        for (int w = 0; w < 3; w++) Round();
        long best = Enumerable.Range(0, 3).Select(_ => Round()).Min();
        Assert.Equal(0, best);
    }

    [Fact]
    public void BadInput_IsAClearError()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(SamplingOptions.Default with { TopP = 1.5f }, 10));
        Assert.Contains("TopP", e.Message);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(SamplingOptions.Default with { RepeatPenalty = 0f }, 10));
        Assert.Contains("RepeatPenalty", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(SamplingOptions.Default, 0));
        var s = new Sampler(SamplingOptions.Default, 10);
        var ae = Assert.Throws<ArgumentException>(() => s.Sample(new float[9], []));
        Assert.Contains("9", ae.Message);
        // ids outside the vocabulary in the history are ignored, not a crash
        var g = new Sampler(SamplingOptions.Greedy with { RepeatPenalty = 2f }, 3);
        Assert.Equal(0, g.Sample(new float[] { 1f, 0f, 0f }, [-1, 7]));
    }

    [Fact]
    public void AllNegativeInfinity_DoesNotCrash()
    {
        var x = new float[] { float.NegativeInfinity, float.NegativeInfinity };
        var s = new Sampler(SamplingOptions.Default with { Seed = 1 }, 2);
        int id = s.Sample(x, []);
        Assert.InRange(id, 0, 1);
    }
}
