using System.Runtime.Intrinsics;

namespace SharpLM.Kernels;

/// <summary>Dot product of two f32 vectors: a (N), b (N) -> sum a[i] b[i] (f32 accumulation, the F32 weight dot of <see cref="Tensors.Types.DenseDots"/>).</summary>
internal static unsafe class Dot
{
    public static float Compute(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"lengths differ: {a.Length} vs {b.Length}");
        fixed (float* pa = a)
        fixed (float* pb = b)
            return Compute(pa, pb, a.Length, KernelIsaSelector.Current);
    }

    public static float Compute(float* a, float* b, int n, KernelIsa isa) => isa switch
    {
        KernelIsa.Avx512 => Tensors.Types.F32Type.Dot512(a, b, n),
        KernelIsa.Avx2 => Tensors.Types.F32Type.Dot256(a, b, n),
        _ => Tensors.Types.F32Type.DotScalar(a, b, n),
    };
}

/// <summary>Sum of an f32 vector.</summary>
internal static unsafe class Sum
{
    public static float Compute(float* a, int n, KernelIsa isa)
    {
        int i = 0;
        float s = 0;
        if (isa == KernelIsa.Avx512)
        {
            Vector512<float> acc = default;
            for (; i + 16 <= n; i += 16) acc += Vector512.Load(a + i);
            s = Horizontal.Sum(acc);
        }
        else if (isa == KernelIsa.Avx2)
        {
            Vector256<float> acc = default;
            for (; i + 8 <= n; i += 8) acc += Vector256.Load(a + i);
            s = Horizontal.Sum(acc);
        }
        for (; i < n; i++) s += a[i];
        return s;
    }
}

/// <summary>Maximum of an f32 vector (-inf for none; NaNs are not expected).</summary>
internal static unsafe class Max
{
    public static float Compute(float* a, int n, KernelIsa isa)
    {
        int i = 0;
        float m = float.NegativeInfinity;
        if (isa == KernelIsa.Avx512 && n >= 16)
        {
            var acc = Vector512.Create(float.NegativeInfinity);
            for (; i + 16 <= n; i += 16) acc = Vector512.Max(acc, Vector512.Load(a + i));
            for (int k = 0; k < 16; k++) m = Math.Max(m, acc[k]);
        }
        else if (isa == KernelIsa.Avx2 && n >= 8)
        {
            var acc = Vector256.Create(float.NegativeInfinity);
            for (; i + 8 <= n; i += 8) acc = Vector256.Max(acc, Vector256.Load(a + i));
            for (int k = 0; k < 8; k++) m = Math.Max(m, acc[k]);
        }
        for (; i < n; i++) m = Math.Max(m, a[i]);
        return m;
    }
}
