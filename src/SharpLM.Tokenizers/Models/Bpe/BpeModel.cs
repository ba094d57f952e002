using System.Runtime.CompilerServices;
using System.Text;
using SharpLM.Tokenizers.Core;

namespace SharpLM.Tokenizers.Models.Bpe;

/// <summary>
/// Byte-pair encoding (HF models/bpe/model.rs + word.rs). A word is split into code points (the
/// continuing_subword_prefix on all but the first, the end_of_word_suffix on the last), each looked up in the
/// vocabulary (else byte_fallback to &lt;0xNN&gt; tokens, else the unk token, fused when fuse_unk), then the
/// adjacent pair with the lowest merge rank (leftmost on ties) is merged until none is left.
/// <para>Build it from a vocabulary and merges (<see cref="FromMerges"/>: GPT-2 / tokenizer.json / GGUF gpt2
/// vocabs) or from a vocabulary and scores (<see cref="FromScores"/>: SentencePiece-BPE / GGUF llama vocabs:
/// every pair (a, b) whose concatenation is a token t merges into t, the pair whose t has the HIGHEST score first).</para>
/// Thread-safe; words are cached (bounded) by their text.
/// </summary>
internal sealed class BpeModel : IModel
{
    private readonly VocabTable _vocab;
    private readonly MergeTable _merges;
    private readonly int[] _charIds; // BMP char -> id of the one-char token, -1 if none (used when no prefix/suffix)
    private readonly int[] _byteIds; // byte -> id of <0xNN>, -1 if none
    private readonly int _unkId;
    private readonly WordCache<int[]> _cache = new(200_000);
    private const int MaxCachedWordLength = 256;

    public string? UnkToken { get; }
    public string? ContinuingSubwordPrefix { get; }
    public string? EndOfWordSuffix { get; }
    public bool FuseUnk { get; }
    public bool ByteFallback { get; }
    public bool IgnoreMerges { get; }
    public int VocabSize => _vocab.Count;

    public int IdBound => _vocab.IdBound;

    /// <summary>The vocabulary (token -> id, id -> token).</summary>
    internal VocabTable Vocab => _vocab;

    /// <summary>The merges in rank order when built from merges (null when built from scores); their strings are
    /// made on first use (only writers of vocabularies ask).</summary>
    public IReadOnlyList<(string Left, string Right)>? Merges =>
        _mergeStrings ??= _mergeIds is null ? null : Array.ConvertAll(_mergeIds, m => (_vocab.IdToToken(m.Left)!, _vocab.IdToToken(m.Right)!));

    private (int Left, int Right, int Merged)[]? _mergeIds;

    /// <summary>The merges as ids in rank order when built from merges (null when built from scores).</summary>
    internal (int Left, int Right, int Merged)[]? MergeIdArray => _mergeIds;
    private (string, string)[]? _mergeStrings;

    /// <summary>The per-token scores when built from scores (null when built from merges).</summary>
    public IReadOnlyList<float>? Scores { get; private init; }

    private BpeModel(VocabTable vocab, MergeTable merges, string? unkToken,
        string? continuingSubwordPrefix, string? endOfWordSuffix, bool fuseUnk, bool byteFallback, bool ignoreMerges)
    {
        _vocab = vocab;
        _merges = merges;
        UnkToken = unkToken;
        ContinuingSubwordPrefix = string.IsNullOrEmpty(continuingSubwordPrefix) ? null : continuingSubwordPrefix;
        EndOfWordSuffix = string.IsNullOrEmpty(endOfWordSuffix) ? null : endOfWordSuffix;
        FuseUnk = fuseUnk;
        ByteFallback = byteFallback;
        IgnoreMerges = ignoreMerges;
        _charIds = new int[65536];
        Array.Fill(_charIds, -1);
        for (int e = 0; e < vocab.Count; e++)
        {
            var t = vocab.KeyAt(e);
            if (t.Length == 1) _charIds[t[0]] = vocab.IdAt(e);
        }
        _byteIds = new int[256];
        Span<char> hex = ['<', '0', 'x', '0', '0', '>'];
        for (int b = 0; b < 256; b++)
        {
            hex[3] = "0123456789ABCDEF"[b >> 4];
            hex[4] = "0123456789ABCDEF"[b & 15];
            _byteIds[b] = vocab.TryGetValue(hex, out int bid) ? bid : -1;
        }
        _unkId = unkToken != null && vocab.TryGetValue(unkToken, out int u) ? u : -1;
        _splitAtMetaspace = ContinuingSubwordPrefix == null && EndOfWordSuffix == null && !ignoreMerges
            && vocab.ContainsKey("\u2581") && !AnyMetaspaceAfterOtherChar(vocab);
    }

