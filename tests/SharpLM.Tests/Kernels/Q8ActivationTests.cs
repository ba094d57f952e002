using SharpLM.Kernels;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;
using Xunit.Abstractions;

namespace SharpLM.Tests.Kernels;

/// <summary>
/// The 8-bit activations of the integer matvec: the SIMD quantizer is bit-identical to the reference one, every type's
/// integer dot (each variant) matches the generic oracle (naive dequantizer times d*q, in double) to f32 rounding, the
/// 8-bit result stays within the activation rounding bound of the exact f32 product, and a row gets the same result
/// through the matvec (alone) as through the GEMM (in a batch).
/// </summary>
public sealed unsafe class Q8ActivationTests(ITestOutputHelper output)
{
    public static TheoryData<DType, KernelIsa> Int8TypeIsa() => MatMulTests.Int8TypeIsa();

    private static (sbyte[] Q, float[] D, short[] S) Reference(float[] x, int block)
    {
        var q = new sbyte[x.Length];
        var d = new float[x.Length / block];
        var s = new short[x.Length / 16];
        Q8Activations.QuantizeNaive(x, block, q, d, s);
        return (q, d, s);
    }

    /// <summary>|x - d q| / d at most: half a step, and for 32-blocks the f16 rounding of d (2^-11 relative) times |q| &lt;= 127.</summary>
    private static double Bound(int block) => block == 32 ? 0.5 + 127 * Math.Pow(2, -11) : 0.5000001;

    private static float[] Activations(Random rng, int n)
    {
        var x = KernelTestUtil.Gaussian(rng, n);
        // blocks of zeros, a huge outlier, ties at .5 after scaling, and tiny values
        for (int i = 0; i < Math.Min(32, n); i++) x[i] = 0;
        if (n > 40) x[40] = 1e4f;
        if (n > 64) for (int i = 64; i < Math.Min(96, n); i++) x[i] = (i % 5 - 2) * 0.5f;
        if (n > 100) x[100] = 1e-30f;
        return x;
    }

    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public void The_quantizer_is_bit_identical_to_the_reference(KernelIsa isa)
    {
        var rng = new Random(3);
        foreach (int block in new[] { 32, 256 })
            foreach (int n in new[] { 256, 512, 2048, 5632 })
            {
                var x = Activations(rng, n);
                var (q, d, s) = Reference(x, block);
                var buf = new byte[Q8Activations.RowStride(n, block) + 64];
                fixed (byte* pb = buf)
                fixed (float* px = x)
                {
                    byte* aligned = (byte*)(((nint)pb + 63) & ~(nint)63);
                    var row = Q8Activations.At(aligned, n, block);
                    Q8Activations.Quantize(px, n, block, row, isa);
                    Assert.Equal(q, new ReadOnlySpan<sbyte>(row.Q, n).ToArray());
                    Assert.Equal(d, new ReadOnlySpan<float>(row.D, n / block).ToArray());
                    Assert.Equal(s, new ReadOnlySpan<short>(row.Sums, n / 16).ToArray());
                }
                // the rounding bound: |x - d q| <= d / 2, plus |q| times the f16 rounding of d for 32-blocks
                for (int i = 0; i < n; i++)
                {
                    double err = Math.Abs(x[i] - (double)d[i / block] * q[i]);
                    Assert.True(err <= d[i / block] * Bound(block) + 1e-37, $"block {block} n {n} element {i}: |x - dq| = {err} > {d[i / block] * Bound(block)}");
                }
            }
    }

