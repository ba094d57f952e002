namespace SharpLM.Inference;

/// <summary>
/// One sequence's preallocated key/value cache (the study note's KV cache): per layer K and V of shape (S, KVH, HS),
/// S = <see cref="Capacity"/>, pinned. Positions 0..<see cref="Length"/>-1 are filled; new rows are written in place, so
/// nothing is concatenated or reallocated per step and earlier keys are never recomputed.
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
            _k[l] = GC.AllocateUninitializedArray<float>(checked(capacity * kvDim), pinned: true);
            _v[l] = GC.AllocateUninitializedArray<float>(checked(capacity * kvDim), pinned: true);
        }
    }

    /// <summary>S: positions the cache holds (the context size).</summary>
    public int Capacity { get; }

    /// <summary>KVH*HS: floats per position per layer.</summary>
    public int KvDim { get; }

    public int Layers => _k.Length;

    /// <summary>Filled positions.</summary>
    public int Length { get; private set; }

    /// <summary>K of one layer, all S rows: (S, KVH, HS).</summary>
    public Span<float> Keys(int layer) => _k[layer];

    /// <summary>V of one layer, all S rows: (S, KVH, HS).</summary>
    public Span<float> Values(int layer) => _v[layer];

    internal unsafe nint KeysPointer(int layer)
    {
        fixed (float* p = _k[layer]) return (nint)p;
    }

    internal unsafe nint ValuesPointer(int layer)
    {
        fixed (float* p = _v[layer]) return (nint)p;
    }

    /// <summary>Marks <paramref name="count"/> more positions as filled (after every layer wrote them).</summary>
    public void Advance(int count)
    {
        if (count < 0 || Length + count > Capacity) throw new ArgumentOutOfRangeException(nameof(count), count, $"the cache holds {Length} of {Capacity} positions");
        Length += count;
    }

    /// <summary>Forgets positions from <paramref name="length"/> on (to reuse a shared prompt prefix, or to roll back a draft).</summary>
    public void Truncate(int length)
    {
        if (length < 0 || length > Length) throw new ArgumentOutOfRangeException(nameof(length), length, $"the cache holds {Length} positions");
        Length = length;
    }

    /// <summary>Copies positions 0..length-1 of <paramref name="source"/> (a fork shares its prefix).</summary>
    public void CopyPrefix(KvCache source, int length)
    {
        if (source.Layers != Layers || source.KvDim != KvDim) throw new ArgumentException("the caches belong to different models", nameof(source));
        if (length > Capacity || length > source.Length) throw new ArgumentOutOfRangeException(nameof(length), length, $"the prefix must fit both caches ({source.Length} filled, {Capacity} capacity)");
        int n = length * KvDim;
        for (int l = 0; l < Layers; l++)
        {
            source._k[l].AsSpan(0, n).CopyTo(_k[l]);
            source._v[l].AsSpan(0, n).CopyTo(_v[l]);
        }
        Length = length;
    }
}
