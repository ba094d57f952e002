namespace SharpLM.Kernels.Naive;

/// <summary>The readable causal attention over a KV cache: the oracle for <see cref="Attention"/>.</summary>
internal static class NaiveAttention
{
    /// <summary>
    /// q (T,NH,HS) for positions startPos..startPos+T-1; k, v (S,KVH,HS) with S &gt;= startPos+T -> y (T,NH,HS).
    /// Query head h reads key/value head h / (NH/KVH) (grouped-query attention). Query t sees keys 0..startPos+t.
    /// y[t,h] = sum_s softmax_s(q[t,h] . k[s,g] / sqrt(HS)) v[s,g].
    /// </summary>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> y,
                               int t, int nHeads, int nKvHeads, int headSize, int startPos)
    {
        int group = nHeads / nKvHeads;
        double scale = 1.0 / Math.Sqrt(headSize);
        var scores = new double[startPos + t];
        for (int ti = 0; ti < t; ti++)
            for (int h = 0; h < nHeads; h++)
            {
                int g = h / group, n = startPos + ti + 1;
                var qv = q.Slice((ti * nHeads + h) * headSize, headSize);
                double max = double.NegativeInfinity;
                for (int s = 0; s < n; s++)
                {
                    var kv = k.Slice((s * nKvHeads + g) * headSize, headSize);
                    double dot = 0;
                    for (int i = 0; i < headSize; i++) dot += (double)qv[i] * kv[i];
                    scores[s] = dot * scale;
                    max = Math.Max(max, scores[s]);
                }
                double sum = 0;
                for (int s = 0; s < n; s++) { scores[s] = Math.Exp(scores[s] - max); sum += scores[s]; }
                var yv = y.Slice((ti * nHeads + h) * headSize, headSize);
                for (int i = 0; i < headSize; i++)
                {
                    double acc = 0;
                    for (int s = 0; s < n; s++) acc += scores[s] * v[(s * nKvHeads + g) * headSize + i];
                    yv[i] = (float)(acc / sum);
                }
            }
    }
}
