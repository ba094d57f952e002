using SharpLM.Kernels;

namespace SharpLM.Tests.Kernels;

public sealed class AttentionTests
{
    [Theory]
    [InlineData(1, 4, 4, 32, 0)]
    [InlineData(5, 4, 1, 64, 0)]
    [InlineData(3, 6, 2, 16, 7)]
    [InlineData(1, 9, 3, 128, 40)]
    [InlineData(17, 2, 2, 8, 3)]
    public void Matches_the_naive_oracle_with_causal_mask_and_gqa(int t, int nh, int kvh, int hs, int startPos)
    {
        var rng = new Random(t * 1000 + nh * 10 + hs);
        int s = startPos + t;
        float[] R(int n) => [.. Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 4 - 2))];
        var q = R(t * nh * hs);
        var k = R(s * kvh * hs);
        var v = R(s * kvh * hs);
        var expected = new float[t * nh * hs];
        var actual = new float[t * nh * hs];
        Oracles.Attention(q, k, v, expected, t, nh, kvh, hs, startPos);
        Oracles.FastAttention(q, k, v, actual, t, nh, kvh, hs, startPos);
        double max = 0;
        for (int i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs(expected[i] - actual[i]));
        Assert.True(max < 1e-5, $"max |diff| = {max:E2}");
    }

    [Theory]
    [InlineData(1, 32, 4, 64, 600)]
    [InlineData(16, 8, 2, 64, 30)]
    [InlineData(40, 12, 4, 32, 0)]
    public void The_parallel_path_on_a_two_thread_pool_matches_the_oracle(int t, int nh, int kvh, int hs, int startPos)
    {
        var rng = new Random(t + nh + startPos);
        int s = startPos + t;
        float[] R(int n) => [.. Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 4 - 2))];
        var q = R(t * nh * hs);
        var k = R(s * kvh * hs);
        var v = R(s * kvh * hs);
        var expected = new float[t * nh * hs];
        var actual = new float[t * nh * hs];
        Oracles.Attention(q, k, v, expected, t, nh, kvh, hs, startPos);
        using var pool = new WorkerPool(2);
        Oracles.FastAttention(q, k, v, actual, t, nh, kvh, hs, startPos, pool);
        double max = 0;
        for (int i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs(expected[i] - actual[i]));
        Assert.True(max < 1e-5, $"max |diff| = {max:E2}");
    }

    [Fact]
    public void Later_keys_do_not_affect_earlier_queries()
    {
        // causal: changing the last key/value must leave every query but the last unchanged
        int t = 4, nh = 2, kvh = 1, hs = 8;
        var rng = new Random(3);
        float[] R(int n) => [.. Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble())];
        var q = R(t * nh * hs);
        var k = R(t * kvh * hs);
        var v = R(t * kvh * hs);
        var a = new float[t * nh * hs];
        var b = new float[t * nh * hs];
        Oracles.FastAttention(q, k, v, a, t, nh, kvh, hs, 0);
        for (int i = (t - 1) * kvh * hs; i < t * kvh * hs; i++) { k[i] += 5; v[i] -= 3; }
        Oracles.FastAttention(q, k, v, b, t, nh, kvh, hs, 0);
        Assert.Equal(a.AsSpan(0, (t - 1) * nh * hs).ToArray(), b.AsSpan(0, (t - 1) * nh * hs).ToArray());
        Assert.NotEqual(a.AsSpan((t - 1) * nh * hs).ToArray(), b.AsSpan((t - 1) * nh * hs).ToArray());
    }

    [Fact]
    public void The_first_position_returns_its_own_value()
    {
        float[] q = [1, 2, 3, 4], k = [4, 3, 2, 1], v = [0.5f, -1, 2, 7], y = new float[4];
        Oracles.FastAttention(q, k, v, y, 1, 1, 1, 4, 0);
        Assert.Equal(v, y);
    }
}
