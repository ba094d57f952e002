using SharpLM.Kernels;
using SharpLM.Models;
using SharpLM.Tensors;

namespace SharpLM.Tests.Kernels;

/// <summary>
/// The packed GEMM (weights packed once into 16-column panels, <see cref="Gemm.Pack"/>; the encoder's path for every T)
/// against the naive double-accumulating oracle over many shapes (tiny, odd, not multiples of the 6-row blocks, the
/// 16-column panels or the row chunks), with and without the bias fused into the store, for every variant this process
/// can run (the scalar variant ignores the panels and takes the unpacked path). Tolerance as <see cref="MatMulTests"/>:
/// |fast - naive| &lt;= 1e-5 * sum_k |x_k w_k| + 1e-6. Batch and thread invariance are checked bit for bit.
/// </summary>
public unsafe class PackedGemmTests
{
    private static readonly WorkerPool Pool = new(3);
    private static readonly WorkerPool One = new(1);

    public static TheoryData<DType, KernelIsa> TypeIsa() => KernelTestUtil.TypeIsaData([DType.F32, DType.F16, DType.BF16]);

    [Theory]
    [MemberData(nameof(TypeIsa))]
    public void MatchesNaiveOverManyShapes(DType type, KernelIsa isa)
    {
        var rng = new Random(17 + (int)type * 5 + (int)isa);
        int checkedShapes = 0;
        foreach (int cols in new[] { 1, 3, 17, 64, 385 })
            foreach (int rows in new[] { 1, 5, 16, 17, 33, 48 })
                foreach (int t in new[] { 1, 2, 3, 4, 5, 6, 7, 11, 13, 17, 40, 97 })
                {
                    if ((cols * 7 + rows * 3 + t) % 3 != 0 && !(t == 97 && cols == 385)) continue; // a spread, the chunk edge included
                    Check(type, isa, rows, cols, t, rng, bias: (rows + t) % 2 == 0);
                    checkedShapes++;
                }
        Assert.True(checkedShapes > 50, $"only {checkedShapes} shapes checked");
    }

    [Theory]
    [MemberData(nameof(TypeIsa))]
    public void EncoderShapesMatchNaive(DType type, KernelIsa isa)
    {
        var rng = new Random(5);
        foreach (var (rows, cols, t) in new[] { (384, 384, 6), (1536, 384, 23), (384, 1536, 56), (312, 312, 13) })
            Check(type, isa, rows, cols, t, rng, bias: true);
    }

    private static void Check(DType type, KernelIsa isa, int rows, int cols, int t, Random rng, bool bias) =>
        MatMulTests.Check(type, isa, rows, cols, t, rng, Pool, bias: bias, pack: true);

    /// <summary>A row gives the same bits alone, in a batch of any size (any block of rows, any chunk) and on 1 or 3
    /// threads: the encoder's embeddings must not depend on their batch or the thread count.</summary>
    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public void A_row_has_the_same_bits_alone_in_any_batch_and_on_any_thread_count(KernelIsa isa)
    {
        var rng = new Random(9);
        int rows = 40, cols = 1000, t = 131; // rows in chunks of 60 at C = 1000: the chunk edges are crossed
        var wBytes = KernelTestUtil.RandomWeights(rng, DType.F32, rows, cols, out _);
        var x = KernelTestUtil.Gaussian(rng, t * cols);
        var b = KernelTestUtil.Gaussian(rng, rows);
        fixed (byte* pw = wBytes)
        {
            var keep = Gemm.Pack(new WeightMatrix(DType.F32, pw, rows, cols), out float* panels);
            var w = new WeightMatrix(DType.F32, pw, rows, cols, panels);
            var all = new float[t * rows];
            MatMul.Forward(x, w, b, all, t, Pool, isa);
            var allOne = new float[t * rows];
            MatMul.Forward(x, w, b, allOne, t, One, isa);
            KernelTestUtil.AssertBitEqual(all, allOne, $"{isa}: 3 threads vs 1");
            foreach (int n in new[] { 1, 2, 5, 7, 13, 29 })
                for (int s = 0; s + n <= t; s += 37)
                {
                    var part = new float[n * rows];
                    MatMul.Forward(x.AsSpan(s * cols, n * cols), w, b, part, n, Pool, isa);
                    KernelTestUtil.AssertBitEqual(all.AsSpan(s * rows, n * rows), part, $"{isa}: rows {s}..{s + n - 1} of {t}, computed {n} at a time");
                }
            GC.KeepAlive(keep);
        }
    }

