using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Row groups: the layout a loaded model's quantized matrices are regrouped into for the decode matvec (as llama.cpp
/// repacks Q4_0 into its Q4_0_8x8): Q8_0 and Q4_0 here, Q5_0, Q4_1 and Q5_1 in <c>RowGroups.Legacy.cs</c>, Q4_K and Q5_K
/// in <c>RowGroups.Q4_K.cs</c>, Q6_K in <c>RowGroups.Q6_K.cs</c>. Eight consecutive rows become one group; for Q8_0 and
/// Q4_0, each 32-block b of the group holds the eight rows' f16 scales (16 bytes), then their quant bytes interleaved 8
/// at a time:
/// <code>
/// group block b:  d0 d1 .. d7 | row0 q[0..8) row1 q[0..8) .. row7 q[0..8) | row0 q[8..16) .. | ...
/// Q8_0: 16 + 4*64 = 272 bytes = 8 blocks of 34     (quant bytes stored XOR 0x80: w + 128, unsigned)
/// Q4_0: 16 + 2*64 = 144 bytes = 8 blocks of 18     (the nibble bytes as they are: byte j holds q[j] and q[j+16])
/// </code>
/// So a group takes exactly the bytes of its eight rows and is regrouped in place; rows past the last whole group stay
/// as they were. One 256-bit load then holds 8 weight bytes of 4 rows against the same 8 activation bytes (one
/// broadcast), and <c>vpdpbusd</c> (AVX-VNNI: unsigned times signed bytes into int32, no saturation) multiplies them: the
/// scales of 8 rows are one load, and the per-row horizontal sums happen once per group instead of once per row.
/// <para>Integers: per block and row, sum(u x) is exact in int32; Q8_0's u = w + 128 and Q4_0's u = q (w = q - 8), so
/// the kernel starts each block's sum at -128 sum(x) or -8 sum(x) (the activation's block sums, <see cref="Q8Row.Sums"/>)
/// and the int32 result is exactly the block's sum(w x). It is converted (exact: |sum| &lt; 2^24), multiplied by
/// d_w d_x and added in f32, two lanes per row, the two lanes added at the end: the same products as the row-by-row
/// dots, summed in another order (f32 rounding apart).</para>
/// </summary>
internal static unsafe partial class RowGroups
{
    /// <summary>Rows per group.</summary>
    public const int Size = 8;

    /// <summary>Whether matrices of <paramref name="type"/> are regrouped when a model is read into memory on this machine:
    /// Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, Q4_K, Q5_K and Q6_K, where AVX-VNNI runs the group kernel.</summary>
    public static bool Regroups(DType type) => Layout(type) && AvxVnni.IsSupported && KernelIsaSelector.Best != KernelIsa.Scalar;

    /// <summary>Whether <paramref name="type"/> has a group layout.</summary>
    private static bool Layout(DType type) => type is DType.Q8_0 or DType.Q4_0 or DType.Q4_K or DType.Q5_K or DType.Q6_K || IsLegacy(type);

    /// <summary>Values per block of a grouped type (a group block holds this block of each of the eight rows).</summary>
    private static int Values(DType type) => DTypeInfo.BlockSize(type);

    /// <summary>How far ahead the group kernels prefetch: twice the row-by-row dots' <see cref="BlockMath.PrefetchBytes"/>
    /// (a step reads a block of eight rows). Alternated builds, `decode-profile ... 1 64`, same-phase pairs: qwen05 Q4_0
    /// 62-74 -> 64-80 tok/s (4 of 4 pairs), 134m Q8_0 4 pairs 3 won, qwen05 Q8_0 in the fast phase 40-42 -> 45 tok/s;
    /// no prefetch was slower (33-37 vs 38-44).</summary>
    private const int PrefetchBytes = 4096;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Ahead(byte* p) => Sse.Prefetch0(p + PrefetchBytes);

    /// <summary>Eight uints <paramref name="stride"/> apart from p, as one vector: a row's 4-byte chunks gathered out of
    /// a group block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Column(uint* p, int stride) =>
        Vector256.Create(p[0], p[stride], p[2 * stride], p[3 * stride], p[4 * stride], p[5 * stride], p[6 * stride], p[7 * stride]).AsByte();

    /// <summary>This thread's buffer for <paramref name="bytes"/> bytes of plain rows (one row copied out, or a group's
    /// eight rows while it is regrouped).</summary>
    public static byte* RowBuffer(long bytes) => (byte*)Scratch.Get(Scratch.PlainRow, bytes / 4 + 1);

