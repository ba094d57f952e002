using SharpLM.Kernels;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;

namespace SharpLM.Tests.Kernels;

/// <summary>
/// Row groups (<see cref="RowGroups"/>): a loaded model's Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q4_K, Q5_K and Q6_K matrices regrouped eight rows at a time. The
/// regrouping loses nothing (every row copies back out bit for bit), the group kernel matches the integer oracle (the
/// exact block sums times the scales, in double) to f32 rounding, and a regrouped matrix gives through every path what
/// the plain one gives: the same bits where the path reads plain rows (the GEMMs, f32 activations, the scalar variant,
/// the embedding lookup), the same products to f32 rounding in the matvec, whose rows do not depend on the batch or the
/// threads.
/// </summary>
public sealed unsafe class RowGroupsTests
{
    public static TheoryData<DType, int> TypesAndWidths()
    {
        var d = new TheoryData<DType, int>();
        foreach (var t in new[] { DType.Q8_0, DType.Q4_0, DType.Q5_0, DType.Q4_1, DType.Q5_1 })
            foreach (int c in new[] { 32, 96, 576, 896, 4864 }) d.Add(t, c);
        foreach (var t in new[] { DType.Q4_K, DType.Q5_K, DType.Q6_K })
            foreach (int c in new[] { 256, 768, 2048, 5632 }) d.Add(t, c);
        return d;
    }

    [Theory]
    [MemberData(nameof(TypesAndWidths))]
    public void Regrouped_rows_copy_back_out_bit_for_bit(DType type, int cols)
    {
        var rng = new Random(cols);
        int rows = 21; // two groups and five plain rows
        var plain = KernelTestUtil.RandomWeights(rng, type, rows, cols, out _);
        var grouped = (byte[])plain.Clone();
        long rowBytes = DTypeInfo.RowBytes(type, cols);
        var back = new byte[rowBytes];
        fixed (byte* g = grouped)
        fixed (byte* b = back)
        {
            RowGroups.RegroupInPlace(type, g, rows, cols);
            Assert.False(plain.AsSpan(0, (int)(16 * rowBytes)).SequenceEqual(grouped.AsSpan(0, (int)(16 * rowBytes))));
            Assert.True(plain.AsSpan((int)(16 * rowBytes)).SequenceEqual(grouped.AsSpan((int)(16 * rowBytes))), "the rows past the last group stay as they were");
            var m = new WeightMatrix(type, g, rows, cols, grouped: true);
            Assert.Equal(16, m.GroupedRows);
            for (int r = 0; r < rows; r++)
            {
                byte* p = m.PlainRow(r, b);
                Assert.True(new ReadOnlySpan<byte>(p, (int)rowBytes).SequenceEqual(plain.AsSpan((int)(r * rowBytes), (int)rowBytes)), $"row {r}");
                Assert.True(m.Row(r).SequenceEqual(plain.AsSpan((int)(r * rowBytes), (int)rowBytes)), $"Row({r})");
            }
        }
    }

    [GroupKernelTheory]
    [MemberData(nameof(TypesAndWidths))]
    public void The_group_kernel_matches_the_integer_oracle(DType type, int cols)
    {
        var rng = new Random(cols + 7);
        var traits = DTypes.Of(type);
        int block = traits.DotQ8Block;
        var w = KernelTestUtil.RandomWeights(rng, type, 8, cols, out _);
        var x = KernelTestUtil.Gaussian(rng, cols);
        x[0] = 40f; // a block with one large value: its other values quantize to small integers
        var xq = new byte[Q8Activations.RowStride(cols, block) + 64];
        var y = new float[8];
        var y4 = new float[4 * 8];
        fixed (byte* pw = w)
        fixed (float* px = x)
        fixed (byte* pq = xq)
        fixed (float* py = y)
        fixed (float* py4 = y4)
        {
            var row = Q8Activations.At((byte*)(((nint)pq + 63) & ~(nint)63), cols, block);
            Q8Activations.Quantize(px, cols, block, row, KernelIsaSelector.Best);
            // the oracle from the type's integer form (Unpack32: per 32 values the integers u, the scale d and the min m,
            // w = d (u - offset) + m, per Int8.Sub values), the block sums exact, in double
            var oracle = new double[8];
            var bound = new double[8];
            long rowBytes = DTypeInfo.RowBytes(type, cols);
            var u = new byte[cols];
            int sub = traits.Int8.Sub;
            var d = new float[cols / sub];
            var m = new float[cols / sub];
            fixed (byte* pu = u)
            fixed (float* pd = d)
            fixed (float* pm = m)
                for (int i = 0; i < 8; i++)
                {
                    traits.Unpack32(pw + i * rowBytes, cols, pu, pd, pm);
                    for (int j = 0; j < cols / sub; j++)
                    {
                        long isum = 0, xsum = 0;
                        for (int k = sub * j; k < sub * j + sub; k++)
                        {
                            int ui = traits.Int8.Signed ? (sbyte)u[k] : u[k] - traits.Int8.Offset;
                            isum += (long)ui * row.Q[k];
                            xsum += row.Q[k];
                        }
                        double dx = row.D[sub * j / block];
                        double term = (double)d[j] * dx * isum, minTerm = traits.Int8.HasMin ? (double)m[j] * dx * xsum : 0;
                        oracle[i] += term + minTerm;
                        bound[i] += Math.Abs(term) + Math.Abs(minTerm);
                    }
                }
            RowGroups.RegroupInPlace(type, pw, 8, cols);
            RowGroups.Dot(type, pw, &row, 1, cols, py);
            for (int i = 0; i < 8; i++)
                Assert.True(Math.Abs(y[i] - oracle[i]) <= 2e-6 * bound[i] + 1e-30, $"{type} {cols} row {i}: {y[i]} vs oracle {oracle[i]} (sum |terms| {bound[i]})");
        }
        // four other activation rows at once: each gets the one-row kernel's bits
        long stride = Q8Activations.RowStride(cols, block);
        var more = new byte[4 * stride + 64];
        var x4 = KernelTestUtil.Gaussian(rng, 4 * cols);
        fixed (byte* pw = w)
        fixed (byte* pm = more)
        fixed (float* px = x4)
        fixed (float* py4 = y4)
        fixed (float* py = y)
        {
            byte* at = (byte*)(((nint)pm + 63) & ~(nint)63);
            var xs = stackalloc Q8Row[4];
            for (int r = 0; r < 4; r++)
            {
                xs[r] = Q8Activations.At(at + r * stride, cols, block);
                Q8Activations.Quantize(px + r * cols, cols, block, xs[r], KernelIsaSelector.Best);
            }
            RowGroups.Dot(type, pw, xs, 4, cols, py4);
            for (int r = 0; r < 4; r++)
            {
                RowGroups.Dot(type, pw, xs + r, 1, cols, py);
                KernelTestUtil.AssertBitEqual(y, y4.AsSpan(8 * r, 8), $"{type} {cols} four-row kernel, row {r}");
            }
        }
    }

