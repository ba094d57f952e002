namespace SharpLM.Training.Data;

/// <summary>
/// A tokenized corpus split into a training part and a held-out validation part (the last <c>valFraction</c> of
/// the tokens), each cut into non-overlapping windows of T+1 tokens (inputs = first T, targets = last T).
/// Training batches walk the windows in an order shuffled per epoch from the seed, so batch k is a pure function of
/// (seed, k): a resumed run sees exactly the batches an uninterrupted run would.
/// </summary>
internal sealed class TokenDataset
{
    private readonly int[] _train, _val;
    private readonly int _t, _trainWindows, _valWindows;
    private readonly ulong _seed;
    private int _permEpoch = -1;
    private int[] _perm = [];

    public int Context => _t;
    public int TrainTokens => _train.Length;
    public int ValTokens => _val.Length;
    public int TrainWindows => _trainWindows;
    public int ValWindows => _valWindows;
    /// <summary>UTF-8 bytes per token over the validation text (for bits per byte), when known.</summary>
    public double ValBytesPerToken { get; init; } = double.NaN;

    public TokenDataset(int[] tokens, int context, double valFraction, ulong seed, string source = "the data")
    {
        if (context < 1) throw new ArgumentException($"context must be at least 1, got {context}");
        if (tokens.Length == 0) throw new InvalidDataException($"{source} is empty: give a text file with at least a few thousand characters");
        int valLen = valFraction <= 0 ? 0 : Math.Max(context + 1, (int)(tokens.Length * valFraction));
        int trainLen = tokens.Length - valLen;
        if (trainLen < context + 1)
            throw new InvalidDataException(
                $"{source} has {tokens.Length} tokens: too few for context {context} (training needs at least {context + 1} tokens" +
                (valLen > 0 ? $" plus {valLen} held out for validation" : "") + "). Use more text or a smaller --context.");
        _train = tokens[..trainLen];
        _val = tokens[trainLen..];
        _t = context;
        _seed = seed;
        _trainWindows = (trainLen - 1) / context;
        _valWindows = valLen == 0 ? 0 : (valLen - 1) / context;
    }

    /// <summary>Fills x, y (B,T) with training batch number <paramref name="index"/> (0, 1, 2, ... over the run).</summary>
    public void TrainBatch(long index, int b, Span<int> x, Span<int> y)
    {
        for (int i = 0; i < b; i++)
        {
            long k = index * b + i;
            int epoch = (int)(k / _trainWindows);
            int w = Permutation(epoch)[(int)(k % _trainWindows)];
            Window(_train, w, x.Slice(i * _t, _t), y.Slice(i * _t, _t));
        }
    }

    /// <summary>Validation batch <paramref name="index"/> &lt; ValBatches(b) in fixed order.</summary>
    public void ValBatch(int index, int b, Span<int> x, Span<int> y)
    {
        for (int i = 0; i < b; i++)
            Window(_val, (index * b + i) % _valWindows, x.Slice(i * _t, _t), y.Slice(i * _t, _t));
    }

    public int ValBatches(int b) => _valWindows == 0 ? 0 : Math.Max(1, _valWindows / b);

    private void Window(int[] src, int w, Span<int> x, Span<int> y)
    {
        src.AsSpan(w * _t, _t).CopyTo(x);
        src.AsSpan(w * _t + 1, _t).CopyTo(y);
    }

    private int[] Permutation(int epoch)
    {
        if (epoch == _permEpoch) return _perm;
        var rng = new TrainRandom(_seed * 0x9E3779B97F4A7C15UL + (ulong)epoch + 1);
        var p = new int[_trainWindows];
        for (int i = 0; i < p.Length; i++) p[i] = i;
        for (int i = p.Length - 1; i > 0; i--) { int j = (int)(rng.NextUInt64() % (ulong)(i + 1)); (p[i], p[j]) = (p[j], p[i]); }
        _perm = p; _permEpoch = epoch;
        return p;
    }
}
