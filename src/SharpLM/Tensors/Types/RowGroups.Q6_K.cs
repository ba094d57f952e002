using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Q6_K row groups: eight rows' 256-value super-blocks b become one 1680-byte group block (8 x 210, in place):
/// <code>
/// [0, 16)      d of rows 0-7 (f16)
/// [16, 144)    the int8 scales: sub-block j (16 values) of row r at 16 + 16(j / 2) + 2r + j % 2
/// [144, 1680)  half h (elements 128h ..), chunk c (0-7) at 144 + 768h + 96c: the eight rows' 4 bytes of ql[64h + 4c ..],
///              then of ql[64h + 32 + 4c ..], then of qh[32h + 4c ..] (32 bytes each, row r at 4r)
/// </code>
/// A chunk's three loads give the 6-bit values of elements 128h + 4c + 32m + [0, 4) (m = 0-3) for the eight rows, one row
/// per int32 lane of <c>vpdpbusd</c>; a sub-block's sums are multiplied by the rows' scales (<c>vpmulld</c>) and summed
/// over the super-block in int32, and the offset (q - 32) is taken off once per super-block: 32 sum_j scale_j sum(x_j),
/// one <c>vpdpwssd</c> per pair of sub-blocks against the activations' 16-sums. Both exact in int32 (|sum| &lt; 16 * 16 *
/// 63 * 127 * 128 + 32 * 16 * 128 * 16 * 127 &lt; 2^29); converted and multiplied by d d_x in f32.
/// </summary>
internal static unsafe partial class RowGroups
{
    /// <summary>Bytes of one Q6_K group block (eight rows' super-blocks).</summary>
    private const int K6Bytes = Size * 210;

    private static int ScaleAt6(int j, int r) => 16 + 16 * (j / 2) + 2 * r + j % 2;

    private static int Chunk6(int h, int c) => 144 + 768 * h + 96 * c;

    /// <summary>Eight plain Q6_K rows -> one group at dst (see the layout above).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Interleave6(byte* rows, long rowBytes, int blocks, byte* dst)
    {
        for (int b = 0; b < blocks; b++, dst += K6Bytes)
            for (int i = 0; i < Size; i++)
            {
                byte* src = rows + i * rowBytes + (long)b * 210;
                *(ushort*)(dst + 2 * i) = *(ushort*)(src + 208);
                for (int j = 0; j < 16; j++) dst[ScaleAt6(j, i)] = src[192 + j];
                for (int h = 0; h < 2; h++)
                    for (int c = 0; c < 8; c++)
                    {
                        byte* o = dst + Chunk6(h, c) + 4 * i;
                        *(uint*)o = *(uint*)(src + 64 * h + 4 * c);
                        *(uint*)(o + 32) = *(uint*)(src + 64 * h + 32 + 4 * c);
                        *(uint*)(o + 64) = *(uint*)(src + 128 + 32 * h + 4 * c);
                    }
            }
    }

    /// <summary>Row <paramref name="i"/> (0-7) of the Q6_K group at <paramref name="group"/> as plain blocks at dst.</summary>
    private static void CopyRow6(byte* group, int i, int blocks, byte* dst)
    {
        for (int b = 0; b < blocks; b++, group += K6Bytes, dst += 210)
        {
            *(ushort*)(dst + 208) = *(ushort*)(group + 2 * i);
            for (int j = 0; j < 16; j++) dst[192 + j] = group[ScaleAt6(j, i)];
            for (int h = 0; h < 2; h++)
                for (int c = 0; c < 8; c++)
                {
                    byte* o = group + Chunk6(h, c) + 4 * i;
                    *(uint*)(dst + 64 * h + 4 * c) = *(uint*)o;
                    *(uint*)(dst + 64 * h + 32 + 4 * c) = *(uint*)(o + 32);
                    *(uint*)(dst + 128 + 32 * h + 4 * c) = *(uint*)(o + 64);
                }
        }
    }

