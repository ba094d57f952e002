using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Row groups: the layout a loaded model's Q8_0 and Q4_0 matrices are regrouped into for the decode matvec (as llama.cpp
/// repacks Q4_0 into its Q4_0_8x8). Eight consecutive rows become one group; for each 32-block b the group holds the
/// eight rows' f16 scales (16 bytes), then their quant bytes interleaved 8 at a time:
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
internal static unsafe class RowGroups
{
    /// <summary>Rows per group.</summary>
    public const int Size = 8;

    /// <summary>Whether matrices of <paramref name="type"/> are regrouped when a model is read into memory on this machine:
    /// Q8_0 and Q4_0, where AVX-VNNI runs the group kernel.</summary>
    public static bool Regroups(DType type) => (type is DType.Q8_0 or DType.Q4_0) && AvxVnni.IsSupported && KernelIsaSelector.Best != KernelIsa.Scalar;

    private static int QuantBytes(DType type) => type == DType.Q8_0 ? 32 : 16;

    private static int BlockBytes(DType type) => type == DType.Q8_0 ? 34 : 18;

    private static byte Flip(DType type) => type == DType.Q8_0 ? (byte)0x80 : (byte)0;

    /// <summary>Regroups the first Rows/8*8 rows of a (rows, cols) matrix at <paramref name="data"/> in place.</summary>
    public static void RegroupInPlace(DType type, byte* data, int rows, int cols)
    {
        if (type is not (DType.Q8_0 or DType.Q4_0)) throw new ArgumentException($"{type} rows are not regrouped", nameof(type));
        long rowBytes = DTypeInfo.RowBytes(type, cols);
        long groupBytes = Size * rowBytes;
        var copy = new byte[groupBytes];
        fixed (byte* c = copy)
            for (int g = 0; g < rows / Size; g++)
            {
                byte* at = data + g * groupBytes;
                Buffer.MemoryCopy(at, c, groupBytes, groupBytes);
                Interleave(type, c, rowBytes, cols / 32, at);
            }
    }

    /// <summary>Eight plain rows (at <paramref name="rows"/>, <paramref name="rowBytes"/> apart) -> one group at dst.</summary>
    public static void Interleave(DType type, byte* rows, long rowBytes, int blocks, byte* dst)
    {
        int bb = BlockBytes(type), qb = QuantBytes(type);
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
        int bb = BlockBytes(type), qb = QuantBytes(type);
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
        CopyRow(type, data + (long)(r / Size) * Size * rowBytes, r % Size, cols / 32, scratch);
        return scratch;
    }

    /// <summary>y[i] = row i of the group . x for the 8 rows (n values each, x quantized in blocks of 32). Every row's
    /// operations are the same whatever else is computed, so a row's bits do not depend on the batch.</summary>
    public static void Dot(DType type, byte* group, Q8Row x, int n, float* y)
    {
        if (type == DType.Q8_0) DotQ8_0(group, x, n / 32, y);
        else DotQ4_0(group, x, n / 32, y);
    }

    // Lanes 2i and 2i+1 belong to row i of a half (rows 0-3 or 4-7): the scales spread to them, the block's offset
    // correction into the even lane. Constants created in the kernels (not static readonly fields: a kernel compiled
    // fully optimized before the class is initialized would check the initialization in its loop).

    /// <summary>The eight f16 scales at p as floats times the activation's block scale, spread to the two halves' lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scales(byte* p, float dx, Vector256<int> low, Vector256<int> high, out Vector256<float> sLow, out Vector256<float> sHigh)
    {
        var s = F16Type.ToSingle(Avx2.ConvertToVector256Int32(Vector128.Load((ushort*)p)).AsUInt32()) * Vector256.Create(dx);
        sLow = Avx2.PermuteVar8x32(s, low);
        sHigh = Avx2.PermuteVar8x32(s, high);
    }

