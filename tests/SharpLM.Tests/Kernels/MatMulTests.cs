using SharpLM.Kernels;
using SharpLM.Tensors;

namespace SharpLM.Tests.Kernels;

/// <summary>
/// The fast matmul (matvec for T &lt; 16, GEMM above) against the naive double-accumulating oracle, for every dtype and
/// variant, with f32 activations (the exact path) and with the 8-bit activations of the integer dots (the oracle then
/// multiplies the reference-quantized activations d*q). Tolerance: |fast - naive| &lt;= 1e-5 * sum_k |x_k w_k| + 1e-6
/// per output (f32 accumulation error), with weights dequantized exactly in both.
/// </summary>
public unsafe class MatMulTests
{
    public static readonly DType[] Types = [DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0, DType.Q4_1, DType.Q5_0, DType.Q5_1, DType.Q5_K, DType.Q2_K, DType.Q3_K, DType.Q4_K, DType.Q6_K, DType.IQ4_NL, DType.IQ4_XS];

    public static TheoryData<DType, KernelIsa> TypeIsa() => KernelTestUtil.TypeIsaData(Types);

    private static readonly WorkerPool Pool = new(3);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(DType, int, int), byte[]> BigWeights = new();

    /// <summary>Small weights come from the quantizer; big ones are random blocks (quantizing 11M values is slow), cached.</summary>
    internal static byte[] Weights(Random rng, DType type, int rows, int cols)
    {
        bool isFloat = DTypeInfo.BlockSize(type) == 1;
        if ((long)rows * cols > 1 << 20)
            return BigWeights.GetOrAdd((type, rows, cols), k => isFloat
                ? KernelTestUtil.RandomWeights(new Random(k.Item2), type, rows, cols, out _)
                : KernelTestUtil.RandomBlocks(new Random(k.Item2), type, rows * cols / DTypeInfo.BlockSize(type)));
        return SharpLM.Tensors.Types.DTypes.Of(type).CanQuantize
            ? KernelTestUtil.RandomWeights(rng, type, rows, cols, out _)
            : KernelTestUtil.RandomBlocks(rng, type, rows * cols / DTypeInfo.BlockSize(type));
    }

    /// <summary>The activations the matmul multiplies: x itself, or each row quantized by the reference quantizer and
    /// dequantized (d*q) when the type takes 8-bit activations.</summary>
    internal static float[] SeenActivations(DType type, float[] x, int t, int cols, bool exact)
    {
        var traits = SharpLM.Tensors.Types.DTypes.Of(type);
        if (exact || !traits.HasDotQ8) return x;
        int block = traits.DotQ8Block;
        var r = new float[x.Length];
        var q = new sbyte[cols];
        var d = new float[cols / block];
        var sums = new short[cols / 16];
        for (int i = 0; i < t; i++)
        {
            SharpLM.Tensors.Types.Q8Activations.QuantizeNaive(x.AsSpan(i * cols, cols), block, q, d, sums);
            for (int k = 0; k < cols; k++) r[i * cols + k] = d[k / block] * q[k];
        }
        return r;
    }

    /// <summary>MatMul.Forward against the naive oracle, each output within 1e-5 of its sum |x w| (+ |bias|); with
    /// <paramref name="bias"/> a bias is added, with <paramref name="pack"/> the weights are packed first (the packed GEMM).</summary>
    internal static void Check(DType type, KernelIsa isa, int rows, int cols, int t, Random rng, WorkerPool pool, bool exact = false,
                               bool bias = false, bool pack = false)
    {
        var wBytes = Weights(rng, type, rows, cols);
        var x0 = KernelTestUtil.Gaussian(rng, t * cols);
        var x = SeenActivations(type, x0, t, cols, exact);
        var b = bias ? KernelTestUtil.Gaussian(rng, rows) : [];
        var expected = new float[t * rows];
        var got = new float[t * rows + 1];
        got[^1] = 12345f; // must stay untouched
        fixed (byte* pw = wBytes)
        {
            var w = new WeightMatrix(type, pw, rows, cols);
            MatMul.Naive.Forward(x, w, expected, t);
            if (bias)
                for (int i = 0; i < t; i++)
                    for (int o = 0; o < rows; o++) expected[i * rows + o] += b[o];
            float[]? keep = null;
            var wf = w;
            if (pack)
            {
                keep = Gemm.Pack(w, out float* panels);
                wf = new WeightMatrix(type, pw, rows, cols, panels);
            }
            using (MatMul.ExactActivations(exact)) MatMul.Forward(x0, wf, b, got, t, pool, isa);
            GC.KeepAlive(keep);
            // per-output bound from sum |x w|
            var row = new float[cols];
            double worst = 0;
            string where = "";
            for (int o = 0; o < rows; o++)
            {
                SharpLM.Tensors.Types.DTypes.Of(type).DequantizeRowNaive(w.Row(o), row);
                for (int i = 0; i < t; i++)
                {
                    double abs = Math.Abs(bias ? b[o] : 0);
                    for (int k = 0; k < cols; k++) abs += Math.Abs((double)x[i * cols + k] * row[k]);
                    double diff = Math.Abs((double)got[i * rows + o] - expected[i * rows + o]);
                    double ratio = diff / (1e-5 * abs + 1e-6);
                    if (!(ratio <= worst)) { worst = ratio; where = $"t={i} o={o} expected {expected[i * rows + o]} got {got[i * rows + o]} |diff| {diff:G3} sum|xw| {abs:G4}"; }
                }
            }
            Assert.True(worst <= 1, $"{type} {isa} {(exact ? "f32" : "8-bit")} activations{(pack ? ", packed" : "")} OC={rows} C={cols} T={t} bias={bias}: error {worst:G3} x tolerance at {where}");
        }
        Assert.Equal(12345f, got[^1]);
    }

