using SharpLM.Kernels;
using Xunit.Abstractions;

namespace SharpLM.Tests.Kernels;

public sealed unsafe class AttentionTests(ITestOutputHelper output)
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

    private static float[] Rand(Random rng, int n) => [.. Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 4 - 2))];

    /// <summary>The blocked kernel for one sequence with an optional window and cap, each row seeing
    /// [max(0, p+1-window), p+1).</summary>
    private static void Blocked(float[] q, float[] k, float[] v, float[] y, int t, int nh, int kvh, int hs, int startPos, int window, float cap, WorkerPool pool)
    {
        var slot = new int[t];
        var start = new int[t];
        var end = new int[t];
        for (int i = 0; i < t; i++)
        {
            end[i] = startPos + i + 1;
            start[i] = window > 0 ? Math.Max(0, end[i] - window) : 0;
        }
        fixed (float* pk = k, pv = v)
        fixed (int* ps = slot, pst = start, pe = end)
        {
            nint kb = (nint)pk, vb = (nint)pv;
            var rows = new AttentionRows { Slot = ps, KvStart = pst, KvEnd = pe, KBase = &kb, VBase = &vb };
            var opt = AttentionOptions.For(hs) with { Softcap = cap };
            Attention.Forward(q, y, default, t, nh, kvh, hs, rows, pool, opt);
        }
    }

    /// <summary>
    /// The blocked (flash-style) kernel of each variant against the double oracle: contexts longer than a key block and
    /// not a multiple of it, odd head sizes, MQA and wide groups, more rows than a tile, sliding windows (which start
    /// mid-block) and soft-capped scores.
    /// </summary>
    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public void The_blocked_kernel_matches_the_oracle_on_long_contexts_windows_and_caps(KernelIsa isa)
    {
        (int T, int NH, int KVH, int HS, int Start, int Window, float Cap)[] cases =
        [
            (1, 32, 4, 64, 300, 0, 0), (5, 8, 1, 80, 130, 0, 0), (70, 4, 4, 17, 0, 0, 0), (3, 6, 2, 16, 100, 40, 0),
            (9, 4, 2, 32, 50, 0, 30f), (1, 9, 3, 64, 1500, 0, 0), (33, 8, 8, 3, 64, 70, 5f), (2, 12, 4, 128, 191, 0, 0),
        ];
        using var pool = new WorkerPool(2);
        using var _ = KernelIsaSelector.Force(isa);
        foreach (var (t, nh, kvh, hs, startPos, window, cap) in cases)
        {
            var rng = new Random(t * 7 + hs);
            int s = startPos + t;
            var q = Rand(rng, t * nh * hs);
            var k = Rand(rng, s * kvh * hs);
            var v = Rand(rng, s * kvh * hs);
            var expected = new double[t * nh * hs];
            static double[] D(float[] a) => [.. a.Select(x => (double)x)];
            Attention.Naive.Forward<double>(D(q), D(k), D(v), default, expected, 1, t, nh, kvh, hs, causal: true, startPos, cap, pattern: new SparsePattern(window));
            var got = new float[t * nh * hs];
            Blocked(q, k, v, got, t, nh, kvh, hs, startPos, window, cap, pool);
            double max = 0;
            for (int i = 0; i < got.Length; i++) max = Math.Max(max, Math.Abs(got[i] - expected[i]));
            output.WriteLine($"{isa} T{t} NH{nh} KVH{kvh} HS{hs} start {startPos} window {window} cap {cap}: max |diff| {max:E2}");
            Assert.True(max < 2e-5, $"{isa} T{t} NH{nh} KVH{kvh} HS{hs} start {startPos} window {window} cap {cap}: max |diff| {max:E2}");
        }
    }

    /// <summary>A row's output is the same, bit for bit, alone and among other rows and sequences (other tiles, other
    /// slots, more rows sharing its keys).</summary>
    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public void A_rows_output_does_not_depend_on_the_rows_around_it(KernelIsa isa)
    {
        int nh = 8, kvh = 2, hs = 64;
        int[] lens = [150, 7];     // cached keys per sequence
        int[] news = [40, 3];      // rows of this pass per sequence (at the end of their keys)
        var rng = new Random(4);
        var k = lens.Select(l => Rand(rng, l * kvh * hs)).ToArray();
        var v = lens.Select(l => Rand(rng, l * kvh * hs)).ToArray();
        int n = news.Sum();
        var q = Rand(rng, n * nh * hs);
        var slot = new int[n];
        var end = new int[n];
        for (int sq = 0, i = 0; sq < 2; sq++)
            for (int r = 0; r < news[sq]; r++, i++) { slot[i] = sq; end[i] = lens[sq] - news[sq] + r + 1; }
        var all = new float[n * nh * hs];
        var lseAll = new float[n * nh];
        using var _ = KernelIsaSelector.Force(isa);
        fixed (float* k0 = k[0], k1 = k[1], v0 = v[0], v1 = v[1])
        fixed (int* ps = slot, pe = end)
        {
            nint* kb = stackalloc nint[] { (nint)k0, (nint)k1 };
            nint* vb = stackalloc nint[] { (nint)v0, (nint)v1 };
            var rows = new AttentionRows { Slot = ps, KvEnd = pe, KBase = kb, VBase = vb };
            Attention.Forward(q, all, lseAll, n, nh, kvh, hs, rows, WorkerPool.Shared);
            var one = new float[nh * hs];
            var lseOne = new float[nh];
            for (int i = 0; i < n; i++)
            {
                var r1 = new AttentionRows { Slot = ps + i, KvEnd = pe + i, KBase = kb, VBase = vb };
                Attention.Forward(q.AsSpan(i * nh * hs, nh * hs), one, lseOne, 1, nh, kvh, hs, r1, WorkerPool.Shared);
                KernelTestUtil.AssertBitEqual(all.AsSpan(i * nh * hs, nh * hs), one, $"{isa} row {i} alone vs in the batch");
                KernelTestUtil.AssertBitEqual(lseAll.AsSpan(i * nh, nh), lseOne, $"{isa} lse of row {i}");
            }
        }
    }
}
