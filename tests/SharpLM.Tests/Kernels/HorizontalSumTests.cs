using System.Runtime.Intrinsics;
using SharpLM.Kernels;

namespace SharpLM.Tests.Kernels;

/// <summary>
/// <c>Horizontal.Sum4</c> (the end of the four- and eight-row dots), in its 512- and 256-bit forms, gives each vector
/// the bits of <c>Horizontal.Sum</c> (the end of the one-row dots): that equality is what keeps a row's
/// result the same alone and in a batch. Random lanes of mixed magnitudes (so the order of the additions shows), and
/// vectors holding infinities, NaNs, signed zeros and subnormals.
/// </summary>
public unsafe class HorizontalSumTests
{
    [Fact]
    public void Four_sums_at_once_give_each_vector_the_bits_of_its_own_sum()
    {
        var rng = new Random(7);
        float[] specials = [float.PositiveInfinity, float.NegativeInfinity, float.NaN, -0f, 0f, 1e-42f, -3e-39f, float.MaxValue];
        float* got = stackalloc float[4];
        int differentFromNaiveOrder = 0;
        for (int trial = 0; trial < 20000; trial++)
        {
            var v = new Vector512<float>[4];
            for (int r = 0; r < 4; r++)
            {
                var lanes = new float[16];
                for (int i = 0; i < 16; i++)
                    lanes[i] = trial % 10 == 9 && rng.Next(8) == 0 ? specials[rng.Next(specials.Length)]
                        : (float)((rng.NextDouble() - 0.5) * Math.Pow(2, rng.Next(-20, 20)));
                v[r] = Vector512.Create(lanes);
                float sequential = 0;
                foreach (var x in lanes) sequential += x;
                if (BitConverter.SingleToInt32Bits(sequential) != BitConverter.SingleToInt32Bits(Horizontal.Sum(v[r]))) differentFromNaiveOrder++;
            }
            Horizontal.Sum4(v[0], v[1], v[2], v[3], got);
            for (int r = 0; r < 4; r++)
            {
                float one = Horizontal.Sum(v[r]);
                Assert.True(BitConverter.SingleToInt32Bits(one) == BitConverter.SingleToInt32Bits(got[r]) || (float.IsNaN(one) && float.IsNaN(got[r])),
                    $"trial {trial} vector {r}: Sum {one:R}, Sum4 {got[r]:R}");
            }
            // the 256-bit form (the k-quants' min and offset sums, the AVX2 four-row dots): the vectors' lower halves
            Horizontal.Sum4(v[0].GetLower(), v[1].GetLower(), v[2].GetLower(), v[3].GetLower(), got);
            for (int r = 0; r < 4; r++)
            {
                float one = Horizontal.Sum(v[r].GetLower());
                Assert.True(BitConverter.SingleToInt32Bits(one) == BitConverter.SingleToInt32Bits(got[r]) || (float.IsNaN(one) && float.IsNaN(got[r])),
                    $"trial {trial} vector {r} (256-bit): Sum {one:R}, Sum4 {got[r]:R}");
            }
        }
        // the check can fail: the lanes' order matters for these values (a sum in another order differs often)
        Assert.True(differentFromNaiveOrder > 1000, $"only {differentFromNaiveOrder} sums depended on the order of the additions");
    }
}