    /// <summary>The integer GEMM's form of row <paramref name="i"/> of a Q6_K group (the bits of
    /// <see cref="Q6_KType.Unpack32"/> on the plain row): the 6-bit values in element order, d*scale per 16 values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Unpack32Q6(byte* group, int i, int n, byte* u, float* d)
    {
        var m4 = Vector256.Create((byte)15);
        var m30 = Vector256.Create((byte)0x30);
        for (int b = 0; b < n / 256; b++, group += K6Bytes, u += 256, d += 16)
        {
            float dd = BlockMath.Half(group + 2 * i);
            for (int j = 0; j < 16; j++) d[j] = dd * (sbyte)group[ScaleAt6(j, i)];
            for (int h = 0; h < 2; h++)
            {
                uint* p = (uint*)(group + Chunk6(h, 0) + 4 * i);
                // chunk c's words are 96 bytes (24 uints) apart: ql0, ql1 and qh of this row's half, in element order
                var a = Column(p, 24);
                var c = Column(p + 8, 24);
                var hb = Column(p + 16, 24).AsUInt16();
                byte* o = u + 128 * h;
                ((a & m4) | ((hb << 4).AsByte() & m30)).Store(o);
                ((c & m4) | ((hb << 2).AsByte() & m30)).Store(o + 32);
                (((a.AsUInt16() >>> 4).AsByte() & m4) | (hb.AsByte() & m30)).Store(o + 64);
                (((c.AsUInt16() >>> 4).AsByte() & m4) | ((hb >>> 2).AsByte() & m30)).Store(o + 96);
            }
        }
    }

    /// <summary>The 6-bit values of the chunk at p for the eight rows (4 per row): elements 4c + 32m + [0, 4) of its half
    /// for m = 0, 1 (<paramref name="upper"/> false) or 2, 3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Values6(byte* p, bool upper, out Vector256<byte> qa, out Vector256<byte> qb)
    {
        var m4 = Vector256.Create((byte)15);
        var m30 = Vector256.Create((byte)0x30);
        var a = Vector256.Load(p);
        var b = Vector256.Load(p + 32);
        var hb = Vector256.Load(p + 64).AsUInt16();
        if (!upper)
        {
            qa = (a & m4) | ((hb << 4).AsByte() & m30);
            qb = (b & m4) | ((hb << 2).AsByte() & m30);
        }
        else
        {
            qa = ((a.AsUInt16() >>> 4).AsByte() & m4) | (hb.AsByte() & m30);
            qb = ((b.AsUInt16() >>> 4).AsByte() & m4) | ((hb >>> 2).AsByte() & m30);
        }
    }

    /// <summary>The eight rows' scales of sub-blocks 2k and 2k + 1 as word pairs, one row per int32 lane (the operand of
    /// <c>vpdpwssd</c>; <see cref="Even6"/> and <see cref="Odd6"/> take them apart as int32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> ScalePairs6(byte* g, int k) => Avx2.ConvertToVector256Int16((sbyte*)g + 16 + 16 * k).AsInt32();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Even6(Vector256<int> pairs) => (pairs << 16) >> 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Odd6(Vector256<int> pairs) => pairs >> 16;

    /// <summary>The scale of sub-block 8h + 2m + half (m = 0-3) of the eight rows, the pairs of half h at <paramref name="sc"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Scale6(byte* sc, int m, int half)
    {
        var pairs = Avx2.ConvertToVector256Int16((sbyte*)sc + 16 * m).AsInt32();
        return half == 0 ? Even6(pairs) : Odd6(pairs);
    }

