using SharpLM.Kernels.Naive;

namespace SharpLM.Kernels;

/// <summary>Softmax in place over one row: x = exp(x - max) / sum(exp(x - max)).</summary>
internal static class Softmax
{
    public static void Forward(Span<float> x) => NaiveOps.Softmax(x);
}