    /// <summary>Whether a token has a '▁' after a char other than '▁' (SentencePiece vocabularies have none).</summary>
    internal static bool AnyMetaspaceAfterOtherChar(VocabTable vocab)
    {
        for (int e = 0; e < vocab.Count; e++) if (HasMetaspaceAfterOtherChar(vocab.KeyAt(e))) return true;
        return false;
    }

    private static bool HasMetaspaceAfterOtherChar(ReadOnlySpan<char> t)
    {
        for (int i = 1; i < t.Length; i++) if (t[i] == Metaspace && t[i - 1] != Metaspace) return true;
        return false;
    }

    /// <summary>BPE from a vocabulary and ordered merges (rank = index in <paramref name="merges"/>). A merge whose
    /// parts or result is not in the vocabulary is an error, as in HF.</summary>
    public static BpeModel FromMerges(IReadOnlyDictionary<string, int> vocab, IEnumerable<(string Left, string Right)> merges,
        string? unkToken = null, string? continuingSubwordPrefix = null, string? endOfWordSuffix = null,
        bool fuseUnk = false, bool byteFallback = false, bool ignoreMerges = false)
    {
        var v = VocabTable.From(vocab);
        var ids = new List<(int, int, int)>();
        int guess = -1;
        foreach (var (a, b) in merges) ids.Add(MergeIds(v, ids.Count, a, b, continuingSubwordPrefix, ref guess));
        return FromMergeIds(v, [.. ids], unkToken, continuingSubwordPrefix,
            endOfWordSuffix, fuseUnk, byteFallback, ignoreMerges);
    }

    internal static InvalidDataException MergeError(int rank, ReadOnlySpan<char> a, ReadOnlySpan<char> b, string what) =>
        new($"merge {rank} ('{a} {b}'): {what}.");

    /// <summary>The ids of merge <paramref name="rank"/> (a, b): a's, b's and the merged token's, which is a + b without
    /// the continuing_subword_prefix of b (HF's rule). Throws <see cref="InvalidDataException"/> naming the merge when
    /// one of them is not in the vocabulary. Looks the parts up as spans: no string per merge. A trained vocabulary
    /// numbers the tokens its merges make in merge order, so the merged token is first compared with the token after
    /// the previous merge's (<paramref name="guess"/>: one read of nearby chars instead of a hash probe), and looked up
    /// when it is another.</summary>
    internal static (int Left, int Right, int Merged) MergeIds(VocabTable vocab, int rank,
        ReadOnlySpan<char> a, ReadOnlySpan<char> b, string? continuingSubwordPrefix, ref int guess)
    {
        if (!vocab.TryGetValue(a, out int ia)) throw MergeError(rank, a, b, $"token '{a}' is not in the vocabulary");
        if (!vocab.TryGetValue(b, out int ib)) throw MergeError(rank, a, b, $"token '{b}' is not in the vocabulary");
        var bPart = !string.IsNullOrEmpty(continuingSubwordPrefix) && b.StartsWith(continuingSubwordPrefix, StringComparison.Ordinal)
            ? b[continuingSubwordPrefix.Length..] : b;
        int mlen = a.Length + bPart.Length;
        Span<char> buf = mlen <= 256 ? stackalloc char[256] : new char[mlen];
        a.CopyTo(buf);
        bPart.CopyTo(buf[a.Length..]);
        int im = guess;
        if (!vocab.IdIs(im, buf[..mlen]) && !vocab.TryGetValue(buf[..mlen], out im))
            throw MergeError(rank, a, b, $"the merged token '{buf[..mlen]}' is not in the vocabulary");
        guess = im + 1;
        return (ia, ib, im);
    }

    /// <summary>BPE from a vocabulary and ordered merges given as ids (left, right, merged; rank = index), as
    /// <see cref="MergeIds"/> makes them: the loaders' path. The merge strings are rebuilt from the ids only if asked for.</summary>
    internal static BpeModel FromMergeIds(VocabTable vocab, (int Left, int Right, int Merged)[] merges,
        string? unkToken = null, string? continuingSubwordPrefix = null, string? endOfWordSuffix = null,
        bool fuseUnk = false, bool byteFallback = false, bool ignoreMerges = false)
    {
        var table = MergeTable.Build(merges);
        return new BpeModel(vocab, table, unkToken, continuingSubwordPrefix, endOfWordSuffix, fuseUnk, byteFallback, ignoreMerges)
        {
            _mergeIds = merges,
        };
    }

