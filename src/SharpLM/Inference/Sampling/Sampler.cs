using System.Runtime.InteropServices;

namespace SharpLM.Inference.Sampling;

/// <summary>
/// Chooses the next token from one row of logits (V) as llama.cpp's common sampler chain does:
/// <list type="number">
/// <item>penalties over the last <c>RepeatLastN</c> ids of the history: a seen token's logit is divided by
///   <c>RepeatPenalty</c> when positive and multiplied by it when not, then
///   <c>logit -= count * FrequencyPenalty + (count &gt; 0 ? PresencePenalty : 0)</c>;</item>
/// <item>top-k: keep the K largest logits (ties broken by the lower id);</item>
/// <item>top-p: softmax over the kept logits, keep the shortest prefix (largest first) whose cumulative probability
///   reaches P, the token that crosses P included;</item>
/// <item>min-p: keep tokens with <c>logit &gt;= max_logit + ln(MinP)</c>, i.e. p &gt;= MinP * p_max;</item>
/// <item>temperature: divide the kept logits by T (T &lt;= 0: greedy, the argmax after penalties);</item>
/// <item>dist: softmax over the kept logits and draw one with the sampler's xoshiro256** PRNG.</item>
/// </list>
/// One instance per sequence (it holds the PRNG state); it allocates only in its constructor. NaN logits are never
/// chosen.
/// </summary>
internal sealed class Sampler
{
    /// <summary>One candidate token: its (possibly penalised, scaled) logit and id.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Candidate
    {
        public float Logit;
        public int Id;
    }

    /// <summary>Larger logit first; equal logits by smaller id, so every order is total and reproducible.</summary>
    private readonly struct Descending : IComparer<Candidate>
    {
        public int Compare(Candidate a, Candidate b)
        {
            if (a.Logit > b.Logit) return -1;
            if (a.Logit < b.Logit) return 1;
            return a.Id.CompareTo(b.Id);
        }
    }

    private readonly SamplingOptions _options;
    private readonly int _vocabSize;
    private readonly Candidate[] _cand;
    private readonly int[] _counts;
    private readonly ulong[] _keys;
    private readonly double[] _bucketMass;
    private Xoshiro256StarStar _rng;
    private int _count;

