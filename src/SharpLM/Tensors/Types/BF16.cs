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
        Dot4 = &Dot4,
        Dot8 = &Dot8,
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
        KernelIsa.Avx512 => DenseDots.Dot512<BF16Element>(w, x, n),
        KernelIsa.Avx2 => DenseDots.Dot256<BF16Element>(w, x, n),
        _ => TypeTraits.DotGeneric(Traits, w, x, n, isa, rowBuf),
    };

    /// <summary>Four activation rows against one weight row, each value widened once (<see cref="DenseDots.Dot4{T}"/>).</summary>
    public static bool Dot4(byte* w, float** xs, int n, KernelIsa isa, float* results) => DenseDots.Dot4<BF16Element>(w, xs, n, isa, results);

    /// <summary>Eight activation rows against one weight row (<see cref="DenseDots.Dot8{T}"/>).</summary>
    public static bool Dot8(byte* w, float** xs, int n, KernelIsa isa, float* results) => DenseDots.Dot8<BF16Element>(w, xs, n, isa, results);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Bf16x16(ushort* p) => (Avx512F.ConvertToVector512UInt32(Vector256.Load(p)) << 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Bf16x8(ushort* p) => (Avx2.ConvertToVector256Int32(Vector128.Load(p)) << 16).AsSingle();
}

/// <summary>BF16 weights for <see cref="DenseDots"/>: widened by a shift (exact for every value).</summary>
internal readonly unsafe struct BF16Element : IDenseElement
{
    public static int Size => 2;
    public static bool Prefetches => true;
    public static bool Screens => false;
    public static ushort ScreenLimit => ushort.MaxValue;
    public static Vector256<float> Fast8(byte* p) => BF16Type.Bf16x8((ushort*)p);
    public static Vector256<float> Exact8(byte* p) => BF16Type.Bf16x8((ushort*)p);
    public static Vector512<float> Fast16(byte* p) => BF16Type.Bf16x16((ushort*)p);
    public static Vector512<float> Exact16(byte* p) => BF16Type.Bf16x16((ushort*)p);
    public static float One(byte* p) => BitConverter.Int32BitsToSingle(*(ushort*)p << 16);
    public static Vector256<ushort> Screen256(byte* p) => default;
}