    /// <summary>SentencePiece-style BPE: tokens[i] has id i and score scores[i]; every split of a token into two
    /// tokens is a merge, ranked by the merged token's score (highest first; equal scores merge leftmost first).
    /// With scores = -rank and ignoreMerges this is tiktoken's algorithm (a word in the vocabulary is one token).
    /// Note: a code point missing from the vocabulary becomes byte tokens (or unk) before merging, as HF does.</summary>
    public static BpeModel FromScores(IReadOnlyList<string> tokens, IReadOnlyList<float> scores, string? unkToken = null,
        bool byteFallback = true, bool fuseUnk = true, bool ignoreMerges = false)
    {
        if (tokens.Count != scores.Count) throw new ArgumentException($"{tokens.Count} tokens but {scores.Count} scores; expected one score per token.");
        var v = new VocabTable(tokens.Count, tokens.Count * 6);
        for (int i = 0; i < tokens.Count; i++) if (!v.ContainsKey(tokens[i])) v.Add(tokens[i], i); // the first of equal tokens keeps its id
        // Dense rank of scores, highest first.
        var distinct = scores.Distinct().OrderByDescending(s => s).ToArray();
        var rankOf = new Dictionary<float, int>(distinct.Length);
        for (int i = 0; i < distinct.Length; i++) rankOf[distinct[i]] = i;
        var m = new Dictionary<long, (int, int)>(PairKeyComparer.Instance);
        for (int id = 0; id < tokens.Count; id++)
        {
            string t = tokens[id];
            if (t.Length < 2 || !v.TryGetValue(t, out int tid) || tid != id) continue;
            int r = rankOf[scores[id]];
            for (int k = 1; k < t.Length; k++)
            {
                if (char.IsLowSurrogate(t[k])) continue;
                if (v.TryGetValue(t.AsSpan(0, k), out int ia) && v.TryGetValue(t.AsSpan(k), out int ib))
                {
                    long key = Key(ia, ib);
                    if (!m.TryGetValue(key, out var old) || old.Item1 > r) m[key] = (r, id);
                }
            }
        }
        return new BpeModel(v, new MergeTable(m), unkToken, null, null, fuseUnk, byteFallback, ignoreMerges) { Scores = [.. scores] };
    }

    /// <summary>long.GetHashCode is lo ^ hi, which collides massively for (id, id) pairs: use a multiplicative hash.</summary>
    private sealed class PairKeyComparer : IEqualityComparer<long>
    {
        public static readonly PairKeyComparer Instance = new();

        public bool Equals(long x, long y) => x == y;

        public int GetHashCode(long k) => (int)(((ulong)k * 0x9E3779B97F4A7C15UL) >> 32);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    public int? TokenToId(ReadOnlySpan<char> token) => _vocab.TryGetValue(token, out int id) ? id : null;

    public string? IdToToken(int id) => _vocab.IdToToken(id);

    public void Tokenize(ReadOnlySpan<char> word, TokenSink sink)
    {
        if (word.IsEmpty) return;
        if (_splitAtMetaspace && word.Length > 16)
        {
            // SentencePiece vocabularies have no token with '▁' after another char, so no merge crosses the
            // point before such a '▁': BPE the pieces separately (and cache them) with the same result.
            int start = 0;
            for (int i = 1; i < word.Length; i++)
            {
                if (word[i] == Metaspace && word[i - 1] != Metaspace)
                {
                    TokenizeCached(word[start..i], sink, start);
                    start = i;
                }
            }
            TokenizeCached(word[start..], sink, start);
            return;
        }
        TokenizeCached(word, sink, 0);
    }

    private const char Metaspace = '\u2581';
    private readonly bool _splitAtMetaspace;

    private void TokenizeCached(ReadOnlySpan<char> word, TokenSink sink, int offset)
    {
        if (IgnoreMerges && _vocab.TryGetValue(word, out int whole))
        {
            sink.Add(whole, offset, offset + word.Length);
            return;
        }
        if (word.Length <= MaxCachedWordLength && _cache.TryGet(word, out var hit))
        {
            for (int i = 0; i < hit.Length; i += 3) sink.Add(hit[i], offset + hit[i + 1], offset + hit[i + 2]);
            return;
        }
        int before = sink.Count;
        MergeWord(word, sink);
        if (word.Length <= MaxCachedWordLength && _cache.HasRoom)
        {
            int n = sink.Count - before;
            var entry = new int[n * 3];
            for (int i = 0; i < n; i++)
            {
                entry[3 * i] = sink.Ids[before + i];
                entry[3 * i + 1] = sink.Starts[before + i];
                entry[3 * i + 2] = sink.Ends[before + i];
            }
            _cache.TryAdd(word, entry);
        }
        if (offset != 0)
        {
            for (int i = before; i < sink.Count; i++)
            {
                sink.Starts[i] += offset;
                sink.Ends[i] += offset;
            }
        }
    }

