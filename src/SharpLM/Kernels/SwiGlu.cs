using System.Numerics;
using System.Runtime.Intrinsics;

namespace SharpLM.Kernels;

/// <summary>
/// SwiGLU (the LLaMA MLP's gate). Forward: gate (N), up (N) -> y (N) = silu(gate) * up, silu(g) = g / (1 + exp(-g));
/// y may alias gate or up. Backward (accumulating): with s = sigmoid(gate), dup += dy * gate * s;
/// dgate += dy * up * s * (1 + gate * (1 - s)). Accuracy vs the oracle: ~1e-6 relative (the runtime's vector exp).
/// Every element goes through the same vector code (the tail is padded into one vector), so an element's result does not
/// depend on where it sits in the span: a row gives the same output whatever other rows share the batch.
/// </summary>
internal static unsafe class SwiGlu
{
    public static void Forward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y)
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
            {
                for (; i + 16 <= n; i += 16) Swish512(g + i, u + i, o + i);
                if (i < n) VecMath.Tail(g + i, u + i, o + i, n - i, 16, &Swish512);
            }
            else if (isa == KernelIsa.Avx2)
            {
                for (; i + 8 <= n; i += 8) Swish256(g + i, u + i, o + i);
                if (i < n) VecMath.Tail(g + i, u + i, o + i, n - i, 8, &Swish256);
            }
            else
                for (; i < n; i++) o[i] = g[i] / (1f + MathF.Exp(-g[i])) * u[i];
        }
    }

    private static void Swish512(float* g, float* u, float* o)
    {
        var v = Vector512.Load(g);
        (v / (Vector512<float>.One + Vector512.Exp(-v)) * Vector512.Load(u)).Store(o);
    }

    private static void Swish256(float* g, float* u, float* o)
    {
        var v = Vector256.Load(g);
        (v / (Vector256<float>.One + Vector256.Exp(-v)) * Vector256.Load(u)).Store(o);
    }

    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> dgate, Span<float> dup)
    {
        for (int i = 0; i < dy.Length; i++)
        {
            float g = gate[i];
            float s = 1f / (1f + MathF.Exp(-g));
            dup[i] += dy[i] * g * s;
            dgate[i] += dy[i] * up[i] * s * (1f + g * (1f - s));
        }
    }

    /// <summary>The readable oracle, generic so the gradient checks run it in double.</summary>
    public static class Naive
    {
        public static void Forward<T>(ReadOnlySpan<T> gate, ReadOnlySpan<T> up, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
        {
            for (int i = 0; i < y.Length; i++) y[i] = gate[i] / (T.One + T.Exp(-gate[i])) * up[i];
        }

        public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> gate, ReadOnlySpan<T> up, Span<T> dgate, Span<T> dup)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            for (int i = 0; i < dy.Length; i++)
            {
                T g = gate[i], s = T.One / (T.One + T.Exp(-g));
                dup[i] += dy[i] * g * s;
                dgate[i] += dy[i] * up[i] * s * (T.One + g * (T.One - s));
            }
        }
    }
}
