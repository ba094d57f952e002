namespace SharpLM.Server.Scheduling;

/// <summary>Log-probabilities of the model's distribution (log-softmax of the raw logits, before sampling settings).</summary>
internal static class Logprobs
{
    /// <summary>log p(token) for one logits row (V); <paramref name="logSumExp"/> is the row's normaliser.</summary>
    public static float Of(ReadOnlySpan<float> row, int token, out double logSumExp)
    {
        logSumExp = LogSumExp(row);
        return (float)(row[token] - logSumExp);
    }

    public static double LogSumExp(ReadOnlySpan<float> row)
    {
        float max = float.NegativeInfinity;
        foreach (float x in row) if (x > max) max = x;
        if (float.IsNegativeInfinity(max)) return max;
        double sum = 0;
        foreach (float x in row) sum += Math.Exp(x - max);
        return max + Math.Log(sum);
    }

    /// <summary>The <paramref name="k"/> most likely tokens with their logprobs, most likely first (ties by id).</summary>
    public static TokenLogprob[] Top(ReadOnlySpan<float> row, int k)
    {
        k = Math.Min(k, row.Length);
        var best = new int[k];
        int n = 0;
        for (int i = 0; i < row.Length; i++)
        {
            float x = row[i];
            if (float.IsNaN(x)) continue;
            if (n < k) { best[n++] = i; Bubble(best, n - 1, row); }
            else if (x > row[best[k - 1]]) { best[k - 1] = i; Bubble(best, k - 1, row); }
        }
        double lse = LogSumExp(row);
        var result = new TokenLogprob[n];
        for (int i = 0; i < n; i++) result[i] = new TokenLogprob(best[i], (float)(row[best[i]] - lse));
        return result;
    }

    private static void Bubble(int[] best, int at, ReadOnlySpan<float> row)
    {
        for (int j = at; j > 0 && row[best[j]] > row[best[j - 1]]; j--) (best[j], best[j - 1]) = (best[j - 1], best[j]);
    }
}
