using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
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
/// pre-tokenizer Split(known regex, Isolated) + ByteLevel(no prefix space, no regex) or ByteLevel(GPT-2 regex),
/// a <see cref="BpeModel"/> or <see cref="TiktokenModel"/>, and plain added tokens (no lstrip/rstrip/single_word).
/// Anything else returns null from <see cref="TryCreate"/> and the general pipeline runs.
/// </summary>
internal sealed class FastByteLevel
{
    private readonly FastSplitKind _kind;
    private readonly NormalizationForm? _form;
    private readonly BpeModel? _bpe;
    private readonly TiktokenModel? _tiktoken;
    private readonly SearchValues<char>? _addedFirsts;
    private readonly Dictionary<char, (string Text, int Id)[]> _addedByFirst = [];
    private static readonly char[] ByteToChar = ByteLevelTables.ByteToChar;

    private FastByteLevel(FastSplitKind kind, NormalizationForm? form, IModel model, IEnumerable<AddedToken> added)
    {
        _kind = kind;
        _form = form;
        _bpe = model as BpeModel;
        _tiktoken = model as TiktokenModel;
        foreach (var g in added.Where(t => t.Content.Length > 0).GroupBy(t => t.Content[0]))
            _addedByFirst[g.Key] = g.OrderByDescending(t => t.Content.Length).Select(t => (t.Content, t.Id)).ToArray();
        if (_addedByFirst.Count > 0) _addedFirsts = SearchValues.Create(_addedByFirst.Keys.ToArray());
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
        if (added.Any(t => t.LStrip || t.RStrip || t.SingleWord || (t.Normalized && form != null))) return null;
        // One leftmost-longest matcher stands for HF's two passes (raw tokens, then normalized ones) only when all
        // added tokens are of one kind.
        if (added.Any(t => t.Normalized) && added.Any(t => !t.Normalized)) return null;
        FastSplitKind kind;
        switch (preTokenizer)
        {
            case SequencePreTokenizer { Items: [SplitPreTokenizer split, ByteLevelPreTokenizer { AddPrefixSpace: false, UseRegex: false }] }
                when split is { IsRegex: true, Behavior: SplitBehavior.Isolated, Invert: false } && FastSplit.TryGetKind(split.Pattern, out kind):
                break;
            case ByteLevelPreTokenizer { AddPrefixSpace: false, UseRegex: true }:
                kind = FastSplitKind.Gpt2;
                break;
            default:
                return null;
        }
        return new FastByteLevel(kind, form, model, added);
    }

    /// <summary>Encodes <paramref name="text"/> to ids; false when the text needs the general pipeline
    /// (not in the normalizer's form).</summary>
    public bool TryEncodeIds(ReadOnlySpan<char> text, out int[] ids)
    {
        if (_form is { } f && !text.IsNormalized(f))
        {
            ids = [];
            return false;
        }
        var list = t_ids ??= new List<int>(1024);
        list.Clear();
        int pos = 0;
        if (_addedFirsts != null)
        {
            int i = 0;
            while (i < text.Length)
            {
                int k = text[i..].IndexOfAny(_addedFirsts);
                if (k < 0) break;
                i += k;
                int hitLen = 0, hitId = -1;
                foreach (var (t, id) in _addedByFirst[text[i]])
                {
                    if (text[i..].StartsWith(t, StringComparison.Ordinal))
                    {
                        hitLen = t.Length;
                        hitId = id;
                        break;
                    }
                }
                if (hitId < 0) { i++; continue; }
                EncodeSegment(text[pos..i], list);
                list.Add(hitId);
                i += hitLen;
                pos = i;
            }
        }
        EncodeSegment(text[pos..], list);
        ids = [.. list];
        if (list.Capacity > 1 << 20) t_ids = null;
        return true;
    }

    [ThreadStatic] private static List<int>? t_ids;

    private void EncodeSegment(ReadOnlySpan<char> s, List<int> ids)
    {
        Span<char> buffer = stackalloc char[256];
        int pos = 0;
        while (pos < s.Length)
        {
            int len = FastSplit.MatchLength(_kind, s, pos);
            var piece = s.Slice(pos, len);
            pos += len;
            char[]? rented = null;
            Span<char> mapped = len * 3 <= buffer.Length ? buffer : (rented = ArrayPool<char>.Shared.Rent(len * 3));
            int n = MapToByteChars(piece, mapped);
            if (_tiktoken != null) _tiktoken.TokenizeIds(mapped[..n], ids);
            else _bpe!.TokenizeIds(mapped[..n], ids);
            if (rented != null) ArrayPool<char>.Shared.Return(rented);
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
