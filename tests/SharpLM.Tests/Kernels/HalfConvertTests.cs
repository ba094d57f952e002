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
            float got = SharpLM.Tensors.Types.F16Type.ToSingle((ushort)h);
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
        SharpLM.Tensors.Types.F16Type.ToSingle(src, got, isa);
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
            Assert.Equal(BitConverter.HalfToUInt16Bits((Half)f), SharpLM.Tensors.Types.F16Type.FromSingle(f));
        }
        // 1 + 2^-11 is halfway between 1 and the next half: ties go to even (1.0)
        Assert.Equal((ushort)0x3C00, SharpLM.Tensors.Types.F16Type.FromSingle(1f + MathF.Pow(2, -11)));
    }

    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public void VectorFloatToHalfMatchesRuntimeCast(KernelIsa isa)
    {
        var rng = new Random(2);
        var src = new float[200_003];
        for (int i = 0; i < src.Length; i++)
            src[i] = (i % 4) switch
            {
                0 => BitConverter.Int32BitsToSingle(rng.Next() | (rng.Next(2) << 31)),            // any bits, NaN and inf included
                1 => (float)(rng.NextDouble() * 2 - 1) * MathF.Pow(2, rng.Next(-26, 18)),         // the half range and its edges
                2 => (float)BitConverter.UInt16BitsToHalf((ushort)rng.Next(65536)) * (1 + (rng.Next(3) - 1) * MathF.Pow(2, -11)), // ties and near-ties
                _ => rng.Next(-70000, 70000),
            };
        src[0] = 65504f; src[1] = 65519.99f; src[2] = 65520f; src[3] = -65520f; src[4] = 5.9604645e-8f; src[5] = 2.9802322e-8f; src[6] = -0f;
        var got = new ushort[src.Length];
        SharpLM.Tensors.Types.F16Type.FromSingle(src, got, isa);
        for (int i = 0; i < src.Length; i++)
        {
            ushort expected = BitConverter.HalfToUInt16Bits((Half)src[i]);
            if (float.IsNaN(src[i])) Assert.True(Half.IsNaN(BitConverter.UInt16BitsToHalf(got[i])), $"{isa}: NaN input {i} gave 0x{got[i]:X4}");
            else Assert.True(expected == got[i], $"{isa}: {src[i]:R} (0x{BitConverter.SingleToUInt32Bits(src[i]):X8}) -> expected 0x{expected:X4}, got 0x{got[i]:X4}");
        }
    }

    /// <summary>
    /// The F16 dot converts in registers with a shortcut that is exact for every finite half (normal, subnormal, ±0) and
    /// falls back to the exact conversion for a row holding an infinity or a NaN: every one of the 65536 halves goes
    /// through the dot (one-hot x, so the dot is that weight times 1) at each position of a 32-lane step and the tail.
    /// </summary>
    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public unsafe void TheDotConvertsEveryHalfExactly(KernelIsa isa)
    {
        const int n = 37;
        var w = new ushort[n];
        var x = new float[n];
        var rowBuf = new float[n];
        var traits = SharpLM.Tensors.Types.F16Type.Traits;
        fixed (ushort* pw = w)
        fixed (float* px = x, pr = rowBuf)
            for (int h = 0; h < 65536; h++)
            {
                int at = h % n;
                Array.Clear(w);
                Array.Clear(x);
                w[at] = (ushort)h;
                w[(at + 5) % n] = 0x3C00; // 1.0 elsewhere in the row, times x = 0
                x[at] = 1f;
                float expected = (float)BitConverter.UInt16BitsToHalf((ushort)h);
                float got = traits.DotRow((byte*)pw, px, n, isa, pr);
                if (float.IsNaN(expected)) Assert.True(float.IsNaN(got), $"0x{h:X4} {isa}: expected NaN, got {got}");
                else if (float.IsInfinity(expected)) Assert.Equal(expected, got);
                else Assert.True(expected == got, $"0x{h:X4} at {at} {isa}: expected {expected:R}, got {got:R}");
            }
    }

    /// <summary>The four-row dot (a batch of decoding sequences) converts every half as the one-row dot does, and gives
    /// each row the one-row dot's bits, infinities and NaNs included (the screen sends all four rows down the exact path).</summary>
    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public unsafe void TheFourRowDotConvertsEveryHalfAsTheOneRowDot(KernelIsa isa)
    {
        const int n = 37;
        var w = new ushort[n];
        var x1 = new float[n];
        var x2 = new float[n];
        var rowBuf = new float[n];
        var traits = SharpLM.Tensors.Types.F16Type.Traits;
        var results = new float[4];
        fixed (ushort* pw = w)
        fixed (float* p1 = x1, p2 = x2, pr = rowBuf, res = results)
        {
            float** xs = stackalloc float*[] { p1, p2, p1, p2 };
            for (int h = 0; h < 65536; h++)
            {
                int at = h % n;
                Array.Clear(w);
                Array.Clear(x1);
                Array.Clear(x2);
                w[at] = (ushort)h;
                w[(at + 5) % n] = 0x3C00;
                x1[at] = 1f;
                x2[at] = -2f;
                if (!traits.Dot4((byte*)pw, xs, n, isa, res)) { Assert.Equal(KernelIsa.Scalar, isa); return; }
                for (int r = 0; r < 4; r++)
                {
                    float alone = traits.DotRow((byte*)pw, xs[r], n, isa, pr);
                    Assert.True(BitConverter.SingleToInt32Bits(alone) == BitConverter.SingleToInt32Bits(res[r]) || (float.IsNaN(alone) && float.IsNaN(res[r])),
                        $"0x{h:X4} at {at} {isa} row {r}: alone {alone:R}, in four {res[r]:R}");
                }
                float expected = (float)BitConverter.UInt16BitsToHalf((ushort)h);
                if (!float.IsNaN(expected)) Assert.Equal(-2f * expected, res[1]);
            }
        }
    }

    /// <summary>A batch of decoding sequences (5-15 rows, in groups of four and a remainder) over F16 weights: every output
    /// keeps the bits of its row alone, for finite weight rows and for rows holding an infinity, a NaN or a subnormal, at
    /// widths with and without a tail.</summary>
    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public unsafe void A_batch_of_rows_keeps_each_rows_bits_with_special_halves(KernelIsa isa)
    {
        var rng = new Random(5);
        using var pool = new SharpLM.Kernels.WorkerPool(2);
        foreach (int cols in new[] { 7, 40, 100, 577 })
        {
            const int rows = 6;
            var w = new ushort[rows * cols];
            for (int i = 0; i < w.Length; i++) w[i] = BitConverter.HalfToUInt16Bits((Half)(rng.NextDouble() * 2 - 1));
            w[1 * cols + cols / 2] = 0x7C00; // +inf in row 1
            w[2 * cols] = 0xFE00;             // a NaN in row 2
            w[3 * cols + cols - 1] = 0x0001;  // the smallest subnormal in row 3's tail
            foreach (int t in new[] { 5, 8, 9, 15 })
            {
                var x = KernelTestUtil.Gaussian(rng, t * cols);
                var together = new float[t * rows];
                var alone = new float[rows];
                fixed (ushort* pw = w)
                {
                    var m = new SharpLM.Tensors.WeightMatrix(SharpLM.Tensors.DType.F16, (byte*)pw, rows, cols);
                    SharpLM.Kernels.MatMul.Forward(x, m, together, t, pool, isa);
                    for (int i = 0; i < t; i++)
                    {
                        SharpLM.Kernels.MatMul.Forward(x.AsSpan(i * cols, cols), m, alone, 1, pool, isa);
                        for (int o = 0; o < rows; o++)
                        {
                            float a = alone[o], b = together[i * rows + o];
                            Assert.True(BitConverter.SingleToInt32Bits(a) == BitConverter.SingleToInt32Bits(b) || (float.IsNaN(a) && float.IsNaN(b)),
                                $"{isa} C={cols} T={t} row {i} output {o}: alone {a:R}, in the batch {b:R}");
                        }
                    }
                }
            }
        }
    }
}
