using SharpLM.Kernels;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;

namespace SharpLM.Tests.Kernels;

/// <summary>
/// The integer GEMM of the quantized types (prefill): each type's unpacked form gives exactly the values of its readable
/// dequantizer and stays in the range the 16-bit sums assume; the GEMM matches the type's integer dot (the matvec, same
/// 8-bit activations) to f32 rounding over group and row edges; weights and activations at their largest magnitudes (the
/// 16-bit sums at their bound) come out right; and a token's bits do not depend on the other tokens of the call.
/// (MatMulTests also runs these types through the GEMM against the naive oracle.)
/// </summary>
public sealed unsafe class GemmInt8Tests
{
    public static readonly DType[] Types = DTypes.All.Where(t => t.Unpack32 != null).Select(t => t.Type).ToArray();

    public static TheoryData<DType> TypeData()
    {
        var d = new TheoryData<DType>();
        foreach (var t in Types) d.Add(t);
        return d;
    }

    private static readonly WorkerPool Pool = new(2);

    [Fact]
    public void The_integer_types_are_the_ones_with_an_integer_dot()
    {
        Assert.Contains(DType.Q4_0, Types);
        Assert.Contains(DType.Q8_0, Types);
        Assert.Contains(DType.Q4_K, Types);
        Assert.Contains(DType.Q6_K, Types);
        foreach (var t in Types) Assert.True(DTypes.Of(t).HasDotQ8, $"{t} has an integer GEMM form but no integer dot");
    }

    [Theory]
    [MemberData(nameof(TypeData))]
    public void Unpacked_form_gives_the_dequantizer_values(DType type)
    {
        var traits = DTypes.Of(type);
        var rng = new Random(3 + (int)type);
        int n = traits.BlockSize == 256 ? 768 : 160;
        var w = MatMulTests.Weights(rng, type, 1, n);
        var naive = new float[n];
        traits.DequantizeRowNaive(w, naive);
        var u = new byte[n];
        var d = new float[n / 16];
        var m = new float[n / 16];
        fixed (byte* pw = w, pu = u)
        fixed (float* pd = d, pm = m)
            traits.Unpack32(pw, n, pu, pd, pm);
        var form = traits.Int8;
        Assert.True(form.Sub is 16 or 32);
        for (int i = 0; i < n; i++)
        {
            int q = form.Signed ? (sbyte)u[i] : u[i];
            if (!form.Signed) Assert.True(q <= form.Max, $"{type} element {i}: u = {q} > {form.Max}");
            float v = d[i / form.Sub] * (q - form.Offset) + (form.HasMin ? m[i / form.Sub] : 0f);
            Assert.True(v == naive[i], $"{type} element {i}: d*(u - offset) + m = {v}, the dequantizer gives {naive[i]}");
        }
    }

    /// <summary>The GEMM against the type's integer dot on the same quantized activations (the matvec of each token
    /// alone): every output within 2e-6 of its scale (the two sum the same exact block integers in a different f32 order).</summary>
    [IntegerGemmTheory]
    [MemberData(nameof(TypeData))]
    public void Matches_the_integer_dot_over_edges(DType type)
    {
        var rng = new Random(11 + (int)type);
        int bs = DTypeInfo.BlockSize(type);
        foreach (var (rows, cols, t) in new[] { (1, bs, 16), (2, 2 * bs, 17), (3, 3 * bs, 23), (4, bs, 24), (7, 2 * bs, 33), (8, bs, 41) })
            CheckAgainstDot(type, rows, cols, t, rng, KernelTestUtil.Gaussian(rng, t * cols), MatMulTests.Weights(rng, type, rows, cols));
    }

