using System.Runtime.CompilerServices;

namespace SharpLM.Tokenizers.Models.Bpe;

/// <summary>Open-addressing hash table (left id, right id) -> (rank, merged id), built once, read by many threads.
/// Lookups are a multiply, a mask and usually one probe.</summary>
internal sealed class MergeTable
{
    private readonly long[] _keys;   // -1 = empty
    private readonly int[] _ranks;
    private readonly int[] _newIds;
    private readonly int _mask;

    public int Count { get; private set; }

    public MergeTable(Dictionary<long, (int Rank, int NewId)> merges) : this(merges.Count)
    {
        foreach (var (k, v) in merges) TryAdd((int)(k >> 32), (int)k, v.Rank, v.NewId);
    }

    /// <summary>An empty table for up to <paramref name="capacity"/> merges, filled with <see cref="TryAdd"/>.</summary>
    public MergeTable(int capacity)
    {
        int cap = 16;
        while (cap < capacity * 2) cap <<= 1;
        _keys = new long[cap];
        Array.Fill(_keys, -1L);
        _ranks = new int[cap];
        _newIds = new int[cap];
        _mask = cap - 1;
    }

    /// <summary>Adds (left, right) -> (rank, newId) unless the pair is already there (the first, lower rank wins).</summary>
    public bool TryAdd(int left, int right, int rank, int newId)
    {
        if (Count * 2 >= _keys.Length) throw new InvalidOperationException("MergeTable is full.");
        long k = ((long)left << 32) | (uint)right;
        int i = Slot(k);
        while (_keys[i] != -1)
        {
            if (_keys[i] == k) return false;
            i = (i + 1) & _mask;
        }
        _keys[i] = k;
        _ranks[i] = rank;
        _newIds[i] = newId;
        Count++;
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Slot(long k) => (int)(((ulong)k * 0x9E3779B97F4A7C15UL) >> 32) & _mask;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGet(int left, int right, out int rank, out int newId)
    {
        long k = ((long)left << 32) | (uint)right;
        int i = Slot(k);
        while (true)
        {
            long key = _keys[i];
            if (key == k) { rank = _ranks[i]; newId = _newIds[i]; return true; }
            if (key == -1) { rank = 0; newId = 0; return false; }
            i = (i + 1) & _mask;
        }
    }
}
