using System.Numerics;

namespace SharpLM.Training.Ops;

/// <summary>
/// SwiGLU gate (LLaMA MLP). Forward: gate (N,F), up (N,F) -> h (N,F), h = silu(gate) * up, silu(x) = x sigmoid(x).
/// Backward (+=): dup += dh * silu(gate); dgate += dh * up * sig * (1 + gate (1 - sig)).
/// </summary>
internal static class SwiGlu
{
    public static void Forward<T>(ReadOnlySpan<T> gate, ReadOnlySpan<T> up, Span<T> h)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < h.Length; i++)
        {
            T g = gate[i];
            h[i] = g / (T.One + T.Exp(-g)) * up[i];
        }
    }

    public static void Backward<T>(ReadOnlySpan<T> dh, ReadOnlySpan<T> gate, ReadOnlySpan<T> up, Span<T> dgate, Span<T> dup)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < dh.Length; i++)
        {
            T g = gate[i];
            T sig = T.One / (T.One + T.Exp(-g));
            dup[i] += dh[i] * g * sig;
            dgate[i] += dh[i] * up[i] * sig * (T.One + g * (T.One - sig));
        }
    }
}
