using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Q5_0: blocks of 32 values in 22 bytes: f16 d, u32 qh (bit j = 5th bit of element j), 16 bytes of nibbles; x = d * (q - 16).
/// </summary>
internal static unsafe class Q5_0Type
{
    public static readonly TypeTraits Traits = new(DType.Q5_0, "q5_0", 32, 22, "5-bit blocks of 32 (22 bytes / 32 values)", 8u)
    {
        Quantize = &Quantize,
        DequantizeNaive = &DequantizeNaive,
        Dequantize = &Dequantize,
        Dot = &Dot,
    };

    /// <summary>Reference quantizer (ggml quantize_row_q5_0_ref): d = max / -16 (max = the value of largest magnitude),
    /// q = min(31, trunc(x / d + 16.5)), the 5th bits gathered in qh.</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        for (int b = 0; b < src.Length / 32; b++)
        {
            var x = src.Slice(b * 32, 32);
            var y = dst.Slice(b * 22, 22);
            float amax = 0, max = 0;
            foreach (float v in x)
                if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
            float d = max / -16, id = d != 0 ? 1f / d : 0f;
            WriteHalf(y, d);
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                int x0 = Math.Min(31, (int)(sbyte)(x[j] * id + 16.5f));
                int x1 = Math.Min(31, (int)(sbyte)(x[j + 16] * id + 16.5f));
                y[6 + j] = (byte)((x0 & 0xF) | ((x1 & 0xF) << 4));
                qh |= (uint)((x0 & 0x10) >> 4) << j;
                qh |= (uint)((x1 & 0x10) >> 4) << (j + 16);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(y[2..], qh);
        }
    }

    /// <summary>The readable oracle (ggml dequantize_row_q5_0): src (RowBytes(n)) -> dst (n) f32.</summary>
    public static void DequantizeNaive(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = dst.Length;
        // block (22 bytes): f16 d, u32 qh (bit j = 5th bit of element j), 16 bytes nibbles; x = d * (q - 16)
        for (int b = 0; b < n / 32; b++)
        {
            var blk = src.Slice(b * 22, 22);
            float d = H(blk, 0);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(blk[2..]);
            for (int j = 0; j < 16; j++)
            {
                int x0 = (blk[6 + j] & 0x0F) | (int)(((qh >> j) << 4) & 0x10);
                int x1 = (blk[6 + j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
                dst[b * 32 + j] = (x0 - 16) * d;
                dst[b * 32 + j + 16] = (x1 - 16) * d;
            }
        }
    }

    /// <summary>Fast dequantization (bit-identical to the oracle), shared with the other legacy types.</summary>
    public static void Dequantize(byte* src, float* dst, int n, KernelIsa isa)
    {
        if (isa == KernelIsa.Scalar) DequantizeNaive(new ReadOnlySpan<byte>(src, checked((int)Traits.RowBytes(n))), new Span<float>(dst, n));
        else BlockDecoders.Dequantize<LegacyQuants>(DType.Q5_0, src, dst, n, isa);
    }

    /// <summary>Fused dot: the row's blocks decoded in registers and multiplied into x.</summary>
    public static float Dot(byte* w, float* x, int n, KernelIsa isa, float* rowBuf) => BlockDecoders.Dot<LegacyQuants>(DType.Q5_0, w, x, n, isa, rowBuf);
}
