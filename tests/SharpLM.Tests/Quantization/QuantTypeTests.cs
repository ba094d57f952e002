using SharpLM.Kernels;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;
using SharpLM.Tests.Kernels;

namespace SharpLM.Tests.Quantization;

/// <summary>
/// Every GGUF weight type SharpLM reads and writes against ggml's own reference code (in the llama.cpp library the
/// LLamaSharp test dependency ships): the quantizer's bytes and the dequantizer's floats are identical, the fast
/// dequantizer and the fused dot agree with the readable oracle, and the round trip error is what the format allows.
/// </summary>
public sealed class QuantTypeTests
{
    public static TheoryData<DType> Quantized => new()
    {
        DType.Q4_0, DType.Q4_1, DType.Q5_0, DType.Q5_1, DType.Q8_0,
        DType.Q2_K, DType.Q3_K, DType.Q4_K, DType.Q5_K, DType.Q6_K,
        DType.IQ4_NL, DType.IQ4_XS,
    };

    /// <summary>Gaussian data with the edge cases the scale searches branch on: an all-zero super-block, a tiny ramp, a
    /// block of one repeated value, a lone outlier.</summary>
    private static float[] Data(int seed, int n)
    {
        var x = KernelTestUtil.Gaussian(new Random(seed), n);
        for (int i = 0; i < 256; i++) x[i] = 0;
        for (int i = 256; i < 512; i++) x[i] = 1e-3f * (i - 384);
        for (int i = 512; i < 768; i++) x[i] = 0.25f;
        x[800] = 40f;
        return x;
    }

    /// <summary>The bytes of ggml_quantize_chunk, which llama.cpp's quantizer runs (no importance matrix).</summary>
    [GgmlTheory]
    [MemberData(nameof(Quantized))]
    public void Quantizer_bytes_match_ggml_reference(DType type)
    {
        int n = 256 * 64;
        var x = Data(17 + (int)type, n);
        var traits = DTypes.Of(type);
        int bytes = (int)traits.RowBytes(n);
        var ours = new byte[bytes];
        var theirs = new byte[bytes];
        traits.QuantizeRow(x, ours);
        GgmlReference.QuantizeChunk(type, x, theirs, rows: 4);
        int bb = traits.BlockBytes, blocks = bytes / bb, differing = 0, first = -1;
        for (int b = 0; b < blocks; b++)
            if (!ours.AsSpan(b * bb, bb).SequenceEqual(theirs.AsSpan(b * bb, bb)))
            {
                differing++;
                if (first < 0) first = b;
            }
        Assert.True(differing == 0, $"{type}: {differing} of {blocks} blocks differ from ggml's quantizer (first: block {first})");
    }

    [GgmlTheory]
    [MemberData(nameof(Quantized))]
    public void Dequantizer_matches_ggml_bit_for_bit_and_the_fast_path_matches_the_oracle(DType type)
    {
        var traits = DTypes.Of(type);
        int n = 16 * 256;
        var src = KernelTestUtil.RandomBlocks(new Random(3 + (int)type), type, n / traits.BlockSize);
        var expected = new float[n];
        var naive = new float[n];
        GgmlReference.DequantizeRow(type, src, expected);
        traits.DequantizeRowNaive(src, naive);
        KernelTestUtil.AssertBitEqual(expected, naive, $"{type} oracle vs ggml");
        foreach (var isa in new[] { KernelIsa.Scalar, KernelIsa.Avx2, KernelIsa.Avx512 })
        {
            if (!KernelIsaSelector.IsSupported(isa)) continue;
            var fast = new float[n];
            traits.DequantizeRow(src, fast, isa);
            KernelTestUtil.AssertBitEqual(naive, fast, $"{type} {isa} vs oracle");
        }
    }

    [Theory]
    [MemberData(nameof(Quantized))]
    public unsafe void Dot_matches_the_oracle_dequantized_dot(DType type)
    {
        var traits = DTypes.Of(type);
        var rng = new Random(5 + (int)type);
        foreach (int blocks in new[] { 1, 3, 8 })
        {
            int n = blocks * traits.BlockSize;
            var w = KernelTestUtil.RandomBlocks(rng, type, blocks);
            var x = KernelTestUtil.Gaussian(rng, n);
            var deq = new float[n];
            traits.DequantizeRowNaive(w, deq);
            double exact = 0, mag = 0;
            for (int i = 0; i < n; i++) { exact += (double)deq[i] * x[i]; mag += Math.Abs((double)deq[i] * x[i]); }
            var buf = new float[n];
            foreach (var isa in new[] { KernelIsa.Scalar, KernelIsa.Avx2, KernelIsa.Avx512 })
            {
                if (!KernelIsaSelector.IsSupported(isa)) continue;
                float got;
                fixed (byte* pw = w)
                fixed (float* px = x, pb = buf)
                    got = traits.DotRow(pw, px, n, isa, pb);
                Assert.True(Math.Abs(got - exact) <= 1e-5 * mag + 1e-6, $"{type} {isa} n={n}: dot {got} vs {exact} (sum |w x| {mag})");
            }
        }
    }

    /// <summary>rms(error) / rms(x) on N(0,1) data: each type's published accuracy order, with margins.</summary>
    [Theory]
    [InlineData(DType.Q8_0, 0.008)]
    [InlineData(DType.Q6_K, 0.03)]
    [InlineData(DType.Q5_1, 0.06)]
    [InlineData(DType.Q5_0, 0.06)]
    [InlineData(DType.Q5_K, 0.06)]
    [InlineData(DType.Q4_1, 0.12)]
    [InlineData(DType.Q4_K, 0.12)]
    [InlineData(DType.IQ4_NL, 0.12)]
    [InlineData(DType.IQ4_XS, 0.12)]
    [InlineData(DType.Q4_0, 0.16)]
    [InlineData(DType.Q3_K, 0.25)]
    [InlineData(DType.Q2_K, 0.45)]
    public void Round_trip_error_is_bounded(DType type, double maxRelRms)
    {
        var traits = DTypes.Of(type);
        int n = 256 * 32;
        var x = KernelTestUtil.Gaussian(new Random(11), n);
        var q = new byte[traits.RowBytes(n)];
        traits.QuantizeRow(x, q);
        var back = new float[n];
        traits.DequantizeRow(q, back);
        double se = 0, sx = 0;
        for (int i = 0; i < n; i++)
        {
            se += (back[i] - x[i]) * (double)(back[i] - x[i]);
            sx += (double)x[i] * x[i];
        }
        double rel = Math.Sqrt(se / sx);
        Assert.True(rel <= maxRelRms, $"{type}: rms error / rms x = {rel:G4} > {maxRelRms}");
    }
}
