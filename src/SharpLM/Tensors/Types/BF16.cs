using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>BF16: bfloat16, the upper 16 bits of an IEEE single; bf16 -> f32 is a 16-bit shift.</summary>
internal static unsafe class BF16Type
{
    public static readonly TypeTraits Traits = new(DType.BF16, "bf16", 1, 2, "bfloat16", 32u)
    {
        Quantize = &Quantize,
        DequantizeNaive = &DequantizeNaive,
        Dequantize = &Dequantize,
        Dot = &Dot,
    };

    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], FromSingle(src[i]));
    }

    /// <summary>float -> bfloat16 bits, round to nearest even; NaN stays a quiet NaN (as ggml_compute_fp32_to_bf16).</summary>
    public static ushort FromSingle(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7FFFFFFF) > 0x7F800000) return (ushort)((u >> 16) | 64);
        return (ushort)((u + (0x7FFF + ((u >> 16) & 1))) >> 16);
    }

    public static void DequantizeNaive(ReadOnlySpan<byte> src, Span<float> dst)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]) << 16);
    }

    public static void Dequantize(byte* src, float* dst, int n, KernelIsa isa)
    {
        var s = (ushort*)src;
        int i = 0;
        if (isa == KernelIsa.Avx512)
            for (; i + 16 <= n; i += 16) (Avx512F.ConvertToVector512UInt32(Vector256.Load(s + i)) << 16).AsSingle().Store(dst + i);
        else if (isa == KernelIsa.Avx2)
            for (; i + 8 <= n; i += 8) (Avx2.ConvertToVector256Int32(Vector128.Load(s + i)) << 16).AsSingle().Store(dst + i);
        for (; i < n; i++) dst[i] = BitConverter.Int32BitsToSingle(s[i] << 16);
    }

    /// <summary>w (n bf16) . x (n), widened in registers, f32 FMA.</summary>
    public static float Dot(byte* w, float* x, int n, KernelIsa isa, float* rowBuf) => isa switch
    {
        KernelIsa.Avx512 => Dot512((ushort*)w, x, n),
        KernelIsa.Avx2 => Dot256((ushort*)w, x, n),
        _ => TypeTraits.DotGeneric(Traits, w, x, n, isa, rowBuf),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Bf16x16(ushort* p) => (Avx512F.ConvertToVector512UInt32(Vector256.Load(p)) << 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Bf16x8(ushort* p) => (Avx2.ConvertToVector256Int32(Vector128.Load(p)) << 16).AsSingle();

    public static float Dot512(ushort* w, float* x, int n)
    {
        Vector512<float> a0 = default, a1 = default;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            Prefetch(w + i);
            a0 = Avx512F.FusedMultiplyAdd(Bf16x16(w + i), Vector512.Load(x + i), a0);
            a1 = Avx512F.FusedMultiplyAdd(Bf16x16(w + i + 16), Vector512.Load(x + i + 16), a1);
        }
        for (; i + 16 <= n; i += 16) a0 = Avx512F.FusedMultiplyAdd(Bf16x16(w + i), Vector512.Load(x + i), a0);
        float s = Vector512.Sum(a0 + a1);
        for (; i < n; i++) s += BitConverter.Int32BitsToSingle(w[i] << 16) * x[i];
        return s;
    }

    public static float Dot256(ushort* w, float* x, int n)
    {
        Vector256<float> a0 = default, a1 = default;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            Prefetch(w + i);
            a0 = Fma.MultiplyAdd(Bf16x8(w + i), Vector256.Load(x + i), a0);
            a1 = Fma.MultiplyAdd(Bf16x8(w + i + 8), Vector256.Load(x + i + 8), a1);
        }
        for (; i + 8 <= n; i += 8) a0 = Fma.MultiplyAdd(Bf16x8(w + i), Vector256.Load(x + i), a0);
        float s = Vector256.Sum(a0 + a1);
        for (; i < n; i++) s += BitConverter.Int32BitsToSingle(w[i] << 16) * x[i];
        return s;
    }
}
