using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Q4_K and Q5_K row groups (as llama.cpp's Q4_K_8x8): eight rows' 256-value super-blocks b become one 1152-byte (Q5_K:
/// 1408-byte) group block (8 x 144 or 8 x 176, so the regrouping is in place), laid out for one activation block against
/// eight rows at once:
/// <code>
/// [0, 16)      d of rows 0-7 (f16)            [16, 32)  dmin of rows 0-7 (f16)
/// [32, 64)     scale nibbles: entry e = 8j + r (sub-block j, row r) in byte e % 32, low nibble for e &lt; 32
/// [64, 96)     min nibbles: entry e = 16(j / 2) + 2r + j % 2 in byte e % 32, low nibble for e &lt; 32
/// [96, 128)    the six-bit values' top two bits: byte t holds the scale entries t and t + 32 in bits 0-1 and 2-3,
///              the min entries t and t + 32 in bits 4-5 and 6-7
/// Q5_K only:
/// [128, 384)   the 5th bits: chunk c (qh bytes 4c .. 4c + 3) of rows 0-7 at 128 + 32c + 4r (bits 2p and 2p + 1: pair p)
/// then, at Q = 128 (Q4_K) or 384 (Q5_K):
/// [Q, Q + 1024) quant bytes: sub-block pair p (elements 64p .. 64p + 63: low nibbles sub-block 2p, high 2p + 1), 4-byte
///              chunk c (row bytes 32p + 4c .. + 3) of rows 0-7 at Q + 256p + 32c + 4r
/// </code>
/// One 256-bit load holds a chunk of all eight rows, one row per int32 lane, so <c>vpdpbusd</c> against four activation
/// bytes broadcast sums each row in its own lane: a sub-block's eight sums are one vector, multiplied by the eight rows'
/// scales (<c>vpmulld</c>) and summed over the super-block in int32; the mins meet the activations' sub-block sums in
/// one <c>vpdpwssd</c> per sub-block pair. Both integers are exact (|sum sc q x| &lt;= 8 * 63 * 32 * 31 * 127 &lt; 2^31), then
/// converted and multiplied by d d_x and dmin d_x in f32: the row-by-row dot's products, summed in another order.
/// </summary>
internal static unsafe partial class RowGroups
{
    /// <summary>Bytes of one plain Q4_K (Q5_K) block.</summary>
    private static int KBlock(bool five) => five ? 176 : 144; // (constants: the kernels step by them per super-block)

    /// <summary>Bytes of one group block (eight rows' super-blocks).</summary>
    private static int KBytes(bool five) => Size * KBlock(five);

    /// <summary>Where a group block's quant bytes start.</summary>
    private static int KQuants0(bool five) => five ? 384 : 128;

    /// <summary>Where a plain block's quant bytes start.</summary>
    private static int KPlainQuants(bool five) => five ? 48 : 16;

    /// <summary>Eight plain Q4_K or Q5_K rows (at <paramref name="rows"/>, <paramref name="rowBytes"/> apart) -> one group at dst.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InterleaveK(byte* rows, long rowBytes, int blocks, byte* dst, bool five)
    {
        int q0 = KQuants0(five), pq = KPlainQuants(five);
        for (int b = 0; b < blocks; b++, dst += KBytes(five))
        {
            new Span<byte>(dst + 32, 96).Clear();
            for (int i = 0; i < Size; i++)
            {
                byte* src = rows + i * rowBytes + (long)b * KBlock(five);
                *(ushort*)(dst + 2 * i) = *(ushort*)src;
                *(ushort*)(dst + 16 + 2 * i) = *(ushort*)(src + 2);
                for (int j = 0; j < 8; j++)
                {
                    KQuants.ScaleMin(src + 4, j, out int sc, out int m);
                    Put(dst, ScaleEntry(j, i), sc, 0);
                    Put(dst, MinEntry(j, i), m, 4);
                }
                if (five)
                    for (int c = 0; c < 8; c++) *(uint*)(dst + 128 + 32 * c + 4 * i) = *(uint*)(src + 16 + 4 * c);
                for (int p = 0; p < 4; p++)
                    for (int c = 0; c < 8; c++) *(uint*)(dst + q0 + 256 * p + 32 * c + 4 * i) = *(uint*)(src + pq + 32 * p + 4 * c);
            }
        }

        // a six-bit value: its low four bits in the nibble area (scales at 32, mins at 64), its top two in byte e % 32 of
        // the high-bit area at bit hiBit (+ 2 for e >= 32)
        static void Put(byte* g, int e, int v, int hiBit)
        {
            int t = e % 32, up = e / 32;
            g[(hiBit == 0 ? 32 : 64) + t] |= (byte)((v & 15) << (4 * up));
            g[96 + t] |= (byte)((v >> 4) << (hiBit + 2 * up));
        }
    }

    private static int ScaleEntry(int j, int r) => 8 * j + r;

    private static int MinEntry(int j, int r) => 16 * (j / 2) + 2 * r + j % 2;

    /// <summary>Row <paramref name="i"/> (0-7) of the Q4_K or Q5_K group at <paramref name="group"/> as plain blocks at dst.</summary>
    [SkipLocalsInit]
    private static void CopyRowK(byte* group, int i, int blocks, byte* dst, bool five)
    {
        int q0 = KQuants0(five), pq = KPlainQuants(five);
        byte* sm = stackalloc byte[128];
        for (int b = 0; b < blocks; b++, group += KBytes(five), dst += KBlock(five))
        {
            *(ushort*)dst = *(ushort*)(group + 2 * i);
            *(ushort*)(dst + 2) = *(ushort*)(group + 16 + 2 * i);
            var sc = new Span<byte>(dst + 4, 12);
            sc.Clear();
            DecodeK(group, sm);
            for (int j = 0; j < 8; j++) KQuants.PackScaleMin(sc, j, sm[ScaleEntry(j, i)], sm[64 + MinEntry(j, i)]);
            if (five)
                for (int c = 0; c < 8; c++) *(uint*)(dst + 16 + 4 * c) = *(uint*)(group + 128 + 32 * c + 4 * i);
            for (int p = 0; p < 4; p++)
                for (int c = 0; c < 8; c++) *(uint*)(dst + pq + 32 * p + 4 * c) = *(uint*)(group + q0 + 256 * p + 32 * c + 4 * i);
        }
    }

    /// <summary>The integer GEMM's form of row <paramref name="i"/> of a Q4_K or Q5_K group (the bits of
    /// <see cref="Q4_KType.Unpack32"/> on the plain row): per 32-sub-block j, the nibbles (plus 16 for the 5th bit),
    /// d*scale_j and -(dmin*min_j).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    private static void Unpack32K(byte* group, int i, int n, byte* u, float* d, float* m, bool five)
    {
        byte* sm = stackalloc byte[128];
        int q0 = KQuants0(five);
        for (int b = 0; b < n / 256; b++, group += KBytes(five), u += 256, d += 8, m += 8)
        {
            float dd = BlockMath.Half(group + 2 * i), dmin = BlockMath.Half(group + 16 + 2 * i);
            DecodeK(group, sm);
            for (int j = 0; j < 8; j++)
            {
                d[j] = dd * sm[ScaleEntry(j, i)];
                m[j] = -(dmin * sm[64 + MinEntry(j, i)]);
            }
            Vector256<byte> high = default;
            if (five)
            {
                high = Column((uint*)(group + 128 + 4 * i), 8);
            }
            for (int p = 0; p < 4; p++)
            {
                Q4_KType.StorePair(Column((uint*)(group + q0 + 256 * p + 4 * i), 8), high, p, five, u + 64 * p);
            }
        }
    }

    /// <summary>A Q4_K group block's 64 scales (bytes [0, 64): entry 8j + r) and 64 mins (bytes [64, 128): entry
    /// 16(j / 2) + 2r + j % 2), six bits each, into <paramref name="out128"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DecodeK(byte* g, byte* out128)
    {
        var m4 = Vector256.Create((byte)0x0F);
        var m30 = Vector256.Create((byte)0x30);
        var sn = Vector256.Load(g + 32);
        var mn = Vector256.Load(g + 64);
        var hb = Vector256.Load(g + 96).AsUInt16();
        ((sn & m4) | ((hb << 4).AsByte() & m30)).Store(out128);
        (((sn.AsUInt16() >>> 4).AsByte() & m4) | ((hb << 2).AsByte() & m30)).Store(out128 + 32);
        ((mn & m4) | (hb.AsByte() & m30)).Store(out128 + 64);
        (((mn.AsUInt16() >>> 4).AsByte() & m4) | ((hb >>> 2).AsByte() & m30)).Store(out128 + 96);
    }

    /// <summary>Four activation bytes at q, in every lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Four(sbyte* q) => Vector256.Create(*(int*)q).AsSByte();

    /// <summary>The mins term of one activation row on one super-block: lane r = sum_j min(r, j) * (sum of x's
    /// sub-block j), from the row's 16-sums (<paramref name="sums"/>: 16 of them) and the decoded mins.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> MinsK(byte* mins, short* sums)
    {
        var s = Vector256.Load(sums);
        // words 0-3 of the low lane: sub-blocks 0-3's sums; words 8-11 (the high lane): 4-7; as dwords 0, 1, 4, 5 the pairs
        var sx = Avx2.HorizontalAdd(s, s).AsInt32();
        var acc = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx2.ConvertToVector256Int16(mins).AsInt16(),
                                                 Avx2.PermuteVar8x32(sx, Vector256<int>.Zero).AsInt16());
        acc = AvxVnni.MultiplyWideningAndAdd(acc, Avx2.ConvertToVector256Int16(mins + 16).AsInt16(), Avx2.PermuteVar8x32(sx, Vector256.Create(1)).AsInt16());
        acc = AvxVnni.MultiplyWideningAndAdd(acc, Avx2.ConvertToVector256Int16(mins + 32).AsInt16(), Avx2.PermuteVar8x32(sx, Vector256.Create(4)).AsInt16());
        return AvxVnni.MultiplyWideningAndAdd(acc, Avx2.ConvertToVector256Int16(mins + 48).AsInt16(), Avx2.PermuteVar8x32(sx, Vector256.Create(5)).AsInt16());
    }

    /// <summary>The eight rows' sub-block j scales as int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> ScalesK(byte* scales, int j) => Avx2.ConvertToVector256Int32(scales + 8 * j);

    /// <summary>One activation row's super-block end: acc += d d_x isum - dmin d_x msum, per row (lane).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void EndK(ref Vector256<float> acc, Vector256<int> isum, Vector256<int> msum, Vector256<float> d, Vector256<float> dmin, float dx)
    {
        var x = Vector256.Create(dx);
        acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum), d * x, acc);
        acc = Fma.MultiplyAddNegated(Avx.ConvertToVector256Single(msum), dmin * x, acc);
    }

    /// <summary>The values of one chunk (at w: 4 bytes of each row) of sub-block pair p: sub-block 2p's (low nibbles) and
    /// 2p + 1's, with Q5_K's 5th bits (bits 2p and 2p + 1 of the chunk's qh bytes at <paramref name="qh"/>) in bit 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ValuesK<TBits>(byte* w, byte* qh, int p, out Vector256<byte> lo, out Vector256<byte> hi) where TBits : struct, Q4_KType.IBits
    {
        var m4 = Vector256.Create((byte)0x0F);
        var v = Vector256.Load(w);
        lo = v & m4;
        hi = (v.AsUInt16() >>> 4).AsByte() & m4;
        if (TBits.Five)
        {
            // bits 2p and 2p + 1 of each byte to bit 0 and 1 (one shift by a count in a register, no branch), then to bit 4
            var m10 = Vector256.Create((byte)0x10);
            var h = Vector256.Load(qh).AsUInt16() >>> (2 * p);
            lo |= (h << 4).AsByte() & m10;
            hi |= (h << 3).AsByte() & m10;
        }
    }

    /// <summary>One chunk against one activation row (x of the low nibbles at q, of the high nibbles at q + 32): l += the
    /// low sub-block's sums, h += the high one's.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StepK<TBits>(byte* w, byte* qh, int p, sbyte* q, ref Vector256<int> l, ref Vector256<int> h) where TBits : struct, Q4_KType.IBits
    {
        ValuesK<TBits>(w, qh, p, out var lo, out var hi);
        l = AvxVnni.MultiplyWideningAndAdd(l, lo, Four(q));
        h = AvxVnni.MultiplyWideningAndAdd(h, hi, Four(q + 32));
    }

    /// <summary>Sub-block pair p (its 256 bytes at w, the 5th bits' chunks at qh, x at q) of one activation row, times
    /// the scales, into isum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PairK<TBits>(byte* w, byte* qh, sbyte* q, byte* scales, int p, ref Vector256<int> isum) where TBits : struct, Q4_KType.IBits
    {
        Ahead(w); Ahead(w + 64); Ahead(w + 128); Ahead(w + 192);
        Vector256<int> l0 = default, l1 = default, h0 = default, h1 = default;
        StepK<TBits>(w, qh, p, q, ref l0, ref h0);
        StepK<TBits>(w + 32, qh + 32, p, q + 4, ref l1, ref h1);
        StepK<TBits>(w + 64, qh + 64, p, q + 8, ref l0, ref h0);
        StepK<TBits>(w + 96, qh + 96, p, q + 12, ref l1, ref h1);
        StepK<TBits>(w + 128, qh + 128, p, q + 16, ref l0, ref h0);
        StepK<TBits>(w + 160, qh + 160, p, q + 20, ref l1, ref h1);
        StepK<TBits>(w + 192, qh + 192, p, q + 24, ref l0, ref h0);
        StepK<TBits>(w + 224, qh + 224, p, q + 28, ref l1, ref h1);
        isum += (l0 + l1) * ScalesK(scales, 2 * p) + (h0 + h1) * ScalesK(scales, 2 * p + 1);
    }

    /// <summary>A group block's header for the kernels: prefetched ahead, its scales and mins decoded into sm (128 bytes),
    /// the eight rows' d and dmin as floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void HeadK<TBits>(byte* g, byte* sm, out Vector256<float> d, out Vector256<float> dmin) where TBits : struct, Q4_KType.IBits
    {
        Ahead(g); Ahead(g + 64);
        if (TBits.Five) { Ahead(g + 128); Ahead(g + 192); Ahead(g + 256); Ahead(g + 320); }
        DecodeK(g, sm);
        d = F16Type.ToSingle(Avx2.ConvertToVector256Int32((ushort*)g).AsUInt32());
        dmin = F16Type.ToSingle(Avx2.ConvertToVector256Int32((ushort*)(g + 16)).AsUInt32());
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    private static void DotK1<TBits>(byte* g, Q8Row* xs, int nb, float* y) where TBits : struct, Q4_KType.IBits
    {
        byte* sm = stackalloc byte[128];
        Vector256<float> acc = default;
        var x = xs[0];
        int q0 = KQuants0(TBits.Five);
        for (int b = 0; b < nb; b++, g += KBytes(TBits.Five))
        {
            HeadK<TBits>(g, sm, out var d, out var dmin);
            sbyte* q = x.Q + 256 * b;
            Vector256<int> isum = default;
            // a loop, not four calls: four inlined copies exhaust the JIT's inlining budget (the helpers become calls)
            for (int p = 0; p < 4; p++) PairK<TBits>(g + q0 + 256 * p, g + 128, q + 64 * p, sm, p, ref isum);
            EndK(ref acc, isum, MinsK(sm + 64, x.Sums + 16 * b), d, dmin, x.D[b]);
        }
        acc.Store(y);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    private static void DotK4<TBits>(byte* g, Q8Row* xs, int nb, float* y, long yStride) where TBits : struct, Q4_KType.IBits
    {
        byte* sm = stackalloc byte[128];
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Q8Row x0 = xs[0], x1 = xs[1], x2 = xs[2], x3 = xs[3];
        int q0 = KQuants0(TBits.Five);
        for (int b = 0; b < nb; b++, g += KBytes(TBits.Five))
        {
            HeadK<TBits>(g, sm, out var d, out var dmin);
            int o = 256 * b;
            Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int p = 0; p < 4; p++, o += 64)
            {
                byte* w = g + q0 + 256 * p;
                Ahead(w); Ahead(w + 64); Ahead(w + 128); Ahead(w + 192);
                Vector256<int> l0 = default, l1 = default, l2 = default, l3 = default, h0 = default, h1 = default, h2 = default, h3 = default;
                for (int c = 0; c < 8; c++)
                {
                    ValuesK<TBits>(w + 32 * c, g + 128 + 32 * c, p, out var lo, out var hi);
                    int k = o + 4 * c;
                    l0 = AvxVnni.MultiplyWideningAndAdd(l0, lo, Four(x0.Q + k));
                    h0 = AvxVnni.MultiplyWideningAndAdd(h0, hi, Four(x0.Q + k + 32));
                    l1 = AvxVnni.MultiplyWideningAndAdd(l1, lo, Four(x1.Q + k));
                    h1 = AvxVnni.MultiplyWideningAndAdd(h1, hi, Four(x1.Q + k + 32));
                    l2 = AvxVnni.MultiplyWideningAndAdd(l2, lo, Four(x2.Q + k));
                    h2 = AvxVnni.MultiplyWideningAndAdd(h2, hi, Four(x2.Q + k + 32));
                    l3 = AvxVnni.MultiplyWideningAndAdd(l3, lo, Four(x3.Q + k));
                    h3 = AvxVnni.MultiplyWideningAndAdd(h3, hi, Four(x3.Q + k + 32));
                }
                var sl = ScalesK(sm, 2 * p);
                var sh = ScalesK(sm, 2 * p + 1);
                s0 += l0 * sl + h0 * sh;
                s1 += l1 * sl + h1 * sh;
                s2 += l2 * sl + h2 * sh;
                s3 += l3 * sl + h3 * sh;
            }
            EndK(ref a0, s0, MinsK(sm + 64, x0.Sums + 16 * b), d, dmin, x0.D[b]);
            EndK(ref a1, s1, MinsK(sm + 64, x1.Sums + 16 * b), d, dmin, x1.D[b]);
            EndK(ref a2, s2, MinsK(sm + 64, x2.Sums + 16 * b), d, dmin, x2.D[b]);
            EndK(ref a3, s3, MinsK(sm + 64, x3.Sums + 16 * b), d, dmin, x3.D[b]);
        }
        a0.Store(y); a1.Store(y + yStride); a2.Store(y + 2 * yStride); a3.Store(y + 3 * yStride);
    }
}