    private static int QuantBytes(DType type) => DTypeInfo.BlockBytes(type) - 2; // Q8_0, Q4_0: an f16 scale, then the quants

    private static byte Flip(DType type) => type == DType.Q8_0 ? (byte)0x80 : (byte)0;

    /// <summary>Regroups the first Rows/8*8 rows of a (rows, cols) matrix at <paramref name="data"/> in place, the groups
    /// spread over the worker pool (part of loading a model: a 360 MB Q4_0 file's groups took 0.3 s in tier-0 code on one
    /// thread).</summary>
    public static void RegroupInPlace(DType type, byte* data, int rows, int cols)
    {
        if (!Layout(type)) throw new ArgumentException($"{type} rows are not regrouped", nameof(type));
        if (cols % Values(type) != 0) throw new ArgumentException($"{cols} columns are not whole blocks of {Values(type)}", nameof(cols));
        long rowBytes = DTypeInfo.RowBytes(type, cols);
        nint at = (nint)data;
        WorkerPool.Shared.For(rows / Size, g => RegroupOne(type, (byte*)at + g * Size * rowBytes, rowBytes, cols / Values(type)), minItemsPerChunk: 64);
    }

    /// <summary>One group in place: its eight rows copied to this thread's scratch, then interleaved back.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RegroupOne(DType type, byte* at, long rowBytes, int blocks)
    {
        long groupBytes = Size * rowBytes;
        byte* copy = RowBuffer(groupBytes);
        Buffer.MemoryCopy(at, copy, groupBytes, groupBytes);
        Interleave(type, copy, rowBytes, blocks, at);
    }

    /// <summary>Eight plain rows (at <paramref name="rows"/>, <paramref name="rowBytes"/> apart) -> one group at dst.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Interleave(DType type, byte* rows, long rowBytes, int blocks, byte* dst)
    {
        if (type is DType.Q4_K or DType.Q5_K) { InterleaveK(rows, rowBytes, blocks, dst, type == DType.Q5_K); return; }
        if (type == DType.Q6_K) { Interleave6(rows, rowBytes, blocks, dst); return; }
        if (IsLegacy(type)) { InterleaveLegacy(type, rows, rowBytes, blocks, dst); return; }
        int bb = DTypeInfo.BlockBytes(type), qb = QuantBytes(type);
        ulong flip = Flip(type) * 0x0101010101010101UL;
        for (int b = 0; b < blocks; b++, dst += Size * bb)
            for (int i = 0; i < Size; i++)
            {
                byte* src = rows + i * rowBytes + (long)b * bb;
                *(ushort*)(dst + 2 * i) = *(ushort*)src;
                for (int k = 0; k < qb / 8; k++) *(ulong*)(dst + 16 + 64 * k + 8 * i) = *(ulong*)(src + 2 + 8 * k) ^ flip;
            }
    }

    /// <summary>Row <paramref name="i"/> (0-7) of the group at <paramref name="group"/> as plain blocks at dst.</summary>
    public static void CopyRow(DType type, byte* group, int i, int blocks, byte* dst)
    {
        if (type is DType.Q4_K or DType.Q5_K) { CopyRowK(group, i, blocks, dst, type == DType.Q5_K); return; }
        if (type == DType.Q6_K) { CopyRow6(group, i, blocks, dst); return; }
        if (IsLegacy(type)) { CopyRowLegacy(type, group, i, blocks, dst); return; }
        int bb = DTypeInfo.BlockBytes(type), qb = QuantBytes(type);
        ulong flip = Flip(type) * 0x0101010101010101UL;
        for (int b = 0; b < blocks; b++, group += Size * bb, dst += bb)
        {
            *(ushort*)dst = *(ushort*)(group + 2 * i);
            for (int k = 0; k < qb / 8; k++) *(ulong*)(dst + 2 + 8 * k) = *(ulong*)(group + 16 + 64 * k + 8 * i) ^ flip;
        }
    }

    /// <summary>Row r of a matrix whose first <paramref name="groupedRows"/> rows are grouped, in the plain layout: a pointer
    /// into the matrix, or <paramref name="scratch"/> holding the row copied out of its group.</summary>
    public static byte* PlainRow(DType type, byte* data, long rowBytes, int groupedRows, int cols, int r, byte* scratch)
    {
        if (r >= groupedRows) return data + r * rowBytes;
        CopyRow(type, data + (long)(r / Size) * Size * rowBytes, r % Size, cols / Values(type), scratch);
        return scratch;
    }

