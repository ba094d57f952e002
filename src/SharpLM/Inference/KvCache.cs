using SharpLM.Kernels;
using SharpLM.Models;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;

namespace SharpLM.Inference;

/// <summary>
/// One sequence's preallocated key/value cache (the study note's KV cache): per layer K and V of shape (S, KVH, HS),
/// S = <see cref="Capacity"/>, pinned, stored as <see cref="Type"/>: F32 (exact), F16 (half the memory; each value
/// rounded to the nearest half, 2^-11 relative) or Q8_0 (about a quarter: blocks of 32 values of one head with an f16
/// scale, |error| &lt;= max|block| / 254; HS must be a multiple of 32). Positions 0..<see cref="Length"/>-1 are filled; new
/// rows are written in place, so nothing is concatenated or reallocated per step and earlier keys are never recomputed.
/// A sliding-window layer (Mistral, Gemma) keeps only a rolling window of R = W + B positions (W the window, B the most
/// rows one pass adds), stored twice (position p at rows p % R and p % R + R, so any R consecutive positions are one
/// contiguous range): its memory stops growing past the window, whatever the context. Every storage type works with
/// the rolling window (a position's row is rounded once and written to both of its rows).
/// </summary>
internal sealed class KvCache
{
    private readonly AlignedBytes[] _k, _v;
    private readonly int[] _ring;
    private readonly TypeTraits _type;

    /// <param name="config">the model's hyper-parameters (layers, KV heads, head size, sliding layers).</param>
    /// <param name="capacity">the most positions a sequence holds (the context).</param>
    /// <param name="maxRowsPerPass">the most positions one forward pass appends (the decoder's batch size); it sizes the
    /// rolling windows.</param>
    /// <param name="type">the storage type of keys and values (F32, F16 or Q8_0).</param>
    public KvCache(ModelConfig config, int capacity, int maxRowsPerPass, DType type = DType.F32)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "the context must hold at least one position");
        Capacity = capacity;
        KvDim = config.KvWidth;
        CheckType(type, config.HeadSize, KvDim);
        _type = DTypes.Of(type);
        RowBytes = _type.RowBytes(KvDim);
        int layers = config.Layers;
        _k = new AlignedBytes[layers];
        _v = new AlignedBytes[layers];
        _ring = new int[layers];
        for (int l = 0; l < layers; l++)
        {
            long ring = config.IsSlidingLayer(l) ? (long)config.SlidingWindow!.Value + Math.Max(1, maxRowsPerPass) : 0;
            _ring[l] = ring > 0 && 2 * ring < capacity ? (int)ring : 0;
            int rows = _ring[l] > 0 ? 2 * _ring[l] : capacity;
            _k[l] = new AlignedBytes(rows * RowBytes);
            _v[l] = new AlignedBytes(rows * RowBytes);
        }
        MaxRowsPerPass = Math.Max(1, maxRowsPerPass);
        Window = config.SlidingWindow ?? 0;
    }

    /// <summary>Throws unless <paramref name="type"/> can store keys and values of <paramref name="headSize"/> (the message
    /// names the types that can).</summary>
    public static void CheckType(DType type, int headSize, int kvDim)
    {
        if (type is not (DType.F32 or DType.F16 or DType.Q8_0))
            throw new ArgumentException($"a KV cache of {type} is not supported; use F32 (exact), F16 or Q8_0");
        if (type == DType.Q8_0 && (headSize % 32 != 0 || kvDim % 32 != 0))
            throw new ArgumentException($"a Q8_0 KV cache needs a head size that is a multiple of 32 (blocks never straddle heads); this model's is {headSize}: use F16");
    }

    /// <summary>S: positions the cache holds (the context size).</summary>
    public int Capacity { get; }

    /// <summary>KVH*HS: values per position per layer.</summary>
    public int KvDim { get; }

    /// <summary>The element type of the stored keys and values.</summary>
    public DType Type => _type.Type;

    /// <summary>Bytes of one position of one layer (KVH*HS values of <see cref="Type"/>).</summary>
    public long RowBytes { get; }

    public int Layers => _k.Length;

    private int MaxRowsPerPass { get; }
    private int Window { get; }

    /// <summary>Filled positions.</summary>
    public int Length { get; private set; }

    /// <summary>R when layer <paramref name="layer"/> keeps a rolling window of R positions, else 0.</summary>
    public int Ring(int layer) => _ring[layer];

    /// <summary>Rows held for one layer: S, or the 2R rows of a rolling window.</summary>
    public int Rows(int layer) => (int)(_k[layer].Length / RowBytes);

    /// <summary>Bytes the cache holds in all (K and V of every layer).</summary>
    public long Bytes => _k.Sum(k => k.Length) * 2;

    /// <summary>Layer <paramref name="layer"/>'s keys (64-byte aligned, pinned).</summary>
    internal nint KeysPointer(int layer) => _k[layer].Pointer;

    internal nint ValuesPointer(int layer) => _v[layer].Pointer;

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
        if (source.Layers != Layers || source.KvDim != KvDim || source.Type != Type) throw new ArgumentException("the caches belong to different models or store different types", nameof(source));
        if (length > Capacity || length > source.Length) throw new ArgumentOutOfRangeException(nameof(length), length, $"the prefix must fit both caches ({source.Length} filled, {Capacity} capacity)");
        if (length < source.ShortestReachable)
            throw new InvalidOperationException($"the sliding-window cache keeps the last {source.Window} + {source.MaxRowsPerPass} positions: a fork at {length} of {source.Length} is no longer held");
        for (int l = 0; l < Layers; l++)
        {
            if (_ring[l] != source._ring[l])
                throw new ArgumentException($"layer {l} keeps {(source._ring[l] > 0 ? $"a rolling window of {source._ring[l]}" : "every position")} in the source and {(_ring[l] > 0 ? $"a rolling window of {_ring[l]}" : "every position")} here: give the fork the source's capacity", nameof(source));
            int n = checked((int)((_ring[l] > 0 ? 2 * _ring[l] : length) * RowBytes));
            source._k[l].Span[..n].CopyTo(_k[l].Span);
            source._v[l].Span[..n].CopyTo(_v[l].Span);
        }
        Length = length;
    }
}
