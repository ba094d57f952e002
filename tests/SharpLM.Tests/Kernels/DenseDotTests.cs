using SharpLM.Kernels;
using SharpLM.Tensors.Types;

namespace SharpLM.Tests.Kernels;

/// <summary>
/// The dense types' dots (<see cref="DenseDots"/>) in their 512-bit form, for F32 weights: the code is the portable
/// <c>Vector512</c> API, so it runs on every machine (emulated where AVX-512 is missing) and this checks on any machine
/// what an AVX-512 machine runs: the one-row dot against a double oracle over many widths (tails of 1-31 elements), and
/// the four- and eight-row dots giving each row the one-row bits. (The 256-bit forms and the F16/BF16 conversions are checked through
/// the matvec tests on each ISA the machine has.)
/// </summary>
public unsafe class DenseDotTests
{
    [Fact]
    public void The_512_bit_dense_dots_match_the_oracle_and_the_four_row_dot_the_one_row_bits()
    {
        var rng = new Random(41);
        int checkedWidths = 0;
        float** rows = stackalloc float*[4];
        foreach (int n in new[] { 1, 7, 16, 31, 32, 33, 48, 63, 64, 100, 577 })
        {
            var w = KernelTestUtil.Gaussian(rng, n);
            var xs = Enumerable.Range(0, 4).Select(_ => KernelTestUtil.Gaussian(rng, n)).ToArray();
            var four = new float[4];
            fixed (float* pw = w, p0 = xs[0], p1 = xs[1], p2 = xs[2], p3 = xs[3], pr = four)
            {
                rows[0] = p0; rows[1] = p1; rows[2] = p2; rows[3] = p3;
                Assert.True(DenseDots.Dot4<F32Element>((byte*)pw, rows, n, KernelIsa.Avx512, pr));
                for (int r = 0; r < 4; r++)
                {
                    float one = DenseDots.Dot512<F32Element>((byte*)pw, rows[r], n);
                    double exact = 0, scale = 0;
                    for (int i = 0; i < n; i++) { exact += (double)w[i] * xs[r][i]; scale += Math.Abs((double)w[i] * xs[r][i]); }
                    Assert.True(Math.Abs(one - exact) <= 1e-5 * scale + 1e-6, $"n={n} row {r}: {one} vs {exact}");
                    Assert.True(BitConverter.SingleToInt32Bits(one) == BitConverter.SingleToInt32Bits(four[r]),
                        $"n={n} row {r}: one-row {one:R}, four-row {four[r]:R}");
                }
            }
            checkedWidths++;
        }
        Assert.Equal(11, checkedWidths);
    }

    [Fact]
    public void The_eight_row_dot_gives_each_row_the_one_row_bits()
    {
        var rng = new Random(43);
        float** rows = stackalloc float*[8];
        var eight = new float[8];
        foreach (int n in new[] { 1, 7, 16, 31, 32, 33, 48, 63, 64, 100, 577 })
        {
            var w = KernelTestUtil.Gaussian(rng, n);
            var xs = Enumerable.Range(0, 8).Select(r => KernelTestUtil.Gaussian(rng, n, r == 5 ? 1e-3f : 1f)).ToArray();
            var handles = xs.Select(x => System.Runtime.InteropServices.GCHandle.Alloc(x, System.Runtime.InteropServices.GCHandleType.Pinned)).ToArray();
            try
            {
                for (int r = 0; r < 8; r++) rows[r] = (float*)handles[r].AddrOfPinnedObject();
                fixed (float* pw = w, pr = eight)
                {
                    Assert.True(DenseDots.Dot8<F32Element>((byte*)pw, rows, n, KernelIsa.Avx512, pr));
                    Assert.False(DenseDots.Dot8<F32Element>((byte*)pw, rows, n, KernelIsa.Avx2, pr)); // 16 registers: four at a time
                    for (int r = 0; r < 8; r++)
                    {
                        float one = DenseDots.Dot512<F32Element>((byte*)pw, rows[r], n);
                        Assert.True(BitConverter.SingleToInt32Bits(one) == BitConverter.SingleToInt32Bits(eight[r]),
                            $"n={n} row {r}: one-row {one:R}, eight-row {eight[r]:R}");
                    }
                }
            }
            finally
            {
                foreach (var h in handles) h.Free();
            }
        }
    }
}
