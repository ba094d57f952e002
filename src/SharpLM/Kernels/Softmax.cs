using System.Runtime.Intrinsics;

namespace SharpLM.Kernels;

/// <summary>
/// Softmax in place over one row: x = exp(x - max) / sum(exp(x - max)). -inf entries (masked positions) become 0.
/// A row that is entirely -inf gives NaN, as the naive oracle.
/// </summary>
internal static unsafe class Softmax
{
    public static void Forward(Span<float> x)
    {
        int n = x.Length;
        if (n == 0) return;
        var isa = KernelIsaSelector.Current;
        fixed (float* p = x)
        {
            float max = Max.Compute(p, n, isa);
            float sum = 0;
            int i = 0;
            if (isa == KernelIsa.Avx512)
            {
                Vector512<float> acc = default, m = Vector512.Create(max);
                for (; i + 16 <= n; i += 16) { var e = Vector512.Exp(Vector512.Load(p + i) - m); e.Store(p + i); acc += e; }
                sum = Vector512.Sum(acc);
            }
            else if (isa == KernelIsa.Avx2)
            {
                Vector256<float> acc = default, m = Vector256.Create(max);
                for (; i + 8 <= n; i += 8) { var e = Vector256.Exp(Vector256.Load(p + i) - m); e.Store(p + i); acc += e; }
                sum = Vector256.Sum(acc);
            }
            for (; i < n; i++) { p[i] = MathF.Exp(p[i] - max); sum += p[i]; }
            Scale.InPlace(new Span<float>(p, n), 1f / sum, isa);
        }
    }
}
