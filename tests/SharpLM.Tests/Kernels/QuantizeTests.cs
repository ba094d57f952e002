using SharpLM.Kernels;
using SharpLM.Tensors;

namespace SharpLM.Tests.Kernels;

public class QuantizeTests
{
    /// <summary>
    /// Our quantizers against ggml's quantize_row_*_ref on the same input: the bytes must be identical (same scale
    /// search, same float operations in the same order, same rounding).
    /// </summary>
    [GgmlTheory]
    [InlineData(DType.Q8_0)]
    [InlineData(DType.Q4_0)]
    [InlineData(DType.Q4_K)]
    [InlineData(DType.Q6_K)]
    public void MatchesGgmlReferenceQuantizer(DType type)
    {
        var rng = new Random(3 + (int)type);
        int n = 256 * 256;
        var x = KernelTestUtil.Gaussian(rng, n);
        for (int i = 0; i < 256; i++) x[i] = 0; // an all-zero superblock
        for (int i = 256; i < 512; i++) x[i] = 1e-3f * (i - 384); // a small ramp
        int bytes = (int)DTypeInfo.RowBytes(type, n);
        var ours = new byte[bytes];
        var theirs = new byte[bytes];
        SharpLM.Tensors.Types.DTypes.Of(type).QuantizeRow(x, ours);
        GgmlReference.QuantizeRow(type, x, theirs);
        int bb = DTypeInfo.BlockBytes(type), blocks = bytes / bb, differing = 0;
        for (int b = 0; b < blocks; b++)
            if (!ours.AsSpan(b * bb, bb).SequenceEqual(theirs.AsSpan(b * bb, bb))) differing++;
        Assert.True(differing == 0, $"{type}: {differing} of {blocks} blocks differ from ggml's quantizer");
    }

    /// <summary>Round-trip error bounds per type on N(0,1) data: rms(error)/rms(x) and the worst element.</summary>
    [Theory]
    [InlineData(DType.F16, 3e-4, 2.5e-3)]
    [InlineData(DType.BF16, 3e-3, 0.02)]
    [InlineData(DType.Q8_0, 8e-3, 0.03)]
    [InlineData(DType.Q6_K, 0.03, 0.1)]
    [InlineData(DType.Q4_K, 0.12, 0.35)]
    [InlineData(DType.Q4_0, 0.16, 0.45)]
    public void RoundTripErrorIsBounded(DType type, double maxRelRms, double maxAbs)
    {
        var rng = new Random(11);
        int n = 256 * 32;
        var x = KernelTestUtil.Gaussian(rng, n);
        var q = new byte[DTypeInfo.RowBytes(type, n)];
        SharpLM.Tensors.Types.DTypes.Of(type).QuantizeRow(x, q);
        var back = new float[n];
        SharpLM.Tensors.Types.DTypes.Of(type).DequantizeRow(q, back);
        double se = 0, sx = 0, worst = 0;
        for (int i = 0; i < n; i++)
        {
            double e = back[i] - x[i];
            se += e * e;
            sx += (double)x[i] * x[i];
            worst = Math.Max(worst, Math.Abs(e));
        }
        double relRms = Math.Sqrt(se / sx);
        Assert.True(relRms <= maxRelRms, $"{type}: rms error / rms x = {relRms:G4} > {maxRelRms}");
        Assert.True(worst <= maxAbs, $"{type}: worst |error| {worst:G4} > {maxAbs}");
    }

    [Fact]
    public void Q8_0ElementErrorIsAtMostHalfAStep()
    {
        var rng = new Random(5);
        var x = KernelTestUtil.Gaussian(rng, 32 * 100);
        var q = new byte[34 * 100];
        SharpLM.Tensors.Types.DTypes.Of(DType.Q8_0).QuantizeRow(x, q);
        var back = new float[x.Length];
        SharpLM.Tensors.Types.DTypes.Of(DType.Q8_0).DequantizeRow(q, back);
        for (int b = 0; b < 100; b++)
        {
            float amax = x.Skip(32 * b).Take(32).Max(Math.Abs);
            float d = SharpLM.Tensors.Types.F16Type.ToSingle(BitConverter.ToUInt16(q, 34 * b));
            // half a step, plus the f16 rounding of the scale (relative 2^-11) times at most 127 steps
            double bound = 0.5 * d + 127 * amax / 127 * Math.Pow(2, -11) + 1e-7;
            for (int j = 0; j < 32; j++)
                Assert.True(Math.Abs(back[32 * b + j] - x[32 * b + j]) <= bound, $"block {b} element {j}: |error| {Math.Abs(back[32 * b + j] - x[32 * b + j])} > {bound}");
        }
    }

    [Fact]
    public void RejectsUnsupportedTypesAndShortDestinations()
    {
        Assert.Throws<NotSupportedException>(() => SharpLM.Tensors.Types.DTypes.Of(DType.Q8_K).QuantizeRow(new float[256], new byte[292]));
        var ex = Assert.Throws<ArgumentException>(() => SharpLM.Tensors.Types.DTypes.Of(DType.Q4_0).QuantizeRow(new float[32], new byte[17]));
        Assert.Contains("18", ex.Message);
        Assert.Throws<ArgumentException>(() => SharpLM.Tensors.Types.DTypes.Of(DType.Q4_K).QuantizeRow(new float[100], new byte[1000]));
    }
}
