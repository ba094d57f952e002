using System.Buffers;
using System.Text.RegularExpressions;
using SharpLM.Tokenizers.AddedTokens;
using SharpLM.Tokenizers.Models.Bpe;
using SharpLM.Tokenizers.Normalizers;
using SharpLM.Tokenizers.PreTokenizers;

namespace SharpLM.Tokenizers.Core;

/// <summary>
/// Ids-only encoding for the GPT-2 / LLaMA-3 / Qwen shape (optional NFC, Split(regex) + ByteLevel or ByteLevel with
/// its regex, BPE): added tokens are cut from the raw text, each regex match is mapped to byte chars in a stack
/// buffer and looked up in the BPE word cache by span — no allocation per word. Anything else (text that NFC
/// would change, surrogate pairs, other pipelines) returns false and the general path runs.
/// </summary>
internal sealed class ByteLevelBpeFastPath
{
    private readonly Regex _regex;
    private readonly bool _prefixSpace;
    private readonly bool _nfc;
    private readonly BpeModel _model;
    private readonly AddedVocabulary _added;

    private ByteLevelBpeFastPath(Regex regex, bool prefixSpace, bool nfc, BpeModel model, AddedVocabulary added)
    {
        _regex = regex;
        _prefixSpace = prefixSpace;
        _nfc = nfc;
        _model = model;
        _added = added;
    }

    public static ByteLevelBpeFastPath? TryCreate(Tokenizer t)
    {
        if (t.Model is not BpeModel bpe || bpe.ContinuingSubwordPrefix != null || bpe.EndOfWordSuffix != null) return null;
        bool nfc = false;
        if (t.Normalizer is UnicodeNormalizer { Form: System.Text.NormalizationForm.FormC }) nfc = true;
        else if (t.Normalizer != null) return null;
        if (!t.AddedVocabulary.AllRaw) return null;
        switch (t.PreTokenizer)
        {
            case ByteLevelPreTokenizer { UseRegex: true } bl:
                return new ByteLevelBpeFastPath(RegexCache.Get(ByteLevelPreTokenizer.Gpt2Pattern), bl.AddPrefixSpace, nfc, bpe, t.AddedVocabulary);
            case SequencePreTokenizer { Items: [SplitPreTokenizer { IsRegex: true, Behavior: SplitBehavior.Isolated, Invert: false } split,
                ByteLevelPreTokenizer { UseRegex: false, AddPrefixSpace: false }] }:
                return new ByteLevelBpeFastPath(RegexCache.Get(split.Pattern), false, nfc, bpe, t.AddedVocabulary);
            default:
                return null;
        }
    }

    [ThreadStatic] private static List<(int Start, int End, int Id)>? t_found;

    public bool TryEncode(ReadOnlySpan<char> text, List<int> ids)
    {
        if (text.IndexOfAnyInRange('\uD800', '\uDFFF') >= 0) return false;
        if (_nfc && !UnicodeNormalization.IsNormalized(text, System.Text.NormalizationForm.FormC)) return false;
        if (_prefixSpace) return false; // the prefix space per piece needs the general path's piece handling
        var found = t_found ??= new List<(int, int, int)>();
        found.Clear();
        if (!_added.IsEmpty)
        {
            // The matcher works on strings; only build one when an added token's first char occurs.
            string s = text.ToString();
            _added.FindRaw(s, found);
        }
        int last = 0;
        foreach (var (start, end, id) in found)
        {
            if (last < start) EncodePiece(text[last..start], ids);
            ids.Add(id);
            last = end;
        }
        if (last < text.Length) EncodePiece(text[last..], ids);
        return true;
    }

    private void EncodePiece(ReadOnlySpan<char> piece, List<int> ids)
    {
        char[]? rented = null;
        Span<char> buf = stackalloc char[256];
        int prev = 0;
        foreach (var m in _regex.EnumerateMatches(piece))
        {
            if (m.Length == 0) continue;
            if (m.Index > prev) Word(piece[prev..m.Index], ref buf, ref rented, ids); // text between matches is a piece too
            Word(piece.Slice(m.Index, m.Length), ref buf, ref rented, ids);
            prev = m.Index + m.Length;
        }
        if (prev < piece.Length) Word(piece[prev..], ref buf, ref rented, ids);
        if (rented != null) ArrayPool<char>.Shared.Return(rented);
    }

    private void Word(ReadOnlySpan<char> word, ref Span<char> buf, ref char[]? rented, List<int> ids)
    {
        if (word.Length * 3 > buf.Length)
        {
            if (rented != null) ArrayPool<char>.Shared.Return(rented);
            rented = ArrayPool<char>.Shared.Rent(word.Length * 3);
            buf = rented;
        }
        int n = ByteLevelTables.MapToByteChars(word, buf);
        _model.TokenizeIds(buf[..n], ids);
    }
}