    /// <summary>The integer GEMM's form (<see cref="TypeTraits.Unpack32"/>) of grouped row r of the matrix at
    /// <paramref name="data"/>, read straight from its group (the bits of the type's own Unpack32 on the plain row): Q8_0's
    /// signed bytes, Q4_0's nibbles in element order; the other layouts' own Unpack32 in their files (the mins in
    /// <paramref name="m"/> where the type has them).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Unpack32(DType type, byte* data, long rowBytes, int r, int n, byte* u, float* d, float* m)
    {
        int i = r % Size;
        byte* group = data + (long)(r / Size) * Size * rowBytes;
        if (type is DType.Q4_K or DType.Q5_K) { Unpack32K(group, i, n, u, d, m, type == DType.Q5_K); return; }
        if (type == DType.Q6_K) { Unpack32Q6(group, i, n, u, d); return; }
        if (IsLegacy(type)) { Unpack32Legacy(type, group, i, n, u, d, m); return; }
        int step = Size * DTypeInfo.BlockBytes(type);
        if (type == DType.Q8_0)
        {
            var flip = Vector256.Create((byte)0x80);
            for (int b = 0; b < n / 32; b++, group += step, u += 32)
            {
                d[b] = BlockMath.Half(group + 2 * i);
                (Vector256.Create(*(ulong*)(group + 16 + 8 * i), *(ulong*)(group + 80 + 8 * i), *(ulong*)(group + 144 + 8 * i), *(ulong*)(group + 208 + 8 * i)).AsByte() ^ flip).Store(u);
            }
            return;
        }
        var mask = Vector128.Create((byte)15);
        for (int b = 0; b < n / 32; b++, group += step, u += 32)
        {
            d[b] = BlockMath.Half(group + 2 * i);
            var v = Vector128.Create(*(ulong*)(group + 16 + 8 * i), *(ulong*)(group + 80 + 8 * i)).AsByte();
            (v & mask).Store(u);
            ((v.AsUInt16() >>> 4).AsByte() & mask).Store(u + 16);
        }
    }

    /// <summary>y[r * yStride + i] = row i of the group . xs[r] for the 8 rows and <paramref name="rows"/> activation rows
    /// (1, or 4 at once: the weights loaded, unpacked and their scales converted once), n values each, x quantized in
    /// the type's activation blocks (<see cref="TypeTraits.DotQ8Block"/>: 32, Q4_K 256). Every activation row gets the
    /// same operations in the same order either way, so a row's bits do not depend on the batch.</summary>
    public static void Dot(DType type, byte* group, Q8Row* xs, int rows, int n, float* y, long yStride = Size)
    {
        if (rows != 1 && rows != 4) throw new ArgumentOutOfRangeException(nameof(rows), rows, "1 or 4 activation rows");
        switch (type)
        {
            case DType.Q4_K: K<Q4_KType.FourBits>(); break;
            case DType.Q5_K: K<Q4_KType.FiveBits>(); break;
            case DType.Q6_K: if (rows == 1) Dot6x1(group, xs, n / 256, y); else Dot6x4(group, xs, n / 256, y, yStride); break;
            case DType.Q8_0: B<Q8Block>(); break;
            case DType.Q4_0: B<Q4Block>(); break;
            case DType.Q5_0: B<Q5Block>(); break;
            case DType.Q4_1: B<Q41Block>(); break;
            case DType.Q5_1: B<Q51Block>(); break;
            default: throw new ArgumentException($"{type} has no row groups", nameof(type));
        }

        void K<TBits>() where TBits : struct, Q4_KType.IBits
        {
            if (rows == 1) DotK1<TBits>(group, xs, n / 256, y);
            else DotK4<TBits>(group, xs, n / 256, y, yStride);
        }

        void B<TB>() where TB : IGroupBlock
        {
            if (rows == 1) Dot1<TB>(group, xs, n / 32, y);
            else Dot4<TB>(group, xs, n / 32, y, yStride);
        }
    }

    /// <summary>A grouped block of one type: its bytes, its offset (u = w + offset), and its weights as the eight 32-byte
    /// operands of <c>vpdpbusd</c>: l0-l3 for rows 0-3 and h0-h3 for rows 4-7, operand k against activation bytes
    /// [8k, 8k + 8) of the block broadcast.</summary>
    private interface IGroupBlock
    {
        static abstract int Bytes { get; }
        static abstract int Offset { get; }
        /// <summary>Whether the block has the eight rows' f16 mins after their scales (w = d u + m).</summary>
        static abstract bool HasMin { get; }
        static abstract void Operands(byte* g, out Vector256<byte> l0, out Vector256<byte> l1, out Vector256<byte> l2, out Vector256<byte> l3,
                                      out Vector256<byte> h0, out Vector256<byte> h1, out Vector256<byte> h2, out Vector256<byte> h3);
    }

