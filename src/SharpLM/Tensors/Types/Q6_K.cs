using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Q6_K: super-blocks of 256 values in 210 bytes: u8 ql[128], u8 qh[64], int8 scales[16], f16 d;
/// x = d * scale[element/16] * (q - 32) with q = 4 low bits from ql | 2 high bits from qh.
/// </summary>
internal static unsafe class Q6_KType
{
    public static readonly TypeTraits Traits = new(DType.Q6_K, "q6_k", 256, 210, "6-bit k-quant (210 bytes / 256 values)", 18u)
    {
        Quantize = &Quantize,
        DequantizeNaive = &DequantizeNaive,
        Dequantize = &Dequantize,
        Dot = &Dot,
    };

    /// <summary>Reference quantizer (ggml quantize_row_q6_k_ref): src (n) f32 -> dst (RowBytes(n)).</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        for (int b = 0; b < src.Length / 256; b++) QuantizeBlock(src.Slice(b * 256, 256), dst.Slice(b * 210, 210));
    }

    private static void QuantizeBlock(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<sbyte> L = stackalloc sbyte[256];
        Span<float> scales = stackalloc float[16];
        float maxScale = 0, maxAbsScale = 0;
        for (int ib = 0; ib < 16; ib++)
        {
            float scale = KQuants.MakeQxQuants(16, 32, x.Slice(16 * ib, 16), L.Slice(16 * ib, 16));
            scales[ib] = scale;
            if (Math.Abs(scale) > maxAbsScale) { maxAbsScale = Math.Abs(scale); maxScale = scale; }
        }
        y[..210].Clear();
        if (maxAbsScale < 1e-15f) return; // all (near) zero: an all-zero block, d = 0
        float iscale = -128f / maxScale;
        WriteHalf(y[208..], 1 / iscale);
        for (int ib = 0; ib < 16; ib++) y[192 + ib] = (byte)(sbyte)Math.Min(127, NearestInt(iscale * scales[ib]));
        float d0 = ReadHalf(y[208..]);
        for (int j = 0; j < 16; j++)
        {
            float d = d0 * (sbyte)y[192 + j];
            if (d == 0) continue;
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (sbyte)(Math.Clamp(NearestInt(x[16 * j + ii] / d), -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++)
        {
            int j = 128 * h;
            for (int l = 0; l < 32; l++)
            {
                int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                y[64 * h + l] = (byte)(q1 | (q3 << 4));
                y[64 * h + l + 32] = (byte)(q2 | (q4 << 4));
                y[128 + 32 * h + l] = (byte)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
        }
    }

    /// <summary>The readable oracle (ggml dequantize_row_q6_k): src (RowBytes(n)) -> dst (n) f32.</summary>
    public static void DequantizeNaive(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = dst.Length;
        // block (210 bytes): u8 ql[128], u8 qh[64], int8 scales[16], f16 d. For half h (128 elements) and l < 32:
        // element 128h+l    = low nibble ql[64h+l]    | bits 0-1 of qh[32h+l] << 4
        // element 128h+l+32 = low nibble ql[64h+l+32] | bits 2-3
        // element 128h+l+64 = high nibble ql[64h+l]   | bits 4-5
        // element 128h+l+96 = high nibble ql[64h+l+32]| bits 6-7;  x = d * scale[element/16] * (q - 32)
        for (int b = 0; b < n / 256; b++)
        {
            var blk = src.Slice(b * 210, 210);
            float d = H(blk, 208);
            for (int h = 0; h < 2; h++)
                for (int l = 0; l < 32; l++)
                {
                    int ql0 = blk[64 * h + l], ql1 = blk[64 * h + l + 32], qh = blk[128 + 32 * h + l];
                    int q1 = ((ql0 & 0xF) | (((qh >> 0) & 3) << 4)) - 32;
                    int q2 = ((ql1 & 0xF) | (((qh >> 2) & 3) << 4)) - 32;
                    int q3 = ((ql0 >> 4) | (((qh >> 4) & 3) << 4)) - 32;
                    int q4 = ((ql1 >> 4) | (((qh >> 6) & 3) << 4)) - 32;
                    int e = 128 * h + l;
                    dst[b * 256 + e] = d * (sbyte)blk[192 + e / 16] * q1;
                    dst[b * 256 + e + 32] = d * (sbyte)blk[192 + (e + 32) / 16] * q2;
                    dst[b * 256 + e + 64] = d * (sbyte)blk[192 + (e + 64) / 16] * q3;
                    dst[b * 256 + e + 96] = d * (sbyte)blk[192 + (e + 96) / 16] * q4;
                }
        }
    }

    /// <summary>Fast dequantization (bit-identical to the oracle): n elements from src -> dst.</summary>
    public static void Dequantize(byte* src, float* dst, int n, KernelIsa isa)
    {
        if (isa == KernelIsa.Scalar) DequantizeNaive(new ReadOnlySpan<byte>(src, checked((int)Traits.RowBytes(n))), new Span<float>(dst, n));
        else DequantizeSimd(src, dst, n, isa);
    }

    private static void DequantizeSimd(byte* src, float* dst, int n, KernelIsa isa)
    {
        for (int b = 0; b < n / 256; b++, src += 210, dst += 256)
        {
            float d = Half(src + 208);
            var sc = (sbyte*)(src + 192);
            for (int h = 0; h < 2; h++)
            {
                byte* ql = src + 64 * h, qh = src + 128 + 32 * h;
                float* o = dst + 128 * h;
                if (isa == KernelIsa.Avx512)
                {
                    for (int l = 0; l < 32; l += 16)
                    {
                        var a = Avx512F.ConvertToVector512Int32(Vector128.Load(ql + l));
                        var c = Avx512F.ConvertToVector512Int32(Vector128.Load(ql + l + 32));
                        var hb = Avx512F.ConvertToVector512Int32(Vector128.Load(qh + l));
                        var m4 = Vector512.Create(15);
                        var m30 = Vector512.Create(0x30);
                        var k32 = Vector512.Create(32);
                        var q1 = ((a & m4) | ((hb << 4) & m30)) - k32;
                        var q2 = ((c & m4) | ((hb << 2) & m30)) - k32;
                        var q3 = ((a >>> 4) | (hb & m30)) - k32;
                        var q4 = ((c >>> 4) | ((hb >>> 2) & m30)) - k32;
                        int e = 128 * h + l;
                        (Vector512.Create(d * sc[e / 16]) * Avx512F.ConvertToVector512Single(q1)).Store(o + l);
                        (Vector512.Create(d * sc[(e + 32) / 16]) * Avx512F.ConvertToVector512Single(q2)).Store(o + l + 32);
                        (Vector512.Create(d * sc[(e + 64) / 16]) * Avx512F.ConvertToVector512Single(q3)).Store(o + l + 64);
                        (Vector512.Create(d * sc[(e + 96) / 16]) * Avx512F.ConvertToVector512Single(q4)).Store(o + l + 96);
                    }
                }
                else
                {
                    for (int l = 0; l < 32; l += 8)
                    {
                        var a = Avx2.ConvertToVector256Int32(ql + l);
                        var c = Avx2.ConvertToVector256Int32(ql + l + 32);
                        var hb = Avx2.ConvertToVector256Int32(qh + l);
                        var m4 = Vector256.Create(15);
                        var m30 = Vector256.Create(0x30);
                        var k32 = Vector256.Create(32);
                        var q1 = ((a & m4) | ((hb << 4) & m30)) - k32;
                        var q2 = ((c & m4) | ((hb << 2) & m30)) - k32;
                        var q3 = ((a >>> 4) | (hb & m30)) - k32;
                        var q4 = ((c >>> 4) | ((hb >>> 2) & m30)) - k32;
                        int e = 128 * h + l;
                        (Vector256.Create(d * sc[e / 16]) * Avx.ConvertToVector256Single(q1)).Store(o + l);
                        (Vector256.Create(d * sc[(e + 32) / 16]) * Avx.ConvertToVector256Single(q2)).Store(o + l + 32);
                        (Vector256.Create(d * sc[(e + 64) / 16]) * Avx.ConvertToVector256Single(q3)).Store(o + l + 64);
                        (Vector256.Create(d * sc[(e + 96) / 16]) * Avx.ConvertToVector256Single(q4)).Store(o + l + 96);
                    }
                }
            }
        }
    }

    /// <summary>w (n elements) . x (n) f32, fused (dequantized in registers, f32 FMA accumulation, prefetch).</summary>
    public static float Dot(byte* w, float* x, int n, KernelIsa isa, float* rowBuf) => isa switch
    {
        KernelIsa.Avx512 => Dot512(w, x, n),
        KernelIsa.Avx2 => Dot256(w, x, n),
        _ => TypeTraits.DotGeneric(Traits, w, x, n, isa, rowBuf),
    };

    // Q6_K: every 16-lane vector of one half is one 16-element sub-block with its own int8 scale.
    public static float Dot512(byte* w, float* x, int n)
    {
        Vector512<float> acc0 = default, acc1 = default;
        var m4 = Vector512.Create(15);
        var m30 = Vector512.Create(0x30);
        var k32 = Vector512.Create(32);
        for (int b = 0; b < n / 256; b++, w += 210, x += 256)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128); Prefetch(w + 192);
            float d = Half(w + 208);
            var sc = (sbyte*)(w + 192);
            for (int h = 0; h < 2; h++)
            {
                byte* ql = w + 64 * h, qh = w + 128 + 32 * h;
                for (int l = 0; l < 32; l += 16)
                {
                    var a = Avx512F.ConvertToVector512Int32(Vector128.Load(ql + l));
                    var c = Avx512F.ConvertToVector512Int32(Vector128.Load(ql + l + 32));
                    var hb = Avx512F.ConvertToVector512Int32(Vector128.Load(qh + l));
                    var q1 = ((a & m4) | ((hb << 4) & m30)) - k32;
                    var q2 = ((c & m4) | ((hb << 2) & m30)) - k32;
                    var q3 = ((a >>> 4) | (hb & m30)) - k32;
                    var q4 = ((c >>> 4) | ((hb >>> 2) & m30)) - k32;
                    int e = 128 * h + l;
                    float* xe = x + e;
                    acc0 = Avx512F.FusedMultiplyAdd(Vector512.Create(d * sc[e >> 4]), Avx512F.ConvertToVector512Single(q1) * Vector512.Load(xe), acc0);
                    acc1 = Avx512F.FusedMultiplyAdd(Vector512.Create(d * sc[(e + 32) >> 4]), Avx512F.ConvertToVector512Single(q2) * Vector512.Load(xe + 32), acc1);
                    acc0 = Avx512F.FusedMultiplyAdd(Vector512.Create(d * sc[(e + 64) >> 4]), Avx512F.ConvertToVector512Single(q3) * Vector512.Load(xe + 64), acc0);
                    acc1 = Avx512F.FusedMultiplyAdd(Vector512.Create(d * sc[(e + 96) >> 4]), Avx512F.ConvertToVector512Single(q4) * Vector512.Load(xe + 96), acc1);
                }
            }
        }
        return Vector512.Sum(acc0 + acc1);
    }

    public static float Dot256(byte* w, float* x, int n)
    {
        Vector256<float> acc0 = default, acc1 = default;
        var m4 = Vector256.Create(15);
        var m30 = Vector256.Create(0x30);
        var k32 = Vector256.Create(32);
        for (int b = 0; b < n / 256; b++, w += 210, x += 256)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128); Prefetch(w + 192);
            float d = Half(w + 208);
            var sc = (sbyte*)(w + 192);
            for (int h = 0; h < 2; h++)
            {
                byte* ql = w + 64 * h, qh = w + 128 + 32 * h;
                for (int l = 0; l < 32; l += 8)
                {
                    var a = Avx2.ConvertToVector256Int32(ql + l);
                    var c = Avx2.ConvertToVector256Int32(ql + l + 32);
                    var hb = Avx2.ConvertToVector256Int32(qh + l);
                    var q1 = ((a & m4) | ((hb << 4) & m30)) - k32;
                    var q2 = ((c & m4) | ((hb << 2) & m30)) - k32;
                    var q3 = ((a >>> 4) | (hb & m30)) - k32;
                    var q4 = ((c >>> 4) | ((hb >>> 2) & m30)) - k32;
                    int e = 128 * h + l;
                    float* xe = x + e;
                    acc0 = Fma.MultiplyAdd(Vector256.Create(d * sc[e >> 4]), Avx.ConvertToVector256Single(q1) * Vector256.Load(xe), acc0);
                    acc1 = Fma.MultiplyAdd(Vector256.Create(d * sc[(e + 32) >> 4]), Avx.ConvertToVector256Single(q2) * Vector256.Load(xe + 32), acc1);
                    acc0 = Fma.MultiplyAdd(Vector256.Create(d * sc[(e + 64) >> 4]), Avx.ConvertToVector256Single(q3) * Vector256.Load(xe + 64), acc0);
                    acc1 = Fma.MultiplyAdd(Vector256.Create(d * sc[(e + 96) >> 4]), Avx.ConvertToVector256Single(q4) * Vector256.Load(xe + 96), acc1);
                }
            }
        }
        return Vector256.Sum(acc0 + acc1);
    }
}