    /// <summary>The wide variant (AVX-512: two panels per call, 6 x 32 outputs in 512-bit registers) gives every output the
    /// bits of the AVX2 variant, on 1 and 3 threads, over shapes with an odd number of panels, a partial last panel and
    /// row counts off the 6-row blocks. It runs on every x86 machine with AVX2: where AVX-512 is missing its
    /// <c>Vector512</c> operations are emulated, so this machine checks the code an AVX-512 machine runs.</summary>
    [Fact]
    public void The_wide_variant_gives_the_bits_of_the_narrow_one()
    {
        Assert.True(System.Runtime.Intrinsics.X86.Fma.IsSupported || !System.Runtime.Intrinsics.X86.X86Base.IsSupported,
            "an x86 machine without FMA: the narrow variant cannot run");
        if (!System.Runtime.Intrinsics.X86.Fma.IsSupported) return; // not x86: neither variant exists
        var rng = new Random(21);
        int compared = 0;
        foreach (var (rows, cols, t) in new[] { (1, 3, 1), (16, 17, 5), (17, 64, 7), (32, 5, 6), (33, 385, 13), (48, 40, 97), (80, 31, 2), (100, 129, 61) })
        {
            var wBytes = KernelTestUtil.RandomWeights(rng, DType.F32, rows, cols, out _);
            var x = KernelTestUtil.Gaussian(rng, t * cols);
            var b = KernelTestUtil.Gaussian(rng, rows);
            fixed (byte* pw = wBytes)
            fixed (float* px = x, pb = b)
            {
                var keep = Gemm.Pack(new WeightMatrix(DType.F32, pw, rows, cols), out float* panels);
                var w = new WeightMatrix(DType.F32, pw, rows, cols, panels);
                foreach (bool bias in new[] { false, true })
                {
                    var narrow = new float[t * rows];
                    var wide = new float[t * rows];
                    var wideOne = new float[t * rows];
                    fixed (float* pn = narrow, pwd = wide, pw1 = wideOne)
                    {
                        Gemm.ForwardPacked(px, w, bias ? pb : null, pn, t, Pool, wide: false);
                        Gemm.ForwardPacked(px, w, bias ? pb : null, pwd, t, Pool, wide: true);
                        Gemm.ForwardPacked(px, w, bias ? pb : null, pw1, t, One, wide: true);
                    }
                    KernelTestUtil.AssertBitEqual(narrow, wide, $"{rows}x{cols} T={t} bias={bias}: wide vs narrow, 3 threads");
                    KernelTestUtil.AssertBitEqual(narrow, wideOne, $"{rows}x{cols} T={t} bias={bias}: wide on 1 thread vs narrow");
                    Assert.Contains(narrow, v => v != 0);
                    compared++;
                }
                GC.KeepAlive(keep);
            }
        }
        Assert.Equal(16, compared);
    }

    [Fact]
    public void Quantized_weights_are_not_packed_and_say_why()
    {
        var rng = new Random(1);
        var wBytes = KernelTestUtil.RandomWeights(rng, DType.Q8_0, 4, 64, out _);
        fixed (byte* pw = wBytes)
        {
            var w = new WeightMatrix(DType.Q8_0, pw, 4, 64);
            var e = Assert.Throws<NotSupportedException>(() => Gemm.Pack(w, out _));
            Assert.Contains("Q8_0", e.Message);
            var keep = new List<float[]>();
            var lw = new LinearWeights(w, default).Packed(keep);
            Assert.True(lw.W.Packed == null);
            Assert.Empty(keep);
        }
    }
}
