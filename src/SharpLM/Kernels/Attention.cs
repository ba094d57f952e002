using SharpLM.Models;

namespace SharpLM.Kernels;

/// <summary>
/// Causal multi-head attention of a block of queries against a key/value cache, with grouped-query head mapping.
/// q (T,NH,HS) at absolute positions startPos..startPos+T-1; k, v (S,KVH,HS), S &gt;= startPos+T, the cache rows
/// 0..startPos+T-1 filled -> y (T,NH,HS). Query head h reads KV head h / (NH/KVH). Query t attends keys 0..startPos+t:
/// y[t,h] = softmax(q[t,h] K[0..startPos+t, g]^T / sqrt(HS)) V[0..startPos+t, g].
/// </summary>
internal static class Attention
{
    /// <summary>Floats of scratch that <see cref="Forward"/> needs: one score row per (query, head) work item.</summary>
    public static int ScratchLength(int nHeads, int contextLength) => nHeads * contextLength;

    /// <summary>
    /// See the type summary. <paramref name="scratch"/> holds at least <see cref="ScratchLength"/>(NH, startPos+T)
    /// floats. Does not allocate.
    /// </summary>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> y, Span<float> scratch,
                               int t, int nHeads, int nKvHeads, int headSize, int startPos)
    {
        if (nHeads % nKvHeads != 0) throw new ArgumentException($"NH = {nHeads} is not a multiple of KVH = {nKvHeads}", nameof(nKvHeads));
        int s = startPos + t;
        if (q.Length < t * nHeads * headSize) throw new ArgumentException($"q holds {q.Length} floats, need T*NH*HS = {t}*{nHeads}*{headSize}", nameof(q));
        if (y.Length < t * nHeads * headSize) throw new ArgumentException($"y holds {y.Length} floats, need T*NH*HS = {t}*{nHeads}*{headSize}", nameof(y));
        if (k.Length < s * nKvHeads * headSize || v.Length < s * nKvHeads * headSize)
            throw new ArgumentException($"the KV cache holds {Math.Min(k.Length, v.Length)} floats, need S*KVH*HS = {s}*{nKvHeads}*{headSize}", nameof(k));
        if (scratch.Length < s) throw new ArgumentException($"scratch holds {scratch.Length} floats, need {s}", nameof(scratch));
        for (int ti = 0; ti < t; ti++)
            for (int h = 0; h < nHeads; h++)
                Head(q, k, v, y, scratch[..s], ti, h, nHeads, nKvHeads, headSize, startPos);
    }

    /// <summary>One (query, head) item: scores over keys 0..startPos+ti, softmax, weighted sum of values.</summary>
    internal static void Head(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> y, Span<float> scores,
                              int ti, int h, int nHeads, int nKvHeads, int headSize, int startPos)
    {
        int g = h / (nHeads / nKvHeads), n = startPos + ti + 1, kvStride = nKvHeads * headSize;
        float scale = 1f / MathF.Sqrt(headSize);
        var qv = q.Slice((ti * nHeads + h) * headSize, headSize);
        var sc = scores[..n];
        for (int s = 0; s < n; s++) sc[s] = VecOps.Dot(qv, k.Slice(s * kvStride + g * headSize, headSize)) * scale;
        Softmax.Forward(sc);
        var yv = y.Slice((ti * nHeads + h) * headSize, headSize);
        yv.Clear();
        for (int s = 0; s < n; s++) VecOps.AddScaled(yv, v.Slice(s * kvStride + g * headSize, headSize), sc[s]);
    }
}
