using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels.Naive;
using SharpLM.Tensors;

namespace SharpLM.Kernels;

/// <summary>
/// Fast dequantization of one row (embedding lookups, the GEMM's weight panels). Results are bit-identical to
/// <see cref="NaiveDequant"/> (same float operations in the same order, no fused multiply-add). SIMD paths exist for
/// every type in NaiveDequant (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K);
/// the scalar variant uses the naive code.
/// </summary>
internal static unsafe class Dequant
{
    /// <summary>src: the bytes of <c>dst.Length</c> elements of <paramref name="type"/> -> dst float32.</summary>
    public static void Row(DType type, ReadOnlySpan<byte> src, Span<float> dst) => Row(type, src, dst, KernelIsaSelector.Current);

    /// <summary>As <see cref="Row(DType, ReadOnlySpan{byte}, Span{float})"/> with an explicit kernel variant.</summary>
    public static void Row(DType type, ReadOnlySpan<byte> src, Span<float> dst, KernelIsa isa)
    {
        long need = DTypeInfo.RowBytes(type, dst.Length);
        if (src.Length < need) throw new ArgumentException($"{type} row of {dst.Length} elements needs {need} bytes, got {src.Length}", nameof(src));
        fixed (byte* s = src)
        fixed (float* d = dst)
            Row(type, s, d, dst.Length, isa);
    }

    /// <summary>Pointer form: <paramref name="n"/> elements (a multiple of the block size) from <paramref name="src"/>.</summary>
    public static void Row(DType type, byte* src, float* dst, int n, KernelIsa isa)
    {
        switch (type)
        {
            case DType.F32:
                Buffer.MemoryCopy(src, dst, n * 4L, n * 4L);
                return;
            case DType.F16:
                HalfConvert.ToSingle(new ReadOnlySpan<ushort>(src, n), new Span<float>(dst, n), isa);
                return;
            case DType.BF16:
                Bf16(src, dst, n, isa);
                return;
            case DType.Q8_0 when isa != KernelIsa.Scalar:
                Q8_0(src, dst, n, isa);
                return;
            case DType.Q4_0 when isa != KernelIsa.Scalar:
                Q4_0(src, dst, n, isa);
                return;
            case DType.Q4_1 or DType.Q5_0 or DType.Q5_1 when isa != KernelIsa.Scalar:
                Legacy(type, src, dst, n, isa);
                return;
            case DType.Q2_K or DType.Q3_K when isa != KernelIsa.Scalar:
                LowBitK(type, src, dst, n, isa);
                return;
            case DType.Q4_K when isa != KernelIsa.Scalar:
                Q4_K(src, dst, n, isa);
                return;
            case DType.Q5_K when isa != KernelIsa.Scalar:
                Q5_K(src, dst, n, isa);
                return;
            case DType.Q6_K when isa != KernelIsa.Scalar:
                Q6_K(src, dst, n, isa);
                return;
            default:
                NaiveDequant.Row(type, new ReadOnlySpan<byte>(src, checked((int)DTypeInfo.RowBytes(type, n))), new Span<float>(dst, n));
                return;
        }
    }

