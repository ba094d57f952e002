using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Q5_1: blocks of 32 values in 24 bytes: f16 d, f16 m, u32 qh, 16 bytes of nibbles; x = d * q + m.
/// </summary>
internal static unsafe class Q5_1Type
{
    public static readonly TypeTraits Traits = new(DType.Q5_1, "q5_1", 32, 24, "5-bit blocks of 32 with scale and min (24 bytes / 32 values)", 9u)
    {
        Quantize = &Quantize,
        DequantizeNaive = &DequantizeNaive,
        Dequantize = &Dequantize,
        Dot = &Dot,
        Dot4 = &Dot4,
        DotQ8Block = 32,
        DotQ8 = &DotQ8,
        Unpack32 = &Unpack32,
        Int8 = new Int8Form(Signed: false, Max: 31, Offset: 0, HasMin: true),
    };

    /// <summary>Reference quantizer (ggml quantize_row_q5_1_ref): d = (max - min) / 31, m = min, q = trunc((x - min) / d + 0.5).</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => LegacyQuants.QuantizeWithMin(src, dst, bits: 5);

    /// <summary>The readable oracle (ggml dequantize_row_q5_1): src (RowBytes(n)) -> dst (n) f32.</summary>
    public static void DequantizeNaive(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = dst.Length;
        // block (24 bytes): f16 d, f16 m, u32 qh, 16 bytes nibbles; x = d * q + m
        for (int b = 0; b < n / 32; b++)
        {
            var blk = src.Slice(b * 24, 24);
            float d = H(blk, 0), m = H(blk, 2);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(blk[4..]);
            for (int j = 0; j < 16; j++)
            {
                int x0 = (blk[8 + j] & 0x0F) | (int)(((qh >> j) << 4) & 0x10);
                int x1 = (blk[8 + j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
                dst[b * 32 + j] = x0 * d + m;
                dst[b * 32 + j + 16] = x1 * d + m;
            }
        }
    }

    /// <summary>Fast dequantization (bit-identical to the oracle), shared with the other legacy types.</summary>
    public static void Dequantize(byte* src, float* dst, int n, KernelIsa isa)
    {
        if (isa == KernelIsa.Scalar) DequantizeNaive(new ReadOnlySpan<byte>(src, checked((int)Traits.RowBytes(n))), new Span<float>(dst, n));
        else BlockDecoders.Dequantize<LegacyQuants>(DType.Q5_1, src, dst, n, isa);
    }

    /// <summary>Fused dot: the row's blocks decoded in registers and multiplied into x.</summary>
    /// <summary>The integer GEMM's form (<see cref="TypeTraits.Unpack32"/>).</summary>
    public static void Unpack32(byte* src, int n, byte* u, float* d, float* m) => LegacyQuants.Unpack32(DType.Q5_1, src, n, u, d, m);

    public static float Dot(byte* w, float* x, int n, KernelIsa isa, float* rowBuf) => BlockDecoders.Dot<LegacyQuants>(DType.Q5_1, w, x, n, isa, rowBuf);

    /// <summary>Four f32 rows against one weight row, decoded once (<see cref="BlockDecoders.Dot4{TDecoder}"/>).</summary>
    public static bool Dot4(byte* w, float** xs, int n, KernelIsa isa, float* results) => BlockDecoders.Dot4<LegacyQuants>(DType.Q5_1, w, xs, n, isa, results);

    /// <summary>w (n elements) . x quantized in blocks of 32: per block d_w d_x sum q_w q_x + m_w d_x sum q_x, the sums in
    /// integers (q 0..31 unsigned times q_x with vpmaddubsw; sum q_x from the 16-sums).</summary>
    public static float DotQ8(byte* w, Q8Row x, int n, KernelIsa isa, float* rowBuf) => isa switch
    {
        KernelIsa.Avx512 or KernelIsa.Avx2 => Q4_1Type.DotQ8WithMin(w, x.Q, x.D, x.Sums, n, 24, fiveBits: true),
        _ => Q8Activations.DotGeneric(Traits, w, x, n, 32, isa, rowBuf),
    };
}
