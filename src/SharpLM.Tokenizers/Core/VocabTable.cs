using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SharpLM.Tokenizers.Core;

/// <summary>
/// A vocabulary (token -> id, id -> token) for the large BPE vocabularies (LLaMA-3's 128,000 tokens, Qwen's 151,000):
/// every token's chars in one arena, an open-addressing hash whose 16-byte slot holds what a lookup needs (hash, id,
/// where the chars are), and the token strings made only when asked for (<see cref="IdToToken"/>). A lookup reads one
/// slot and the chars: two cache lines, where a <see cref="Dictionary{TKey,TValue}"/> of strings reads a bucket, an
/// entry and a string object (its lookups were half of a tokenizer.json load), and loading allocates no object per token.
/// <para>Adding a token twice keeps the last id, as a dictionary's indexer does (and HF's map); when two tokens share an
/// id, <see cref="IdToToken"/> gives the one added last. Filled by one thread, then read by many: lookups never write,
/// and the lazy strings are a benign race (two threads may make equal strings).</para>
/// </summary>
internal sealed class VocabTable
{
    private char[] _chars;
    private int _charCount;
    private int[] _start;   // by entry (the order added): where its chars begin in _chars (non-decreasing)
    private int[] _length;  // by entry
    private int[] _ids;     // by entry
    private int _count;
    private Slot[] _slots;  // linear probing; IdPlus1 == 0: empty
    private int _mask;
    private int _maxId = -1;
    private int[]? _entryOfId;   // id -> entry, -1 none; built on first id lookup
    private string?[]? _strings; // id -> token string, made on first use

    private struct Slot
    {
        public uint Hash;
        public int IdPlus1;
        public int Start;
        public int Length;
    }

    // Hashes are seeded per process: a vocabulary made to collide on one seed does not collide on another.
    private static readonly ulong Seed = (ulong)Random.Shared.NextInt64() | 1;

    /// <summary>An empty table sized for <paramref name="capacity"/> tokens of <paramref name="chars"/> chars in all
    /// (it grows past both).</summary>
    public VocabTable(int capacity = 16, int chars = 64)
    {
        capacity = Math.Max(capacity, 4);
        _chars = new char[Math.Max(chars, 16)];
        _start = new int[capacity];
        _length = new int[capacity];
        _ids = new int[capacity];
        _slots = new Slot[SlotCount(capacity)];
        _mask = _slots.Length - 1;
    }

    /// <summary>Slots for n tokens: a power of two, at most 2/3 full.</summary>
    private static int SlotCount(int n)
    {
        int cap = 16;
        while (cap < n + n / 2) cap <<= 1;
        return cap;
    }

    /// <summary>A table of <paramref name="vocab"/>'s tokens, in its order.</summary>
    public static VocabTable From(IEnumerable<KeyValuePair<string, int>> vocab)
    {
        int n = vocab is IReadOnlyCollection<KeyValuePair<string, int>> c ? c.Count : 16;
        var t = new VocabTable(n, n * 6);
        foreach (var (token, id) in vocab) t.Add(token, id);
        return t;
    }