    public Sampler(SamplingOptions options, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (vocabSize <= 0) throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, "The vocabulary size must be positive.");
        _options = options;
        _vocabSize = vocabSize;
        _cand = new Candidate[vocabSize];
        _counts = new int[vocabSize];
        _keys = new ulong[vocabSize];
        _bucketMass = new double[Buckets];
        _rng = new Xoshiro256StarStar(options.Seed ?? (ulong)Random.Shared.NextInt64(long.MinValue, long.MaxValue));
    }

    public SamplingOptions Options => _options;

    public int VocabSize => _vocabSize;

    /// <summary>The candidates left by the last <see cref="Filter"/> (or <see cref="Sample"/>) call.</summary>
    internal ReadOnlySpan<Candidate> Candidates => _cand.AsSpan(0, _count);

    /// <summary>
    /// Picks the next token id. <paramref name="logits"/> (V) is modified in place (penalties);
    /// <paramref name="history"/> is the prompt plus the ids generated so far.
    /// </summary>
    public int Sample(Span<float> logits, ReadOnlySpan<int> history)
    {
        if (_options.Temperature <= 0f)
        {
            CheckLength(logits);
            ApplyPenalties(logits, history);
            return ArgMax(logits);
        }
        Filter(logits, history);
        return Draw();
    }

    /// <summary>
    /// Penalties, top-k, top-p, min-p and temperature: leaves the candidates (with scaled logits) in
    /// <see cref="Candidates"/> and returns how many there are.
    /// </summary>
    internal int Filter(Span<float> logits, ReadOnlySpan<int> history)
    {
        CheckLength(logits);
        ApplyPenalties(logits, history);

        var o = _options;
        var cand = _cand.AsSpan();
        int n;
        bool sorted = false, topPDone = false;
        if (o.TopK > 0 && o.TopK < logits.Length)
        {
            n = SelectTopK(logits, cand, o.TopK);
            SortDescending(cand[..n], _keys);
            sorted = true;
        }
        else if (o.TopP < 1f)
        {
            (n, sorted) = NucleusWithoutTopK(logits, o.TopP);
            topPDone = true;
        }
        else n = FillAll(logits, cand);

        if (o.TopP < 1f && !topPDone)
        {
            double max = cand[0].Logit, sum = 0;
            if (double.IsFinite(max)) // all -inf or a +inf: nothing to weigh, leave the set to min-p and dist
            {
                for (int i = 0; i < n; i++) sum += Math.Exp(cand[i].Logit - max);
                int len = NucleusLength(cand[..n], max, sum, o.TopP);
                if (len > 0) n = len;
            }
        }

        if (o.MinP > 0f)
        {
            float max = float.NegativeInfinity;
            if (sorted) max = cand[0].Logit;
            else for (int i = 0; i < n; i++) max = Math.Max(max, cand[i].Logit);
            float threshold = max + MathF.Log(o.MinP);
            int kept = 0;
            for (int i = 0; i < n; i++)
                if (cand[i].Logit >= threshold) cand[kept++] = cand[i];
            n = Math.Max(kept, 1); // the max always passes unless every logit is -inf; keep one then
        }

        float invT = 1f / o.Temperature;
        if (invT != 1f)
            for (int i = 0; i < n; i++) cand[i].Logit *= invT;
        _count = n;
        return n;
    }

    private static float Sanitize(float l) => float.IsNaN(l) ? float.NegativeInfinity : l + 0f; // + 0f turns -0 into +0

    private static int FillAll(ReadOnlySpan<float> logits, Span<Candidate> cand)
    {
        for (int i = 0; i < logits.Length; i++)
        {
            cand[i].Logit = Sanitize(logits[i]);
            cand[i].Id = i;
        }
        return logits.Length;
    }

    /// <summary>The length of the shortest prefix of sorted candidates whose probability reaches p (the token that
    /// crosses p included), probabilities exp(l - max) / sum; -1 if all of them together do not reach p.</summary>
    private static int NucleusLength(ReadOnlySpan<Candidate> sorted, double max, double sum, float p)
    {
        double cum = 0;
        for (int i = 0; i < sorted.Length; i++)
        {
            cum += Math.Exp(sorted[i].Logit - max) / sum;
            if (cum >= p) return i + 1;
        }
        return -1;
    }

    private const int Buckets = 1024;

    /// <summary>
    /// Top-p over the whole vocabulary without sorting all of it. A histogram of the probability mass over 1024 logit
    /// buckets between max - 64 and max says below which logit T the nucleus cannot reach; only the tokens with
    /// logit &gt;= T (one bucket of margin) are sorted. Every token left out has a smaller logit than every token
    /// kept, so the kept ones are a prefix of the full sort with the same probabilities (same max and sum) and the
    /// same cumulative sums: the set is the one a full sort gives. If the prefix does not reach p (rounding at the
    /// margin), the whole vocabulary is sorted. Returns the candidate count and whether they are sorted.
    /// </summary>
    private (int Count, bool Sorted) NucleusWithoutTopK(ReadOnlySpan<float> logits, float p)
    {
        var cand = _cand.AsSpan();
        float maxL = float.NegativeInfinity;
        foreach (float l in logits) if (l > maxL) maxL = l;
        if (!float.IsFinite(maxL)) return (FillAll(logits, cand), false); // nothing to weigh (as the sorted path)
        double max = maxL, sum = 0;
        foreach (float l in logits) if (!float.IsNaN(l)) sum += Math.Exp(l - max);

        var mass = _bucketMass;
        Array.Clear(mass);
        float lo = maxL - 64f;
        const float width = 64f / Buckets;
        foreach (float l in logits)
        {
            if (!(l >= lo)) continue; // also skips NaN
            int bucket = Math.Min(Buckets - 1, (int)((l - lo) / width));
            mass[bucket] += Math.Exp(l - max) / sum;
        }
        double acc = 0;
        int stop = Buckets - 1;
        for (; stop > 0; stop--)
        {
            acc += mass[stop];
            if (acc >= p) break;
        }
        float threshold = stop <= 1 ? float.NegativeInfinity : lo + (stop - 1) * width; // one bucket of margin
        int n = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            float l = logits[i];
            if (l >= threshold)
            {
                cand[n].Logit = l + 0f;
                cand[n].Id = i;
                n++;
            }
        }
        SortDescending(cand[..n], _keys);
        int len = NucleusLength(cand[..n], max, sum, p);
        if (len > 0) return (len, true);
        int all = FillAll(logits, cand);
        SortDescending(cand[..all], _keys);
        len = NucleusLength(cand[..all], max, sum, p);
        return (len > 0 ? len : all, true);
    }

    /// <summary>Softmax over the candidates and one draw.</summary>
    private int Draw()
    {
        var cand = _cand.AsSpan(0, _count);
        float max = float.NegativeInfinity;
        int best = 0;
        for (int i = 0; i < cand.Length; i++)
            if (cand[i].Logit > max) { max = cand[i].Logit; best = i; }
        if (float.IsNegativeInfinity(max)) return cand[0].Id; // nothing has any probability: the first candidate
        double sum = 0;
        for (int i = 0; i < cand.Length; i++) sum += Math.Exp(cand[i].Logit - max);
        double r = _rng.NextDouble() * sum, acc = 0;
        for (int i = 0; i < cand.Length; i++)
        {
            acc += Math.Exp(cand[i].Logit - max);
            if (r < acc) return cand[i].Id;
        }
        return cand[best].Id; // rounding left r >= the last partial sum
    }

    private void CheckLength(Span<float> logits)
    {
        if (logits.Length != _vocabSize)
            throw new ArgumentException($"The logits have {logits.Length} entries but the sampler was made for a vocabulary of {_vocabSize}.", nameof(logits));
    }

    /// <summary>Repetition, presence and frequency penalties over the last RepeatLastN ids of the history.</summary>
    private void ApplyPenalties(Span<float> logits, ReadOnlySpan<int> history)
    {
        var o = _options;
        if (o.PenaltiesOff || history.IsEmpty) return;
        var window = o.RepeatLastN < 0 || o.RepeatLastN >= history.Length ? history : history[^o.RepeatLastN..];
        var counts = _counts;
        foreach (int id in window)
            if ((uint)id < (uint)counts.Length) counts[id]++;
        foreach (int id in window)
        {
            if ((uint)id >= (uint)counts.Length) continue;
            int c = counts[id];
            if (c == 0) continue; // already penalised (a repeated id)
            counts[id] = 0;
            float l = logits[id];
            l = l <= 0f ? l * o.RepeatPenalty : l / o.RepeatPenalty;
            l -= c * o.FrequencyPenalty + o.PresencePenalty;
            logits[id] = l;
        }
    }

    /// <summary>The index of the largest logit, the smallest such index on ties; NaN is never chosen.</summary>
    internal static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        float max = float.NegativeInfinity;
        bool found = false;
        for (int i = 0; i < logits.Length; i++)
        {
            float l = logits[i];
            if (l > max || (!found && !float.IsNaN(l))) { max = l; best = i; found = true; }
        }
        return best;
    }

    /// <summary>
    /// Sorts by <see cref="Descending"/> without allocating: each candidate becomes one ulong key, the logit's bits
    /// mapped to an order-preserving unsigned integer and flipped (larger logit first) in the high half and the id in
    /// the low half, so an ascending sort of plain ulongs is the total order. (Span.Sort with a comparer boxes it.)
    /// </summary>
    private static void SortDescending(Span<Candidate> cand, Span<ulong> keys)
    {
        keys = keys[..cand.Length];
        for (int i = 0; i < cand.Length; i++)
        {
            uint bits = BitConverter.SingleToUInt32Bits(cand[i].Logit);
            uint ordered = (bits & 0x8000_0000u) != 0 ? ~bits : bits | 0x8000_0000u; // ascending with the float
            keys[i] = ((ulong)~ordered << 32) | (uint)cand[i].Id;
        }
        keys.Sort();
        for (int i = 0; i < cand.Length; i++)
        {
            uint ordered = ~(uint)(keys[i] >> 32);
            uint bits = (ordered & 0x8000_0000u) != 0 ? ordered & 0x7FFF_FFFFu : ~ordered;
            cand[i].Logit = BitConverter.UInt32BitsToSingle(bits);
            cand[i].Id = (int)(uint)keys[i];
        }
    }

    /// <summary>The k best logits (by <see cref="Descending"/>) into cand[0..k), in heap order; returns k.
    /// A heap of size k whose root is the worst kept candidate, filled straight from the logits: O(V log k). A later
    /// token whose logit equals the root's never displaces it (it has a larger id).</summary>
    private static int SelectTopK(ReadOnlySpan<float> logits, Span<Candidate> cand, int k)
    {
        var cmp = default(Descending);
        for (int i = 0; i < k; i++)
        {
            cand[i].Logit = Sanitize(logits[i]);
            cand[i].Id = i;
        }
        for (int i = k / 2 - 1; i >= 0; i--) SiftDown(cand, i, k, cmp);
        float root = cand[0].Logit;
        for (int i = k; i < logits.Length; i++)
        {
            float l = logits[i];
            if (l > root) // false for NaN
            {
                cand[0].Logit = l + 0f;
                cand[0].Id = i;
                SiftDown(cand, 0, k, cmp);
                root = cand[0].Logit;
            }
        }
        return k;
    }

    private static void SiftDown(Span<Candidate> heap, int i, int n, Descending cmp)
    {
        while (true)
        {
            int l = 2 * i + 1, r = l + 1, worst = i;
            if (l < n && cmp.Compare(heap[l], heap[worst]) > 0) worst = l;
            if (r < n && cmp.Compare(heap[r], heap[worst]) > 0) worst = r;
            if (worst == i) return;
            (heap[i], heap[worst]) = (heap[worst], heap[i]);
            i = worst;
        }
    }
}