    /// <summary>y (8) from the two halves' accumulators: row i = lane 2i + lane 2i+1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector256<float> low, Vector256<float> high, float* y) =>
        Avx2.PermuteVar8x32(Avx.HorizontalAdd(low, high), Vector256.Create(0, 1, 4, 5, 2, 3, 6, 7)).Store(y);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotQ8_0(byte* g, Q8Row x, int nb, float* y)
    {
        Vector256<float> a0 = default, b0 = default, a1 = default, b1 = default;
        Vector256<int> low = Vector256.Create(0, 0, 1, 1, 2, 2, 3, 3), high = Vector256.Create(4, 4, 5, 5, 6, 6, 7, 7), even = Vector256.Create(-1, 0, -1, 0, -1, 0, -1, 0);
        sbyte* q = x.Q;
        for (int b = 0; b < nb; b++, g += 272, q += 32)
        {
            BlockMath.Prefetch(g); BlockMath.Prefetch(g + 64); BlockMath.Prefetch(g + 128); BlockMath.Prefetch(g + 192);
            Scales(g, x.D[b], low, high, out var sl, out var sh);
            var start = Vector256.Create(-128 * (x.Sums[2 * b] + x.Sums[2 * b + 1])) & even;
            Vector256<sbyte> x0 = Vector256.Create(*(long*)q).AsSByte(), x1 = Vector256.Create(*(long*)(q + 8)).AsSByte(),
                             x2 = Vector256.Create(*(long*)(q + 16)).AsSByte(), x3 = Vector256.Create(*(long*)(q + 24)).AsSByte();
            var il = AvxVnni.MultiplyWideningAndAdd(start, Vector256.Load(g + 16), x0);
            var ih = AvxVnni.MultiplyWideningAndAdd(start, Vector256.Load(g + 48), x0);
            il = AvxVnni.MultiplyWideningAndAdd(il, Vector256.Load(g + 80), x1);
            ih = AvxVnni.MultiplyWideningAndAdd(ih, Vector256.Load(g + 112), x1);
            il = AvxVnni.MultiplyWideningAndAdd(il, Vector256.Load(g + 144), x2);
            ih = AvxVnni.MultiplyWideningAndAdd(ih, Vector256.Load(g + 176), x2);
            il = AvxVnni.MultiplyWideningAndAdd(il, Vector256.Load(g + 208), x3);
            ih = AvxVnni.MultiplyWideningAndAdd(ih, Vector256.Load(g + 240), x3);
            if ((b & 1) == 0)
            {
                a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(il), sl, a0);
                b0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(ih), sh, b0);
            }
            else
            {
                a1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(il), sl, a1);
                b1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(ih), sh, b1);
            }
        }
        Store(a0 + a1, b0 + b1, y);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotQ4_0(byte* g, Q8Row x, int nb, float* y)
    {
        Vector256<float> a0 = default, b0 = default, a1 = default, b1 = default;
        Vector256<int> low = Vector256.Create(0, 0, 1, 1, 2, 2, 3, 3), high = Vector256.Create(4, 4, 5, 5, 6, 6, 7, 7), even = Vector256.Create(-1, 0, -1, 0, -1, 0, -1, 0);
        var m4 = Vector256.Create((byte)0x0F);
        sbyte* q = x.Q;
        for (int b = 0; b < nb; b++, g += 144, q += 32)
        {
            BlockMath.Prefetch(g); BlockMath.Prefetch(g + 64); BlockMath.Prefetch(g + 128);
            Scales(g, x.D[b], low, high, out var sl, out var sh);
            var start = Vector256.Create(-8 * (x.Sums[2 * b] + x.Sums[2 * b + 1])) & even;
            Vector256<sbyte> x0 = Vector256.Create(*(long*)q).AsSByte(), x1 = Vector256.Create(*(long*)(q + 8)).AsSByte(),
                             x2 = Vector256.Create(*(long*)(q + 16)).AsSByte(), x3 = Vector256.Create(*(long*)(q + 24)).AsSByte();
            // chunk 0 (bytes 0-7 of each row): q[0..8) low, q[16..24) high; chunk 1: q[8..16), q[24..32)
            var v = Vector256.Load(g + 16);
            var il = AvxVnni.MultiplyWideningAndAdd(start, v & m4, x0);
            il = AvxVnni.MultiplyWideningAndAdd(il, Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m4, x2);
            v = Vector256.Load(g + 48);
            var ih = AvxVnni.MultiplyWideningAndAdd(start, v & m4, x0);
            ih = AvxVnni.MultiplyWideningAndAdd(ih, Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m4, x2);
            v = Vector256.Load(g + 80);
            il = AvxVnni.MultiplyWideningAndAdd(il, v & m4, x1);
            il = AvxVnni.MultiplyWideningAndAdd(il, Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m4, x3);
            v = Vector256.Load(g + 112);
            ih = AvxVnni.MultiplyWideningAndAdd(ih, v & m4, x1);
            ih = AvxVnni.MultiplyWideningAndAdd(ih, Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m4, x3);
            if ((b & 1) == 0)
            {
                a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(il), sl, a0);
                b0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(ih), sh, b0);
            }
            else
            {
                a1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(il), sl, a1);
                b1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(ih), sh, b1);
            }
        }
        Store(a0 + a1, b0 + b1, y);
    }
}
