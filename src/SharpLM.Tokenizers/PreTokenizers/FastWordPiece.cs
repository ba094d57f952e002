using SharpLM.Tokenizers.Core;
using SharpLM.Tokenizers.Models.WordPiece;
using SharpLM.Tokenizers.Normalizers;

namespace SharpLM.Tokenizers.PreTokenizers;

/// <summary>
/// The ids-only fast path for BERT tokenizers (BertNormalizer + BertPreTokenizer + WordPiece: vocab.txt and BERT
/// tokenizer.json files) on printable-ASCII text, where the normalizer only lowercases (clean_text maps tab and
/// newlines to spaces; accents, controls and CJK do not occur) and the pre-tokenizer cuts at whitespace and isolates
/// each ASCII punctuation char (every printable non-alphanumeric ASCII char is punctuation to BERT). Words go through
/// WordPiece once and are cached. Text with any other char goes down the general pipeline (false).
/// </summary>
internal sealed class FastWordPiece : IFastSegmentEncoder, IFastIdsEncoder
{
    private readonly WordPieceModel _model;
    private readonly bool _lowercase;
    private readonly FastAddedTokens _added;
    private readonly WordCache<int[]> _cache = new(100_000);
    [ThreadStatic] private static TokenSink? t_sink;

    private FastWordPiece(WordPieceModel model, bool lowercase, IEnumerable<AddedToken> added)
    {
        _model = model;
        _lowercase = lowercase;
        _added = new FastAddedTokens(added);
    }

    internal static FastWordPiece? TryCreate(INormalizer? normalizer, IPreTokenizer? preTokenizer, IModel model, IReadOnlyList<AddedToken> added)
    {
        if (!FastSplit.Enabled || preTokenizer is not BertPreTokenizer || model is not WordPieceModel wp) return null;
        if (normalizer is not BertNormalizer bert) return null;
        if (!FastAddedTokens.Supports(added, normalizerChangesText: bert.Lowercase)) return null;
        return new FastWordPiece(wp, bert.Lowercase, added);
    }

    public bool TryEncodeIds(ReadOnlySpan<char> text, out int[] ids)
    {
        foreach (char c in text)
        {
            if (c is >= ' ' and <= '~' or '\t' or '\n' or '\r') continue;
            ids = [];
            return false;
        }
        ids = _added.Encode(text, this);
        return true;
    }

    public void EncodeSegment(ReadOnlySpan<char> segment, List<int> ids)
    {
        int i = 0;
        while (i < segment.Length)
        {
            char c = segment[i];
            if (c is ' ' or '\t' or '\n' or '\r') { i++; continue; }
            int start = i;
            if (char.IsAsciiLetterOrDigit(c)) while (i < segment.Length && char.IsAsciiLetterOrDigit(segment[i])) i++;
            else i++; // one punctuation char is one word
            Word(segment[start..i], ids);
        }
    }

    private void Word(ReadOnlySpan<char> word, List<int> ids)
    {
        Span<char> lower = word.Length <= 128 ? stackalloc char[word.Length] : new char[word.Length];
        if (_lowercase) word.ToLowerInvariant(lower);
        else word.CopyTo(lower);
        if (_cache.TryGet(lower, out var hit)) { ids.AddRange(hit); return; }
        var sink = t_sink ??= new TokenSink();
        sink.Clear();
        _model.Tokenize(lower, sink);
        var result = sink.Ids.AsSpan(0, sink.Count).ToArray();
        _cache.TryAdd(lower, result);
        ids.AddRange(result);
    }
}
