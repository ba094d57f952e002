using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>The SIMD decoder shared by the legacy 32-element types with a min or a 5th bit (Q4_1, Q5_0, Q5_1): their
/// fast dequantizer and their fused dot.</summary>
internal static unsafe class LegacyQuants
{
    public static void Dequantize(DType type, byte* src, float* dst, int n, KernelIsa isa)
    {
        var sink = new StoreSink(dst);
        Decode(type, src, n, isa, ref sink);
    }

    /// <summary>w (n elements of <paramref name="type"/>) . x (n), without storing the dequantized row.</summary>
    public static float Dot(DType type, byte* w, float* x, int n, KernelIsa isa, float* rowBuf)
    {
        if (isa == KernelIsa.Scalar) return TypeTraits.DotGeneric(DTypes.Of(type), w, x, n, isa, rowBuf);
        var sink = new DotSink(x);
        Decode(type, w, n, isa, ref sink);
        return sink.Sum;
    }

    /// <summary>Q4_1 (d, m, nibbles), Q5_0 (d, qh, nibbles; q - 16), Q5_1 (d, m, qh, nibbles): x = q*d (+ m), 32 per block.</summary>
    private static void Decode<TSink>(DType type, byte* src, int n, KernelIsa isa, ref TSink sink) where TSink : struct, IRowSink
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
