using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Q2_K: super-blocks of 256 values in 84 bytes: u8 scales[16] (low nibble scale, high nibble min), u8 qs[64], f16 d,
/// f16 dmin. The 2-bit q of element 128*h + 32*s + l is bits 2s..2s+1 of qs[32h + l]; sub-block = element / 16.
/// </summary>
internal static unsafe class Q2_KType
{
    public static readonly TypeTraits Traits = new(DType.Q2_K, "q2_k", 256, 84, "2-bit k-quant (84 bytes / 256 values)", 10u)
    {
        DequantizeNaive = &DequantizeNaive,
        Dequantize = &Dequantize,
    };

    /// <summary>The readable oracle (ggml dequantize_row_q2_k): src (RowBytes(n)) -> dst (n) f32.</summary>
    public static void DequantizeNaive(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = dst.Length;
        // block (84 bytes): u8 scales[16] (low nibble scale, high nibble min), u8 qs[64], f16 d, f16 dmin.
        // 2-bit q of element 128*h + 32*s + l is bits 2s..2s+1 of qs[32h + l]; sub-block = element / 16.
        for (int b = 0; b < n / 256; b++)
        {
            var blk = src.Slice(b * 84, 84);
            float d = H(blk, 80), min = H(blk, 82);
            for (int e = 0; e < 256; e++)
            {
                int sc = blk[e / 16];
                int q = (blk[16 + 32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3;
                float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                dst[b * 256 + e] = dl * q - ml;
            }
        }
    }

    /// <summary>Fast dequantization (bit-identical to the oracle), shared with the other low-bit k-quant.</summary>
    public static void Dequantize(byte* src, float* dst, int n, KernelIsa isa)
    {
        if (isa == KernelIsa.Scalar) DequantizeNaive(new ReadOnlySpan<byte>(src, checked((int)Traits.RowBytes(n))), new Span<float>(dst, n));
        else KQuants.DequantizeLowBit(DType.Q2_K, src, dst, n, isa);
    }
}
