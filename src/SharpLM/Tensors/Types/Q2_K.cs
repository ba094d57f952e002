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
        Quantize = &Quantize,
        DequantizeNaive = &DequantizeNaive,
        Dequantize = &Dequantize,
        Dot = &Dot,
        Dot4 = &Dot4,
    };

    /// <summary>Reference quantizer (ggml quantize_row_q2_K_ref): per 16 values a scale and a min on 0..3 (make_qkx2_quants
    /// with |error| weights), both coded on 4 bits against the super-block's d and dmin.</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        Span<byte> L = stackalloc byte[256];
        Span<byte> laux = stackalloc byte[16];
        Span<float> weights = stackalloc float[16];
        Span<float> mins = stackalloc float[16];
        Span<float> scales = stackalloc float[16];
        const float Q4Scale = 15f;
        for (int b = 0; b < src.Length / 256; b++)
        {
            var x = src.Slice(b * 256, 256);
            var y = dst.Slice(b * 84, 84);
            float maxScale = 0, maxMin = 0;
            for (int j = 0; j < 16; j++)
            {
                for (int l = 0; l < 16; l++) weights[l] = MathF.Abs(x[16 * j + l]);
                scales[j] = KQuants.MakeQkx2Quants(16, 3, x.Slice(16 * j, 16), weights, L.Slice(16 * j, 16), out mins[j], laux, -0.5f, 0.1f, 15, useMad: true);
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }
            var sc = y[..16];
            if (maxScale > 0)
            {
                float iscale = Q4Scale / maxScale;
                for (int j = 0; j < 16; j++) sc[j] = (byte)NearestInt(iscale * scales[j]);
                WriteHalf(y[80..], maxScale / Q4Scale);
            }
            else
            {
                sc.Clear();
                WriteHalf(y[80..], 0f);
            }
            if (maxMin > 0)
            {
                float iscale = Q4Scale / maxMin;
                for (int j = 0; j < 16; j++) sc[j] |= (byte)(NearestInt(iscale * mins[j]) << 4);
                WriteHalf(y[82..], maxMin / Q4Scale);
            }
            else WriteHalf(y[82..], 0f);
            float dAll = ReadHalf(y[80..]), mAll = ReadHalf(y[82..]);
            for (int j = 0; j < 16; j++)
            {
                float d = dAll * (sc[j] & 0xF);
                if (d == 0) continue;
                float dm = mAll * (sc[j] >> 4);
                for (int ii = 0; ii < 16; ii++) L[16 * j + ii] = (byte)Math.Clamp(NearestInt((x[16 * j + ii] + dm) / d), 0, 3);
            }
            var qs = y.Slice(16, 64);
            for (int j = 0; j < 256; j += 128)
                for (int l = 0; l < 32; l++)
                    qs[j / 4 + l] = (byte)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
        }
    }

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
        else BlockDecoders.Dequantize<KQuants.LowBit>(DType.Q2_K, src, dst, n, isa);
    }

    /// <summary>Fused dot, shared with the other low-bit k-quant.</summary>
    public static float Dot(byte* w, float* x, int n, KernelIsa isa, float* rowBuf) => BlockDecoders.Dot<KQuants.LowBit>(DType.Q2_K, w, x, n, isa, rowBuf);

    /// <summary>Four f32 rows against one weight row, decoded once (<see cref="BlockDecoders.Dot4{TDecoder}"/>).</summary>
    public static bool Dot4(byte* w, float** xs, int n, KernelIsa isa, float* results) => BlockDecoders.Dot4<KQuants.LowBit>(DType.Q2_K, w, xs, n, isa, results);
}
