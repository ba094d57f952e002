using System.Runtime.Intrinsics;

namespace SharpLM.Kernels;

/// <summary>Elementwise add: a (N), b (N) -> y (N) = a + b (y may alias a or b); and the residual form y += a.</summary>
internal static unsafe class Add
{
    public static void Forward(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y)
    {
        int n = y.Length;
        if (a.Length < n || b.Length < n) throw new ArgumentException($"a ({a.Length}) and b ({b.Length}) must hold y's {n} elements");
        var isa = KernelIsaSelector.Current;
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* py = y)
        {
            int i = 0;
            if (isa == KernelIsa.Avx512)
                for (; i + 16 <= n; i += 16) (Vector512.Load(pa + i) + Vector512.Load(pb + i)).Store(py + i);
            else if (isa == KernelIsa.Avx2)
                for (; i + 8 <= n; i += 8) (Vector256.Load(pa + i) + Vector256.Load(pb + i)).Store(py + i);
            for (; i < n; i++) py[i] = pa[i] + pb[i];
        }
    }

    /// <summary>y += a (residual connections).</summary>
    public static void InPlace(ReadOnlySpan<float> a, Span<float> y) => Forward(a, y, y);

    /// <summary>y (N) += a * x (N).</summary>
    public static void Scaled(ReadOnlySpan<float> x, float a, Span<float> y)
    {
        int n = y.Length;
        if (x.Length < n) throw new ArgumentException($"x ({x.Length}) must hold y's {n} elements");
        var isa = KernelIsaSelector.Current;
        fixed (float* px = x)
        fixed (float* py = y)
        {
            int i = 0;
            if (isa == KernelIsa.Avx512)
                for (var va = Vector512.Create(a); i + 16 <= n; i += 16) Vector512.FusedMultiplyAdd(va, Vector512.Load(px + i), Vector512.Load(py + i)).Store(py + i);
            else if (isa == KernelIsa.Avx2)
                for (var va = Vector256.Create(a); i + 8 <= n; i += 8) Vector256.FusedMultiplyAdd(va, Vector256.Load(px + i), Vector256.Load(py + i)).Store(py + i);
            for (; i < n; i++) py[i] += a * px[i];
        }
    }
}