    /// <summary>Every u at the type's largest value (or Q8_0's ±127) and every activation at ±127 after quantizing: the
    /// 16-bit sums reach their bound (8 steps of 2*15*127 for 4-bit u, 4 of 2*31*127 for 5-bit, 2 of 2*63*127 for 6-bit),
    /// so a longer run before widening would wrap and fail here.</summary>
    [IntegerGemmTheory]
    [MemberData(nameof(TypeData))]
    public void Largest_magnitudes_do_not_overflow(DType type)
    {
        var traits = DTypes.Of(type);
        int bs = traits.BlockSize, rows = 5, cols = 2 * bs, t = 18;
        var rng = new Random(5);
        var w = MatMulTests.Weights(rng, type, rows, cols);
        // the bytes of the values (not of the scales): u at its largest everywhere
        var (from, to) = type switch
        {
            DType.Q4_1 or DType.Q5_1 => (4, traits.BlockBytes),
            DType.Q4_K or DType.Q5_K => (16, traits.BlockBytes),
            DType.Q6_K => (0, 192),
            _ => (2, traits.BlockBytes),
        };
        for (int blk = 0; blk < w.Length / traits.BlockBytes; blk++)
            for (int i = from; i < to; i++)
                w[blk * traits.BlockBytes + i] = type == DType.Q8_0 ? (byte)(blk % 2 == 0 ? 0x81 : 0x7F) : (byte)0xFF;
        var x = new float[t * cols];
        for (int i = 0; i < x.Length; i++) x[i] = i / cols % 2 == 0 ? 1f : -2f;
        CheckAgainstDot(type, rows, cols, t, rng, x, w);
    }

    private static void CheckAgainstDot(DType type, int rows, int cols, int t, Random rng, float[] x, byte[] w)
    {
        var traits = DTypes.Of(type);
        var isa = KernelIsaSelector.Best;
        var got = new float[t * rows + 1];
        got[^1] = 777f;
        int block = traits.DotQ8Block;
        var rowBuf = new byte[Q8Activations.RowStride(cols, block) + 64];
        var scratch = new float[cols];
        fixed (byte* pw = w, prb = rowBuf)
        fixed (float* px = x, ps = scratch)
        {
            var wm = new WeightMatrix(type, pw, rows, cols);
            MatMul.Forward(x, wm, got, t, Pool, isa);
            byte* aligned = (byte*)(((nint)prb + 63) & ~(nint)63);
            var q8 = Q8Activations.At(aligned, cols, block);
            for (int i = 0; i < t; i++)
            {
                Q8Activations.Quantize(px + (long)i * cols, cols, block, q8, isa);
                for (int o = 0; o < rows; o++)
                {
                    float dot = traits.DotQ8(pw + o * wm.RowBytes, q8, cols, isa, ps);
                    double scale = 0;
                    var row = new float[cols];
                    traits.DequantizeRowNaive(wm.Row(o), row);
                    for (int k = 0; k < cols; k++) scale += Math.Abs((double)row[k] * x[i * cols + k]);
                    Assert.True(Math.Abs(got[i * rows + o] - dot) <= 2e-6 * scale + 1e-6,
                        $"{type} OC={rows} C={cols} T={t} token {i} row {o}: GEMM {got[i * rows + o]}, integer dot {dot} (sum |w x| {scale:G4})");
                }
            }
        }
        Assert.Equal(777f, got[^1]);
    }

    /// <summary>A token's outputs are the same bits whether its batch has 24 tokens or 45, and whichever group of 8 and
    /// lane it lands in; on AVX-512 also whichever kernel serves its group (pairs of groups in 512-bit vectors, a last
    /// odd group in 256-bit ones: the 24 tokens alone end in such a group, inside the 45 they are all paired).</summary>
    [IntegerGemmTheory]
    [MemberData(nameof(TypeData))]
    public void A_token_gets_the_same_bits_in_any_batch(DType type)
    {
        var rng = new Random(21);
        int bs = DTypeInfo.BlockSize(type), rows = 7, cols = 2 * bs, n = 24;
        var w = MatMulTests.Weights(rng, type, rows, cols);
        var a = KernelTestUtil.Gaussian(rng, n * cols);
        var big = KernelTestUtil.Gaussian(rng, 45 * cols);
        const int at = 13; // a's rows start at token 13 of the big batch: other groups and lanes
        Array.Copy(a, 0, big, at * cols, a.Length);
        var ya = new float[n * rows];
        var yb = new float[45 * rows];
        fixed (byte* pw = w)
        {
            var wm = new WeightMatrix(type, pw, rows, cols);
            MatMul.Forward(a, wm, ya, n, Pool, KernelIsaSelector.Best);
            using var one = new WorkerPool(1);
            MatMul.Forward(big, wm, yb, 45, one, KernelIsaSelector.Best);
        }
        KernelTestUtil.AssertBitEqual(ya, yb.AsSpan(at * rows, n * rows), $"{type}: {n} tokens alone vs inside 45");
    }

