using SharpLM.Kernels;

namespace SharpLM.Tests.Kernels;

public class HalfConvertTests
{
    [Fact]
    public void ScalarMatchesRuntimeHalfCastForAll65536Inputs()
    {
        for (int h = 0; h < 65536; h++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf((ushort)h);
            float got = HalfConvert.ToSingle((ushort)h);
            if (float.IsNaN(expected)) Assert.True(float.IsNaN(got), $"0x{h:X4}: expected NaN, got {got}");
            else Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(got), $"0x{h:X4}: expected {expected:R}, got {got:R}");
        }
    }

    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public void VectorPathsMatchRuntimeHalfCastForAll65536Inputs(KernelIsa isa)
    {
        var src = new ushort[65536 + 7]; // odd tail exercises the scalar remainder
        for (int i = 0; i < src.Length; i++) src[i] = (ushort)(i * 40503);
        var got = new float[src.Length];
        HalfConvert.ToSingle(src, got, isa);
        var expected = src.Select(h => (float)BitConverter.UInt16BitsToHalf(h)).ToArray();
        KernelTestUtil.AssertBitEqual(expected, got, $"half->float {isa}");
    }

    [Fact]
    public void FloatToHalfRoundsToNearestEven()
    {
        var rng = new Random(1);
        for (int i = 0; i < 10000; i++)
        {
            float f = BitConverter.Int32BitsToSingle(rng.Next());
            Assert.Equal(BitConverter.HalfToUInt16Bits((Half)f), HalfConvert.FromSingle(f));
        }
        // 1 + 2^-11 is halfway between 1 and the next half: ties go to even (1.0)
        Assert.Equal((ushort)0x3C00, HalfConvert.FromSingle(1f + MathF.Pow(2, -11)));
    }
}
