using SharpLM.Models;

namespace SharpLM.Inference;

/// <summary>
/// One sequence's preallocated key/value cache (the study note's KV cache): per layer K and V of shape (S, KVH, HS),
/// S = <see cref="Capacity"/>, pinned. Positions 0..<see cref="Length"/>-1 are filled; new rows are written in place, so
/// nothing is concatenated or reallocated per step and earlier keys are never recomputed.
/// A sliding-window layer (Mistral, Gemma) keeps only a rolling window of R = W + B positions (W the window, B the most
/// rows one pass adds), stored twice (position p at rows p % R and p % R + R, so any R consecutive positions are one
/// contiguous range): its memory stops growing past the window, whatever the context.
/// </summary>
internal sealed class KvCache
{
    private readonly float[][] _k, _v;
    private readonly int[] _ring;

    /// <param name="config">the model's hyper-parameters (layers, KV heads, head size, sliding layers).</param>
    /// <param name="capacity">the most positions a sequence holds (the context).</param>
    /// <param name="maxRowsPerPass">the most positions one forward pass appends (the decoder's batch size); it sizes the
    /// rolling windows.</param>
    public KvCache(ModelConfig config, int capacity, int maxRowsPerPass)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "the context must hold at least one position");
        Capacity = capacity;
        KvDim = config.KvWidth;
        int layers = config.Layers;
        _k = new float[layers][];
        _v = new float[layers][];
        _ring = new int[layers];
        for (int l = 0; l < layers; l++)
        {
            long ring = config.IsSlidingLayer(l) ? (long)config.SlidingWindow!.Value + Math.Max(1, maxRowsPerPass) : 0;
            _ring[l] = ring > 0 && 2 * ring < capacity ? (int)ring : 0;
            int rows = _ring[l] > 0 ? 2 * _ring[l] : capacity;
            _k[l] = GC.AllocateUninitializedArray<float>(checked(rows * KvDim), pinned: true);
            _v[l] = GC.AllocateUninitializedArray<float>(checked(rows * KvDim), pinned: true);
        }
        MaxRowsPerPass = Math.Max(1, maxRowsPerPass);
        Window = config.SlidingWindow ?? 0;
    }

    /// <summary>S: positions the cache holds (the context size).</summary>
    public int Capacity { get; }

    /// <summary>KVH*HS: floats per position per layer.</summary>
    public int KvDim { get; }

    public int Layers => _k.Length;

    private int MaxRowsPerPass { get; }
    private int Window { get; }

    /// <summary>Filled positions.</summary>
    public int Length { get; private set; }

    /// <summary>R when layer <paramref name="layer"/> keeps a rolling window of R positions, else 0.</summary>
    public int Ring(int layer) => _ring[layer];

    /// <summary>Floats held for all layers' keys and values (what the cache costs in memory / 4).</summary>
    public long Floats => _k.Sum(k => (long)k.Length) * 2;

    /// <summary>K of one layer: (S, KVH, HS), or the 2R rows of a rolling window.</summary>
    public Span<float> Keys(int layer) => _k[layer];

    /// <summary>V of one layer: (S, KVH, HS), or the 2R rows of a rolling window.</summary>
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

    /// <summary>The shortest length a rolling window can go back to: the window of the next position must still be
    /// held (the last R positions written are).</summary>
    private int ShortestReachable => _ring.Any(r => r > 0) ? Math.Max(0, Length - (_ring.Where(r => r > 0).Min() - Window)) : 0;

    /// <summary>Forgets positions from <paramref name="length"/> on (to reuse a shared prompt prefix, or to roll back a draft).
    /// With a rolling window, only the last B positions (the batch size) can be forgotten: older keys are gone.</summary>
    public void Truncate(int length)
    {
        if (length < 0 || length > Length) throw new ArgumentOutOfRangeException(nameof(length), length, $"the cache holds {Length} positions");
        if (length < ShortestReachable)
            throw new InvalidOperationException($"the sliding-window cache keeps the last {Window} + {MaxRowsPerPass} positions: it cannot go back from {Length} to {length} (at most to {ShortestReachable}); evaluate the prefix again instead");
        Length = length;
    }

    /// <summary>Copies positions 0..length-1 of <paramref name="source"/> (a fork shares its prefix).</summary>
    public void CopyPrefix(KvCache source, int length)
    {
        if (source.Layers != Layers || source.KvDim != KvDim) throw new ArgumentException("the caches belong to different models", nameof(source));
        if (length > Capacity || length > source.Length) throw new ArgumentOutOfRangeException(nameof(length), length, $"the prefix must fit both caches ({source.Length} filled, {Capacity} capacity)");
        if (length < source.ShortestReachable)
            throw new InvalidOperationException($"the sliding-window cache keeps the last {source.Window} + {source.MaxRowsPerPass} positions: a fork at {length} of {source.Length} is no longer held");
        for (int l = 0; l < Layers; l++)
        {
            if (_ring[l] != source._ring[l])
                throw new ArgumentException($"layer {l} keeps {(source._ring[l] > 0 ? $"a rolling window of {source._ring[l]}" : "every position")} in the source and {(_ring[l] > 0 ? $"a rolling window of {_ring[l]}" : "every position")} here: give the fork the source's capacity", nameof(source));
            int n = (_ring[l] > 0 ? 2 * _ring[l] : length) * KvDim;
            source._k[l].AsSpan(0, n).CopyTo(_k[l]);
            source._v[l].AsSpan(0, n).CopyTo(_v[l]);
        }
        Length = length;
    }
}
