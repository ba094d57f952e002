using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Q5_0, Q4_1 and Q5_1 row groups (the 32-blocks with a 5th bit or a min; Q4_1 and Q5_1 are what llama.cpp's Q4_K and
/// Q5_K mixes fall back to for widths that are not whole 256-blocks, Q5_0 Q4_K's fallback): the Q4_0 group block with the
/// eight rows' mins and 5th bits between the scales and the nibbles, 8 blocks in place:
/// <code>
/// group block b:  d0 .. d7 | m0 .. m7 (f16; Q4_1, Q5_1) | V (32 bytes; Q5_0, Q5_1) | the nibble bytes as Q4_0's group block
///                 (row i q[0..8) at N + 8i, q[8..16) at N + 64 + 8i)
/// Q5_0: 16 + 32 + 128 = 176 = 8 x 22      Q4_1: 16 + 16 + 128 = 160 = 8 x 20      Q5_1: 16 + 16 + 32 + 128 = 192 = 8 x 24
/// </code>
/// V holds the 5th bits in the shape of the kernel's eight operands (<see cref="IGroupBlock.Operands"/>: l0-l3 rows 0-3,
/// h0-h3 rows 4-7, operand k of a half = elements 8k .. 8k + 7): bit ob of V[j] is the 5th bit of operand ob's byte j
/// (row 4 (ob / 4) + j / 8, element 8 (ob % 4) + j % 8). So each operand gets its bits by one shift and one mask, with
/// no per-byte bit spreading; u = q + 16 bit is 0..31 (Q5_0: w = u - 16, the kernel's offset). The mins add
/// m d_x sum(x) per block and row (<see cref="IGroupBlock.HasMin"/>).
/// </summary>
internal static unsafe partial class RowGroups
{
    /// <summary>A legacy type's block: whether it has a min and a 5th bit, its bytes, and where its parts are in the plain
    /// block and in the group block.</summary>
    private readonly record struct LegacyLayout(bool Min, bool Fifth, int BlockBytes)
    {
        public static LegacyLayout Of(DType type) => type switch
        {
            DType.Q5_0 => new(false, true, DTypeInfo.BlockBytes(type)),
            DType.Q4_1 => new(true, false, DTypeInfo.BlockBytes(type)),
            DType.Q5_1 => new(true, true, DTypeInfo.BlockBytes(type)),
            _ => throw new ArgumentException($"{type} is not a legacy group type", nameof(type)),
        };

        public int PlainQh => Min ? 4 : 2;
        public int PlainQs => PlainQh + (Fifth ? 4 : 0);
        public int GroupV => Min ? 32 : 16;
        public int GroupQs => GroupV + (Fifth ? 32 : 0);
    }

    private static bool IsLegacy(DType type) => type is DType.Q5_0 or DType.Q4_1 or DType.Q5_1;

    /// <summary>Eight plain rows of a legacy type -> one group at dst.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InterleaveLegacy(DType type, byte* rows, long rowBytes, int blocks, byte* dst)
    {
        var l = LegacyLayout.Of(type);
        for (int b = 0; b < blocks; b++, dst += Size * l.BlockBytes)
        {
            if (l.Fifth) new Span<byte>(dst + l.GroupV, 32).Clear();
            for (int i = 0; i < Size; i++)
            {
                byte* src = rows + i * rowBytes + (long)b * l.BlockBytes;
                *(ushort*)(dst + 2 * i) = *(ushort*)src;
                if (l.Min) *(ushort*)(dst + 16 + 2 * i) = *(ushort*)(src + 2);
                if (l.Fifth)
                {
                    uint qh = *(uint*)(src + l.PlainQh);
                    for (int e = 0; e < 32; e++) dst[l.GroupV + FifthByte(i, e)] |= (byte)(((qh >> e) & 1) << FifthBit(i, e));
                }
                *(ulong*)(dst + l.GroupQs + 8 * i) = *(ulong*)(src + l.PlainQs);
                *(ulong*)(dst + l.GroupQs + 64 + 8 * i) = *(ulong*)(src + l.PlainQs + 8);
            }
        }
    }

    /// <summary>The byte of V holding row i's element e's 5th bit.</summary>
    private static int FifthByte(int i, int e) => 8 * (i % 4) + e % 8;

    /// <summary>Its bit: the operand (l0-l3 for rows 0-3, h0-h3 as 4-7) whose byte it is.</summary>
    private static int FifthBit(int i, int e) => 4 * (i / 4) + e / 8;

    /// <summary>Row <paramref name="i"/> (0-7) of a legacy type's group at <paramref name="group"/> as plain blocks at dst.</summary>
    private static void CopyRowLegacy(DType type, byte* group, int i, int blocks, byte* dst)
    {
        var l = LegacyLayout.Of(type);
        for (int b = 0; b < blocks; b++, group += Size * l.BlockBytes, dst += l.BlockBytes)
        {
            *(ushort*)dst = *(ushort*)(group + 2 * i);
            if (l.Min) *(ushort*)(dst + 2) = *(ushort*)(group + 16 + 2 * i);
            if (l.Fifth)
            {
                uint qh = 0;
                for (int e = 0; e < 32; e++) qh |= (uint)((group[l.GroupV + FifthByte(i, e)] >> FifthBit(i, e)) & 1) << e;
                *(uint*)(dst + l.PlainQh) = qh;
            }
            *(ulong*)(dst + l.PlainQs) = *(ulong*)(group + l.GroupQs + 8 * i);
            *(ulong*)(dst + l.PlainQs + 8) = *(ulong*)(group + l.GroupQs + 64 + 8 * i);
        }
    }

    /// <summary>The integer GEMM's form of row <paramref name="i"/> of a legacy type's group (the bits of
    /// <see cref="LegacyQuants.Unpack32"/> on the plain row): the values (with the 5th bit as 16) in element order, d and,
    /// for Q4_1 / Q5_1, m per block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Unpack32Legacy(DType type, byte* group, int i, int n, byte* u, float* d, float* m)
    {
        var l = LegacyLayout.Of(type);
        var mask = Vector128.Create((byte)15);
        const ulong ones = 0x0101010101010101UL;
        int s = 4 * (i / 4);
        for (int b = 0; b < n / 32; b++, group += Size * l.BlockBytes, u += 32)
        {
            d[b] = BlockMath.Half(group + 2 * i);
            m[b] = l.Min ? BlockMath.Half(group + 16 + 2 * i) : 0f;
            var v = Vector128.Create(*(ulong*)(group + l.GroupQs + 8 * i), *(ulong*)(group + l.GroupQs + 64 + 8 * i)).AsByte();
            var low = v & mask;
            var high = (v.AsUInt16() >>> 4).AsByte() & mask;
            if (l.Fifth)
            {
                // row i's bits of elements 8k + t are bit s + k of V[8 (i % 4) + t]
                ulong w = *(ulong*)(group + l.GroupV + 8 * (i % 4)) >> s;
                low |= (Vector128.Create(w & ones, (w >> 1) & ones).AsUInt16() << 4).AsByte();
                high |= (Vector128.Create((w >> 2) & ones, (w >> 3) & ones).AsUInt16() << 4).AsByte();
            }
            low.Store(u);
            high.Store(u + 16);
        }
    }

    /// <summary>The 5th bits of a group block's V (at v) ORed into the eight operands as 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddFifthBits(byte* v, ref Vector256<byte> l0, ref Vector256<byte> l1, ref Vector256<byte> l2, ref Vector256<byte> l3,
                                     ref Vector256<byte> h0, ref Vector256<byte> h1, ref Vector256<byte> h2, ref Vector256<byte> h3)
    {
        var bits = Vector256.Load(v).AsUInt16();
        var m10 = Vector256.Create((byte)0x10);
        l0 |= (bits << 4).AsByte() & m10;
        l1 |= (bits << 3).AsByte() & m10;
        l2 |= (bits << 2).AsByte() & m10;
        l3 |= (bits << 1).AsByte() & m10;
        h0 |= bits.AsByte() & m10;
        h1 |= (bits >>> 1).AsByte() & m10;
        h2 |= (bits >>> 2).AsByte() & m10;
        h3 |= (bits >>> 3).AsByte() & m10;
    }

    private struct Q5Block : IGroupBlock
    {
        public static int Bytes => Size * 22;
        public static int Offset => 16;
        public static bool HasMin => false;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Operands(byte* g, out Vector256<byte> l0, out Vector256<byte> l1, out Vector256<byte> l2, out Vector256<byte> l3,
                                    out Vector256<byte> h0, out Vector256<byte> h1, out Vector256<byte> h2, out Vector256<byte> h3)
        {
            // the nibbles as Q4_0's block 32 bytes further on (its scales' place holds V's second half: not read there)
            Q4Block.Operands(g + 32, out l0, out l1, out l2, out l3, out h0, out h1, out h2, out h3);
            AddFifthBits(g + 16, ref l0, ref l1, ref l2, ref l3, ref h0, ref h1, ref h2, ref h3);
        }
    }

    private struct Q41Block : IGroupBlock
    {
        public static int Bytes => Size * 20;
        public static int Offset => 0;
        public static bool HasMin => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Operands(byte* g, out Vector256<byte> l0, out Vector256<byte> l1, out Vector256<byte> l2, out Vector256<byte> l3,
                                    out Vector256<byte> h0, out Vector256<byte> h1, out Vector256<byte> h2, out Vector256<byte> h3) =>
            Q4Block.Operands(g + 16, out l0, out l1, out l2, out l3, out h0, out h1, out h2, out h3); // the mins' 16 bytes before the nibbles
    }

    private struct Q51Block : IGroupBlock
    {
        public static int Bytes => Size * 24;
        public static int Offset => 0;
        public static bool HasMin => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Operands(byte* g, out Vector256<byte> l0, out Vector256<byte> l1, out Vector256<byte> l2, out Vector256<byte> l3,
                                    out Vector256<byte> h0, out Vector256<byte> h1, out Vector256<byte> h2, out Vector256<byte> h3)
        {
            Q4Block.Operands(g + 48, out l0, out l1, out l2, out l3, out h0, out h1, out h2, out h3);
            AddFifthBits(g + 32, ref l0, ref l1, ref l2, ref l3, ref h0, ref h1, ref h2, ref h3);
        }
    }
}
