using SharpLM.Kernels;
using SharpLM.Tensors;

namespace SharpLM.Tests.Kernels;

public class DequantTests
{
    public static readonly DType[] AllTypes =
        [DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0, DType.Q4_1, DType.Q5_0, DType.Q5_1, DType.Q2_K, DType.Q3_K, DType.Q4_K, DType.Q5_K, DType.Q6_K];

    public static TheoryData<DType, KernelIsa> TypeIsa() => KernelTestUtil.TypeIsaData(AllTypes);

    private static byte[] Blocks(Random rng, DType type, int elements) =>
        SharpLM.Tensors.Types.DTypes.Of(type).CanQuantize
            ? KernelTestUtil.RandomWeights(rng, type, 1, elements, out _)
            : KernelTestUtil.RandomBlocks(rng, type, elements / DTypeInfo.BlockSize(type));

    /// <summary>The fast dequantizer is bit-identical to the naive one, for every type, variant and length.</summary>
    [Theory]
    [MemberData(nameof(TypeIsa))]
    public void FastMatchesNaiveExactly(DType type, KernelIsa isa)
    {
        var rng = new Random(42 + (int)type);
        int bs = DTypeInfo.BlockSize(type);
        int[] sizes = bs == 1 ? [0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 100, 255, 256, 257, 4096] : [0, bs, 2 * bs, 3 * bs, 8 * bs, 17 * bs];
        foreach (int n in sizes)
        {
            var src = Blocks(rng, type, n);
            var expected = new float[n];
            var got = new float[n];
            SharpLM.Tensors.Types.DTypes.Of(type).DequantizeRowNaive(src, expected);
            SharpLM.Tensors.Types.DTypes.Of(type).DequantizeRow(src, got, isa);
            KernelTestUtil.AssertBitEqual(expected, got, $"{type} {isa} n={n}");
        }
    }

    /// <summary>The naive dequantizer (and so the fast one) is bit-identical to ggml's dequantize_row_* on the same blocks.</summary>
    [GgmlTheory]
    [InlineData(DType.Q8_0)]
    [InlineData(DType.Q4_0)]
    [InlineData(DType.Q4_1)]
    [InlineData(DType.Q5_0)]
    [InlineData(DType.Q5_1)]
    [InlineData(DType.Q2_K)]
    [InlineData(DType.Q3_K)]
    [InlineData(DType.Q4_K)]
    [InlineData(DType.Q5_K)]
    [InlineData(DType.Q6_K)]
    public void NaiveMatchesGgmlDequantizer(DType type)
    {
        var rng = new Random(7 + (int)type);
        int n = 8 * 256;
        var src = KernelTestUtil.RandomBlocks(rng, type, n / DTypeInfo.BlockSize(type));
        var expected = new float[n];
        var got = new float[n];
        GgmlReference.DequantizeRow(type, src, expected);
        SharpLM.Tensors.Types.DTypes.Of(type).DequantizeRowNaive(src, got);
        KernelTestUtil.AssertBitEqual(expected, got, $"{type} vs ggml");
    }

    [Fact]
    public void ShortSourceIsRejectedWithSizes()
    {
        var ex = Assert.Throws<ArgumentException>(() => SharpLM.Tensors.Types.DTypes.Of(DType.Q8_0).DequantizeRow(new byte[33], new float[32]));
        Assert.Contains("34", ex.Message);
    }
}
