using SharpLM.Kernels;
using SharpLM.Tensors;

namespace SharpLM.Tests.Kernels;

/// <summary>Where activations and cached keys sit in memory changes how fast the kernels read them, never what they compute.</summary>
public unsafe class AlignmentTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(1000)]
    [InlineData(100_003)]
    public void Aligned_bytes_start_on_a_cache_line_and_hold_the_length(long length)
    {
        var a = new AlignedBytes(length);
        Assert.Equal(0, a.Pointer % 64);
        Assert.Equal(length, a.Length);
        Assert.Equal(length, a.Span.Length);
        a.Span.Fill(0xAB); // the whole usable range is writable
        if (length > 0) Assert.Equal(0xAB, ((byte*)a.Pointer)[length - 1]);
    }

    /// <summary>The f32 matvec copies activations that are not 64-byte aligned before reading them: every offset from a
    /// cache line gives the aligned result bit for bit, for one row and for a batch (the four-row dots), on every ISA.</summary>
    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public void A_matvec_gives_the_same_bits_at_every_activation_alignment(KernelIsa isa)
    {
        foreach (var type in new[] { DType.F32, DType.F16, DType.BF16 })
        {
            int rows = 37, cols = 200;
            var rng = new Random(5);
            var wBytes = KernelTestUtil.RandomWeights(rng, type, rows, cols, out _);
            var x = KernelTestUtil.Gaussian(rng, 6 * cols);
            using var pool = new WorkerPool(2);
            var buf = new AlignedBytes(4L * (x.Length + 16));
            fixed (byte* pw = wBytes)
            {
                var w = new WeightMatrix(type, pw, rows, cols);
                foreach (int t in new[] { 1, 6 })
                {
                    float[]? expected = null;
                    foreach (int offset in new[] { 0, 1, 3, 8 })
                    {
                        var xs = new Span<float>((float*)buf.Pointer + offset, t * cols);
                        x.AsSpan(0, t * cols).CopyTo(xs);
                        var y = new float[t * rows];
                        MatMul.Forward(xs, w, y, t, pool, isa);
                        if (expected is null) expected = y;
                        else KernelTestUtil.AssertBitEqual(expected, y, $"{type} {isa} T={t} x at +{4 * offset} bytes");
                    }
                }
            }
        }
    }
}