    /// <summary>Plain and regrouped copies of one random matrix (the grouped one regrouped only where the machine does it).</summary>
    private static (byte[] Plain, byte[] Grouped) Matrices(Random rng, DType type, int rows, int cols)
    {
        var plain = KernelTestUtil.RandomWeights(rng, type, rows, cols, out _);
        var grouped = (byte[])plain.Clone();
        fixed (byte* g = grouped) RowGroups.RegroupInPlace(type, g, rows, cols);
        return (plain, grouped);
    }

    [Theory]
    [InlineData(DType.Q8_0, 37, 576)]
    [InlineData(DType.Q4_0, 64, 896)]
    [InlineData(DType.Q4_0, 13, 128)]
    [InlineData(DType.Q4_K, 43, 512)]
    [InlineData(DType.Q4_K, 16, 2048)]
    [InlineData(DType.Q6_K, 27, 768)]
    [InlineData(DType.Q5_K, 19, 1024)]
    [InlineData(DType.Q5_0, 35, 896)]
    [InlineData(DType.Q4_1, 24, 576)]
    [InlineData(DType.Q5_1, 17, 896)]
    [InlineData(DType.Q6_K, 8, 256)]
    public void A_regrouped_matrix_gives_the_plain_ones_results_through_every_path(DType type, int rows, int cols)
    {
        // (without AVX-VNNI, or with the intrinsics off, the matvec copies grouped rows out for the row-by-row dots)
        var rng = new Random(rows * cols);
        var (plain, grouped) = Matrices(rng, type, rows, cols);
        using var pool2 = new WorkerPool(2);
        fixed (byte* pp = plain)
        fixed (byte* pg = grouped)
        {
            var wp = new WeightMatrix(type, pp, rows, cols);
            var wg = new WeightMatrix(type, pg, rows, cols, grouped: true);
            foreach (int t in new[] { 1, 2, 5, 9, 20 })
            {
                var x = KernelTestUtil.Gaussian(rng, t * cols);
                var yp = new float[t * rows];
                var yg = new float[t * rows];
                foreach (var pool in new[] { WorkerPool.Shared, pool2 })
                {
                    var best = KernelIsaSelector.Best;
                    MatMul.Forward(x, wp, yp, t, pool, best);
                    MatMul.Forward(x, wg, yg, t, pool, best);
                    if (t >= MatMul.GemmMinRows) KernelTestUtil.AssertBitEqual(yp, yg, $"integer GEMM T={t}");
                    else KernelTestUtil.AssertClose(yp, yg, 1e-4, $"matvec T={t} ({pool.Threads} threads)");
                    // each row of a batch is the row alone
                    if (t < MatMul.GemmMinRows)
                        for (int i = 0; i < t; i++)
                        {
                            var one = new float[rows];
                            MatMul.Forward(x.AsSpan(i * cols, cols), wg, one, 1, pool, best);
                            KernelTestUtil.AssertBitEqual(one, yg.AsSpan(i * rows, rows), $"T={t} row {i} vs alone");
                        }
                    using (MatMul.ExactActivations())
                    {
                        MatMul.Forward(x, wp, yp, t, pool, best);
                        MatMul.Forward(x, wg, yg, t, pool, best);
                        KernelTestUtil.AssertBitEqual(yp, yg, $"f32 activations T={t}");
                    }
                    MatMul.Forward(x, wp, yp, t, pool, KernelIsa.Scalar);
                    MatMul.Forward(x, wg, yg, t, pool, KernelIsa.Scalar);
                    KernelTestUtil.AssertBitEqual(yp, yg, $"scalar T={t}");
                }
            }
            int[] ids = [0, rows - 1, 7, Math.Min(8, rows - 1), rows / 2];
            var ep = new float[ids.Length * cols];
            var eg = new float[ids.Length * cols];
            Embedding.Forward(wp, ids, ep);
            Embedding.Forward(wg, ids, eg);
            KernelTestUtil.AssertBitEqual(ep, eg, "embedding lookup");
        }
    }
}

/// <summary>A theory about the group kernels themselves: reported as skipped (with the reason) where the machine has no
/// AVX-VNNI, since nothing is regrouped there (the round trip and every-path tests still run).</summary>
public sealed class GroupKernelTheoryAttribute : TheoryAttribute
{
    public GroupKernelTheoryAttribute()
    {
        if (!RowGroups.Regroups(DType.Q8_0)) Skip = "no group kernels here: they need AVX-VNNI";
    }
}