    private static void Bf16(byte* src, float* dst, int n, KernelIsa isa)
    {
        var s = (ushort*)src;
        int i = 0;
        if (isa == KernelIsa.Avx512)
            for (; i + 16 <= n; i += 16) (Avx512F.ConvertToVector512UInt32(Vector256.Load(s + i)) << 16).AsSingle().Store(dst + i);
        else if (isa == KernelIsa.Avx2)
            for (; i + 8 <= n; i += 8) (Avx2.ConvertToVector256Int32(Vector128.Load(s + i)) << 16).AsSingle().Store(dst + i);
        for (; i < n; i++) dst[i] = BitConverter.Int32BitsToSingle(s[i] << 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Half(byte* p) => HalfConvert.ToSingle(*(ushort*)p);

    private static void Q8_0(byte* src, float* dst, int n, KernelIsa isa)
    {
        for (int b = 0; b < n / 32; b++, src += 34, dst += 32)
        {
            float d = Half(src);
            var q = (sbyte*)(src + 2);
            if (isa == KernelIsa.Avx512)
            {
                var vd = Vector512.Create(d);
                (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(q))) * vd).Store(dst);
                (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(q + 16))) * vd).Store(dst + 16);
            }
            else
            {
                var vd = Vector256.Create(d);
                for (int j = 0; j < 32; j += 8)
                    (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + j)) * vd).Store(dst + j);
            }
        }
    }

    private static void Q4_0(byte* src, float* dst, int n, KernelIsa isa)
    {
        for (int b = 0; b < n / 32; b++, src += 18, dst += 32)
        {
            float d = Half(src);
            byte* q = src + 2;
            if (isa == KernelIsa.Avx512)
            {
                var vd = Vector512.Create(d);
                var v = Avx512F.ConvertToVector512Int32(Vector128.Load(q));
                var eight = Vector512.Create(8);
                (Avx512F.ConvertToVector512Single((v & Vector512.Create(15)) - eight) * vd).Store(dst);
                (Avx512F.ConvertToVector512Single((v >>> 4) - eight) * vd).Store(dst + 16);
            }
            else
            {
                var vd = Vector256.Create(d);
                var eight = Vector256.Create(8);
                for (int j = 0; j < 16; j += 8)
                {
                    var v = Avx2.ConvertToVector256Int32(q + j);
                    (Avx.ConvertToVector256Single((v & Vector256.Create(15)) - eight) * vd).Store(dst + j);
                    (Avx.ConvertToVector256Single((v >>> 4) - eight) * vd).Store(dst + 16 + j);
                }
            }
        }
    }

    private static void Q4_K(byte* src, float* dst, int n, KernelIsa isa)
    {
        for (int b = 0; b < n / 256; b++, src += 144, dst += 256)
        {
            float d = Half(src), min = Half(src + 2);
            var scales = new ReadOnlySpan<byte>(src + 4, 12);
            byte* q = src + 16;
            for (int g = 0; g < 4; g++, q += 32)
            {
                NaiveDequant.ScaleMinK4(2 * g, scales, out int sc1, out int m1);
                NaiveDequant.ScaleMinK4(2 * g + 1, scales, out int sc2, out int m2);
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

    private static void Q6_K(byte* src, float* dst, int n, KernelIsa isa)
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

    private static void Q5_K(byte* src, float* dst, int n, KernelIsa isa)
    {
        for (int b = 0; b < n / 256; b++, src += 176, dst += 256)
        {
            float d = Half(src), min = Half(src + 2);
            var scales = new ReadOnlySpan<byte>(src + 4, 12);
            byte* qh = src + 16, q = src + 48;
            for (int g = 0; g < 4; g++, q += 32)
            {
                NaiveDequant.ScaleMinK4(2 * g, scales, out int sc1, out int m1);
                NaiveDequant.ScaleMinK4(2 * g + 1, scales, out int sc2, out int m2);
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

    /// <summary>Q4_1 (d, m, nibbles), Q5_0 (d, qh, nibbles; q - 16), Q5_1 (d, m, qh, nibbles): x = q*d (+ m).</summary>
    private static void Legacy(DType type, byte* src, float* dst, int n, KernelIsa isa)
    {
        int bb = type == DType.Q4_1 ? 20 : type == DType.Q5_0 ? 22 : 24;
        bool hasMin = type != DType.Q5_0, hasHigh = type != DType.Q4_1;
        int qsOffset = (hasMin ? 4 : 2) + (hasHigh ? 4 : 0);
        int bias = type == DType.Q5_0 ? 16 : 0;
        for (int b = 0; b < n / 32; b++, src += bb, dst += 32)
        {
            float d = Half(src), m = hasMin ? Half(src + 2) : 0f;
            uint qh = hasHigh ? *(uint*)(src + (hasMin ? 4 : 2)) : 0u;
            byte* q = src + qsOffset;
            if (isa == KernelIsa.Avx512)
            {
                var v = Avx512F.ConvertToVector512Int32(Vector128.Load(q));
                var lo = v & Vector512.Create(15);
                var hi = v >>> 4;
                if (hasHigh)
                {
                    var vqh = Vector512.Create(qh);
                    var idx = Vector512.Create(0u, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
                    lo |= ((Avx512F.ShiftRightLogicalVariable(vqh, idx) & Vector512<uint>.One) << 4).AsInt32();
                    hi |= ((Avx512F.ShiftRightLogicalVariable(vqh, idx + Vector512.Create(16u)) & Vector512<uint>.One) << 4).AsInt32();
                }
                var vd = Vector512.Create(d);
                if (hasMin)
                {
                    var vm = Vector512.Create(m);
                    (Avx512F.ConvertToVector512Single(lo) * vd + vm).Store(dst);
                    (Avx512F.ConvertToVector512Single(hi) * vd + vm).Store(dst + 16);
                }
                else
                {
                    var vb = Vector512.Create(bias);
                    (Avx512F.ConvertToVector512Single(lo - vb) * vd).Store(dst);
                    (Avx512F.ConvertToVector512Single(hi - vb) * vd).Store(dst + 16);
                }
            }
            else
            {
                for (int j = 0; j < 16; j += 8)
                {
                    var v = Avx2.ConvertToVector256Int32(q + j);
                    var lo = v & Vector256.Create(15);
                    var hi = v >>> 4;
                    if (hasHigh)
                    {
                        var vqh = Vector256.Create(qh);
                        var idx = Vector256.Create(0u, 1, 2, 3, 4, 5, 6, 7) + Vector256.Create((uint)j);
                        lo |= ((Avx2.ShiftRightLogicalVariable(vqh, idx) & Vector256<uint>.One) << 4).AsInt32();
                        hi |= ((Avx2.ShiftRightLogicalVariable(vqh, idx + Vector256.Create(16u)) & Vector256<uint>.One) << 4).AsInt32();
                    }
                    var vd = Vector256.Create(d);
                    if (hasMin)
                    {
                        var vm = Vector256.Create(m);
                        (Avx.ConvertToVector256Single(lo) * vd + vm).Store(dst + j);
                        (Avx.ConvertToVector256Single(hi) * vd + vm).Store(dst + 16 + j);
                    }
                    else
                    {
                        var vb = Vector256.Create(bias);
                        (Avx.ConvertToVector256Single(lo - vb) * vd).Store(dst + j);
                        (Avx.ConvertToVector256Single(hi - vb) * vd).Store(dst + 16 + j);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Q2_K and Q3_K: 16 consecutive elements share one sub-block scale, one byte offset pattern in qs (2-bit field
    /// 2*((e%128)/32)) and, for Q3_K, one hmask bit (e/32).
    /// </summary>
    private static void LowBitK(DType type, byte* src, float* dst, int n, KernelIsa isa)
    {
        bool q3 = type == DType.Q3_K;
        int bb = q3 ? 110 : 84;
        for (int b = 0; b < n / 256; b++, src += bb, dst += 256)
        {
            byte* qs = src + (q3 ? 32 : 16);
            float d = q3 ? Half(src + 108) : Half(src + 80), min = q3 ? 0f : Half(src + 82);
            for (int j = 0; j < 16; j++)
            {
                int e0 = 16 * j;
                int shift = 2 * (e0 % 128 / 32), hbit = e0 / 32;
                byte* q = qs + 32 * (e0 / 128) + e0 % 32;
                float dl, ml = 0f;
                if (q3)
                {
                    byte* scales = src + 96;
                    int sc = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
                    sc = (sc | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
                    dl = d * sc;
                }
                else
                {
                    int sc = src[j];
                    dl = d * (sc & 0xF);
                    ml = min * (sc >> 4);
                }
                byte* hm = src + e0 % 32;
                float* o = dst + e0;
                if (isa == KernelIsa.Avx512)
                {
                    var v = (Avx512F.ConvertToVector512Int32(Vector128.Load(q)) >>> shift) & Vector512.Create(3);
                    if (q3)
                    {
                        var h = (Avx512F.ConvertToVector512Int32(Vector128.Load(hm)) >>> hbit) & Vector512<int>.One;
                        (Vector512.Create(dl) * Avx512F.ConvertToVector512Single(v - Vector512.Create(4) + (h << 2))).Store(o);
                    }
                    else
                    {
                        (Vector512.Create(dl) * Avx512F.ConvertToVector512Single(v) - Vector512.Create(ml)).Store(o);
                    }
                }
                else
                {
                    for (int l = 0; l < 16; l += 8)
                    {
                        var v = (Avx2.ConvertToVector256Int32(q + l) >>> shift) & Vector256.Create(3);
                        if (q3)
                        {
                            var h = (Avx2.ConvertToVector256Int32(hm + l) >>> hbit) & Vector256<int>.One;
                            (Vector256.Create(dl) * Avx.ConvertToVector256Single(v - Vector256.Create(4) + (h << 2))).Store(o + l);
                        }
                        else
                        {
                            (Vector256.Create(dl) * Avx.ConvertToVector256Single(v) - Vector256.Create(ml)).Store(o + l);
                        }
                    }
                }
            }
        }
    }
}
