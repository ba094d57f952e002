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
        DotQ8Block = 256,
        DotQ8 = &DotQ8,
        DotQ8x4 = &DotQ8x4,
        Unpack32 = &Unpack32,
        Int8 = new Int8Form(Signed: false, Max: 63, Offset: 32, HasMin: false, Sub: 16),
    };

    /// <summary>The integer GEMM's form (<see cref="TypeTraits.Unpack32"/>): u = the 6-bit values in element order
    /// (offset 32), d per 16 = d * scale (exact in f32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // full speed from the first call: a prompt's prefill is over before tier 1 arrives
    public static void Unpack32(byte* src, int n, byte* u, float* d, float* m)
    {
        var mask = Vector256.Create((byte)15);
        var three = Vector256.Create((byte)3);
        for (int b = 0; b < n / 256; b++, src += 210, u += 256, d += 16)
        {
            float dd = Half(src + 208);
            for (int j = 0; j < 16; j++) d[j] = dd * (sbyte)src[192 + j];
            for (int h = 0; h < 2; h++)
            {
                var ql0 = Vector256.Load(src + 64 * h);
                var ql1 = Vector256.Load(src + 64 * h + 32);
                var qh = Vector256.Load(src + 128 + 32 * h).AsUInt16();
                byte* o = u + 128 * h;
                (ql0 & mask | ((qh & three.AsUInt16()) << 4).AsByte()).Store(o);
                (ql1 & mask | (((qh >>> 2) & three.AsUInt16()) << 4).AsByte()).Store(o + 32);
                ((ql0.AsUInt16() >>> 4).AsByte() & mask | (((qh >>> 4) & three.AsUInt16()) << 4).AsByte()).Store(o + 64);
                ((ql1.AsUInt16() >>> 4).AsByte() & mask | (((qh >>> 6) & three.AsUInt16()) << 4).AsByte()).Store(o + 96);
            }
        }
    }

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
        return Horizontal.Sum(acc0 + acc1);
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
        return Horizontal.Sum(acc0 + acc1);
    }

    /// <summary>w (n elements) . x quantized in blocks of 256:
    /// d * d_x * (sum_g sc_g sum_{i in g} q_i q_x,i - 32 sum_g sc_g sum_{i in g} q_x,i) over the 16-element groups g.</summary>
    public static float DotQ8(byte* w, Q8Row x, int n, KernelIsa isa, float* rowBuf) => isa switch
    {
        KernelIsa.Avx512 => DotQ8_512(w, x.Q, x.D, x.Sums, n),
        KernelIsa.Avx2 => DotQ8_256(w, x.Q, x.D, x.Sums, n),
        _ => Q8Activations.DotGeneric(Traits, w, x, n, 256, isa, rowBuf),
    };

    // Word lanes j of a 64-element vector hold elements 2j, 2j+1: group j/8 of the four the vector covers.
    private static readonly Vector512<short> s_groups = Vector512.Create((short)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    private static readonly Vector512<ushort> s_shiftFirst = Vector512.Create((ushort)4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2);
    private static readonly Vector512<ushort> s_shiftSecond = Vector512.Create((ushort)0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2);

    // Per half h (128 elements): ql[64h..64h+63] low nibbles are elements 0-63, high nibbles 64-127; the two high bits
    // come from qh[32h..32h+31] (bits 0-1, 2-3 for the first 64; 4-5, 6-7 for the rest), moved to bits 4-5 with word
    // shifts (bits crossing into the other byte are masked off). q (0..63) x q_x pairs stay below 2^15.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier 1 from the first call (see Q4_0's DotQ8_256)
    private static float DotQ8_512(byte* w, sbyte* q, float* d8, short* sums, int n)
    {
        Vector512<float> acc = default;
        Vector256<float> accOff = default;
        var m4 = Vector512.Create((byte)0x0F);
        var m30 = Vector512.Create((byte)0x30);
        var four = Vector512.Create((short)4);
        for (int b = 0; b < n / 256; b++, w += 210, q += 256, sums += 16)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128); Prefetch(w + 192);
            var sc = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(w + 192)));
            var sc512 = sc.ToVector512Unsafe();
            Vector512<int> isum = default;
            var idx = s_groups;
            for (int h = 0; h < 2; h++)
            {
                var a = Vector512.Load(w + 64 * h);
                var hv = Vector256.Load(w + 128 + 32 * h);
                var hz = Vector512.Create(hv, hv).AsUInt16();
                var q1 = (a & m4) | (Avx512BW.ShiftLeftLogicalVariable(hz, s_shiftFirst).AsByte() & m30);
                var q2 = ((a.AsUInt16() >>> 4).AsByte() & m4) | (Avx512BW.ShiftRightLogicalVariable(hz, s_shiftSecond).AsByte() & m30);
                var p1 = Avx512BW.MultiplyAddAdjacent(q1, Vector512.Load(q + 128 * h));
                isum += Avx512BW.MultiplyAddAdjacent(p1, Avx512BW.PermuteVar32x16(sc512, idx));
                idx += four;
                var p2 = Avx512BW.MultiplyAddAdjacent(q2, Vector512.Load(q + 128 * h + 64));
                isum += Avx512BW.MultiplyAddAdjacent(p2, Avx512BW.PermuteVar32x16(sc512, idx));
                idx += four;
            }
            var dd = Vector512.Create(Half(w + 208) * d8[b]);
            acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(isum), dd, acc);
            var off = Avx2.MultiplyAddAdjacent(sc, Vector256.Load(sums));
            accOff = Fma.MultiplyAdd(Avx.ConvertToVector256Single(off), dd.GetLower(), accOff);
        }
        return Horizontal.Sum(acc) - 32 * Horizontal.Sum(accOff);
    }

    /// <summary>results[r] = <see cref="DotQ8"/>(w, xs[r]) for r &lt; 4, bit for bit (the same operations per row; the 6-bit
    /// values and the permuted scales built once for the four rows). False for the scalar variant.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier 1 from the first call (see Q4_0's DotQ8_256)
    public static bool DotQ8x4(byte* w, Q8Row* xs, int n, KernelIsa isa, float* results)
    {
        if (isa == KernelIsa.Avx2) { DotQ8x4_256(w, xs, n, results); return true; }
        if (isa != KernelIsa.Avx512) return false;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> f0 = default, f1 = default, f2 = default, f3 = default;
        sbyte* q0 = xs[0].Q, q1 = xs[1].Q, q2 = xs[2].Q, q3 = xs[3].Q;
        short* u0 = xs[0].Sums, u1 = xs[1].Sums, u2 = xs[2].Sums, u3 = xs[3].Sums;
        float* d0 = xs[0].D, d1 = xs[1].D, d2 = xs[2].D, d3 = xs[3].D;
        var m4 = Vector512.Create((byte)0x0F);
        var m30 = Vector512.Create((byte)0x30);
        var four = Vector512.Create((short)4);
        for (int b = 0; b < n / 256; b++, w += 210)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128); Prefetch(w + 192);
            var sc = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(w + 192)));
            var sc512 = sc.ToVector512Unsafe();
            Vector512<int> i0 = default, i1 = default, i2 = default, i3 = default;
            var idx = s_groups;
            for (int h = 0; h < 2; h++)
            {
                var a = Vector512.Load(w + 64 * h);
                var hv = Vector256.Load(w + 128 + 32 * h);
                var hz = Vector512.Create(hv, hv).AsUInt16();
                var v1 = (a & m4) | (Avx512BW.ShiftLeftLogicalVariable(hz, s_shiftFirst).AsByte() & m30);
                var v2 = ((a.AsUInt16() >>> 4).AsByte() & m4) | (Avx512BW.ShiftRightLogicalVariable(hz, s_shiftSecond).AsByte() & m30);
                var s1 = Avx512BW.PermuteVar32x16(sc512, idx);
                idx += four;
                var s2 = Avx512BW.PermuteVar32x16(sc512, idx);
                idx += four;
                int o = 256 * b + 128 * h;
                i0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(v1, Vector512.Load(q0 + o)), s1);
                i1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(v1, Vector512.Load(q1 + o)), s1);
                i2 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(v1, Vector512.Load(q2 + o)), s1);
                i3 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(v1, Vector512.Load(q3 + o)), s1);
                i0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(v2, Vector512.Load(q0 + o + 64)), s2);
                i1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(v2, Vector512.Load(q1 + o + 64)), s2);
                i2 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(v2, Vector512.Load(q2 + o + 64)), s2);
                i3 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(v2, Vector512.Load(q3 + o + 64)), s2);
            }
            float hw = Half(w + 208);
            Row(ref a0, ref f0, i0, hw * d0[b], sc, u0 + 16 * b);
            Row(ref a1, ref f1, i1, hw * d1[b], sc, u1 + 16 * b);
            Row(ref a2, ref f2, i2, hw * d2[b], sc, u2 + 16 * b);
            Row(ref a3, ref f3, i3, hw * d3[b], sc, u3 + 16 * b);
        }
        float* offs = stackalloc float[4];
        Horizontal.Sum4(a0, a1, a2, a3, results);
        Horizontal.Sum4(f0, f1, f2, f3, offs);
        for (int r = 0; r < 4; r++) results[r] -= 32 * offs[r];
        return true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Row(ref Vector512<float> acc, ref Vector256<float> accOff, Vector512<int> isum, float scale, Vector256<short> sc, short* sums)
        {
            var dd = Vector512.Create(scale);
            acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(isum), dd, acc);
            var off = Avx2.MultiplyAddAdjacent(sc, Vector256.Load(sums));
            accOff = Fma.MultiplyAdd(Avx.ConvertToVector256Single(off), dd.GetLower(), accOff);
        }
    }

    // AVX2, as llama.cpp's ggml_vec_dot_q6_K_q8_K: per half h (128 elements) four vectors of values (0..63: Unpack6),
    // each times 32 q_x with vpmaddubsw (pairs <= 16002) and vpmaddwd with its two 16-element scales (broadcast by vpshufb
    // from the half's eight scales, in both lanes); the -32 offset as 32 * sum_g sc_g (16-sum of q_x in g), one vpmaddwd,
    // subtracted in int32 (|isum| < 2^29: exact). The unpacking and the per-row arithmetic are shared with the four-row dot.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier 1 from the first call (see Q4_0's DotQ8_256)
    private static float DotQ8_256(byte* w, sbyte* q, float* d8, short* sums, int n)
    {
        Vector256<float> acc = default;
        var m4 = Vector256.Create((byte)0x0F);
        var m30 = Vector256.Create((byte)0x30);
        for (int b = 0; b < n / 256; b++, w += 210, q += 256, sums += 16)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128); Prefetch(w + 192);
            var sc = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(w + 192)));
            var isum = HalfSums(w, q, 0, sc, m4, m30) + HalfSums(w, q, 1, sc, m4, m30);
            BlockEnd(ref acc, isum, Half(w + 208) * d8[b], sc, sums);
        }
        return Horizontal.Sum(acc);
    }

    /// <summary><see cref="DotQ8_256"/> for four activation rows, bit for bit per row (values and scales unpacked once).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier 1 from the first call (see Q4_0's DotQ8_256)
    private static void DotQ8x4_256(byte* w, Q8Row* xs, int n, float* results)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        sbyte* q0 = xs[0].Q, q1 = xs[1].Q, q2 = xs[2].Q, q3 = xs[3].Q;
        short* u0 = xs[0].Sums, u1 = xs[1].Sums, u2 = xs[2].Sums, u3 = xs[3].Sums;
        float* d0 = xs[0].D, d1 = xs[1].D, d2 = xs[2].D, d3 = xs[3].D;
        var m4 = Vector256.Create((byte)0x0F);
        var m30 = Vector256.Create((byte)0x30);
        for (int b = 0; b < n / 256; b++, w += 210)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128); Prefetch(w + 192);
            var sc = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(w + 192)));
            Vector256<int> i0 = default, i1 = default, i2 = default, i3 = default;
            int o = 256 * b;
            HalfSums4(w, 0, sc, m4, m30, q0 + o, q1 + o, q2 + o, q3 + o, ref i0, ref i1, ref i2, ref i3);
            HalfSums4(w, 1, sc, m4, m30, q0 + o, q1 + o, q2 + o, q3 + o, ref i0, ref i1, ref i2, ref i3);
            float hw = Half(w + 208);
            BlockEnd(ref a0, i0, hw * d0[b], sc, u0 + 16 * b);
            BlockEnd(ref a1, i1, hw * d1[b], sc, u1 + 16 * b);
            BlockEnd(ref a2, i2, hw * d2[b], sc, u2 + 16 * b);
            BlockEnd(ref a3, i3, hw * d3[b], sc, u3 + 16 * b);
        }
        Horizontal.Sum4(a0, a1, a2, a3, results);
    }

    /// <summary>Half h of a block (128 elements) of one row: sum sc q q_x, 8 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> HalfSums(byte* w, sbyte* q, int h, Vector256<short> sc, Vector256<byte> m4, Vector256<byte> m30)
    {
        Unpack6(w, h, m4, m30, out var v1, out var v2, out var v3, out var v4);
        var sh = HalfScales(sc, h);
        sbyte* x = q + 128 * h;
        return Group(v1, x, GroupScales(sh, 0)) + Group(v2, x + 32, GroupScales(sh, 1)) +
               (Group(v3, x + 64, GroupScales(sh, 2)) + Group(v4, x + 96, GroupScales(sh, 3)));
    }

    /// <summary><see cref="HalfSums"/> for four rows (i0..i3 += each row's), the values and scales unpacked once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void HalfSums4(byte* w, int h, Vector256<short> sc, Vector256<byte> m4, Vector256<byte> m30, sbyte* q0, sbyte* q1, sbyte* q2, sbyte* q3,
                                  ref Vector256<int> i0, ref Vector256<int> i1, ref Vector256<int> i2, ref Vector256<int> i3)
    {
        Unpack6(w, h, m4, m30, out var v1, out var v2, out var v3, out var v4);
        var sh = HalfScales(sc, h);
        var s1 = GroupScales(sh, 0);
        var s2 = GroupScales(sh, 1);
        var s3 = GroupScales(sh, 2);
        var s4 = GroupScales(sh, 3);
        int o = 128 * h;
        i0 += Group(v1, q0 + o, s1) + Group(v2, q0 + o + 32, s2) + (Group(v3, q0 + o + 64, s3) + Group(v4, q0 + o + 96, s4));
        i1 += Group(v1, q1 + o, s1) + Group(v2, q1 + o + 32, s2) + (Group(v3, q1 + o + 64, s3) + Group(v4, q1 + o + 96, s4));
        i2 += Group(v1, q2 + o, s1) + Group(v2, q2 + o + 32, s2) + (Group(v3, q2 + o + 64, s3) + Group(v4, q2 + o + 96, s4));
        i3 += Group(v1, q3 + o, s1) + Group(v2, q3 + o + 32, s2) + (Group(v3, q3 + o + 64, s3) + Group(v4, q3 + o + 96, s4));
    }

    /// <summary>The scales of group k (0..3) of a half's 32-element vectors: word 2k in the low lane, 2k+1 in the high (one
    /// vpshufb of the half's eight scales).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> GroupScales(Vector256<short> sh, int k) =>
        KQuants.PickWords(sh, Vector256.Create(Vector128.Create((ushort)(0x0100 + 0x0404 * k)), Vector128.Create((ushort)(0x0302 + 0x0404 * k))).AsByte());

    /// <summary>The values (0..63) of half h of a block: elements 128h + 0..31 (<paramref name="v1"/>), 32..63, 64..95,
    /// 96..127: nibbles of ql[64h..64h+63] (low, then high) with two bits of qh[32h..32h+31] moved to bits 4-5 by word
    /// shifts (bits crossing into the other byte masked off).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Unpack6(byte* w, int h, Vector256<byte> m4, Vector256<byte> m30,
                                out Vector256<byte> v1, out Vector256<byte> v2, out Vector256<byte> v3, out Vector256<byte> v4)
    {
        var a0 = Vector256.Load(w + 64 * h);
        var a1 = Vector256.Load(w + 64 * h + 32);
        var hv = Vector256.Load(w + 128 + 32 * h).AsUInt16();
        v1 = (a0 & m4) | ((hv << 4).AsByte() & m30);
        v2 = (a1 & m4) | ((hv << 2).AsByte() & m30);
        v3 = ((a0.AsUInt16() >>> 4).AsByte() & m4) | (hv.AsByte() & m30);
        v4 = ((a1.AsUInt16() >>> 4).AsByte() & m4) | ((hv >>> 2).AsByte() & m30);
    }

    /// <summary>The eight scales of half h (words 8h..8h+7 of the block's sixteen) in both 128-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> HalfScales(Vector256<short> sc, int h) =>
        h == 0 ? Avx2.Permute4x64(sc.AsInt64(), 0x44).AsInt16() : Avx2.Permute4x64(sc.AsInt64(), 0xEE).AsInt16();

    /// <summary>sum sc q q_x over 32 elements (two 16-element groups, 8 int32 lanes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Group(Vector256<byte> v, sbyte* x, Vector256<short> s) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(v, Vector256.Load(x)), s);

    /// <summary>acc += d d_x (isum - 32 sum_g sc_g sums_g), the offset in int32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BlockEnd(ref Vector256<float> acc, Vector256<int> isum, float scale, Vector256<short> sc, short* sums)
    {
        var off = Avx2.MultiplyAddAdjacent(sc, Vector256.Load(sums));
        acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum - (off << 5)), Vector256.Create(scale), acc);
    }
}
