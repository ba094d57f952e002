using System.Numerics;

namespace SharpLM.Training.Ops;

/// <summary>
/// Token embedding lookup. Forward: ids (N) in [0,V), wte (V,C) -> out (N,C), out[n] = wte[ids[n]].
/// Backward: dwte[ids[n]] += dout[n] (in order of n, so deterministic).
/// </summary>
internal static class Embedding
{
    public static void Forward<T>(ReadOnlySpan<int> ids, ReadOnlySpan<T> wte, Span<T> output, int c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int v = wte.Length / c;
        for (int n = 0; n < ids.Length; n++)
        {
            int id = ids[n];
            if ((uint)id >= (uint)v) throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id at position {n} is outside the vocabulary [0, {v})");
            wte.Slice(id * c, c).CopyTo(output.Slice(n * c, c));
        }
    }

    public static void Backward<T>(ReadOnlySpan<T> dout, ReadOnlySpan<int> ids, Span<T> dwte, int c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int n = 0; n < ids.Length; n++)
            TrainMath.Add(dout.Slice(n * c, c), dwte.Slice(ids[n] * c, c));
    }
}

/// <summary>
/// Learned absolute positions (GPT-2, BERT). Forward: x (B,T,C) += wpe[t] with wpe (maxT,C).
/// Backward: dwpe[t] += sum_b dx[b,t]; the residual gradient passes through unchanged.
/// </summary>
internal static class LearnedPositions
{
    public static void Forward<T>(Span<T> x, ReadOnlySpan<T> wpe, int b, int t, int c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (wpe.Length < t * c) throw new ArgumentException($"the sequence has {t} positions but the position table holds {wpe.Length / c}", nameof(wpe));
        for (int bi = 0; bi < b; bi++)
            for (int ti = 0; ti < t; ti++)
                TrainMath.Add(wpe.Slice(ti * c, c), x.Slice((bi * t + ti) * c, c));
    }

    public static void Backward<T>(ReadOnlySpan<T> dx, Span<T> dwpe, int b, int t, int c)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int bi = 0; bi < b; bi++)
            for (int ti = 0; ti < t; ti++)
                TrainMath.Add(dx.Slice((bi * t + ti) * c, c), dwpe.Slice(ti * c, c));
    }
}
