using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Tensors;

namespace SharpLM.Kernels;

/// <summary>
/// Dot products of one weight row (any dtype, raw bytes) with an f32 vector: the inner loop of the matvec (decode).
/// F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K and Q6_K are fused (dequantized in registers, f32 FMA accumulation, software prefetch
/// <see cref="PrefetchBytes"/> ahead); the other types dequantize into an L1 row buffer first. All accumulate in
/// f32: the result differs from the naive double-accumulating oracle only by f32 rounding.
/// </summary>
internal static unsafe class RowDot
{
    /// <summary>How far ahead of the current weight byte to prefetch (the memory-bound matvec needs it).</summary>
    public static readonly int PrefetchBytes = int.TryParse(Environment.GetEnvironmentVariable("SHARPLM_PREFETCH"), out int p) && p >= 0 ? p : 2048;

    /// <summary>w: <paramref name="n"/> elements of <paramref name="type"/>; x (n) f32. rowBuf: n floats of scratch for the generic path.</summary>
    public static float Dot(DType type, byte* w, float* x, int n, KernelIsa isa, float* rowBuf)
    {
        if (isa == KernelIsa.Scalar)
        {
            if (type == DType.F32) return DotF32Scalar((float*)w, x, n);
            Dequant.Row(type, w, rowBuf, n, KernelIsa.Scalar);
            return DotF32Scalar(rowBuf, x, n);
        }
        bool v512 = isa == KernelIsa.Avx512;
        switch (type)
        {
            case DType.F32: return v512 ? F32_512((float*)w, x, n) : F32_256((float*)w, x, n);
            case DType.F16: return v512 ? F16_512((ushort*)w, x, n) : F16_256((ushort*)w, x, n);
            case DType.BF16: return v512 ? BF16_512((ushort*)w, x, n) : BF16_256((ushort*)w, x, n);
            case DType.Q8_0: return v512 ? Q8_0_512(w, x, n) : Q8_0_256(w, x, n);
            case DType.Q4_0: return v512 ? Q4_0_512(w, x, n) : Q4_0_256(w, x, n);
            case DType.Q4_K: return v512 ? Q4_K_512(w, x, n) : Q4_K_256(w, x, n);
            case DType.Q6_K: return v512 ? Q6_K_512(w, x, n) : Q6_K_256(w, x, n);
            case DType.Q5_K: return v512 ? Q5_K_512(w, x, n) : Q5_K_256(w, x, n);
            default:
                Dequant.Row(type, w, rowBuf, n, isa);
                return v512 ? F32_512(rowBuf, x, n) : F32_256(rowBuf, x, n);
        }
    }