    private struct Q8Block : IGroupBlock
    {
        public static int Bytes => Size * 34;
        public static int Offset => 128;
        public static bool HasMin => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Operands(byte* g, out Vector256<byte> l0, out Vector256<byte> l1, out Vector256<byte> l2, out Vector256<byte> l3,
                                    out Vector256<byte> h0, out Vector256<byte> h1, out Vector256<byte> h2, out Vector256<byte> h3)
        {
            Ahead(g); Ahead(g + 64); Ahead(g + 128); Ahead(g + 192);
            l0 = Vector256.Load(g + 16); h0 = Vector256.Load(g + 48);
            l1 = Vector256.Load(g + 80); h1 = Vector256.Load(g + 112);
            l2 = Vector256.Load(g + 144); h2 = Vector256.Load(g + 176);
            l3 = Vector256.Load(g + 208); h3 = Vector256.Load(g + 240);
        }
    }

    private struct Q4Block : IGroupBlock
    {
        public static int Bytes => Size * 18;
        public static int Offset => 8;
        public static bool HasMin => false;

        // byte j of a row holds q[j] (low nibble) and q[j + 16]: chunk 0 (bytes 0-7) gives q[0..8) and q[16..24), chunk 1
        // q[8..16) and q[24..32)
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Operands(byte* g, out Vector256<byte> l0, out Vector256<byte> l1, out Vector256<byte> l2, out Vector256<byte> l3,
                                    out Vector256<byte> h0, out Vector256<byte> h1, out Vector256<byte> h2, out Vector256<byte> h3)
        {
            Ahead(g); Ahead(g + 64); Ahead(g + 128);
            var m4 = Vector256.Create((byte)0x0F);
            var v = Vector256.Load(g + 16);
            l0 = v & m4; l2 = Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m4;
            v = Vector256.Load(g + 48);
            h0 = v & m4; h2 = Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m4;
            v = Vector256.Load(g + 80);
            l1 = v & m4; l3 = Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m4;
            v = Vector256.Load(g + 112);
            h1 = v & m4; h3 = Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m4;
        }
    }

    // Lanes 2i and 2i+1 belong to row i of a half (rows 0-3 or 4-7): the scales spread to them, the block's offset
    // correction into the even lane. Constants created in the kernels (not static readonly fields: a kernel compiled
    // fully optimized before the class is initialized would check the initialization in its loop).

    /// <summary>The eight f16 scales at g, spread to the two halves' lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scales(byte* g, out Vector256<float> low, out Vector256<float> high)
    {
        var s = F16Type.ToSingle(Avx2.ConvertToVector256Int32(Vector128.Load((ushort*)g)).AsUInt32());
        low = Avx2.PermuteVar8x32(s, Vector256.Create(0, 0, 1, 1, 2, 2, 3, 3));
        high = Avx2.PermuteVar8x32(s, Vector256.Create(4, 4, 5, 5, 6, 6, 7, 7));
    }

    /// <summary>The eight f16 mins at g (<see cref="IGroupBlock.HasMin"/>) in the first of each row's two lanes (0 in the
    /// second: a row's min term is added once).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Mins(byte* g, out Vector256<float> low, out Vector256<float> high)
    {
        Scales(g, out low, out high);
        low = Avx.Blend(low, Vector256<float>.Zero, 0b10101010);
        high = Avx.Blend(high, Vector256<float>.Zero, 0b10101010);
    }

