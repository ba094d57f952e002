using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.RegularExpressions;
using SharpLM.Tokenizers.AddedTokens;
using SharpLM.Tokenizers.Core;
using SharpLM.Tokenizers.Models.Bpe;
using SharpLM.Tokenizers.Normalizers;
using SharpLM.Tokenizers.Tiktoken;

namespace SharpLM.Tokenizers.PreTokenizers;

/// <summary>
/// The ids-only fast path for byte-level BPE tokenizers (GPT-2, LLaMA-3, Qwen, tiktoken): added tokens are cut out
/// with one vectorized scan for their first chars, the text between them is split by a <see cref="FastSplit"/>
/// scanner, each piece is mapped to GPT-2 byte chars in a stack buffer, and the model turns it into ids through its
/// whole-word lookup and word cache. No NormalizedString, no offsets, no per-piece allocations.
/// Used only when the pipeline is exactly: no normalizer (or NFC/NFKC/NFD/NFKD on text that is already in that form),
/// pre-tokenizer Split(regex, Isolated) + ByteLevel(no prefix space, no regex) or ByteLevel(GPT-2 regex) (a known regex
/// runs on its hand-written scanner, another on .NET's Regex for text without surrogates),
/// a <see cref="BpeModel"/> or <see cref="TiktokenModel"/>, and plain added tokens (no lstrip/rstrip/single_word).
/// Anything else returns null from <see cref="TryCreate"/> and the general pipeline runs.
/// </summary>
internal sealed class FastByteLevel : IFastSegmentEncoder, IFastIdsEncoder
{
    private readonly FastSplitKind _kind;
    /// <summary>A split regex without a hand-written scanner, run by .NET's Regex (text with surrogates takes the general path).</summary>
    private readonly System.Text.RegularExpressions.Regex? _regex;
    private readonly NormalizationForm? _form;
    private readonly BpeModel? _bpe;
    private readonly TiktokenModel? _tiktoken;
    private readonly FastAddedTokens _added;
    private static readonly char[] ByteToChar = ByteLevelTables.ByteToChar;

    private FastByteLevel(FastSplitKind kind, System.Text.RegularExpressions.Regex? regex, NormalizationForm? form, IModel model, IEnumerable<AddedToken> added)
    {
        _kind = kind;
        _regex = regex;
        _form = form;
        _bpe = model as BpeModel;
        _tiktoken = model as TiktokenModel;
        _added = new FastAddedTokens(added);
    }

    /// <summary>The fast path for this pipeline, or null when it does not apply.</summary>
    internal static FastByteLevel? TryCreate(INormalizer? normalizer, IPreTokenizer? preTokenizer, IModel model, IReadOnlyList<AddedToken> added)
    {
        if (!FastSplit.Enabled) return null;
        if (model is not (BpeModel or TiktokenModel)) return null;
        if (model is BpeModel { ByteFallback: true } or BpeModel { ContinuingSubwordPrefix: not null } or BpeModel { EndOfWordSuffix: not null }) return null;
        NormalizationForm? form = null;
        if (normalizer is UnicodeNormalizer u) form = u.Form;
        else if (normalizer != null) return null;
        if (!FastAddedTokens.Supports(added, normalizerChangesText: form != null)) return null;
        FastSplitKind kind;
        System.Text.RegularExpressions.Regex? regex = null;
        switch (preTokenizer)
        {
            case SequencePreTokenizer { Items: [SplitPreTokenizer split, ByteLevelPreTokenizer { AddPrefixSpace: false, UseRegex: false }] }
                when split is { IsRegex: true, Behavior: SplitBehavior.Isolated, Invert: false }:
                if (!FastSplit.TryGetKind(split.Pattern, out kind)) regex = RegexCache.Get(split.Pattern);
                break;
            case ByteLevelPreTokenizer { AddPrefixSpace: false, UseRegex: true }:
                kind = FastSplitKind.Gpt2;
                break;
            default:
                return null;
        }
        return new FastByteLevel(kind, regex, form, model, added);
    }

