using SharpLM.Tensors;
using SharpLM.Tensors.Types;

namespace SharpLM.Inference;

/// <summary>
/// One sequence's preallocated key/value cache (the study note's KV cache): per layer K and V of shape (S, KVH, HS),
/// S = <see cref="Capacity"/>, pinned, stored as <see cref="Type"/>: F32 (exact), F16 (half the memory; each value
/// rounded to the nearest half, 2^-11 relative) or Q8_0 (about a quarter: blocks of 32 values of one head with an f16
/// scale, |error| &lt;= max|block| / 254; HS must be a multiple of 32). Positions 0..<see cref="Length"/>-1 are filled; new
/// rows are written in place, so nothing is concatenated or reallocated per step and earlier keys are never recomputed.
/// </summary>
internal sealed class KvCache
{
    private readonly byte[][] _k, _v;
    private readonly TypeTraits _type;

    public KvCache(int layers, int capacity, int kvDim, DType type = DType.F32)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "the context must hold at least one position");
        CheckType(type, kvDim, kvDim);
        Capacity = capacity;
        KvDim = kvDim;
        _type = DTypes.Of(type);
        RowBytes = _type.RowBytes(kvDim);
        _k = new byte[layers][];
        _v = new byte[layers][];
        for (int l = 0; l < layers; l++)
        {
            _k[l] = GC.AllocateUninitializedArray<byte>(checked((int)(capacity * RowBytes)), pinned: true);
            _v[l] = GC.AllocateUninitializedArray<byte>(checked((int)(capacity * RowBytes)), pinned: true);
        }
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

    /// <summary>Filled positions.</summary>
    public int Length { get; private set; }

    /// <summary>Bytes the cache holds in all (K and V of every layer).</summary>
    public long Bytes => 2L * Layers * Capacity * RowBytes;

    internal unsafe nint KeysPointer(int layer)
    {
        fixed (byte* p = _k[layer]) return (nint)p;
    }

    internal unsafe nint ValuesPointer(int layer)
    {
        fixed (byte* p = _v[layer]) return (nint)p;
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
        if (source.Layers != Layers || source.KvDim != KvDim || source.Type != Type) throw new ArgumentException("the caches belong to different models or store different types", nameof(source));
        if (length > Capacity || length > source.Length) throw new ArgumentOutOfRangeException(nameof(length), length, $"the prefix must fit both caches ({source.Length} filled, {Capacity} capacity)");
        int n = checked((int)(length * RowBytes));
        for (int l = 0; l < Layers; l++)
        {
            source._k[l].AsSpan(0, n).CopyTo(_k[l]);
            source._v[l].AsSpan(0, n).CopyTo(_v[l]);
        }
        Length = length;
    }
}
