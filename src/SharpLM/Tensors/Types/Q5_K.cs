using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Q5_K: super-blocks of 256 values in 176 bytes: f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128]; as Q4_K plus a
/// 5th bit: bit (e/32) of qh[e%32].
/// </summary>
internal static unsafe class Q5_KType
{
    public static readonly TypeTraits Traits = new(DType.Q5_K, "q5_k", 256, 176, "5-bit k-quant (176 bytes / 256 values)", 17u)
    {
        Quantize = &Quantize,
        DequantizeNaive = &DequantizeNaive,
        Dequantize = &Dequantize,
        Dot = &Dot,
        DotQ8Block = 256,
        DotQ8 = &DotQ8,
        DotQ8x4 = &DotQ8x4,
        Unpack32 = &Unpack32,
        Int8 = new Int8Form(Signed: false, Max: 31, Offset: 0, HasMin: true),
    };

    /// <summary>The integer GEMM's form (<see cref="TypeTraits.Unpack32"/>).</summary>
    public static void Unpack32(byte* src, int n, byte* u, float* d, float* m) => Q4_KType.Unpack32_256(src, n, u, d, m, fiveBits: true);

    /// <summary>Reference quantizer (ggml quantize_row_q5_K_ref): as Q4_K's on 0..31, the 5th bits in qh.</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        Span<byte> L = stackalloc byte[256];
        for (int b = 0; b < src.Length / 256; b++)
        {
            var x = src.Slice(b * 256, 256);
            var y = dst.Slice(b * 176, 176);
            KQuants.QuantizeScalesMins(x, y, L, 31, -0.5f, 0.1f, 15);
            var qh = y.Slice(16, 32);
            var ql = y.Slice(48, 128);
            qh.Clear();
            byte m1 = 1, m2 = 2;
            for (int n = 0, q = 0; n < 256; n += 64, q += 32)
            {
                for (int j = 0; j < 32; j++)
                {
                    int l1 = L[n + j], l2 = L[n + j + 32];
                    if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                    if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                    ql[q + j] = (byte)(l1 | (l2 << 4));
                }
                m1 <<= 2;
                m2 <<= 2;
            }
        }
    }

    /// <summary>The readable oracle (ggml dequantize_row_q5_k): src (RowBytes(n)) -> dst (n) f32.</summary>
    public static void DequantizeNaive(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = dst.Length;
        // block (176 bytes): f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128]; as Q4_K plus a 5th bit:
        // bit (e/32) of qh[e%32].
        for (int b = 0; b < n / 256; b++)
        {
            var blk = src.Slice(b * 176, 176);
            float d = H(blk, 0), min = H(blk, 2);
            var scales = blk.Slice(4, 12);
            for (int g = 0; g < 4; g++)
            {
                KQuants.ScaleMinK4(2 * g, scales, out int sc1, out int m1);
                KQuants.ScaleMinK4(2 * g + 1, scales, out int sc2, out int m2);
                float d1 = d * sc1, mm1 = min * m1, d2 = d * sc2, mm2 = min * m2;
                for (int l = 0; l < 32; l++)
                {
                    byte q = blk[48 + 32 * g + l], qh = blk[16 + l];
                    dst[b * 256 + 64 * g + l] = d1 * ((q & 0xF) + (((qh >> (2 * g)) & 1) << 4)) - mm1;
                    dst[b * 256 + 64 * g + 32 + l] = d2 * ((q >> 4) + (((qh >> (2 * g + 1)) & 1) << 4)) - mm2;
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
        for (int b = 0; b < n / 256; b++, src += 176, dst += 256)
        {
            float d = Half(src), min = Half(src + 2);
            var scales = new ReadOnlySpan<byte>(src + 4, 12);
            byte* qh = src + 16, q = src + 48;
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
                        var h = Avx512F.ConvertToVector512Int32(Vector128.Load(qh + l));
                        var lo = (v & Vector512.Create(15)) + (((h >>> (2 * g)) & Vector512<int>.One) << 4);
                        var hi = (v >>> 4) + (((h >>> (2 * g + 1)) & Vector512<int>.One) << 4);
                        (Avx512F.ConvertToVector512Single(lo) * Vector512.Create(d1) - Vector512.Create(mm1)).Store(o + l);
                        (Avx512F.ConvertToVector512Single(hi) * Vector512.Create(d2) - Vector512.Create(mm2)).Store(o + 32 + l);
                    }
                }
                else
                {
                    for (int l = 0; l < 32; l += 8)
                    {
                        var v = Avx2.ConvertToVector256Int32(q + l);
                        var h = Avx2.ConvertToVector256Int32(qh + l);
                        var lo = (v & Vector256.Create(15)) + (((h >>> (2 * g)) & Vector256<int>.One) << 4);
                        var hi = (v >>> 4) + (((h >>> (2 * g + 1)) & Vector256<int>.One) << 4);
                        (Avx.ConvertToVector256Single(lo) * Vector256.Create(d1) - Vector256.Create(mm1)).Store(o + l);
                        (Avx.ConvertToVector256Single(hi) * Vector256.Create(d2) - Vector256.Create(mm2)).Store(o + 32 + l);
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

    // Q5_K: Q4_K plus a 5th bit, bit (element/32) of qh[element%32].
    public static float Dot512(byte* w, float* x, int n)
    {
        Vector512<float> acc = default, accMin = default;
        var m15 = Vector512.Create(15);
        var one = Vector512.Create(1);
        float* ds = stackalloc float[16];
        for (int b = 0; b < n / 256; b++, w += 176, x += 256)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128);
            KQuants.ScalesMins(w + 4, out ulong scb, out ulong mnb);
            var both = Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Create(scb, mnb).AsByte()));
            (both * Vector512.Create(Vector256.Create(Half(w)), Vector256.Create(Half(w + 2)))).Store(ds);
            byte* qhp = w + 16, q = w + 48;
            var h0 = Avx512F.ConvertToVector512Int32(Vector128.Load(qhp));
            var h1 = Avx512F.ConvertToVector512Int32(Vector128.Load(qhp + 16));
            for (int g = 0; g < 4; g++, q += 32)
            {
                float* xg = x + 64 * g;
                var v0 = Avx512F.ConvertToVector512Int32(Vector128.Load(q));
                var v1 = Avx512F.ConvertToVector512Int32(Vector128.Load(q + 16));
                var l0 = (v0 & m15) | (((h0 >>> (2 * g)) & one) << 4);
                var l1 = (v1 & m15) | (((h1 >>> (2 * g)) & one) << 4);
                var u0 = (v0 >>> 4) | (((h0 >>> (2 * g + 1)) & one) << 4);
                var u1 = (v1 >>> 4) | (((h1 >>> (2 * g + 1)) & one) << 4);
                var x0 = Vector512.Load(xg); var x1 = Vector512.Load(xg + 16); var x2 = Vector512.Load(xg + 32); var x3 = Vector512.Load(xg + 48);
                var lo = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(l1), x1, Avx512F.ConvertToVector512Single(l0) * x0);
                var hi = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(u1), x3, Avx512F.ConvertToVector512Single(u0) * x2);
                acc = Avx512F.FusedMultiplyAdd(Vector512.Create(ds[2 * g]), lo, acc);
                acc = Avx512F.FusedMultiplyAdd(Vector512.Create(ds[2 * g + 1]), hi, acc);
                accMin = Avx512F.FusedMultiplyAdd(Vector512.Create(ds[8 + 2 * g]), x0 + x1, accMin);
                accMin = Avx512F.FusedMultiplyAdd(Vector512.Create(ds[9 + 2 * g]), x2 + x3, accMin);
            }
        }
        return Horizontal.Sum(acc - accMin);
    }

    public static float Dot256(byte* w, float* x, int n)
    {
        Vector256<float> acc = default, accMin = default;
        var m15 = Vector256.Create(15);
        var one = Vector256.Create(1);
        for (int b = 0; b < n / 256; b++, w += 176, x += 256)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128);
            float d = Half(w), dmin = Half(w + 2);
            byte* sc = w + 4, qhp = w + 16, q = w + 48;
            for (int g = 0; g < 4; g++, q += 32)
            {
                KQuants.ScaleMin(sc, 2 * g, out int s1, out int m1);
                KQuants.ScaleMin(sc, 2 * g + 1, out int s2, out int m2);
                float* xg = x + 64 * g;
                Vector256<float> lo = default, hi = default, xl = default, xh = default;
                for (int l = 0; l < 32; l += 8)
                {
                    var v = Avx2.ConvertToVector256Int32(q + l);
                    var h = Avx2.ConvertToVector256Int32(qhp + l);
                    var a = Vector256.Load(xg + l);
                    var c = Vector256.Load(xg + 32 + l);
                    lo = Fma.MultiplyAdd(Avx.ConvertToVector256Single((v & m15) | (((h >>> (2 * g)) & one) << 4)), a, lo);
                    hi = Fma.MultiplyAdd(Avx.ConvertToVector256Single((v >>> 4) | (((h >>> (2 * g + 1)) & one) << 4)), c, hi);
                    xl += a;
                    xh += c;
                }
                acc = Fma.MultiplyAdd(Vector256.Create(d * s1), lo, acc);
                acc = Fma.MultiplyAdd(Vector256.Create(d * s2), hi, acc);
                accMin = Fma.MultiplyAdd(Vector256.Create(dmin * m1), xl, accMin);
                accMin = Fma.MultiplyAdd(Vector256.Create(dmin * m2), xh, accMin);
            }
        }
        return Horizontal.Sum(acc - accMin);
    }

    /// <summary>w (n elements) . x quantized in blocks of 256, as Q4_K's integer dot with q = nibble + 16 * 5th bit (0..31):
    /// d_x * (d * sum_j sc_j sum_{i in j} q_i q_x,i - dmin * sum_j m_j sum_{i in j} q_x,i), the sums in integers (pairs of
    /// q q_x &lt;= 7874, times a 6-bit scale: no overflow).</summary>
    public static float DotQ8(byte* w, Q8Row x, int n, KernelIsa isa, float* rowBuf) => isa switch
    {
        KernelIsa.Avx512 => Q4_KType.DotQ8_512(w, x.Q, x.D, x.Sums, n, fiveBits: true),
        KernelIsa.Avx2 => Q4_KType.DotQ8_256(w, x.Q, x.D, x.Sums, n, fiveBits: true),
        _ => Q8Activations.DotGeneric(Traits, w, x, n, 256, isa, rowBuf),
    };

    /// <summary>results[r] = <see cref="DotQ8"/>(w, xs[r]) for r &lt; 4, bit for bit (AVX2 only: Q4_K's four-row dot with the
    /// 5th bits). False for other variants (AVX-512 decodes row by row).</summary>
    public static bool DotQ8x4(byte* w, Q8Row* xs, int n, KernelIsa isa, float* results)
    {
        if (isa != KernelIsa.Avx2) return false;
        Q4_KType.DotQ8x4_256(w, xs, n, fiveBits: true, results);
        return true;
    }
}