    /// <summary>Each type's integer dot (each variant) against the oracle, on quantizer-made and random-byte blocks
    /// (random bytes reach the extremes the quantizer avoids, e.g. -128 in Q8_0).</summary>
    [Theory]
    [MemberData(nameof(Int8TypeIsa))]
    public void The_integer_dot_matches_the_oracle(DType type, KernelIsa isa)
    {
        var traits = DTypes.Of(type);
        int block = traits.DotQ8Block;
        var rng = new Random(11 + (int)type);
        int bs = traits.BlockSize;
        foreach (int n in BlockCounts.Select(c => c * bs).Concat([2048, 5632]).Where(v => v % bs == 0 && v % block == 0).Distinct())
            for (int trial = 0; trial < 4; trial++)
            {
                var w = trial % 2 == 0 ? KernelTestUtil.RandomWeights(rng, type, 1, n, out _) : KernelTestUtil.RandomBlocks(rng, type, n / bs);
                var x = Activations(rng, n);
                var buf = new byte[Q8Activations.RowStride(n, block) + 64];
                var rowBuf = new float[n];
                fixed (byte* pb = buf, pw = w)
                fixed (float* px = x, pr = rowBuf)
                {
                    byte* aligned = (byte*)(((nint)pb + 63) & ~(nint)63);
                    var row = Q8Activations.At(aligned, n, block);
                    Q8Activations.Quantize(px, n, block, row, isa);
                    double expected = Q8Activations.DotNaive(traits, w, row, n, block);
                    float got = traits.DotQ8(pw, row, n, isa, pr);
                    var dq = new float[n];
                    traits.DequantizeRowNaive(w, dq);
                    double abs = 0;
                    for (int i = 0; i < n; i++) abs += Math.Abs(dq[i] * row.D[i / block] * (double)row.Q[i]);
                    Assert.True(Math.Abs(got - expected) <= 1e-5 * abs + 1e-6,
                        $"{type} {isa} n={n} trial {trial}: got {got}, oracle {expected}, |diff| {Math.Abs(got - expected):G3}, sum|w x| {abs:G4}");
                }
            }
    }

