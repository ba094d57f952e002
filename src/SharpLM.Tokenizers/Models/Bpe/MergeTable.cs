using System.Runtime.CompilerServices;

namespace SharpLM.Tokenizers.Models.Bpe;

/// <summary>Open-addressing hash table (left id, right id) -> (rank, merged id), built once, read by many threads.
/// Lookups are a multiply, a mask and usually one probe into one 16-byte entry (key, rank and merged id side by side:
/// one cache line). The key stores left + 1 and right + 1, so a zeroed entry is empty and a new table needs no fill
/// (llama3's 280,000 merges: 8 MB of fresh zeroed pages instead of 16 MB written at load).</summary>
internal sealed class MergeTable
{
    private struct Entry
    {
        public ulong Key;   // ((left + 1) << 32) | (right + 1); 0 = empty
        public int Rank;
        public int NewId;
    }

    private readonly Entry[] _entries;
    private readonly int _mask;

    public int Count { get; private set; }

    public MergeTable(Dictionary<long, (int Rank, int NewId)> merges) : this(merges.Count)
    {
        foreach (var (k, v) in merges) TryAdd((int)(k >> 32), (int)k, v.Rank, v.NewId);
    }

    /// <summary>An empty table for up to <paramref name="capacity"/> merges, filled with <see cref="TryAdd"/>
    /// (at most 2/3 full, so a probe rarely goes past its first slot).</summary>
    public MergeTable(int capacity)
    {
        int cap = 16;
        while (cap < capacity + capacity / 2) cap <<= 1;
        _entries = new Entry[cap];
        _mask = cap - 1;
    }

    /// <summary>The table of merges given as ids (left, right, merged; rank = index); of two equal pairs the lower rank
    /// wins. The pairs are inserted in the order of their home slots (a stable counting sort by the slot's high bits,
    /// so equal pairs keep rank order): the writes sweep the table once instead of landing at random, which took most
    /// of the build (LLaMA-3: 280,000 merges into 8 MB).</summary>
    public static MergeTable Build(ReadOnlySpan<(int Left, int Right, int Merged)> merges)
    {
        var table = new MergeTable(merges.Length);
        int n = merges.Length;
        if (n < 4096)
        {
            for (int r = 0; r < n; r++) table.TryAdd(merges[r].Left, merges[r].Right, r, merges[r].Merged);
            return table;
        }
        int slotBits = System.Numerics.BitOperations.Log2((uint)table._entries.Length);
        int bucketBits = Math.Min(slotBits, 14);
        int shift = slotBits - bucketBits;
        var start = new int[(1 << bucketBits) + 1];
        var bucket = new ushort[n];
        for (int r = 0; r < n; r++)
        {
            int b = table.Slot(Key(merges[r].Left, merges[r].Right)) >> shift;
            bucket[r] = (ushort)b;
            start[b + 1]++;
        }
        for (int b = 0; b < 1 << bucketBits; b++) start[b + 1] += start[b];
        var order = new int[n];
        for (int r = 0; r < n; r++) order[start[bucket[r]]++] = r;
        foreach (int r in order) table.TryAdd(merges[r].Left, merges[r].Right, r, merges[r].Merged);
        return table;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Key(int left, int right) => ((ulong)(uint)(left + 1) << 32) | (uint)(right + 1);

    /// <summary>Adds (left, right) -> (rank, newId) unless the pair is already there (the first, lower rank wins).
    /// Ids are token ids (below <see cref="Core.TokenIds.Limit"/>).</summary>
    public bool TryAdd(int left, int right, int rank, int newId)
    {
        if (Count + Count / 2 >= _entries.Length) throw new InvalidOperationException("MergeTable is full.");
        ulong k = Key(left, right);
        int i = Slot(k);
        while (_entries[i].Key != 0)
        {
            if (_entries[i].Key == k) return false;
            i = (i + 1) & _mask;
        }
        _entries[i] = new Entry { Key = k, Rank = rank, NewId = newId };
        Count++;
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Slot(ulong k) => (int)((k * 0x9E3779B97F4A7C15UL) >> 32) & _mask;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGet(int left, int right, out int rank, out int newId)
    {
        ulong k = Key(left, right);
        int i = Slot(k);
        var entries = _entries;
        while (true)
        {
            ref readonly var e = ref entries[i];
            if (e.Key == k) { rank = e.Rank; newId = e.NewId; return true; }
            if (e.Key == 0) { rank = 0; newId = 0; return false; }
            i = (i + 1) & _mask;
        }
    }
}
