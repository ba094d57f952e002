using SharpLM.Kernels.Naive;

namespace SharpLM.Kernels;

/// <summary>
/// Rotary position embedding in place: x (T, NH, HS), positions (T), invFreq (HS/2).
/// neox = rotate-half pairs (i, i+HS/2); otherwise adjacent pairs (2i, 2i+1) as llama.cpp's LLaMA.
/// </summary>
internal static class Rope
{
    public static void Forward(Span<float> x, int t, int nHeads, int headSize, ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq, bool neox) =>
        NaiveOps.Rope(x, t, nHeads, headSize, positions, invFreq, neox);
}