    /// <summary>One activation row's work on block b: the exact integer sums of the 8 rows (two lanes each, starting at
    /// -offset * sum(x)), converted, times d_w d_x, added to a (rows 0-3) and c (rows 4-7); with mins (ml, mh), plus
    /// m d_x sum(x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step<TB>(Q8Row x, int b, Vector256<float> sl, Vector256<float> sh, Vector256<float> ml, Vector256<float> mh,
                                 Vector256<byte> l0, Vector256<byte> l1, Vector256<byte> l2, Vector256<byte> l3,
                                 Vector256<byte> h0, Vector256<byte> h1, Vector256<byte> h2, Vector256<byte> h3,
                                 ref Vector256<float> a, ref Vector256<float> c) where TB : IGroupBlock
    {
        sbyte* q = x.Q + 32 * b;
        // the block's two 16-sums as one broadcast dword, multiplied and added pairwise (vpmaddwd) by (-offset, -offset)
        // in the even lanes and (0, 0) in the odd ones: -offset * sum(x) where the row's first lane starts
        var k = Vector256.Create((short)-TB.Offset, (short)-TB.Offset, 0, 0, (short)-TB.Offset, (short)-TB.Offset, 0, 0,
                                 (short)-TB.Offset, (short)-TB.Offset, 0, 0, (short)-TB.Offset, (short)-TB.Offset, 0, 0);
        var start = Avx2.MultiplyAddAdjacent(Vector256.Create(*(int*)(x.Sums + 2 * b)).AsInt16(), k);
        Vector256<sbyte> x0 = Vector256.Create(*(long*)q).AsSByte(), x1 = Vector256.Create(*(long*)(q + 8)).AsSByte(),
                         x2 = Vector256.Create(*(long*)(q + 16)).AsSByte(), x3 = Vector256.Create(*(long*)(q + 24)).AsSByte();
        var il = AvxVnni.MultiplyWideningAndAdd(start, l0, x0);
        var ih = AvxVnni.MultiplyWideningAndAdd(start, h0, x0);
        il = AvxVnni.MultiplyWideningAndAdd(il, l1, x1);
        ih = AvxVnni.MultiplyWideningAndAdd(ih, h1, x1);
        il = AvxVnni.MultiplyWideningAndAdd(il, l2, x2);
        ih = AvxVnni.MultiplyWideningAndAdd(ih, h2, x2);
        il = AvxVnni.MultiplyWideningAndAdd(il, l3, x3);
        ih = AvxVnni.MultiplyWideningAndAdd(ih, h3, x3);
        var d = Vector256.Create(x.D[b]);
        a = Fma.MultiplyAdd(Avx.ConvertToVector256Single(il), sl * d, a);
        c = Fma.MultiplyAdd(Avx.ConvertToVector256Single(ih), sh * d, c);
        if (TB.HasMin)
        {
            var sx = Vector256.Create(x.D[b] * (x.Sums[2 * b] + x.Sums[2 * b + 1]));
            a = Fma.MultiplyAdd(ml, sx, a);
            c = Fma.MultiplyAdd(mh, sx, c);
        }
    }

    /// <summary>y (8) from one activation row's accumulators: row i = lane 2i + lane 2i+1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector256<float> low, Vector256<float> high, float* y) =>
        Avx2.PermuteVar8x32(Avx.HorizontalAdd(low, high), Vector256.Create(0, 1, 4, 5, 2, 3, 6, 7)).Store(y);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot1<TB>(byte* g, Q8Row* xs, int nb, float* y) where TB : IGroupBlock
    {
        Vector256<float> a = default, c = default;
        var x = xs[0];
        for (int b = 0; b < nb; b++, g += TB.Bytes)
        {
            TB.Operands(g, out var l0, out var l1, out var l2, out var l3, out var h0, out var h1, out var h2, out var h3);
            Scales(g, out var sl, out var sh);
            Vector256<float> ml = default, mh = default;
            if (TB.HasMin) Mins(g + 16, out ml, out mh);
            Step<TB>(x, b, sl, sh, ml, mh, l0, l1, l2, l3, h0, h1, h2, h3, ref a, ref c);
        }
        Store(a, c, y);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4<TB>(byte* g, Q8Row* xs, int nb, float* y, long yStride) where TB : IGroupBlock
    {
        Vector256<float> a0 = default, c0 = default, a1 = default, c1 = default, a2 = default, c2 = default, a3 = default, c3 = default;
        Q8Row x0 = xs[0], x1 = xs[1], x2 = xs[2], x3 = xs[3];
        for (int b = 0; b < nb; b++, g += TB.Bytes)
        {
            TB.Operands(g, out var l0, out var l1, out var l2, out var l3, out var h0, out var h1, out var h2, out var h3);
            Scales(g, out var sl, out var sh);
            Vector256<float> ml = default, mh = default;
            if (TB.HasMin) Mins(g + 16, out ml, out mh);
            Step<TB>(x0, b, sl, sh, ml, mh, l0, l1, l2, l3, h0, h1, h2, h3, ref a0, ref c0);
            Step<TB>(x1, b, sl, sh, ml, mh, l0, l1, l2, l3, h0, h1, h2, h3, ref a1, ref c1);
            Step<TB>(x2, b, sl, sh, ml, mh, l0, l1, l2, l3, h0, h1, h2, h3, ref a2, ref c2);
            Step<TB>(x3, b, sl, sh, ml, mh, l0, l1, l2, l3, h0, h1, h2, h3, ref a3, ref c3);
        }
        Store(a0, c0, y); Store(a1, c1, y + yStride); Store(a2, c2, y + 2 * yStride); Store(a3, c3, y + 3 * yStride);
    }
}
