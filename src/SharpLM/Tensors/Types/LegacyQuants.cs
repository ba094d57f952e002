using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>The SIMD decoder shared by the legacy 32-element types with a min or a 5th bit (Q4_1, Q5_0, Q5_1): their
/// fast dequantizer and their fused dot.</summary>
internal readonly unsafe struct LegacyQuants : IBlockDecoder
{
    /// <summary>
    /// The reference quantizer of the types with a min (ggml quantize_row_q4_1_ref / q5_1_ref): per 32 values
    /// d = (max - min) / (2^bits - 1), m = min, q = trunc((x - min) / d + 0.5); the low nibbles packed as Q4_0's, the 5th
    /// bits (Q5_1) in a u32 after d and m.
    /// </summary>
    public static void QuantizeWithMin(ReadOnlySpan<float> src, Span<byte> dst, int bits)
    {
        int bb = bits == 4 ? 20 : 24, qs = bits == 4 ? 4 : 8, nmax = (1 << bits) - 1;
        for (int b = 0; b < src.Length / 32; b++)
        {
            var x = src.Slice(b * 32, 32);
            var y = dst.Slice(b * bb, bb);
            float min = float.MaxValue, max = -float.MaxValue;
            foreach (float v in x)
            {
                if (v < min) min = v;
                if (v > max) max = v;
            }
            float d = (max - min) / nmax, id = d != 0 ? 1f / d : 0f;
            WriteHalf(y, d);
            WriteHalf(y[2..], min);
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                int x0 = Math.Min(nmax, (int)(byte)((x[j] - min) * id + 0.5f));
                int x1 = Math.Min(nmax, (int)(byte)((x[j + 16] - min) * id + 0.5f));
                y[qs + j] = (byte)((x0 & 0xF) | ((x1 & 0xF) << 4));
                qh |= (uint)((x0 & 0x10) >> 4) << j;
                qh |= (uint)((x1 & 0x10) >> 4) << (j + 16);
            }
            if (bits == 5) System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(y[4..], qh);
        }
    }

    /// <summary>The integer GEMM's form (<see cref="TypeTraits.Unpack32"/>) of Q4_1 / Q5_0 / Q5_1: u = the nibbles in
    /// element order with the 5th bit (bit e of qh) as 16, d, and the min m (Q5_0: none, offset 16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // full speed from the first call: a prompt's prefill is over before tier 1 arrives
    public static void Unpack32(DType type, byte* src, int n, byte* u, float* d, float* m)
    {
        int bb = type == DType.Q4_1 ? 20 : type == DType.Q5_0 ? 22 : 24;
        bool hasMin = type != DType.Q5_0, hasHigh = type != DType.Q4_1;
        int qsOffset = (hasMin ? 4 : 2) + (hasHigh ? 4 : 0);
        var mask = Vector128.Create((byte)15);
        // byte e of the spread qh holds qh's byte e/8; bit e%8 of it is element e's 5th bit
        var spread = Vector256.Create((byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
        var bits = Vector256.Create((byte)1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
        for (int b = 0; b < n / 32; b++, src += bb, u += 32)
        {
            d[b] = Half(src);
            m[b] = hasMin ? Half(src + 2) : 0f;
            var v = Vector128.Load(src + qsOffset);
            var q = Vector256.Create(v & mask, (v.AsUInt16() >>> 4).AsByte() & mask);
            if (hasHigh)
            {
                var all = Vector256.Create(*(uint*)(src + (hasMin ? 4 : 2))).AsByte();
                // (the indices stay in each 128-bit lane, whose 4 bytes are qh's: vpshufb's meaning and Shuffle's agree)
                var qh = Avx2.IsSupported ? Avx2.Shuffle(all, spread) : Vector256.Shuffle(all, spread);
                q |= Vector256.Equals(qh & bits, bits) & Vector256.Create((byte)16);
            }
            q.Store(u);
        }
    }

    /// <summary>Q4_1 (d, m, nibbles), Q5_0 (d, qh, nibbles; q - 16), Q5_1 (d, m, qh, nibbles): x = q*d (+ m), 32 per block.</summary>
    public static void Decode<TSink>(DType type, byte* src, int n, KernelIsa isa, ref TSink sink) where TSink : struct, IRowSink
    {
        int bb = type == DType.Q4_1 ? 20 : type == DType.Q5_0 ? 22 : 24;
        bool hasMin = type != DType.Q5_0, hasHigh = type != DType.Q4_1;
        int qsOffset = (hasMin ? 4 : 2) + (hasHigh ? 4 : 0);
        int bias = type == DType.Q5_0 ? 16 : 0;
        for (int b = 0, at = 0; b < n / 32; b++, src += bb, at += 32)
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
                    sink.Put(at, Avx512F.ConvertToVector512Single(lo) * vd + vm);
                    sink.Put(at + 16, Avx512F.ConvertToVector512Single(hi) * vd + vm);
                }
                else
                {
                    var vb = Vector512.Create(bias);
                    sink.Put(at, Avx512F.ConvertToVector512Single(lo - vb) * vd);
                    sink.Put(at + 16, Avx512F.ConvertToVector512Single(hi - vb) * vd);
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
                        sink.Put(at + j, Avx.ConvertToVector256Single(lo) * vd + vm);
                        sink.Put(at + 16 + j, Avx.ConvertToVector256Single(hi) * vd + vm);
                    }
                    else
                    {
                        var vb = Vector256.Create(bias);
                        sink.Put(at + j, Avx.ConvertToVector256Single(lo - vb) * vd);
                        sink.Put(at + 16 + j, Avx.ConvertToVector256Single(hi - vb) * vd);
                    }
                }
            }
        }
    }
}