    /// <summary>Encodes <paramref name="text"/> to ids; false when the text needs the general pipeline
    /// (not in the normalizer's form).</summary>
    public bool TryEncodeIds(ReadOnlySpan<char> text, out int[] ids)
    {
        // (string.IsNormalized is no help: with InvariantGlobalization it says true for everything.)
        if (_form is { } f && !UnicodeNormalization.IsTriviallyNormalized(text, f) && !text.SequenceEqual(UnicodeNormalization.Normalize(text.ToString(), f)))
        {
            ids = [];
            return false;
        }
        // .NET's Regex sees a surrogate pair as two chars (\p{L} misses astral letters); HF matches code points
        if (_regex != null && text.IndexOfAnyInRange('\uD800', '\uDFFF') >= 0)
        {
            ids = [];
            return false;
        }
        ids = _added.Encode(text, this);
        return true;
    }

    /// <summary>Text between added tokens: split, map to byte chars, model.</summary>
    public void EncodeSegment(ReadOnlySpan<char> s, List<int> ids)
    {
        if (_regex != null)
        {
            // HF's Split(Isolated): the matches and the text between them are pieces, in order
            int prev = 0;
            try
            {
                foreach (var m in _regex.EnumerateMatches(s))
                {
                    if (m.Length == 0) continue;
                    if (m.Index > prev) Piece(s[prev..m.Index], ids);
                    Piece(s.Slice(m.Index, m.Length), ids);
                    prev = m.Index + m.Length;
                }
            }
            catch (RegexMatchTimeoutException e)
            {
                throw RegexCache.TooSlow(e);
            }
            if (prev < s.Length) Piece(s[prev..], ids);
            return;
        }
        var hot = HotCache.For(this);
        Span<char> buffer = stackalloc char[256];
        int pos = 0;
        while (pos < s.Length)
        {
            int len = FastSplit.MatchLength(_kind, s, pos);
            var piece = s.Slice(pos, len);
            pos += len;
            // Pieces of at most 16 UTF-8 bytes: the per-thread hot cache, keyed by the bytes packed in two ulongs.
            if (len <= 16 && Pack(piece, out ulong k0, out ulong k1, out int nb))
            {
                ref var e = ref hot.Slot(k0, k1, nb);
                if (e.Length == nb && e.K0 == k0 && e.K1 == k1)
                {
                    ids.Add(e.Id0);
                    if (e.Count > 1) AddMore(ref e, ids);
                    continue;
                }
                int before = ids.Count;
                int n2 = MapToByteChars(piece, buffer);
                Model(buffer[..n2], ids);
                int added = ids.Count - before;
                if (added is >= 1 and <= 4)
                {
                    e.K0 = k0;
                    e.K1 = k1;
                    e.Length = nb;
                    e.Count = added;
                    e.Id0 = ids[before];
                    if (added > 1) e.Id1 = ids[before + 1];
                    if (added > 2) e.Id2 = ids[before + 2];
                    if (added > 3) e.Id3 = ids[before + 3];
                }
                continue;
            }
            char[]? rented = null;
            Span<char> mapped = len * 3 <= buffer.Length ? buffer : (rented = ArrayPool<char>.Shared.Rent(len * 3));
            int n = MapToByteChars(piece, mapped);
            Model(mapped[..n], ids);
            if (rented != null) ArrayPool<char>.Shared.Return(rented);
        }
    }

