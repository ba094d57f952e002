using System.Runtime.Intrinsics;

namespace SharpLM.Kernels;

/// <summary>
/// Activation functions: SwiGLU (LLaMA MLP), GELU erf (BERT), GELU tanh (GPT-2). SIMD (AVX-512 / AVX2 / scalar by
/// <see cref="KernelIsaSelector.Current"/>); the naive oracles are in Naive/NaiveOps. Accuracy vs the oracles:
/// SwiGlu and GeluTanh within ~1e-6 relative, Gelu within 1e-6 * max(1,|x|) (float erf, |erf error| &lt;= 1.5e-7).
/// </summary>
internal static unsafe class Activations
{
    private const float Sqrt2OverPi = 0.7978845608028654f, InvSqrt2 = 0.7071067811865476f;

    /// <summary>gate (N), up (N) -> y (N) = silu(gate) * up, silu(g) = g / (1 + exp(-g)). y may alias gate or up.</summary>
    public static void SwiGlu(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y)
    {
        int n = y.Length;
        if (gate.Length < n || up.Length < n) throw new ArgumentException($"gate ({gate.Length}) and up ({up.Length}) must hold y's {n} elements");
        var isa = KernelIsaSelector.Current;
        fixed (float* g = gate)
        fixed (float* u = up)
        fixed (float* o = y)
        {
            int i = 0;
            if (isa == KernelIsa.Avx512)
                for (; i + 16 <= n; i += 16)
                {
                    var v = Vector512.Load(g + i);
                    (v / (Vector512<float>.One + Vector512.Exp(-v)) * Vector512.Load(u + i)).Store(o + i);
                }
            else if (isa == KernelIsa.Avx2)
                for (; i + 8 <= n; i += 8)
                {
                    var v = Vector256.Load(g + i);
                    (v / (Vector256<float>.One + Vector256.Exp(-v)) * Vector256.Load(u + i)).Store(o + i);
                }
            for (; i < n; i++) o[i] = g[i] / (1f + MathF.Exp(-g[i])) * u[i];
        }
    }

    /// <summary>In place: x = 0.5 x (1 + erf(x / sqrt 2)) (BERT's exact GELU).</summary>
    public static void Gelu(Span<float> x)
    {
        var isa = KernelIsaSelector.Current;
        int n = x.Length;
        fixed (float* p = x)
        {
            int i = 0;
            if (isa == KernelIsa.Avx512)
                for (; i + 16 <= n; i += 16)
                {
                    var v = Vector512.Load(p + i);
                    (Vector512.Create(0.5f) * v * (Vector512<float>.One + VecMath.Erf(v * Vector512.Create(InvSqrt2)))).Store(p + i);
                }
            else if (isa == KernelIsa.Avx2)
                for (; i + 8 <= n; i += 8)
                {
                    var v = Vector256.Load(p + i);
                    (Vector256.Create(0.5f) * v * (Vector256<float>.One + VecMath.Erf(v * Vector256.Create(InvSqrt2)))).Store(p + i);
                }
            for (; i < n; i++) p[i] = 0.5f * p[i] * (1f + VecMath.Erf(p[i] * InvSqrt2));
        }
    }

    /// <summary>In place: x = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (GPT-2's GELU).</summary>
    public static void GeluTanh(Span<float> x)
    {
        var isa = KernelIsaSelector.Current;
        int n = x.Length;
        fixed (float* p = x)
        {
            int i = 0;
            if (isa == KernelIsa.Avx512)
                for (; i + 16 <= n; i += 16)
                {
                    var v = Vector512.Load(p + i);
                    var u = Vector512.Create(Sqrt2OverPi) * (v + Vector512.Create(0.044715f) * v * v * v);
                    (Vector512.Create(0.5f) * v * (Vector512<float>.One + VecMath.Tanh(u))).Store(p + i);
                }
            else if (isa == KernelIsa.Avx2)
                for (; i + 8 <= n; i += 8)
                {
                    var v = Vector256.Load(p + i);
                    var u = Vector256.Create(Sqrt2OverPi) * (v + Vector256.Create(0.044715f) * v * v * v);
                    (Vector256.Create(0.5f) * v * (Vector256<float>.One + VecMath.Tanh(u))).Store(p + i);
                }
            for (; i < n; i++)
            {
                float v = p[i];
                p[i] = 0.5f * v * (1f + VecMath.Tanh(Sqrt2OverPi * (v + 0.044715f * v * v * v)));
            }
        }
    }
}
