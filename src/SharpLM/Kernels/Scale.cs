using System.Runtime.Intrinsics;

namespace SharpLM.Kernels;

/// <summary>x (N) *= s in place.</summary>
internal static unsafe class Scale
{
    public static void InPlace(Span<float> x, float s) => InPlace(x, s, KernelIsaSelector.Current);

    public static void InPlace(Span<float> x, float s, KernelIsa isa)
    {
        int n = x.Length, i = 0;
        fixed (float* p = x)
        {
            if (isa == KernelIsa.Avx512)
                for (var v = Vector512.Create(s); i + 16 <= n; i += 16) (Vector512.Load(p + i) * v).Store(p + i);
            else if (isa == KernelIsa.Avx2)
                for (var v = Vector256.Create(s); i + 8 <= n; i += 8) (Vector256.Load(p + i) * v).Store(p + i);
            for (; i < n; i++) p[i] *= s;
        }
    }
}
