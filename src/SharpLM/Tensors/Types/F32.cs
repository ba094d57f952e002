using System.Buffers.Binary;
using SharpLM.Kernels;

namespace SharpLM.Tensors.Types;

/// <summary>F32: IEEE single precision, 4 bytes per value, little-endian.</summary>
internal static unsafe class F32Type
{
    public static readonly TypeTraits Traits = new(DType.F32, "f32", 1, 4, "32-bit float", 0u)
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
        for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(dst[(4 * i)..], src[i]);
    }

    public static void DequantizeNaive(ReadOnlySpan<byte> src, Span<float> dst)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadSingleLittleEndian(src[(4 * i)..]);
    }

    public static void Dequantize(byte* src, float* dst, int n, KernelIsa isa) => Buffer.MemoryCopy(src, dst, n * 4L, n * 4L);

    /// <summary>w (n) . x (n), f32 FMA with 2 accumulators, no software prefetch (<see cref="DenseDots"/>).</summary>
    public static float Dot(byte* w, float* x, int n, KernelIsa isa, float* rowBuf) => isa switch
    {
        KernelIsa.Avx512 => Dot512((float*)w, x, n),
        KernelIsa.Avx2 => Dot256((float*)w, x, n),
        _ => DotScalar((float*)w, x, n),
    };

    public static float DotScalar(float* a, float* b, int n)
    {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = 0;
        for (; i + 4 <= n; i += 4)
        {
            s0 += a[i] * b[i];
            s1 += a[i + 1] * b[i + 1];
            s2 += a[i + 2] * b[i + 2];
            s3 += a[i + 3] * b[i + 3];
        }
        for (; i < n; i++) s0 += a[i] * b[i];
        return (s0 + s1) + (s2 + s3);
    }

    public static float Dot512(float* w, float* x, int n) => DenseDots.Dot512<F32Element>((byte*)w, x, n);

    public static float Dot256(float* w, float* x, int n) => DenseDots.Dot256<F32Element>((byte*)w, x, n);

    /// <summary>Four activation rows against one weight row (<see cref="DenseDots.Dot4{T}"/>).</summary>
    public static bool Dot4(byte* w, float** xs, int n, KernelIsa isa, float* results) => DenseDots.Dot4<F32Element>(w, xs, n, isa, results);

    /// <summary>Eight activation rows against one weight row (<see cref="DenseDots.Dot8{T}"/>).</summary>
    public static bool Dot8(byte* w, float** xs, int n, KernelIsa isa, float* results) => DenseDots.Dot8<F32Element>(w, xs, n, isa, results);
}
