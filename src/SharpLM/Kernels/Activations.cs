using SharpLM.Kernels.Naive;

namespace SharpLM.Kernels;

/// <summary>Activation functions: SwiGLU (LLaMA MLP), GELU erf (BERT), GELU tanh (GPT-2).</summary>
internal static class Activations
{
    /// <summary>gate (N), up (N) -> y (N) = silu(gate) * up.</summary>
    public static void SwiGlu(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y) => NaiveOps.SwiGlu(gate, up, y);

    public static void Gelu(Span<float> x) => NaiveOps.Gelu(x);

    public static void GeluTanh(Span<float> x) => NaiveOps.GeluTanh(x);
}