    private void Piece(ReadOnlySpan<char> piece, List<int> ids)
    {
        char[]? rented = null;
        Span<char> buffer = stackalloc char[256];
        Span<char> mapped = piece.Length * 3 <= buffer.Length ? buffer : (rented = ArrayPool<char>.Shared.Rent(piece.Length * 3));
        int n = MapToByteChars(piece, mapped);
        Model(mapped[..n], ids);
        if (rented != null) ArrayPool<char>.Shared.Return(rented);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Model(ReadOnlySpan<char> byteChars, List<int> ids)
    {
        if (_tiktoken != null) _tiktoken.TokenizeIds(byteChars, ids);
        else _bpe!.TokenizeIds(byteChars, ids);
    }

    private static void AddMore(ref HotCache.Entry e, List<int> ids)
    {
        ids.Add(e.Id1);
        if (e.Count > 2) ids.Add(e.Id2);
        if (e.Count > 3) ids.Add(e.Id3);
    }

    /// <summary>The UTF-8 bytes of a piece packed little-endian into two ulongs; false when over 16 bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Pack(ReadOnlySpan<char> piece, out ulong k0, out ulong k1, out int count)
    {
        k0 = 0;
        k1 = 0;
        count = 0;
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < piece.Length; i++)
        {
            char c = piece[i];
            int nb;
            if (c < 0x80)
            {
                utf8[0] = (byte)c;
                nb = 1;
            }
            else
            {
                Rune r;
                if (char.IsHighSurrogate(c) && i + 1 < piece.Length && char.IsLowSurrogate(piece[i + 1])) r = new Rune(c, piece[++i]);
                else if (char.IsSurrogate(c)) r = Rune.ReplacementChar;
                else r = new Rune(c);
                nb = r.EncodeToUtf8(utf8);
            }
            if (count + nb > 16) return false;
            for (int b = 0; b < nb; b++, count++)
            {
                if (count < 8) k0 |= (ulong)utf8[b] << (8 * count);
                else k1 |= (ulong)utf8[b] << (8 * (count - 8));
            }
        }
        return true;
    }

    /// <summary>
    /// A direct-mapped cache of the most recent pieces (≤ 16 UTF-8 bytes, ≤ 4 ids), one per thread and tokenizer so
    /// that entries are never read while another thread writes them. Sized for the distinct pieces of a few MB of text, where the
    /// model's 100K-200K-entry dictionaries miss the caches (64K entries of 40 bytes = 2.6 MB per thread and tokenizer, allocated on first use); English text hits it for most pieces.
    /// </summary>
    private sealed class HotCache
    {
        internal struct Entry
        {
            public ulong K0, K1;
            public int Length, Count, Id0, Id1, Id2, Id3;
        }

        private const int Bits = 16;
        private readonly Entry[] _entries = new Entry[1 << Bits];
        private readonly FastByteLevel _owner;

        private HotCache(FastByteLevel owner) => _owner = owner;

        [ThreadStatic] private static HotCache?[]? t_caches;

        /// <summary>This thread's cache for <paramref name="owner"/> (a few tokenizers per thread are kept).</summary>
        public static HotCache For(FastByteLevel owner)
        {
            var caches = t_caches ??= new HotCache?[4];
            for (int i = 0; i < caches.Length; i++)
                if (caches[i] is { } c && ReferenceEquals(c._owner, owner)) return c;
            var fresh = new HotCache(owner);
            Array.Copy(caches, 0, caches, 1, caches.Length - 1); // drop the least recently created
            caches[0] = fresh;
            return fresh;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public ref Entry Slot(ulong k0, ulong k1, int length)
        {
            ulong h = (k0 * 0x9E3779B97F4A7C15UL) ^ (k1 * 0xC2B2AE3D27D4EB4FUL) ^ (ulong)length;
            return ref _entries[(int)(h >> (64 - Bits))];
        }
    }

    /// <summary>UTF-8 bytes of <paramref name="piece"/> as GPT-2 byte chars; returns the count. dest holds 3 per char.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int MapToByteChars(ReadOnlySpan<char> piece, Span<char> dest)
    {
        int n = 0;
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < piece.Length; i++)
        {
            char c = piece[i];
            if (c < 0x80) { dest[n++] = ByteToChar[c]; continue; }
            int w = 1;
            Rune r;
            if (char.IsHighSurrogate(c) && i + 1 < piece.Length && char.IsLowSurrogate(piece[i + 1]))
            {
                r = new Rune(c, piece[i + 1]);
                w = 2;
            }
            else if (char.IsSurrogate(c)) r = Rune.ReplacementChar;
            else r = new Rune(c);
            int nb = r.EncodeToUtf8(utf8);
            for (int b = 0; b < nb; b++) dest[n++] = ByteToChar[utf8[b]];
            i += w - 1;
        }
        return n;
    }
}