    /// <summary>32 sum_j scale(r, j) sum(x_j) for one activation row's super-block (its 16-sums at <paramref name="sums"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Offset6(byte* g, short* sums)
    {
        var o = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ScalePairs6(g, 0).AsInt16(), Vector256.Create(*(int*)sums).AsInt16());
        var e = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ScalePairs6(g, 1).AsInt16(), Vector256.Create(*(int*)(sums + 2)).AsInt16());
        o = AvxVnni.MultiplyWideningAndAdd(o, ScalePairs6(g, 2).AsInt16(), Vector256.Create(*(int*)(sums + 4)).AsInt16());
        e = AvxVnni.MultiplyWideningAndAdd(e, ScalePairs6(g, 3).AsInt16(), Vector256.Create(*(int*)(sums + 6)).AsInt16());
        o = AvxVnni.MultiplyWideningAndAdd(o, ScalePairs6(g, 4).AsInt16(), Vector256.Create(*(int*)(sums + 8)).AsInt16());
        e = AvxVnni.MultiplyWideningAndAdd(e, ScalePairs6(g, 5).AsInt16(), Vector256.Create(*(int*)(sums + 10)).AsInt16());
        o = AvxVnni.MultiplyWideningAndAdd(o, ScalePairs6(g, 6).AsInt16(), Vector256.Create(*(int*)(sums + 12)).AsInt16());
        e = AvxVnni.MultiplyWideningAndAdd(e, ScalePairs6(g, 7).AsInt16(), Vector256.Create(*(int*)(sums + 14)).AsInt16());
        return (o + e) << 5;
    }

    /// <summary>One activation row, one chunk (at p; x at q = the chunk's first element): sa += m = 2 upper, sb += 2 upper + 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Chunk6(byte* p, sbyte* q, bool upper, ref Vector256<int> sa, ref Vector256<int> sb)
    {
        Values6(p, upper, out var qa, out var qb);
        int o = upper ? 64 : 0;
        sa = AvxVnni.MultiplyWideningAndAdd(sa, qa, Four(q + o));
        sb = AvxVnni.MultiplyWideningAndAdd(sb, qb, Four(q + o + 32));
    }

    /// <summary>Four chunks (p, 16 values of each row's sub-blocks 8h + 2m + half for m = 2 upper, 2 upper + 1) of one
    /// activation row (x of the first chunk at q), times their scales, into isum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quarter6(byte* p, sbyte* q, byte* sc, int half, bool upper, ref Vector256<int> isum)
    {
        Vector256<int> sa = default, sb = default, ta = default, tb = default;
        Chunk6(p, q, upper, ref sa, ref sb);
        Chunk6(p + 96, q + 4, upper, ref ta, ref tb);
        Chunk6(p + 192, q + 8, upper, ref sa, ref sb);
        Chunk6(p + 288, q + 12, upper, ref ta, ref tb);
        int m = upper ? 2 : 0;
        isum += (sa + ta) * Scale6(sc, m, half) + (sb + tb) * Scale6(sc, m + 1, half);
    }

    /// <summary>Prefetches the 768 bytes of a half (its chunks) <see cref="PrefetchBytes"/> ahead.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AheadHalf6(byte* p)
    {
        for (int k = 0; k < 768; k += 64) Ahead(p + k);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot6x1(byte* g, Q8Row* xs, int nb, float* y)
    {
        Vector256<float> acc = default;
        var x = xs[0];
        for (int b = 0; b < nb; b++, g += K6Bytes)
        {
            Ahead(g); Ahead(g + 64);
            var d = F16Type.ToSingle(Avx2.ConvertToVector256Int32((ushort*)g).AsUInt32());
            sbyte* q = x.Q + 256 * b;
            Vector256<int> isum = default;
            for (int h = 0; h < 2; h++, q += 128)
            {
                byte* p = g + Chunk6(h, 0), sc = g + 16 + 64 * h;
                AheadHalf6(p);
                Quarter6(p, q, sc, 0, false, ref isum);
                Quarter6(p, q, sc, 0, true, ref isum);
                Quarter6(p + 384, q + 16, sc, 1, false, ref isum);
                Quarter6(p + 384, q + 16, sc, 1, true, ref isum);
            }
            isum -= Offset6(g, x.Sums + 16 * b);
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum), d * Vector256.Create(x.D[b]), acc);
        }
        acc.Store(y);
    }

    /// <summary><see cref="Quarter6"/> for four activation rows (x at q0..q3), the weights decoded once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quarter6x4(byte* p, sbyte* q0, sbyte* q1, sbyte* q2, sbyte* q3, byte* sc, int half, bool upper,
                                   ref Vector256<int> s0, ref Vector256<int> s1, ref Vector256<int> s2, ref Vector256<int> s3)
    {
        Vector256<int> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
        int o = upper ? 64 : 0;
        for (int c = 0; c < 4; c++, p += 96, o += 4)
        {
            Values6(p, upper, out var qa, out var qb);
            a0 = AvxVnni.MultiplyWideningAndAdd(a0, qa, Four(q0 + o));
            b0 = AvxVnni.MultiplyWideningAndAdd(b0, qb, Four(q0 + o + 32));
            a1 = AvxVnni.MultiplyWideningAndAdd(a1, qa, Four(q1 + o));
            b1 = AvxVnni.MultiplyWideningAndAdd(b1, qb, Four(q1 + o + 32));
            a2 = AvxVnni.MultiplyWideningAndAdd(a2, qa, Four(q2 + o));
            b2 = AvxVnni.MultiplyWideningAndAdd(b2, qb, Four(q2 + o + 32));
            a3 = AvxVnni.MultiplyWideningAndAdd(a3, qa, Four(q3 + o));
            b3 = AvxVnni.MultiplyWideningAndAdd(b3, qb, Four(q3 + o + 32));
        }
        int m = upper ? 2 : 0;
        var sa = Scale6(sc, m, half);
        var sb = Scale6(sc, m + 1, half);
        s0 += a0 * sa + b0 * sb;
        s1 += a1 * sa + b1 * sb;
        s2 += a2 * sa + b2 * sb;
        s3 += a3 * sa + b3 * sb;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot6x4(byte* g, Q8Row* xs, int nb, float* y, long yStride)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Q8Row x0 = xs[0], x1 = xs[1], x2 = xs[2], x3 = xs[3];
        for (int b = 0; b < nb; b++, g += K6Bytes)
        {
            Ahead(g); Ahead(g + 64);
            var d = F16Type.ToSingle(Avx2.ConvertToVector256Int32((ushort*)g).AsUInt32());
            Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int h = 0; h < 2; h++)
            {
                byte* p = g + Chunk6(h, 0), sc = g + 16 + 64 * h;
                int o = 256 * b + 128 * h;
                AheadHalf6(p);
                Quarter6x4(p, x0.Q + o, x1.Q + o, x2.Q + o, x3.Q + o, sc, 0, false, ref s0, ref s1, ref s2, ref s3);
                Quarter6x4(p, x0.Q + o, x1.Q + o, x2.Q + o, x3.Q + o, sc, 0, true, ref s0, ref s1, ref s2, ref s3);
                o += 16;
                Quarter6x4(p + 384, x0.Q + o, x1.Q + o, x2.Q + o, x3.Q + o, sc, 1, false, ref s0, ref s1, ref s2, ref s3);
                Quarter6x4(p + 384, x0.Q + o, x1.Q + o, x2.Q + o, x3.Q + o, sc, 1, true, ref s0, ref s1, ref s2, ref s3);
            }
            s0 -= Offset6(g, x0.Sums + 16 * b);
            s1 -= Offset6(g, x1.Sums + 16 * b);
            s2 -= Offset6(g, x2.Sums + 16 * b);
            s3 -= Offset6(g, x3.Sums + 16 * b);
            a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(s0), d * Vector256.Create(x0.D[b]), a0);
            a1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(s1), d * Vector256.Create(x1.D[b]), a1);
            a2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(s2), d * Vector256.Create(x2.D[b]), a2);
            a3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(s3), d * Vector256.Create(x3.D[b]), a3);
        }
        a0.Store(y); a1.Store(y + yStride); a2.Store(y + 2 * yStride); a3.Store(y + 3 * yStride);
    }
}
