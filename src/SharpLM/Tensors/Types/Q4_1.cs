using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Q4_1: blocks of 32 values in 20 bytes: f16 d, f16 m, 16 bytes of nibbles as Q4_0; x = d * q + m.
/// </summary>
internal static unsafe class Q4_1Type
{
    public static readonly TypeTraits Traits = new(DType.Q4_1, "q4_1", 32, 20, "4-bit blocks of 32 with scale and min (20 bytes / 32 values)", 3u)
    {
        Quantize = &Quantize,
        DequantizeNaive = &DequantizeNaive,
        Dequantize = &Dequantize,
        Dot = &Dot,
        Dot4 = &Dot4,
        DotQ8Block = 32,
        DotQ8 = &DotQ8,
        Unpack32 = &Unpack32,
        Int8 = new Int8Form(Signed: false, Max: 15, Offset: 0, HasMin: true),
    };

    /// <summary>Reference quantizer (ggml quantize_row_q4_1_ref): d = (max - min) / 15, m = min, q = trunc((x - min) / d + 0.5).</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => LegacyQuants.QuantizeWithMin(src, dst, bits: 4);

    /// <summary>The readable oracle (ggml dequantize_row_q4_1): src (RowBytes(n)) -> dst (n) f32.</summary>
    public static void DequantizeNaive(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = dst.Length;
        // block (20 bytes): f16 d, f16 m, 16 bytes of nibbles as Q4_0; x = d * q + m
        for (int b = 0; b < n / 32; b++)
        {
            var blk = src.Slice(b * 20, 20);
            float d = H(blk, 0), m = H(blk, 2);
            for (int j = 0; j < 16; j++)
            {
                dst[b * 32 + j] = (blk[4 + j] & 0x0F) * d + m;
                dst[b * 32 + j + 16] = (blk[4 + j] >> 4) * d + m;
            }
        }
    }

    /// <summary>Fast dequantization (bit-identical to the oracle), shared with the other legacy types.</summary>
    public static void Dequantize(byte* src, float* dst, int n, KernelIsa isa)
    {
        if (isa == KernelIsa.Scalar) DequantizeNaive(new ReadOnlySpan<byte>(src, checked((int)Traits.RowBytes(n))), new Span<float>(dst, n));
        else BlockDecoders.Dequantize<LegacyQuants>(DType.Q4_1, src, dst, n, isa);
    }

    /// <summary>Fused dot: the row's blocks decoded in registers and multiplied into x.</summary>
    /// <summary>The integer GEMM's form (<see cref="TypeTraits.Unpack32"/>).</summary>
    public static void Unpack32(byte* src, int n, byte* u, float* d, float* m) => LegacyQuants.Unpack32(DType.Q4_1, src, n, u, d, m);

    public static float Dot(byte* w, float* x, int n, KernelIsa isa, float* rowBuf) => BlockDecoders.Dot<LegacyQuants>(DType.Q4_1, w, x, n, isa, rowBuf);

    /// <summary>Four f32 rows against one weight row, decoded once (<see cref="BlockDecoders.Dot4{TDecoder}"/>).</summary>
    public static bool Dot4(byte* w, float** xs, int n, KernelIsa isa, float* results) => BlockDecoders.Dot4<LegacyQuants>(DType.Q4_1, w, xs, n, isa, results);

    /// <summary>w (n elements) . x quantized in blocks of 32: per block d_w d_x sum q_w q_x + m_w d_x sum q_x, the sums in
    /// integers (q 0..15 unsigned times q_x with vpmaddubsw; sum q_x from the 16-sums).</summary>
    public static float DotQ8(byte* w, Q8Row x, int n, KernelIsa isa, float* rowBuf) => isa switch
    {
        KernelIsa.Avx512 or KernelIsa.Avx2 => DotQ8WithMin(w, x.Q, x.D, x.Sums, n, 20, fiveBits: false),
        _ => Q8Activations.DotGeneric(Traits, w, x, n, 32, isa, rowBuf),
    };

    /// <summary>The integer dot of a scale-and-min block type of 32 (Q4_1: 20-byte blocks, nibbles at 4; Q5_1: 24-byte blocks,
    /// qh at 4, nibbles at 8): per block d_w d_x sum q q_x + m_w d_x sum q_x.</summary>
    internal static float DotQ8WithMin(byte* w, sbyte* q, float* d, short* sums, int n, int blockBytes, bool fiveBits)
    {
        Vector256<float> acc = default;
        float off = 0;
        var m4 = Vector128.Create((byte)0x0F);
        var ones = Vector256.Create((short)1);
        var m10 = Vector256.Create((byte)0x10);
        var qhByte = Q5_0Type.s_qhByte;
        var qhBit = Q5_0Type.s_qhBit;
        int qs = fiveBits ? 8 : 4;
        for (int b = 0; b < n / 32; b++, w += blockBytes, q += 32)
        {
            Prefetch(w);
            var raw = Vector128.Load(w + qs);
            var z = Vector256.Create(raw & m4, (raw.AsUInt16() >>> 4).AsByte() & m4);
            if (fiveBits) z |= Vector256.Equals(Avx2.Shuffle(Vector256.Create(*(uint*)(w + 4)).AsByte(), qhByte) & qhBit, qhBit) & m10;
            var p = Avx2.MultiplyAddAdjacent(z, Vector256.Load(q));
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(p, ones)), Vector256.Create(Half(w) * d[b]), acc);
            off += Half(w + 2) * d[b] * (sums[2 * b] + sums[2 * b + 1]);
        }
        return Horizontal.Sum(acc) + off;
    }
}
