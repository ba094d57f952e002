using SharpLM.Kernels;
using SharpLM.Tensors;

namespace SharpLM.Tests.Kernels;

/// <summary>Shared helpers for the kernel tests: random data, the variants this machine can run, tolerances.</summary>
internal static class KernelTestUtil
{
    /// <summary>Every variant this process can run (all three on an AVX-512 machine; fewer under DOTNET_Enable*=0).</summary>
    public static IEnumerable<KernelIsa> Isas() =>
        new[] { KernelIsa.Avx512, KernelIsa.Avx2, KernelIsa.Scalar }.Where(KernelIsaSelector.IsSupported);

    /// <summary>Every (type, variant) pair of <paramref name="types"/> and the variants this process can run.</summary>
    public static TheoryData<DType, KernelIsa> TypeIsaData(IEnumerable<DType> types)
    {
        var d = new TheoryData<DType, KernelIsa>();
        foreach (var t in types)
            foreach (var i in Isas()) d.Add(t, i);
        return d;
    }

    public static TheoryData<KernelIsa> IsaData()
    {
        var d = new TheoryData<KernelIsa>();
        foreach (var i in Isas()) d.Add(i);
        return d;
    }

    public static float[] Gaussian(Random rng, int n, float scale = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            a[i] = (float)(scale * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return a;
    }

    /// <summary>A row-major (rows, cols) weight of <paramref name="type"/> quantized from Gaussian values.</summary>
    public static byte[] RandomWeights(Random rng, DType type, int rows, int cols, out float[] source)
    {
        source = Gaussian(rng, rows * cols, 0.5f);
        long rb = DTypeInfo.RowBytes(type, cols);
        var bytes = new byte[rows * rb];
        for (int r = 0; r < rows; r++)
            SharpLM.Tensors.Types.DTypes.Of(type).QuantizeRow(source.AsSpan(r * cols, cols), bytes.AsSpan((int)(r * rb), (int)rb));
        return bytes;
    }

    /// <summary>Random blocks of a type the quantizer does not write: random bytes with sane f16 scales.</summary>
    public static byte[] RandomBlocks(Random rng, DType type, int blocks)
    {
        int bb = DTypeInfo.BlockBytes(type);
        var b = new byte[blocks * bb];
        rng.NextBytes(b);
        int[] halfOffsets = type switch
        {
            DType.Q4_0 or DType.Q8_0 or DType.Q5_0 or DType.IQ4_NL or DType.IQ4_XS => [0],
            DType.Q4_1 or DType.Q5_1 or DType.Q4_K or DType.Q5_K => [0, 2],
            DType.Q2_K => [80, 82],
            DType.Q3_K => [108],
            DType.Q6_K => [208],
            _ => [],
        };
        for (int k = 0; k < blocks; k++)
            foreach (int o in halfOffsets)
                BitConverter.TryWriteBytes(b.AsSpan(k * bb + o, 2), BitConverter.HalfToUInt16Bits((Half)(rng.NextDouble() * 0.2 - 0.1)));
        return b;
    }

    /// <summary>Largest |a-b| and the index; NaNs in the same place count as equal.</summary>
    public static (double Max, int At) MaxDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double max = 0;
        int at = -1;
        for (int i = 0; i < a.Length; i++)
        {
            if (float.IsNaN(a[i]) && float.IsNaN(b[i])) continue;
            double d = Math.Abs((double)a[i] - b[i]);
            if (double.IsNaN(d) || d > max) { max = double.IsNaN(d) ? double.PositiveInfinity : d; at = i; }
        }
        return (max, at);
    }

    public static void AssertBitEqual(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]) && !(float.IsNaN(expected[i]) && float.IsNaN(actual[i])))
                Assert.Fail($"{what}: element {i} differs: expected {expected[i]:R}, got {actual[i]:R} (max |diff| {MaxDiff(expected, actual).Max:G3})");
        }
    }

    /// <summary>|a-b| &lt;= rel * max(1,|b|) elementwise (b the oracle).</summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double rel, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0;
        int at = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs((double)actual[i] - expected[i]) / Math.Max(1, Math.Abs(expected[i]));
            if (!(d <= worst)) { worst = d; at = i; }
        }
        Assert.True(worst <= rel, $"{what}: max scaled |diff| {worst:G3} > {rel:G3} at {at} (expected {(at >= 0 ? expected[at] : 0)}, got {(at >= 0 ? actual[at] : 0)})");
    }
}
