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

        var cand = _cand.AsSpan();
        for (int i = 0; i < logits.Length; i++)
        {
            float l = logits[i];
            cand[i].Logit = float.IsNaN(l) ? float.NegativeInfinity : l + 0f; // + 0f turns -0 into +0
            cand[i].Id = i;
        }
        int n = logits.Length;
        bool sorted = false;

        var o = _options;
        if (o.TopK > 0 && o.TopK < n)
        {
            n = SelectTopK(cand[..n], o.TopK);
            SortDescending(cand[..n], _keys);
            sorted = true;
        }

        if (o.TopP < 1f)
        {
            if (!sorted) { SortDescending(cand[..n], _keys); sorted = true; }
            double max = cand[0].Logit, sum = 0;
            if (double.IsFinite(max)) // all -inf or a +inf: nothing to weigh, leave the set to min-p and dist
            {
                for (int i = 0; i < n; i++) sum += Math.Exp(cand[i].Logit - max);
                double cum = 0;
                for (int i = 0; i < n; i++)
                {
                    cum += Math.Exp(cand[i].Logit - max) / sum;
                    if (cum >= o.TopP) { n = i + 1; break; }
                }
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

    /// <summary>Moves the k best candidates (by <see cref="Descending"/>) to the front, in heap order; returns k.
    /// A min-heap of size k over the vocabulary: O(V log k).</summary>
    private static int SelectTopK(Span<Candidate> cand, int k)
    {
        var cmp = default(Descending);
        // cand[0..k) is a heap whose root is the worst kept candidate ("worst" = largest by Descending).
        for (int i = k / 2 - 1; i >= 0; i--) SiftDown(cand, i, k, cmp);
        for (int i = k; i < cand.Length; i++)
        {
            if (cmp.Compare(cand[i], cand[0]) < 0)
            {
                cand[0] = cand[i];
                SiftDown(cand, 0, k, cmp);
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