    /// <summary>Ids only into a list (used by fast paths); same result as <see cref="Tokenize"/>.</summary>
    public void TokenizeIds(ReadOnlySpan<char> word, List<int> ids)
    {
        if (word.IsEmpty) return;
        if (IgnoreMerges && _vocab.TryGetValue(word, out int whole)) { ids.Add(whole); return; }
        if (word.Length <= MaxCachedWordLength && _cache.TryGet(word, out var hit))
        {
            for (int i = 0; i < hit.Length; i += 3) ids.Add(hit[i]);
            return;
        }
        var sink = t_sink ??= new TokenSink();
        sink.Clear();
        Tokenize(word, sink);
        for (int i = 0; i < sink.Count; i++) ids.Add(sink.Ids[i]);
    }

    [ThreadStatic] private static TokenSink? t_sink;

    private struct Symbol
    {
        public int Id, Start, End, Prev, Next;
    }

    private void MergeWord(ReadOnlySpan<char> w, TokenSink sink)
    {
        Symbol[]? rented = null;
        int cap = w.Length * (4 + 3 * (ContinuingSubwordPrefix?.Length ?? 0)) + 3 * (EndOfWordSuffix?.Length ?? 0) + 8;
        Span<Symbol> sym = cap <= 512 ? stackalloc Symbol[cap] : (rented = System.Buffers.ArrayPool<Symbol>.Shared.Rent(cap));
        int n = 0;
        int unkId = -1, unkStart = 0, unkEnd = 0;
        bool hasUnk = false;
        Span<byte> bytes = stackalloc byte[8];
        for (int i = 0; i < w.Length;)
        {
            int len = char.IsHighSurrogate(w[i]) && i + 1 < w.Length && char.IsLowSurrogate(w[i + 1]) ? 2 : 1;
            bool isFirst = i == 0, isLast = i + len == w.Length;
            int id = -1;
            string? key = null;
            if ((ContinuingSubwordPrefix != null && !isFirst) || (EndOfWordSuffix != null && isLast))
            {
                key = (!isFirst && ContinuingSubwordPrefix != null ? ContinuingSubwordPrefix : "") + w.Slice(i, len).ToString()
                    + (isLast && EndOfWordSuffix != null ? EndOfWordSuffix : "");
                if (_vocab.TryGetValue(key, out int kid)) id = kid;
            }
            else if (len == 1) id = _charIds[w[i]];
            else if (_vocab.TryGetValue(w.Slice(i, len), out int sid)) id = sid;

            if (id >= 0)
            {
                if (hasUnk) { Add(sym, ref n, unkId, unkStart, unkEnd); hasUnk = false; }
                Add(sym, ref n, id, i, i + len);
            }
            else
            {
                bool done = false;
                if (ByteFallback)
                {
                    scoped ReadOnlySpan<byte> bs;
                    byte[]? big = null;
                    if (key == null)
                    {
                        Rune.DecodeFromUtf16(w.Slice(i, len), out var r, out _);
                        int nb = r.EncodeToUtf8(bytes);
                        bs = bytes[..nb];
                    }
                    else { big = System.Text.Encoding.UTF8.GetBytes(key); bs = big; }
                    bool all = true;
                    foreach (byte b in bs) if (_byteIds[b] < 0) { all = false; break; }
                    if (all)
                    {
                        if (n + bs.Length >= sym.Length) throw new InvalidOperationException("internal: symbol buffer too small");
                        foreach (byte b in bs) Add(sym, ref n, _byteIds[b], i, i + len);
                        done = true;
                    }
                }
                if (!done && UnkToken != null)
                {
                    if (_unkId < 0) throw new InvalidOperationException($"The unk token '{UnkToken}' is not in the vocabulary.");
                    if (hasUnk && FuseUnk) unkEnd = i + len;
                    else
                    {
                        if (hasUnk) Add(sym, ref n, unkId, unkStart, unkEnd);
                        unkId = _unkId; unkStart = i; unkEnd = i + len; hasUnk = true;
                    }
                }
            }
            i += len;
        }
        if (hasUnk) Add(sym, ref n, unkId, unkStart, unkEnd);
        if (n > 1 && _merges.Count > 0)
        {
            if (n <= 48) MergeSmall(sym[..n]);
            else MergeHeap(sym[..n]);
        }
        for (int i = 0; i < n; i = sym[i].Next)
        {
            sink.Add(sym[i].Id, sym[i].Start, sym[i].End);
            if (sym[i].Next < 0) break;
        }
        if (rented != null) System.Buffers.ArrayPool<Symbol>.Shared.Return(rented);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Add(Span<Symbol> sym, ref int n, int id, int start, int end)
    {
        sym[n] = new Symbol { Id = id, Start = start, End = end, Prev = n - 1, Next = -1 };
        if (n > 0) sym[n - 1].Next = n;
        n++;
    }

    /// <summary>Repeatedly merges the lowest-rank pair (leftmost on ties): O(n²), fastest for short words.</summary>
    private void MergeSmall(Span<Symbol> sym)
    {
        while (true)
        {
            int bestRank = int.MaxValue, bestPos = -1, bestNew = -1;
            for (int i = 0; i >= 0 && sym[i].Next >= 0; i = sym[i].Next)
            {
                if (_merges.TryGet(sym[i].Id, sym[sym[i].Next].Id, out int mr, out int mn) && mr < bestRank)
                {
                    bestRank = mr; bestPos = i; bestNew = mn;
                }
            }
            if (bestPos < 0) return;
            int right = sym[bestPos].Next;
            sym[bestPos].Id = bestNew;
            sym[bestPos].End = sym[right].End;
            sym[bestPos].Next = sym[right].Next;
            if (sym[right].Next >= 0) sym[sym[right].Next].Prev = bestPos;
        }
    }

    /// <summary>HF word.rs merge_all: a min-heap of (rank, pos) with the merged id; stale entries skipped. O(n log n).</summary>
    private void MergeHeap(Span<Symbol> sym)
    {
        var heap = System.Buffers.ArrayPool<(long Key, int NewId)>.Shared.Rent(sym.Length * 3 + 4);
        int count = 0;
        for (int i = 0; i + 1 < sym.Length; i++)
            if (_merges.TryGet(sym[i].Id, sym[i + 1].Id, out int r0, out int n0)) Push(heap, ref count, r0, i, n0);
        while (count > 0)
        {
            var (key, newId) = heap[0];
            heap[0] = heap[--count];
            SiftDown(heap, count, 0);
            int pos = (int)(key & 0xFFFFFFFF);
            if (sym[pos].Prev == -2 || sym[pos].Next < 0) continue;
            int right = sym[pos].Next;
            if (!_merges.TryGet(sym[pos].Id, sym[right].Id, out _, out int curNew) || curNew != newId) continue;
            sym[pos].Id = curNew;
            sym[pos].End = sym[right].End;
            sym[pos].Next = sym[right].Next;
            sym[right].Prev = -2; // removed
            if (sym[right].Next >= 0) sym[sym[right].Next].Prev = pos;
            int prev = sym[pos].Prev;
            if (prev >= 0 && _merges.TryGet(sym[prev].Id, sym[pos].Id, out int pr, out int pn)) Push(heap, ref count, pr, prev, pn);
            int next = sym[pos].Next;
            if (next >= 0 && _merges.TryGet(sym[pos].Id, sym[next].Id, out int nr, out int nn)) Push(heap, ref count, nr, pos, nn);
        }
        System.Buffers.ArrayPool<(long, int)>.Shared.Return(heap);
    }

    private static void Push((long Key, int NewId)[] heap, ref int count, int rank, int pos, int newId)
    {
        long key = ((long)rank << 32) | (uint)pos;
        int i = count++;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (heap[parent].Key <= key) break;
            heap[i] = heap[parent];
            i = parent;
        }
        heap[i] = (key, newId);
    }

    private static void SiftDown((long Key, int NewId)[] heap, int count, int i)
    {
        var item = heap[i];
        while (true)
        {
            int c = 2 * i + 1;
            if (c >= count) break;
            if (c + 1 < count && heap[c + 1].Key < heap[c].Key) c++;
            if (heap[c].Key >= item.Key) break;
            heap[i] = heap[c];
            i = c;
        }
        if (i < count) heap[i] = item;
    }
}