    /// <summary>A table of distinct tokens given as arrays (entry e: <paramref name="lengths"/>[e] chars of
    /// <paramref name="chars"/> after the previous entry's, id <paramref name="ids"/>[e]), as <see cref="CopyTo"/> wrote
    /// them: the chars are copied once and the slots filled in the order of their home slots (one sweep of the table
    /// instead of a write at random per token). Throws <see cref="InvalidDataException"/> when the arrays do not fit
    /// together or an id is out of range; the tokens must be distinct (they come from a table).</summary>
    public static VocabTable FromArrays(ReadOnlySpan<int> lengths, ReadOnlySpan<int> ids, ReadOnlySpan<char> chars)
    {
        int n = lengths.Length;
        if (ids.Length != n) throw new InvalidDataException($"{n} token lengths but {ids.Length} ids");
        var t = new VocabTable(n, chars.Length);
        int offset = 0;
        for (int e = 0; e < n; e++)
        {
            int len = lengths[e], id = ids[e];
            if (len < 0 || len > chars.Length - offset) throw new InvalidDataException($"token {e}'s length {len} runs past the {chars.Length} chars");
            if (TokenIds.Problem(id) is { } why) throw new InvalidDataException($"token {e}: {why}");
            t._start[e] = offset;
            offset += len;
            if (id > t._maxId) t._maxId = id;
        }
        if (offset != chars.Length) throw new InvalidDataException($"the token lengths add up to {offset} chars, not {chars.Length}");
        chars.CopyTo(t._chars);
        lengths.CopyTo(t._length);
        ids.CopyTo(t._ids);
        t._charCount = offset;
        t._count = n;
        // A stable counting sort of the entries by their home slot's high bits, then one sweep of inserts.
        var hashes = new uint[n];
        int slotBits = System.Numerics.BitOperations.Log2((uint)t._slots.Length);
        int bucketBits = Math.Min(slotBits, 14);
        int shift = slotBits - bucketBits;
        var start = new int[(1 << bucketBits) + 1];
        for (int e = 0; e < n; e++)
        {
            uint h = Hash(t._chars.AsSpan(t._start[e], t._length[e]));
            hashes[e] = h;
            start[(int)((h & (uint)t._mask) >> shift) + 1]++;
        }
        for (int b = 0; b < 1 << bucketBits; b++) start[b + 1] += start[b];
        var order = new int[n];
        for (int e = 0; e < n; e++) order[start[(int)((hashes[e] & (uint)t._mask) >> shift)]++] = e;
        foreach (int e in order)
        {
            uint h = hashes[e];
            int i = (int)h & t._mask;
            while (t._slots[i].IdPlus1 != 0) i = (i + 1) & t._mask;
            t._slots[i] = new Slot { Hash = h, IdPlus1 = t._ids[e] + 1, Start = t._start[e], Length = t._length[e] };
        }
        return t;
    }

    /// <summary>The entries in the order added, as <see cref="FromArrays"/> takes them back: the lengths and ids (each
    /// <see cref="Count"/> long) and the chars (every token's, one after another).</summary>
    public (int[] Lengths, int[] Ids, ReadOnlyMemory<char> Chars) CopyTo() =>
        (_length[.._count], _ids[.._count], _chars.AsMemory(0, _charCount));

    /// <summary>Number of distinct tokens.</summary>
    public int Count => _count;

    /// <summary>One past the largest id.</summary>
    public int IdBound => _maxId + 1;

    /// <summary>Adds <paramref name="token"/> with <paramref name="id"/>; a token already there gets the new id and false
    /// is returned. An id outside [0, <see cref="TokenIds.Limit"/>) throws <see cref="InvalidDataException"/>.</summary>
    public bool Add(ReadOnlySpan<char> token, int id)
    {
        if (TokenIds.Problem(id) is { } why)
            throw new InvalidDataException($"the vocabulary's token '{(token.Length <= 40 ? token : token[..40])}': {why}");
        if (id > _maxId) _maxId = id;
        _entryOfId = null;
        _strings = null;
        uint h = Hash(token);
        int i = (int)h & _mask;
        while (true)
        {
            ref var s = ref _slots[i];
            if (s.IdPlus1 == 0) break;
            if (s.Hash == h && s.Length == token.Length && _chars.AsSpan(s.Start, s.Length).SequenceEqual(token))
            {
                s.IdPlus1 = id + 1;
                _ids[EntryAt(s.Start, s.Length)] = id;
                return false;
            }
            i = (i + 1) & _mask;
        }
        if (_count == _start.Length)
        {
            Array.Resize(ref _start, _count * 2);
            Array.Resize(ref _length, _count * 2);
            Array.Resize(ref _ids, _count * 2);
        }
        if (_charCount + token.Length > _chars.Length) Array.Resize(ref _chars, Math.Max(_chars.Length * 2, _charCount + token.Length));
        token.CopyTo(_chars.AsSpan(_charCount));
        _start[_count] = _charCount;
        _length[_count] = token.Length;
        _ids[_count] = id;
        _count++;
        _slots[i] = new Slot { Hash = h, IdPlus1 = id + 1, Start = _charCount, Length = token.Length };
        _charCount += token.Length;
        if (_count + _count / 2 > _slots.Length) Rehash();
        return true;
    }

    /// <summary>The entry whose chars are at (start, length): entries are in arena order, and only an empty token
    /// shares its start with another.</summary>
    private int EntryAt(int start, int length)
    {
        int e = Array.BinarySearch(_start, 0, _count, start);
        if (e < 0) e = ~e;
        while (e > 0 && _start[e - 1] == start) e--;
        while (_length[e] != length) e++;
        return e;
    }