    [Theory]
    [MemberData(nameof(TypeIsa))]
    public void MatchesNaiveOverManyShapes(DType type, KernelIsa isa) => ManyShapes(type, isa, exact: false);

    /// <summary>Every type with an integer dot (8-bit activations by default), with each variant.</summary>
    public static TheoryData<DType, KernelIsa> Int8TypeIsa() =>
        KernelTestUtil.TypeIsaData(SharpLM.Tensors.Types.DTypes.All.Where(t => t.HasDotQ8).Select(t => t.Type));

    /// <summary>The exact path (f32 activations) of the types that otherwise take 8-bit activations.</summary>
    [Theory]
    [MemberData(nameof(Int8TypeIsa))]
    public void TheExactActivationPathMatchesNaive(DType type, KernelIsa isa) => ManyShapes(type, isa, exact: true);

    private static void ManyShapes(DType type, KernelIsa isa, bool exact)
    {
        var rng = new Random(100 + (int)type * 3 + (int)isa);
        int bs = DTypeInfo.BlockSize(type);
        int[] colsList = bs == 1 ? [1, 3, 16, 17, 31, 64, 100, 255, 257] : bs == 32 ? [32, 64, 96, 160, 288] : [256, 512, 768];
        int[] rowsList = [1, 5, 8, 13, 33];
        int[] tList = [1, 2, 3, 5, 6, 15, 16, 17, 40];
        int combo = 0;
        foreach (int cols in colsList)
            foreach (int rows in rowsList)
                foreach (int t in tList)
                    if (combo++ % 3 == 0 || t >= 16 && rows == 33) // a spread of shapes, all GEMM edge tiles included
                        Check(type, isa, rows, cols, t, rng, Pool, exact);
    }

    [Theory]
    [MemberData(nameof(TypeIsa))]
    public void RealisticDecodeShape(DType type, KernelIsa isa)
    {
        if (isa != KernelIsaSelector.Best && type != DType.Q8_0 && type != DType.Q4_K) return; // keep the suite fast
        var rng = new Random(7);
        Check(type, isa, 2048, 5632, 1, rng, Pool);
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.F16)]
    [InlineData(DType.Q8_0)]
    [InlineData(DType.Q4_K)]
    [InlineData(DType.Q6_K)]
    public void RealisticPrefillShape(DType type)
    {
        var rng = new Random(8);
        Check(type, KernelIsaSelector.Best, 384, 2048, 37, rng, Pool);
    }

    /// <summary>One thread, so one task owns all 203 rows: the GEMM walks several row chunks and a partial panel.</summary>
    public static TheoryData<DType, KernelIsa> ChunkCases() => KernelTestUtil.TypeIsaData([DType.F32, DType.Q8_0, DType.Q4_K]);

    [Theory]
    [MemberData(nameof(ChunkCases))]
    public void GemmWithManyRowChunksInOneTask(DType type, KernelIsa isa)
    {
        using var single = new WorkerPool(1);
        var rng = new Random(10);
        Check(type, isa, 203, DTypeInfo.BlockSize(type) == 256 ? 256 : 96, 19, rng, single);
    }

    [Fact]
    public void SharedPoolAndDefaultOverloadWork()
    {
        var rng = new Random(9);
        var wBytes = KernelTestUtil.RandomWeights(rng, DType.F32, 300, 512, out _);
        var x = KernelTestUtil.Gaussian(rng, 2 * 512);
        var a = new float[600];
        var b = new float[600];
        fixed (byte* pw = wBytes)
        {
            var w = new WeightMatrix(DType.F32, pw, 300, 512);
            MatMul.Forward(x, w, a, 2);
            MatMul.Naive.Forward(x, w, b, 2);
        }
        KernelTestUtil.AssertClose(b, a, 1e-4, "default overload");
    }

    [Fact]
    public void WrongSizesAreRejected()
    {
        var wBytes = new byte[4 * 8 * 4];
        fixed (byte* pw = wBytes)
        {
            var w = new WeightMatrix(DType.F32, pw, 4, 8);
            var ex = Assert.Throws<ArgumentException>(() => MatMul.Forward(new float[7], w, new float[4], 1));
            Assert.Contains("T*C", ex.Message);
            Assert.Throws<ArgumentException>(() => MatMul.Forward(new float[16], w, new float[7], 2));
        }
    }
}