    /// <summary>Q, K and V (or gate and up) over one x: the bits of separate calls, whether x is packed once (same
    /// packing), or the types pack differently (Q4_K with Q6_K), or the rows are too few for the GEMM.</summary>
    [Theory]
    [InlineData(DType.Q4_0, DType.Q4_0, 24)]
    [InlineData(DType.Q8_0, DType.Q8_0, 17)]
    [InlineData(DType.Q4_K, DType.Q4_K, 33)]
    [InlineData(DType.Q4_K, DType.Q6_K, 20)]
    [InlineData(DType.Q4_0, DType.Q4_0, 5)]
    [InlineData(DType.Q4_K, DType.Q6_K, 1, 300)]
    [InlineData(DType.Q4_K, DType.Q4_K, 7, 300)]
    [InlineData(DType.F32, DType.F32, 1, 300)]
    [InlineData(DType.F16, DType.BF16, 4, 300)]
    [InlineData(DType.Q8_0, DType.F32, 2, 300)]
    public void Shared_input_gives_the_bits_of_separate_calls(DType type, DType third, int t, int scale = 1)
    {
        // below 16 rows the products run as one matvec job over all their rows (scale 300: large enough that the job's
        // tasks split inside and across the matrices); a third matrix with other activations falls back to its own call
        var rng = new Random(31);
        int cols = DTypeInfo.BlockSize(type) == 256 ? 512 : 96;
        int[] rows = scale == 1 ? [13, 5, 7] : [scale + 13, scale / 3 + 5, scale / 2 + 7];
        var w = new[] { MatMulTests.Weights(rng, type, rows[0], cols), MatMulTests.Weights(rng, type, rows[1], cols), MatMulTests.Weights(rng, third, rows[2], cols) };
        var x = KernelTestUtil.Gaussian(rng, t * cols);
        fixed (byte* p0 = w[0], p1 = w[1], p2 = w[2])
        {
            var m = new[] { new WeightMatrix(type, p0, rows[0], cols), new WeightMatrix(type, p1, rows[1], cols), new WeightMatrix(third, p2, rows[2], cols) };
            var sep = m.Select(wm => { var y = new float[t * wm.Rows]; MatMul.Forward(x, wm, y, t); return y; }).ToArray();
            var shared = m.Select(wm => new float[t * wm.Rows]).ToArray();
            MatMul.ForwardShared(x, t, m[0], shared[0], m[1], shared[1], m[2], shared[2]);
            for (int i = 0; i < 3; i++) KernelTestUtil.AssertBitEqual(sep[i], shared[i], $"{type}/{third} T={t} weight {i}");
            var two = m.Take(2).Select(wm => new float[t * wm.Rows]).ToArray();
            MatMul.ForwardShared(x, t, m[0], two[0], m[1], two[1], default, default);
            for (int i = 0; i < 2; i++) KernelTestUtil.AssertBitEqual(sep[i], two[i], $"{type} T={t} two weights, weight {i}");
        }
    }
}

/// <summary>A theory about the integer GEMM itself: reported as skipped (with the reason) where the machine has no AVX2
/// and FMA, since MatMul then takes the other GEMM and the theory would test nothing of this one.</summary>
public sealed class IntegerGemmTheoryAttribute : TheoryAttribute
{
    public IntegerGemmTheoryAttribute()
    {
        if (!GemmInt8.Supports(DTypes.Of(DType.Q8_0), KernelIsaSelector.Best)) Skip = "no integer GEMM here: it needs AVX2 and FMA";
    }
}
