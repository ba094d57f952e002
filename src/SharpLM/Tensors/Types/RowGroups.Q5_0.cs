using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Q5_0 row groups: the Q4_0 group block with the eight rows' 5th bits between the scales and the nibbles, 176 bytes =
/// 8 blocks of 22:
/// <code>
/// group block b:  d0 .. d7 | V (32 bytes) | the nibble bytes as Q4_0's group block (row i q[0..8) at 48 + 8i, q[8..16) at 112 + 8i)
/// </code>
/// V holds the 5th bits in the shape of the kernel's eight operands (<see cref="IGroupBlock.Operands"/>: l0-l3 rows 0-3,
/// h0-h3 rows 4-7, operand k of a half = elements 8k .. 8k + 7): bit ob of V[j] is the 5th bit of operand ob's byte j
/// (row 4 (ob / 4) + j / 8, element 8 (ob % 4) + j % 8). So each operand gets its bits by one shift and one mask, with
/// no per-byte bit spreading; u = q + 16 bit is 0..31 and w = u - 16 (the kernel's offset).
/// </summary>
internal static unsafe partial class RowGroups
{
    /// <summary>Eight plain Q5_0 rows -> one group at dst.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Interleave5(byte* rows, long rowBytes, int blocks, byte* dst)
    {
        for (int b = 0; b < blocks; b++, dst += Size * 22)
        {
            new Span<byte>(dst + 16, 32).Clear();
            for (int i = 0; i < Size; i++)
            {
                byte* src = rows + i * rowBytes + (long)b * 22;
                *(ushort*)(dst + 2 * i) = *(ushort*)src;
                uint qh = *(uint*)(src + 2);
                for (int e = 0; e < 32; e++) dst[16 + FifthByte(i, e)] |= (byte)(((qh >> e) & 1) << FifthBit(i, e));
                *(ulong*)(dst + 48 + 8 * i) = *(ulong*)(src + 6);
                *(ulong*)(dst + 112 + 8 * i) = *(ulong*)(src + 14);
            }
        }
    }

    /// <summary>The byte of V holding row i's element e's 5th bit.</summary>
    private static int FifthByte(int i, int e) => 8 * (i % 4) + e % 8;

    /// <summary>Its bit: the operand (l0-l3 for rows 0-3, h0-h3 as 4-7) whose byte it is.</summary>
    private static int FifthBit(int i, int e) => 4 * (i / 4) + e / 8;

    /// <summary>Row <paramref name="i"/> (0-7) of the Q5_0 group at <paramref name="group"/> as plain blocks at dst.</summary>
    private static void CopyRow5(byte* group, int i, int blocks, byte* dst)
    {
        for (int b = 0; b < blocks; b++, group += Size * 22, dst += 22)
        {
            *(ushort*)dst = *(ushort*)(group + 2 * i);
            uint qh = 0;
            for (int e = 0; e < 32; e++) qh |= (uint)((group[16 + FifthByte(i, e)] >> FifthBit(i, e)) & 1) << e;
            *(uint*)(dst + 2) = qh;
            *(ulong*)(dst + 6) = *(ulong*)(group + 48 + 8 * i);
            *(ulong*)(dst + 14) = *(ulong*)(group + 112 + 8 * i);
        }
    }

    /// <summary>The integer GEMM's form of row <paramref name="i"/> of a Q5_0 group (the bits of
    /// <see cref="Q5_0Type.Unpack32"/> on the plain row): the 5-bit values in element order, d per block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Unpack32Q5(byte* group, int i, int n, byte* u, float* d)
    {
        var mask = Vector128.Create((byte)15);
        const ulong ones = 0x0101010101010101UL;
        int s = 4 * (i / 4);
        for (int b = 0; b < n / 32; b++, group += Size * 22, u += 32)
        {
            d[b] = BlockMath.Half(group + 2 * i);
            // row i's bits of elements 8k + t are bit s + k of V[8 (i % 4) + t]
            ulong w = *(ulong*)(group + 16 + 8 * (i % 4)) >> s;
            var low = Vector128.Create(w & ones, (w >> 1) & ones).AsByte();
            var high = Vector128.Create((w >> 2) & ones, (w >> 3) & ones).AsByte();
            var v = Vector128.Create(*(ulong*)(group + 48 + 8 * i), *(ulong*)(group + 112 + 8 * i)).AsByte();
            ((v & mask) | (low.AsUInt16() << 4).AsByte()).Store(u);
            (((v.AsUInt16() >>> 4).AsByte() & mask) | (high.AsUInt16() << 4).AsByte()).Store(u + 16);
        }
    }

    private struct Q5Block : IGroupBlock
    {
        public static int Bytes => Size * 22;
        public static int Offset => 16;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Operands(byte* g, out Vector256<byte> l0, out Vector256<byte> l1, out Vector256<byte> l2, out Vector256<byte> l3,
                                    out Vector256<byte> h0, out Vector256<byte> h1, out Vector256<byte> h2, out Vector256<byte> h3)
        {
            // the nibbles as Q4_0's block 32 bytes further on (its scales' place holds V's second half: not read there)
            Q4Block.Operands(g + 32, out l0, out l1, out l2, out l3, out h0, out h1, out h2, out h3);
            var v = Vector256.Load(g + 16).AsUInt16();
            var m10 = Vector256.Create((byte)0x10);
            l0 |= (v << 4).AsByte() & m10;
            l1 |= (v << 3).AsByte() & m10;
            l2 |= (v << 2).AsByte() & m10;
            l3 |= (v << 1).AsByte() & m10;
            h0 |= v.AsByte() & m10;
            h1 |= (v >>> 1).AsByte() & m10;
            h2 |= (v >>> 2).AsByte() & m10;
            h3 |= (v >>> 3).AsByte() & m10;
        }
    }
}
