namespace SharpLM.Inference;

/// <summary>
/// A preallocated key/value cache: per layer K and V of shape (S, KVH, HS), S = <see cref="Capacity"/>. Positions
/// 0..<see cref="Length"/>-1 are filled. New rows are written in place; nothing is concatenated or reallocated per step.
/// </summary>
internal sealed class KvCache
{
    private readonly float[][] _k, _v;

    public KvCache(int layers, int capacity, int kvDim)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "the context must hold at least one position");
        Capacity = capacity;
        KvDim = kvDim;
        _k = new float[layers][];
        _v = new float[layers][];
        for (int l = 0; l < layers; l++)
        {
            _k[l] = new float[(long)capacity * kvDim];
            _v[l] = new float[(long)capacity * kvDim];
        }
    }

    /// <summary>S: positions the cache holds (the context size).</summary>
    public int Capacity { get; }

    /// <summary>KVH*HS: floats per position per layer.</summary>
    public int KvDim { get; }

    /// <summary>Filled positions.</summary>
    public int Length { get; private set; }

    /// <summary>K of one layer, all S rows: (S, KVH, HS).</summary>
    public Span<float> Keys(int layer) => _k[layer];

    /// <summary>V of one layer, all S rows: (S, KVH, HS).</summary>
    public Span<float> Values(int layer) => _v[layer];

    /// <summary>Marks <paramref name="count"/> more positions as filled (after every layer wrote them).</summary>
    public void Advance(int count)
    {
        if (count < 0 || Length + count > Capacity) throw new ArgumentOutOfRangeException(nameof(count), count, $"the cache holds {Length} of {Capacity} positions");
        Length += count;
    }

    /// <summary>Forgets positions from <paramref name="length"/> on (e.g. to reuse a shared prompt prefix).</summary>
    public void Truncate(int length)
    {
        if (length < 0 || length > Length) throw new ArgumentOutOfRangeException(nameof(length), length, $"the cache holds {Length} positions");
        Length = length;
    }

    public void Clear() => Length = 0;
}
