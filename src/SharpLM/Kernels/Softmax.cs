using System.Runtime.Intrinsics;

namespace SharpLM.Kernels;

/// <summary>
/// Softmax in place over one row: x = exp(x - max) / sum(exp(x - max)). -inf entries (masked positions) become 0.
/// A row that is entirely -inf gives NaN, as the naive oracle.
/// </summary>
internal static unsafe class Softmax
{
    public static void Forward(Span<float> x) => Forward(x, out _, out _);

    /// <summary>As <see cref="Forward(Span{float})"/>, also returning the row's max and the sum of exp(x - max), so a
    /// caller can keep log-sum-exp = max + log(sum).</summary>
    public static void Forward(Span<float> x, out float max, out float sum)
    {
        int n = x.Length;
        max = float.NegativeInfinity;
        sum = 0;
        if (n == 0) return;
        var isa = KernelIsaSelector.Current;
        fixed (float* p = x)
        {
            max = Max.Compute(p, n, isa);
            int i = 0;
            float mx = max, total = 0;
            if (isa == KernelIsa.Avx512)
            {
                Vector512<float> acc = default, m = Vector512.Create(mx);
                for (; i + 16 <= n; i += 16) { var e = Vector512.Exp(Vector512.Load(p + i) - m); e.Store(p + i); acc += e; }
                total = Horizontal.Sum(acc);
            }
            else if (isa == KernelIsa.Avx2)
            {
                Vector256<float> acc = default, m = Vector256.Create(mx);
                for (; i + 8 <= n; i += 8) { var e = Vector256.Exp(Vector256.Load(p + i) - m); e.Store(p + i); acc += e; }
                total = Horizontal.Sum(acc);
            }
            for (; i < n; i++) { p[i] = MathF.Exp(p[i] - mx); total += p[i]; }
            Scale.InPlace(new Span<float>(p, n), 1f / total, isa);
            sum = total;
        }
    }

    /// <summary>The readable oracle: exp and the sum in double.</summary>
    public static void Naive(Span<float> x)
    {
        float max = float.NegativeInfinity;
        foreach (var v in x) max = Math.Max(max, v);
        double sum = 0;
        for (int i = 0; i < x.Length; i++) { x[i] = MathF.Exp(x[i] - max); sum += x[i]; }
        float inv = (float)(1.0 / sum);
        for (int i = 0; i < x.Length; i++) x[i] *= inv;
    }
}