    /// <summary>Row widths in blocks for the kernel-level tests: tiny, odd, and not multiples of the 8- and 16-block steps of
    /// the SIMD dots (their tails: 1-3 blocks alone, 4-15 as a short step, after a whole step or not), as well as whole
    /// steps.</summary>
    private static readonly int[] BlockCounts = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 20, 28, 33];

    public static TheoryData<DType, KernelIsa> FourRowTypeIsa() =>
        KernelTestUtil.TypeIsaData(DTypes.All.Where(t => t.DotQ8x4 != null).Select(t => t.Type));

    /// <summary>The four-row integer dot (<see cref="TypeTraits.DotQ8x4"/>) gives each row the bits of the one-row dot
    /// (<see cref="TypeTraits.DotQ8"/>) and matches the oracle, over many widths (tails of the 8- and 16-block steps
    /// included), on quantizer-made and random-byte blocks; where a variant has no four-row kernel it says so (false).</summary>
    [Theory]
    [MemberData(nameof(FourRowTypeIsa))]
    public void The_four_row_integer_dot_gives_each_row_the_one_row_bits(DType type, KernelIsa isa)
    {
        var traits = DTypes.Of(type);
        int block = traits.DotQ8Block, bs = traits.BlockSize;
        var rng = new Random(41 + (int)type);
        int checkedCount = 0;
        var rows = stackalloc Q8Row[4];
        foreach (int blocks in BlockCounts)
            for (int trial = 0; trial < 2; trial++)
            {
                int n = blocks * bs;
                var w = trial == 0 ? KernelTestUtil.RandomWeights(rng, type, 1, n, out _) : KernelTestUtil.RandomBlocks(rng, type, n / bs);
                long stride = Q8Activations.RowStride(n, block);
                var buf = new byte[4 * stride + 64];
                var rowBuf = new float[n];
                var results = new float[4];
                fixed (byte* pb = buf, pw = w)
                fixed (float* pr = rowBuf, pres = results)
                {
                    byte* aligned = (byte*)(((nint)pb + 63) & ~(nint)63);
                    for (int r = 0; r < 4; r++)
                    {
                        var x = Activations(rng, n);
                        if (r == 3) x = KernelTestUtil.Gaussian(rng, n, 1e-3f); // rows of another scale
                        rows[r] = Q8Activations.At(aligned + r * stride, n, block);
                        fixed (float* px = x) Q8Activations.Quantize(px, n, block, rows[r], isa);
                    }
                    if (!traits.DotQ8x4(pw, rows, n, isa, pres))
                    {
                        Assert.True(isa != KernelIsa.Avx2, $"{type}: no AVX2 four-row integer dot");
                        continue;
                    }
                    var dq = new float[n];
                    traits.DequantizeRowNaive(w, dq);
                    for (int r = 0; r < 4; r++)
                    {
                        float one = traits.DotQ8(pw, rows[r], n, isa, pr);
                        Assert.True(BitConverter.SingleToInt32Bits(one) == BitConverter.SingleToInt32Bits(results[r]),
                            $"{type} {isa} {blocks} blocks trial {trial} row {r}: four-row {results[r]:R}, one-row {one:R}");
                        double expected = Q8Activations.DotNaive(traits, w, rows[r], n, block), abs = 0;
                        for (int i = 0; i < n; i++) abs += Math.Abs(dq[i] * rows[r].D[i / block] * (double)rows[r].Q[i]);
                        // 3e-5, not the one-row test's 1e-5: Q4_0's offset form (sum q q_x - 8 sum q_x) cancels, and the
                        // outlier rows here reach 1.04e-5 of sum|w x| in f32 (the one-row dot gives the same bits)
                        Assert.True(Math.Abs(results[r] - expected) <= 3e-5 * abs + 1e-6,
                            $"{type} {isa} {blocks} blocks row {r}: got {results[r]}, oracle {expected}, sum|w x| {abs:G4}");
                    }
                    checkedCount++;
                }
            }
        output.WriteLine($"{type} {isa}: {checkedCount} widths x 4 rows checked against the one-row dot and the oracle");
    }

    /// <summary>
    /// The 8-bit path against the exact f32 path on realistic rows: within the provable bound sum_i |w_i| d_b/2 (+ the f16 rounding of d for 32-blocks), and the
    /// typical error measured (printed) for the documentation.
    /// </summary>
    [Theory]
    [InlineData(DType.Q8_0)]
    [InlineData(DType.Q4_0)]
    [InlineData(DType.Q4_K)]
    [InlineData(DType.Q6_K)]
    public void Eight_bit_activations_stay_within_their_rounding_bound_of_the_exact_path(DType type)
    {
        int rows = 256, cols = 2048;
        var rng = new Random(5);
        var wBytes = KernelTestUtil.RandomWeights(rng, type, rows, cols, out _);
        var x = KernelTestUtil.Gaussian(rng, cols);
        var exact = new float[rows];
        var fast = new float[rows];
        var traits = DTypes.Of(type);
        int block = traits.DotQ8Block;
        var (_, d, _) = Reference(x, block);
        double worstRel = 0, sumRel = 0;
        fixed (byte* pw = wBytes)
        {
            var w = new WeightMatrix(type, pw, rows, cols);
            using (MatMul.ExactActivations()) MatMul.Forward(x, w, exact, 1);
            MatMul.Forward(x, w, fast, 1);
            var row = new float[cols];
            for (int o = 0; o < rows; o++)
            {
                traits.DequantizeRowNaive(w.Row(o), row);
                double bound = 0, scale = 0;
                for (int i = 0; i < cols; i++)
                {
                    bound += Math.Abs(row[i]) * d[i / block] * Bound(block);
                    scale += Math.Abs(row[i] * x[i]);
                }
                double err = Math.Abs(fast[o] - exact[o]);
                Assert.True(err <= bound * 1.0001 + 1e-5 * scale, $"{type} row {o}: |8-bit - f32| = {err:G3} > bound {bound:G3}");
                worstRel = Math.Max(worstRel, err / scale);
                sumRel += err / scale;
            }
        }
        output.WriteLine($"{type}: |8-bit - f32| / sum|w x|: mean {sumRel / rows:E2}, max {worstRel:E2} (C = {cols}, Gaussian x)");
        Assert.True(worstRel > 0, "the 8-bit path should differ from the exact one (is it running?)");
    }

    /// <summary>A row alone (T = 1: the integer matvec) and the same row among 20 (the GEMM over d*q) agree to f32
    /// rounding: a sequence's logits do not depend on the batch it is decoded in.</summary>
    [Theory]
    [MemberData(nameof(Int8TypeIsa))]
    public void A_row_gets_the_same_result_alone_and_in_a_batch(DType type, KernelIsa isa)
    {
        int rows = 40, cols = 512, t = 20;
        var rng = new Random(21);
        var wBytes = KernelTestUtil.RandomWeights(rng, type, rows, cols, out _);
        var x = KernelTestUtil.Gaussian(rng, t * cols);
        var batch = new float[t * rows];
        var alone = new float[rows];
        using var pool = new WorkerPool(2);
        fixed (byte* pw = wBytes)
        {
            var w = new WeightMatrix(type, pw, rows, cols);
            MatMul.Forward(x, w, batch, t, pool, isa);
            var seen = MatMulTests.SeenActivations(type, x, t, cols, exact: false);
            var dq = new float[cols];
            for (int i = 0; i < t; i += 7)
            {
                MatMul.Forward(x.AsSpan(i * cols, cols), w, alone, 1, pool, isa);
                for (int o = 0; o < rows; o++)
                {
                    DTypes.Of(type).DequantizeRowNaive(w.Row(o), dq);
                    double scale = 0;
                    for (int k = 0; k < cols; k++) scale += Math.Abs(dq[k] * seen[i * cols + k]);
                    Assert.True(Math.Abs(alone[o] - batch[i * rows + o]) <= 2e-5 * scale + 1e-6,
                        $"{type} {isa} row {i} output {o}: alone {alone[o]}, in the batch {batch[i * rows + o]}");
                }
            }
        }
    }

    /// <summary>Below the GEMM threshold (2-15 rows: a batch of decoding sequences) every row's result is bit-identical to
    /// the row alone, for every weight type and variant, whichever group of the four-row dots (<see cref="TypeTraits.DotQ8x4"/>,
    /// <see cref="TypeTraits.Dot4"/>) it falls in (odd counts, a short last group, odd widths, and widths whose blocks
    /// do not fill the 16-block steps of the AVX-512 dots: 18 and 35 blocks).</summary>
    [Theory]
    [MemberData(nameof(MatMulTests.TypeIsa), MemberType = typeof(MatMulTests))]
    public void Rows_decoded_together_give_the_bits_of_each_row_alone(DType type, KernelIsa isa)
    {
        var traits = DTypes.Of(type);
        int bs = traits.BlockSize;
        using var pool = new WorkerPool(2);
        var rng = new Random(33);
        foreach (int cols in bs == 1 ? new[] { 1, 17, 100, 512 + 48 } : bs == 32 ? [32, 96, 512 + 64, 28 * 32, 35 * 32] : [256, 768, 9 * 256, 17 * 256])
        {
            int rows = 13;
            var wBytes = KernelTestUtil.RandomWeights(rng, type, rows, cols, out _);
            foreach (int t in new[] { 2, 3, 4, 5, 7, 8, 9, 15 })
            {
                if (t >= MatMul.GemmMinRows) continue;
                var x = Activations(rng, t * cols);
                var together = new float[t * rows];
                var alone = new float[rows];
                fixed (byte* pw = wBytes)
                {
                    var w = new WeightMatrix(type, pw, rows, cols);
                    MatMul.Forward(x, w, together, t, pool, isa);
                    for (int i = 0; i < t; i++)
                    {
                        MatMul.Forward(x.AsSpan(i * cols, cols), w, alone, 1, pool, isa);
                        for (int o = 0; o < rows; o++)
                            Assert.True(BitConverter.SingleToInt32Bits(alone[o]) == BitConverter.SingleToInt32Bits(together[i * rows + o]),
                                $"{type} {isa} C={cols} T={t} row {i} output {o}: alone {alone[o]:R}, together {together[i * rows + o]:R}");
                    }
                }
            }
        }
        output.WriteLine($"{type} {isa}: four-row kernels: integer {(traits.DotQ8x4 != null ? "yes" : "no")}, f32 {(traits.Dot4 != null ? "yes" : "no")}");
    }

    [Fact]
    public void The_activation_mode_parses_and_names_the_choices()
    {
        Assert.True(MatMul.ParseActivations(null));
        Assert.True(MatMul.ParseActivations("q8"));
        Assert.False(MatMul.ParseActivations(" F32 "));
        var e = Assert.Throws<ArgumentException>(() => MatMul.ParseActivations("int4"));
        Assert.Contains("q8", e.Message, StringComparison.Ordinal);
        Assert.Contains("f32", e.Message, StringComparison.Ordinal);
        using (MatMul.ExactActivations()) Assert.False(MatMul.Int8Activations);
    }
}
