namespace SharpLM.Kernels;

/// <summary>
/// Soft capping (Gemma 2's logits): x = cap * tanh(x / cap) in place, so every value stays inside (-cap, cap) while small
/// ones pass nearly unchanged. Forward only (no model SharpLM trains uses it).
/// </summary>
internal static class SoftCap
{
    public static void Forward(Span<float> x, float cap)
    {
        if (!(cap > 0)) throw new ArgumentOutOfRangeException(nameof(cap), cap, "the cap must be positive");
        float inv = 1f / cap;
        for (int i = 0; i < x.Length; i++) x[i] = cap * MathF.Tanh(x[i] * inv);
    }
}
