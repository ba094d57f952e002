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
        Quantize = &Quantize,
        DequantizeNaive = &DequantizeNaive,
        Dequantize = &Dequantize,
        Dot = &Dot,
    };

    /// <summary>Reference quantizer (ggml quantize_row_q3_K_ref): per 16 values a signed scale on -4..3 (make_q3_quants,
    /// weighted by x^2), the 16 scales coded on 6 bits against the super-block's d, the 3rd bit of each value in hmask.</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        Span<sbyte> L = stackalloc sbyte[256];
        Span<float> scales = stackalloc float[16];
        for (int b = 0; b < src.Length / 256; b++)
        {
            var x = src.Slice(b * 256, 256);
            var y = dst.Slice(b * 110, 110);
            float maxScale = 0, amax = 0;
            for (int j = 0; j < 16; j++)
            {
                scales[j] = KQuants.MakeQ3Quants(16, 4, x.Slice(16 * j, 16), L.Slice(16 * j, 16));
                float scale = MathF.Abs(scales[j]);
                if (scale > amax) { amax = scale; maxScale = scales[j]; }
            }
            var sc = y.Slice(96, 12);
            sc.Clear();
            if (maxScale != 0)
            {
                float iscale = -32f / maxScale;
                for (int j = 0; j < 16; j++)
                {
                    int l = (sbyte)NearestInt(iscale * scales[j]);
                    l = Math.Clamp(l, -32, 31) + 32;
                    if (j < 8) sc[j] = (byte)(l & 0xF);
                    else sc[j - 8] |= (byte)((l & 0xF) << 4);
                    l >>= 4;
                    sc[j % 4 + 8] |= (byte)(l << (2 * (j / 4)));
                }
                WriteHalf(y[108..], 1 / iscale);
            }
            else WriteHalf(y[108..], 0f);
            float dAll = ReadHalf(y[108..]);
            for (int j = 0; j < 16; j++)
            {
                int s = j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4;
                s = (sbyte)((s | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
                float d = dAll * s;
                if (d == 0) continue;
                for (int ii = 0; ii < 16; ii++) L[16 * j + ii] = (sbyte)(Math.Clamp(NearestInt(x[16 * j + ii] / d), -4, 3) + 4);
            }
            var hmask = y[..32];
            hmask.Clear();
            int m = 0;
            byte hm = 1;
            for (int j = 0; j < 256; j++)
            {
                if (L[j] > 3)
                {
                    hmask[m] |= hm;
                    L[j] -= 4;
                }
                if (++m == 32)
                {
                    m = 0;
                    hm <<= 1;
                }
            }
            var qs = y.Slice(32, 64);
            for (int j = 0; j < 256; j += 128)
                for (int l = 0; l < 32; l++)
                    qs[j / 4 + l] = (byte)((byte)L[j + l] | ((byte)L[j + l + 32] << 2) | ((byte)L[j + l + 64] << 4) | ((byte)L[j + l + 96] << 6));
        }
    }

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
        else BlockDecoders.Dequantize<KQuants.LowBit>(DType.Q3_K, src, dst, n, isa);
    }

    /// <summary>Fused dot, shared with the other low-bit k-quant.</summary>
    public static float Dot(byte* w, float* x, int n, KernelIsa isa, float* rowBuf) => BlockDecoders.Dot<KQuants.LowBit>(DType.Q3_K, w, x, n, isa, rowBuf);
}