    public static float DotF32Scalar(float* a, float* b, int n)
    {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = 0;
        for (; i + 4 <= n; i += 4)
        {
            s0 += a[i] * b[i];
            s1 += a[i + 1] * b[i + 1];
            s2 += a[i + 2] * b[i + 2];
            s3 += a[i + 3] * b[i + 3];
        }
        for (; i < n; i++) s0 += a[i] * b[i];
        return (s0 + s1) + (s2 + s3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(void* p) => Sse.Prefetch0((byte*)p + PrefetchBytes);

    public static float F32_512(float* w, float* x, int n)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i + 64 <= n; i += 64)
        {
            Prefetch(w + i); Prefetch(w + i + 16); Prefetch(w + i + 32); Prefetch(w + i + 48);
            a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(w + i), Vector512.Load(x + i), a0);
            a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(w + i + 16), Vector512.Load(x + i + 16), a1);
            a2 = Avx512F.FusedMultiplyAdd(Vector512.Load(w + i + 32), Vector512.Load(x + i + 32), a2);
            a3 = Avx512F.FusedMultiplyAdd(Vector512.Load(w + i + 48), Vector512.Load(x + i + 48), a3);
        }
        for (; i + 16 <= n; i += 16) a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(w + i), Vector512.Load(x + i), a0);
        float s = Vector512.Sum((a0 + a1) + (a2 + a3));
        for (; i < n; i++) s += w[i] * x[i];
        return s;
    }

    public static float F32_256(float* w, float* x, int n)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            Prefetch(w + i); Prefetch(w + i + 16);
            a0 = Fma.MultiplyAdd(Vector256.Load(w + i), Vector256.Load(x + i), a0);
            a1 = Fma.MultiplyAdd(Vector256.Load(w + i + 8), Vector256.Load(x + i + 8), a1);
            a2 = Fma.MultiplyAdd(Vector256.Load(w + i + 16), Vector256.Load(x + i + 16), a2);
            a3 = Fma.MultiplyAdd(Vector256.Load(w + i + 24), Vector256.Load(x + i + 24), a3);
        }
        for (; i + 8 <= n; i += 8) a0 = Fma.MultiplyAdd(Vector256.Load(w + i), Vector256.Load(x + i), a0);
        float s = Vector256.Sum((a0 + a1) + (a2 + a3));
        for (; i < n; i++) s += w[i] * x[i];
        return s;
    }

    public static float F16_512(ushort* w, float* x, int n)
    {
        Vector512<float> a0 = default, a1 = default;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            Prefetch(w + i);
            a0 = Avx512F.FusedMultiplyAdd(HalfConvert.Load16(w + i), Vector512.Load(x + i), a0);
            a1 = Avx512F.FusedMultiplyAdd(HalfConvert.Load16(w + i + 16), Vector512.Load(x + i + 16), a1);
        }
        for (; i + 16 <= n; i += 16) a0 = Avx512F.FusedMultiplyAdd(HalfConvert.Load16(w + i), Vector512.Load(x + i), a0);
        float s = Vector512.Sum(a0 + a1);
        for (; i < n; i++) s += HalfConvert.ToSingle(w[i]) * x[i];
        return s;
    }

    public static float F16_256(ushort* w, float* x, int n)
    {
        Vector256<float> a0 = default, a1 = default;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            Prefetch(w + i);
            a0 = Fma.MultiplyAdd(HalfConvert.Load8(w + i), Vector256.Load(x + i), a0);
            a1 = Fma.MultiplyAdd(HalfConvert.Load8(w + i + 8), Vector256.Load(x + i + 8), a1);
        }
        for (; i + 8 <= n; i += 8) a0 = Fma.MultiplyAdd(HalfConvert.Load8(w + i), Vector256.Load(x + i), a0);
        float s = Vector256.Sum(a0 + a1);
        for (; i < n; i++) s += HalfConvert.ToSingle(w[i]) * x[i];
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Bf16x16(ushort* p) => (Avx512F.ConvertToVector512UInt32(Vector256.Load(p)) << 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Bf16x8(ushort* p) => (Avx2.ConvertToVector256Int32(Vector128.Load(p)) << 16).AsSingle();

    public static float BF16_512(ushort* w, float* x, int n)
    {
        Vector512<float> a0 = default, a1 = default;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            Prefetch(w + i);
            a0 = Avx512F.FusedMultiplyAdd(Bf16x16(w + i), Vector512.Load(x + i), a0);
            a1 = Avx512F.FusedMultiplyAdd(Bf16x16(w + i + 16), Vector512.Load(x + i + 16), a1);
        }
        for (; i + 16 <= n; i += 16) a0 = Avx512F.FusedMultiplyAdd(Bf16x16(w + i), Vector512.Load(x + i), a0);
        float s = Vector512.Sum(a0 + a1);
        for (; i < n; i++) s += BitConverter.Int32BitsToSingle(w[i] << 16) * x[i];
        return s;
    }

    public static float BF16_256(ushort* w, float* x, int n)
    {
        Vector256<float> a0 = default, a1 = default;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            Prefetch(w + i);
            a0 = Fma.MultiplyAdd(Bf16x8(w + i), Vector256.Load(x + i), a0);
            a1 = Fma.MultiplyAdd(Bf16x8(w + i + 8), Vector256.Load(x + i + 8), a1);
        }
        for (; i + 8 <= n; i += 8) a0 = Fma.MultiplyAdd(Bf16x8(w + i), Vector256.Load(x + i), a0);
        float s = Vector256.Sum(a0 + a1);
        for (; i < n; i++) s += BitConverter.Int32BitsToSingle(w[i] << 16) * x[i];
        return s;
    }

    public static float Q8_0_512(byte* w, float* x, int n)
    {
        Vector512<float> acc0 = default, acc1 = default;
        for (int b = 0; b < n / 32; b++, w += 34, x += 32)
        {
            Prefetch(w);
            var q = (sbyte*)(w + 2);
            var p = Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(q))) * Vector512.Load(x);
            p = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(q + 16))), Vector512.Load(x + 16), p);
            if ((b & 1) == 0) acc0 = Avx512F.FusedMultiplyAdd(Vector512.Create(Dequant.Half(w)), p, acc0);
            else acc1 = Avx512F.FusedMultiplyAdd(Vector512.Create(Dequant.Half(w)), p, acc1);
        }
        return Vector512.Sum(acc0 + acc1);
    }

    public static float Q8_0_256(byte* w, float* x, int n)
    {
        Vector256<float> acc = default;
        for (int b = 0; b < n / 32; b++, w += 34, x += 32)
        {
            Prefetch(w);
            var q = (sbyte*)(w + 2);
            var p = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q)) * Vector256.Load(x);
            p = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + 8)), Vector256.Load(x + 8), p);
            p = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + 16)), Vector256.Load(x + 16), p);
            p = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + 24)), Vector256.Load(x + 24), p);
            acc = Fma.MultiplyAdd(Vector256.Create(Dequant.Half(w)), p, acc);
        }
        return Vector256.Sum(acc);
    }

    public static float Q4_0_512(byte* w, float* x, int n)
    {
        Vector512<float> acc0 = default, acc1 = default;
        var m15 = Vector512.Create(15);
        var eight = Vector512.Create(8);
        for (int b = 0; b < n / 32; b++, w += 18, x += 32)
        {
            Prefetch(w);
            var v = Avx512F.ConvertToVector512Int32(Vector128.Load(w + 2));
            var p = Avx512F.ConvertToVector512Single((v & m15) - eight) * Vector512.Load(x);
            p = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single((v >>> 4) - eight), Vector512.Load(x + 16), p);
            if ((b & 1) == 0) acc0 = Avx512F.FusedMultiplyAdd(Vector512.Create(Dequant.Half(w)), p, acc0);
            else acc1 = Avx512F.FusedMultiplyAdd(Vector512.Create(Dequant.Half(w)), p, acc1);
        }
        return Vector512.Sum(acc0 + acc1);
    }

    public static float Q4_0_256(byte* w, float* x, int n)
    {
        Vector256<float> acc = default;
        var m15 = Vector256.Create(15);
        var eight = Vector256.Create(8);
        for (int b = 0; b < n / 32; b++, w += 18, x += 32)
        {
            Prefetch(w);
            var v0 = Avx2.ConvertToVector256Int32(w + 2);
            var v1 = Avx2.ConvertToVector256Int32(w + 10);
            var p = Avx.ConvertToVector256Single((v0 & m15) - eight) * Vector256.Load(x);
            p = Fma.MultiplyAdd(Avx.ConvertToVector256Single((v1 & m15) - eight), Vector256.Load(x + 8), p);
            p = Fma.MultiplyAdd(Avx.ConvertToVector256Single((v0 >>> 4) - eight), Vector256.Load(x + 16), p);
            p = Fma.MultiplyAdd(Avx.ConvertToVector256Single((v1 >>> 4) - eight), Vector256.Load(x + 24), p);
            acc = Fma.MultiplyAdd(Vector256.Create(Dequant.Half(w)), p, acc);
        }
        return Vector256.Sum(acc);
    }

    /// <summary>The 6-bit scale and min j (0..7) of a Q4_K block from its 12 scale bytes (ggml get_scale_min_k4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScaleMin(byte* q, int j, out int sc, out int m)
    {
        if (j < 4)
        {
            sc = q[j] & 63;
            m = q[j + 4] & 63;
        }
        else
        {
            sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }

    /// <summary>
    /// Unpacks a Q4_K/Q5_K block's 12 scale bytes into 8 scales (bytes 0-7 of <paramref name="sc"/>) and 8 mins
    /// (bytes 0-7 of <paramref name="mn"/>) with a few 32-bit operations (the same bits as get_scale_min_k4).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScalesMins(byte* q, out ulong sc, out ulong mn)
    {
        uint u0 = *(uint*)q, u1 = *(uint*)(q + 4), u2 = *(uint*)(q + 8);
        const uint k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
        sc = (u0 & k1) | ((ulong)((u2 & k2) | (((u0 >> 6) & k3) << 4)) << 32);
        mn = (u1 & k1) | ((ulong)(((u2 >> 4) & k2) | (((u1 >> 6) & k3) << 4)) << 32);
    }

    // Q4_K: sum over sub-blocks j of d*sc_j * sum(q*x) - dmin*m_j * sum(x).
    public static float Q4_K_512(byte* w, float* x, int n)
    {
        Vector512<float> acc = default, accMin = default;
        var m15 = Vector512.Create(15);
        float* ds = stackalloc float[16];
        for (int b = 0; b < n / 256; b++, w += 144, x += 256)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128);
            ScalesMins(w + 4, out ulong scb, out ulong mnb);
            // d*sc_j in ds[0..7], dmin*m_j in ds[8..15], converted together
            var both = Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Create(scb, mnb).AsByte()));
            (both * Vector512.Create(Vector256.Create(Dequant.Half(w)), Vector256.Create(Dequant.Half(w + 2)))).Store(ds);
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

    public static float Q4_K_256(byte* w, float* x, int n)
    {
        Vector256<float> acc = default, accMin = default;
        var m15 = Vector256.Create(15);
        for (int b = 0; b < n / 256; b++, w += 144, x += 256)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128);
            float d = Dequant.Half(w), dmin = Dequant.Half(w + 2);
            byte* sc = w + 4, q = w + 16;
            for (int g = 0; g < 4; g++, q += 32)
            {
                ScaleMin(sc, 2 * g, out int s1, out int m1);
                ScaleMin(sc, 2 * g + 1, out int s2, out int m2);
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

    // Q6_K: every 16-lane vector of one half is one 16-element sub-block with its own int8 scale.
    public static float Q6_K_512(byte* w, float* x, int n)
    {
        Vector512<float> acc0 = default, acc1 = default;
        var m4 = Vector512.Create(15);
        var m30 = Vector512.Create(0x30);
        var k32 = Vector512.Create(32);
        for (int b = 0; b < n / 256; b++, w += 210, x += 256)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128); Prefetch(w + 192);
            float d = Dequant.Half(w + 208);
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

    public static float Q6_K_256(byte* w, float* x, int n)
    {
        Vector256<float> acc0 = default, acc1 = default;
        var m4 = Vector256.Create(15);
        var m30 = Vector256.Create(0x30);
        var k32 = Vector256.Create(32);
        for (int b = 0; b < n / 256; b++, w += 210, x += 256)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128); Prefetch(w + 192);
            float d = Dequant.Half(w + 208);
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

    // Q5_K: Q4_K plus a 5th bit, bit (element/32) of qh[element%32].
    public static float Q5_K_512(byte* w, float* x, int n)
    {
        Vector512<float> acc = default, accMin = default;
        var m15 = Vector512.Create(15);
        var one = Vector512.Create(1);
        for (int b = 0; b < n / 256; b++, w += 176, x += 256)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128);
            float d = Dequant.Half(w), dmin = Dequant.Half(w + 2);
            byte* sc = w + 4, qhp = w + 16, q = w + 48;
            var h0 = Avx512F.ConvertToVector512Int32(Vector128.Load(qhp));
            var h1 = Avx512F.ConvertToVector512Int32(Vector128.Load(qhp + 16));
            for (int g = 0; g < 4; g++, q += 32)
            {
                ScaleMin(sc, 2 * g, out int s1, out int m1);
                ScaleMin(sc, 2 * g + 1, out int s2, out int m2);
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
                acc = Avx512F.FusedMultiplyAdd(Vector512.Create(d * s1), lo, acc);
                acc = Avx512F.FusedMultiplyAdd(Vector512.Create(d * s2), hi, acc);
                accMin = Avx512F.FusedMultiplyAdd(Vector512.Create(dmin * m1), x0 + x1, accMin);
                accMin = Avx512F.FusedMultiplyAdd(Vector512.Create(dmin * m2), x2 + x3, accMin);
            }
        }
        return Vector512.Sum(acc - accMin);
    }

    public static float Q5_K_256(byte* w, float* x, int n)
    {
        Vector256<float> acc = default, accMin = default;
        var m15 = Vector256.Create(15);
        var one = Vector256.Create(1);
        for (int b = 0; b < n / 256; b++, w += 176, x += 256)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128);
            float d = Dequant.Half(w), dmin = Dequant.Half(w + 2);
            byte* sc = w + 4, qhp = w + 16, q = w + 48;
            for (int g = 0; g < 4; g++, q += 32)
            {
                ScaleMin(sc, 2 * g, out int s1, out int m1);
                ScaleMin(sc, 2 * g + 1, out int s2, out int m2);
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
        return Vector256.Sum(acc - accMin);
    }
}
