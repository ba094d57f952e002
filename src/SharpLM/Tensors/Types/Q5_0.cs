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
        Dot4 = &Dot4,
        DotQ8Block = 32,
        DotQ8 = &DotQ8,
        Unpack32 = &Unpack32,
        Int8 = new Int8Form(Signed: false, Max: 31, Offset: 16, HasMin: false),
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
    /// <summary>The integer GEMM's form (<see cref="TypeTraits.Unpack32"/>).</summary>
    public static void Unpack32(byte* src, int n, byte* u, float* d, float* m) => LegacyQuants.Unpack32(DType.Q5_0, src, n, u, d, m);

    public static float Dot(byte* w, float* x, int n, KernelIsa isa, float* rowBuf) => BlockDecoders.Dot<LegacyQuants>(DType.Q5_0, w, x, n, isa, rowBuf);

    /// <summary>Four f32 rows against one weight row, decoded once (<see cref="BlockDecoders.Dot4{TDecoder}"/>).</summary>
    public static bool Dot4(byte* w, float** xs, int n, KernelIsa isa, float* results) => BlockDecoders.Dot4<LegacyQuants>(DType.Q5_0, w, xs, n, isa, results);

    /// <summary>w (n elements) . x quantized in blocks of 32: per block d_w*d_x * sum (q_w - 16) q_x, in integers.</summary>
    public static float DotQ8(byte* w, Q8Row x, int n, KernelIsa isa, float* rowBuf) => isa switch
    {
        KernelIsa.Avx512 or KernelIsa.Avx2 => DotQ8_256(w, x.Q, x.D, n),
        _ => Q8Activations.DotGeneric(Traits, w, x, n, 32, isa, rowBuf),
    };

    // Byte i of a block's 5th-bit vector reads byte i/8 of qh (each 128-bit lane holds qh's four bytes four times) and tests
    // bit i%8 of it.
    internal static readonly Vector256<byte> s_qhByte = Vector256.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    internal static readonly Vector256<byte> s_qhBit = Vector256.Create((byte)1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);

    // One block per ymm: q = nibble | 5th bit << 4 (0..31, unsigned) times q_x with vpmaddubsw, minus 16 * (q_x pair sums)
    // (pairs <= 7874 and 4064: no int16 saturation), then vpmaddwd to int32.
    private static float DotQ8_256(byte* w, sbyte* q, float* d, int n)
    {
        Vector256<float> acc = default;
        var m4 = Vector128.Create((byte)0x0F);
        var m10 = Vector256.Create((byte)0x10);
        var sixteen = Vector256.Create((byte)16);
        var ones = Vector256.Create((short)1);
        var qhByte = s_qhByte;
        var qhBit = s_qhBit;
        for (int b = 0; b < n / 32; b++, w += 22, q += 32)
        {
            Prefetch(w);
            var raw = Vector128.Load(w + 6);
            var z = Vector256.Create(raw & m4, (raw.AsUInt16() >>> 4).AsByte() & m4);
            var hb = Vector256.Equals(Avx2.Shuffle(Vector256.Create(*(uint*)(w + 2)).AsByte(), qhByte) & qhBit, qhBit) & m10;
            var xv = Vector256.Load(q);
            var p = Avx2.MultiplyAddAdjacent(z | hb, xv) - Avx2.MultiplyAddAdjacent(sixteen, xv);
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(p, ones)), Vector256.Create(Half(w) * d[b]), acc);
        }
        return Horizontal.Sum(acc);
    }
}
