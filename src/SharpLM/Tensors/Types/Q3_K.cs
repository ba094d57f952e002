using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Q3_K: super-blocks of 256 values in 110 bytes: u8 hmask[32], u8 qs[64], u8 scales[12] (16 6-bit signed scales,
/// bias 32), f16 d. q = 2 low bits as Q2_K, minus 4 unless bit (e/32) of hmask[e%32] is set.
/// </summary>
internal static unsafe class Q3_KType
{
    public static readonly TypeTraits Traits = new(DType.Q3_K, "q3_k", 256, 110, "3-bit k-quant (110 bytes / 256 values)", 12u)
    {
        DequantizeNaive = &DequantizeNaive,
        Dequantize = &Dequantize,
    };

    /// <summary>The readable oracle (ggml dequantize_row_q3_k): src (RowBytes(n)) -> dst (n) f32.</summary>
    public static void DequantizeNaive(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = dst.Length;
        // block (110 bytes): u8 hmask[32], u8 qs[64], u8 scales[12] (16 6-bit signed scales, bias 32), f16 d.
        // q = 2 low bits as Q2_K, minus 4 unless bit (e/32) of hmask[e%32] is set.
        for (int b = 0; b < n / 256; b++)
        {
            var blk = src.Slice(b * 110, 110);
            float d = H(blk, 108);
            var scales = blk.Slice(96, 12);
            for (int e = 0; e < 256; e++)
            {
                int j = e / 16;
                int sc = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
                sc = (sc | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
                int q = (blk[32 + 32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3;
                int h = (blk[e % 32] >> (e / 32)) & 1;
                float dl = d * sc;
                dst[b * 256 + e] = dl * (q - (h != 0 ? 0 : 4));
            }
        }
    }

    /// <summary>Fast dequantization (bit-identical to the oracle), shared with the other low-bit k-quant.</summary>
    public static void Dequantize(byte* src, float* dst, int n, KernelIsa isa)
    {
        if (isa == KernelIsa.Scalar) DequantizeNaive(new ReadOnlySpan<byte>(src, checked((int)Traits.RowBytes(n))), new Span<float>(dst, n));
        else KQuants.DequantizeLowBit(DType.Q3_K, src, dst, n, isa);
    }
}
