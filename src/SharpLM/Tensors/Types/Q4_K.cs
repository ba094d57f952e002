using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Q4_K: super-blocks of 256 values in 144 bytes: f16 d, f16 dmin, u8 scales[12] (8 6-bit scales and mins), u8 qs[128].
/// Elements 64g..64g+31 = low nibbles of qs[32g..32g+31] (sub-block 2g), the next 32 = high nibbles (2g+1);
/// x = d*scale*q - dmin*min.
/// </summary>
internal static unsafe class Q4_KType
{
    public static readonly TypeTraits Traits = new(DType.Q4_K, "q4_k", 256, 144, "4-bit k-quant (144 bytes / 256 values)", 15u)
    {
        Quantize = &Quantize,
        DequantizeNaive = &DequantizeNaive,
        Dequantize = &Dequantize,
        Dot = &Dot,
    };

    /// <summary>Reference quantizer (ggml quantize_row_q4_k_ref): src (n) f32 -> dst (RowBytes(n)).</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        for (int b = 0; b < src.Length / 256; b++) QuantizeBlock(src.Slice(b * 256, 256), dst.Slice(b * 144, 144));
    }

    private static void QuantizeBlock(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<byte> L = stackalloc byte[256];
        KQuants.QuantizeScalesMins(x, y, L, 15, -1f, 0.1f, 20);
        var q = y.Slice(16, 128);
        for (int j = 0, qi = 0; j < 256; j += 64, qi += 32)
            for (int l = 0; l < 32; l++) q[qi + l] = (byte)(L[j + l] | (L[j + l + 32] << 4));
    }

    /// <summary>The readable oracle (ggml dequantize_row_q4_k): src (RowBytes(n)) -> dst (n) f32.</summary>
    public static void DequantizeNaive(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = dst.Length;
        // block (144 bytes): f16 d, f16 dmin, u8 scales[12] (8 6-bit scales and mins), u8 qs[128].
        // elements 64g..64g+31 = low nibbles of qs[32g..32g+31] (sub-block 2g), the next 32 = high nibbles (2g+1).
        for (int b = 0; b < n / 256; b++)
        {
            var blk = src.Slice(b * 144, 144);
            float d = H(blk, 0), min = H(blk, 2);
            var scales = blk.Slice(4, 12);
            for (int g = 0; g < 4; g++)
            {
                KQuants.ScaleMinK4(2 * g, scales, out int sc1, out int m1);
                KQuants.ScaleMinK4(2 * g + 1, scales, out int sc2, out int m2);
                float d1 = d * sc1, mm1 = min * m1, d2 = d * sc2, mm2 = min * m2;
                for (int l = 0; l < 32; l++)
                {
                    byte q = blk[16 + 32 * g + l];
                    dst[b * 256 + 64 * g + l] = d1 * (q & 0xF) - mm1;
                    dst[b * 256 + 64 * g + 32 + l] = d2 * (q >> 4) - mm2;
                }
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
        for (int b = 0; b < n / 256; b++, src += 144, dst += 256)
        {
            float d = Half(src), min = Half(src + 2);
            var scales = new ReadOnlySpan<byte>(src + 4, 12);
            byte* q = src + 16;
            for (int g = 0; g < 4; g++, q += 32)
            {
                KQuants.ScaleMinK4(2 * g, scales, out int sc1, out int m1);
                KQuants.ScaleMinK4(2 * g + 1, scales, out int sc2, out int m2);
                float d1 = d * sc1, mm1 = min * m1, d2 = d * sc2, mm2 = min * m2;
                float* o = dst + 64 * g;
                if (isa == KernelIsa.Avx512)
                {
                    for (int l = 0; l < 32; l += 16)
                    {
                        var v = Avx512F.ConvertToVector512Int32(Vector128.Load(q + l));
                        (Avx512F.ConvertToVector512Single(v & Vector512.Create(15)) * Vector512.Create(d1) - Vector512.Create(mm1)).Store(o + l);
                        (Avx512F.ConvertToVector512Single(v >>> 4) * Vector512.Create(d2) - Vector512.Create(mm2)).Store(o + 32 + l);
                    }
                }
                else
                {
                    for (int l = 0; l < 32; l += 8)
                    {
                        var v = Avx2.ConvertToVector256Int32(q + l);
                        (Avx.ConvertToVector256Single(v & Vector256.Create(15)) * Vector256.Create(d1) - Vector256.Create(mm1)).Store(o + l);
                        (Avx.ConvertToVector256Single(v >>> 4) * Vector256.Create(d2) - Vector256.Create(mm2)).Store(o + 32 + l);
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

    // Q4_K: sum over sub-blocks j of d*sc_j * sum(q*x) - dmin*m_j * sum(x).
    public static float Dot512(byte* w, float* x, int n)
    {
        Vector512<float> acc = default, accMin = default;
        var m15 = Vector512.Create(15);
        float* ds = stackalloc float[16];
        for (int b = 0; b < n / 256; b++, w += 144, x += 256)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128);
            KQuants.ScalesMins(w + 4, out ulong scb, out ulong mnb);
            // d*sc_j in ds[0..7], dmin*m_j in ds[8..15], converted together
            var both = Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Create(scb, mnb).AsByte()));
            (both * Vector512.Create(Vector256.Create(Half(w)), Vector256.Create(Half(w + 2)))).Store(ds);
            byte* q = w + 16;
            for (int g = 0; g < 4; g++, q += 32)
            {
                float* xg = x + 64 * g;
                var v0 = Avx512F.ConvertToVector512Int32(Vector128.Load(q));
                var v1 = Avx512F.ConvertToVector512Int32(Vector128.Load(q + 16));
                var x0 = Vector512.Load(xg); var x1 = Vector512.Load(xg + 16); var x2 = Vector512.Load(xg + 32); var x3 = Vector512.Load(xg + 48);
                var lo = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(v1 & m15), x1, Avx512F.ConvertToVector512Single(v0 & m15) * x0);
                var hi = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(v1 >>> 4), x3, Avx512F.ConvertToVector512Single(v0 >>> 4) * x2);
                acc = Avx512F.FusedMultiplyAdd(Vector512.Create(ds[2 * g]), lo, acc);
                acc = Avx512F.FusedMultiplyAdd(Vector512.Create(ds[2 * g + 1]), hi, acc);
                accMin = Avx512F.FusedMultiplyAdd(Vector512.Create(ds[8 + 2 * g]), x0 + x1, accMin);
                accMin = Avx512F.FusedMultiplyAdd(Vector512.Create(ds[9 + 2 * g]), x2 + x3, accMin);
            }
        }
        return Vector512.Sum(acc - accMin);
    }

    public static float Dot256(byte* w, float* x, int n)
    {
        Vector256<float> acc = default, accMin = default;
        var m15 = Vector256.Create(15);
        for (int b = 0; b < n / 256; b++, w += 144, x += 256)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128);
            float d = Half(w), dmin = Half(w + 2);
            byte* sc = w + 4, q = w + 16;
            for (int g = 0; g < 4; g++, q += 32)
            {
                KQuants.ScaleMin(sc, 2 * g, out int s1, out int m1);
                KQuants.ScaleMin(sc, 2 * g + 1, out int s2, out int m2);
                float* xg = x + 64 * g;
                Vector256<float> lo = default, hi = default, xl = default, xh = default;
                for (int l = 0; l < 32; l += 8)
                {
                    var v = Avx2.ConvertToVector256Int32(q + l);
                    var a = Vector256.Load(xg + l);
                    var c = Vector256.Load(xg + 32 + l);
                    lo = Fma.MultiplyAdd(Avx.ConvertToVector256Single(v & m15), a, lo);
                    hi = Fma.MultiplyAdd(Avx.ConvertToVector256Single(v >>> 4), c, hi);
                    xl += a;
                    xh += c;
                }
                acc = Fma.MultiplyAdd(Vector256.Create(d * s1), lo, acc);
                acc = Fma.MultiplyAdd(Vector256.Create(d * s2), hi, acc);
                accMin = Fma.MultiplyAdd(Vector256.Create(dmin * m1), xl, accMin);
                accMin = Fma.MultiplyAdd(Vector256.Create(dmin * m2), xh, accMin);
            }
        }
        return Vector256.Sum(acc - accMin);
    }
}