    private void Rehash()
    {
        var slots = new Slot[_slots.Length * 2];
        int mask = slots.Length - 1;
        foreach (var s in _slots)
        {
            if (s.IdPlus1 == 0) continue;
            int i = (int)s.Hash & mask;
            while (slots[i].IdPlus1 != 0) i = (i + 1) & mask;
            slots[i] = s;
        }
        _slots = slots;
        _mask = mask;
    }

    /// <summary>The id of <paramref name="token"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGetValue(ReadOnlySpan<char> token, out int id)
    {
        uint h = Hash(token);
        var slots = _slots;
        int i = (int)h & _mask;
        while (true)
        {
            ref readonly var s = ref slots[i];
            if (s.IdPlus1 == 0) break;
            if (s.Hash == h && s.Length == token.Length && _chars.AsSpan(s.Start, s.Length).SequenceEqual(token))
            {
                id = s.IdPlus1 - 1;
                return true;
            }
            i = (i + 1) & _mask;
        }
        id = -1;
        return false;
    }

    public bool ContainsKey(ReadOnlySpan<char> token) => TryGetValue(token, out _);

    /// <summary>The chars of entry <paramref name="entry"/> (0 .. <see cref="Count"/>-1, in the order added).</summary>
    public ReadOnlySpan<char> KeyAt(int entry) => _chars.AsSpan(_start[entry], _length[entry]);

    /// <summary>The id of entry <paramref name="entry"/>.</summary>
    public int IdAt(int entry) => _ids[entry];

    /// <summary>Whether the token of <paramref name="id"/> is exactly <paramref name="token"/> (cheaper than a lookup
    /// when the id is known: it reads the chars of that one token).</summary>
    public bool IdIs(int id, ReadOnlySpan<char> token)
    {
        if ((uint)id > (uint)_maxId) return false;
        int e = EntryOfId()[id];
        return e >= 0 && KeyAt(e).SequenceEqual(token); // an entry's id is its token's current id
    }

    /// <summary>The token whose id is <paramref name="id"/> (the last added when several share it), or null; the string
    /// is made on first use and kept.</summary>
    public string? IdToToken(int id)
    {
        if ((uint)id > (uint)_maxId) return null;
        var strings = _strings ??= new string?[_maxId + 1];
        if (strings[id] is { } s) return s;
        int e = EntryOfId()[id];
        if (e < 0) return null;
        s = new string(KeyAt(e));
        strings[id] = s;
        return s;
    }

    /// <summary>The id -> entry map (ids with no token: -1), built once; of two tokens with one id the later wins.</summary>
    private int[] EntryOfId()
    {
        if (_entryOfId is { } known) return known;
        var map = new int[_maxId + 1];
        Array.Fill(map, -1);
        for (int e = 0; e < _count; e++) map[_ids[e]] = e;
        _entryOfId = map;
        return map;
    }

    /// <summary>The tokens and their ids in the order added (one pair per distinct token).</summary>
    public IEnumerable<KeyValuePair<string, int>> Pairs()
    {
        for (int e = 0; e < _count; e++) yield return new(new string(KeyAt(e)), IdAt(e));
    }

    /// <summary>Seeded multiply-xor hash of the chars, 4 at a time, folded to 32 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Hash(ReadOnlySpan<char> s)
    {
        const ulong M = 0x9E3779B97F4A7C15UL;
        ulong h = Seed ^ ((ulong)s.Length * M);
        var bytes = MemoryMarshal.AsBytes(s);
        ref byte p = ref MemoryMarshal.GetReference(bytes);
        int n = bytes.Length, k = 0;
        for (; k + 8 <= n; k += 8)
        {
            h ^= Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, k));
            h *= M;
            h ^= h >> 31;
        }
        if (k < n)
        {
            ulong t = 0; // the last 1-3 chars
            for (; k < n; k += 2) t = (t << 16) | Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref p, k));
            h ^= t;
            h *= M;
            h ^= h >> 31;
        }
        h *= 0xBF58476D1CE4E5B9UL;
        return (uint)(h >> 32) ^ (uint)h;
    }
}
