using System.Runtime.CompilerServices;
using SharpLM.Tokenizers.Core;

namespace SharpLM.Tokenizers.Tiktoken;

/// <summary>
/// tiktoken's byte-pair merge (tiktoken src/lib.rs byte_pair_merge) on a byte-level word: a word that is a token is
/// that token; otherwise, starting from single bytes, the adjacent pair whose concatenation has the lowest rank is
/// merged (leftmost on ties) until no concatenation is a token. The rank is the id. Words are cached (bounded).
/// </summary>
internal sealed class TiktokenModel : IModel
{
    private readonly Dictionary<string, int> _ranks;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly string?[] _idToToken;
    private readonly int[] _charIds = new int[512];
    private readonly WordCache<int[]> _cache = new(200_000);
    private const int MaxCachedWordLength = 128;

    private readonly Dictionary<string, int> _specials;

    /// <summary>The ranks, plus the special tokens so that their ids are the model's (they never take part in merges;
    /// the added-token matcher cuts them out of the text first).</summary>
    public TiktokenModel(Dictionary<string, int> ranks, IReadOnlyDictionary<string, int> specials)
    {
        _ranks = ranks;
        _specials = new Dictionary<string, int>(specials, StringComparer.Ordinal);
        _lookup = ranks.GetAlternateLookup<ReadOnlySpan<char>>();
        _idToToken = TokenIds.Table(ranks, _specials);
        Array.Fill(_charIds, -1);
        foreach (var (t, id) in ranks)
            if (t.Length == 1 && t[0] < _charIds.Length) _charIds[t[0]] = id;
    }

    public IReadOnlyDictionary<string, int> Vocab => _ranks;

    public int VocabSize => _idToToken.Length;

    public int IdBound => _idToToken.Length;

    public string? UnkToken => null;

    public int? TokenToId(ReadOnlySpan<char> token) =>
        _lookup.TryGetValue(token, out int id) ? id : _specials.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(token, out id) ? id : null;

    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    public void Tokenize(ReadOnlySpan<char> word, TokenSink sink)
    {
        if (word.IsEmpty) return;
        if (_lookup.TryGetValue(word, out int whole))
        {
            sink.Add(whole, 0, word.Length);
            return;
        }
        bool cacheable = word.Length <= MaxCachedWordLength;
        if (cacheable && _cache.TryGet(word, out var hit))
        {
            // hit: (id, end) pairs; starts follow from the previous end.
            int start = 0;
            for (int i = 0; i < hit.Length; i += 2)
            {
                sink.Add(hit[i], start, hit[i + 1]);
                start = hit[i + 1];
            }
            return;
        }
        int before = sink.Count;
        Merge(word, sink);
        if (cacheable && _cache.HasRoom)
        {
            int n = sink.Count - before;
            var entry = new int[2 * n];
            for (int i = 0; i < n; i++)
            {
                entry[2 * i] = sink.Ids[before + i];
                entry[2 * i + 1] = sink.Ends[before + i];
            }
            _cache.TryAdd(word, entry);
        }
    }

    /// <summary>Ids only (the fast path); same ids as <see cref="Tokenize"/>.</summary>
    public void TokenizeIds(ReadOnlySpan<char> word, List<int> ids)
    {
        if (word.IsEmpty) return;
        if (_lookup.TryGetValue(word, out int whole))
        {
            ids.Add(whole);
            return;
        }
        if (word.Length <= MaxCachedWordLength && _cache.TryGet(word, out var hit))
        {
            for (int i = 0; i < hit.Length; i += 2) ids.Add(hit[i]);
            return;
        }
        var sink = t_sink ??= new TokenSink();
        sink.Clear();
        Tokenize(word, sink);
        for (int i = 0; i < sink.Count; i++) ids.Add(sink.Ids[i]);
    }

    [ThreadStatic] private static TokenSink? t_sink;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Rank(ReadOnlySpan<char> piece) => _lookup.TryGetValue(piece, out int r) ? r : int.MaxValue;

    private void Merge(ReadOnlySpan<char> w, TokenSink sink)
    {
        int n = w.Length;
        int[]? rentedStarts = null, rentedRanks = null;
        Span<int> starts = n + 1 <= 256 ? stackalloc int[n + 1] : (rentedStarts = System.Buffers.ArrayPool<int>.Shared.Rent(n + 1));
        Span<int> ranks = n + 1 <= 256 ? stackalloc int[n + 1] : (rentedRanks = System.Buffers.ArrayPool<int>.Shared.Rent(n + 1));
        // parts[i] = (starts[i], ranks[i]); ranks[i] is the rank of w[starts[i] .. starts[i+2]].
        int count = n + 1;
        for (int i = 0; i <= n; i++) starts[i] = i;
        for (int i = 0; i + 1 < n; i++) ranks[i] = Rank(w.Slice(i, 2));
        ranks[n - 1] = int.MaxValue;
        ranks[n] = int.MaxValue;
        while (true)
        {
            int best = int.MaxValue, at = -1;
            for (int i = 0; i < count - 1; i++)
                if (ranks[i] < best) { best = ranks[i]; at = i; }
            if (at < 0) break;
            // Merge parts at and at+1: recompute the ranks around, then drop part at+1.
            if (at > 0) ranks[at - 1] = at + 2 < count ? Rank(w[starts[at - 1]..starts[at + 2]]) : int.MaxValue;
            ranks[at] = at + 3 < count ? Rank(w[starts[at]..starts[at + 3]]) : int.MaxValue;
            starts[(at + 2)..count].CopyTo(starts[(at + 1)..]);
            ranks[(at + 2)..count].CopyTo(ranks[(at + 1)..]);
            count--;
        }
        for (int i = 0; i + 1 < count; i++)
        {
            int s = starts[i], e = starts[i + 1];
            int id = e - s == 1 && w[s] < _charIds.Length ? _charIds[w[s]] : Rank(w[s..e]);
            if (id == int.MaxValue || id < 0)
                throw new InvalidDataException($"tiktoken: byte token '{w[s..e].ToString()}' is not in the ranks; the rank file must hold all 256 single bytes.");
            sink.Add(id, s, e);
        }
        if (rentedStarts != null) System.Buffers.ArrayPool<int>.Shared.Return(rentedStarts);
        if (rentedRanks != null) System.Buffers.ArrayPool<int>.Shared.Return(rentedRanks);
    }
}
