using System.Buffers;
using SharpLM.Tokenizers.Core;
using SharpLM.Tokenizers.Models.Bpe;
using SharpLM.Tokenizers.Normalizers;

namespace SharpLM.Tokenizers.PreTokenizers;

/// <summary>
/// The ids-only fast path for SentencePiece-style BPE tokenizer.json files (LLaMA-1/2, Mistral): normalizer
/// Prepend("▁") + Replace(" " -> "▁"), no pre-tokenizer, a <see cref="BpeModel"/>. HF feeds each text (between added
/// tokens) to BPE as ONE word, which is slow for long texts and defeats the word cache. When no vocabulary token
/// holds '▁' after another char (checked at load), no merge can cross a boundary in front of a run of '▁', so the
/// word is cut there and every chunk ("▁the", "▁▁▁indent") goes through the model's cache: same ids, much faster.
/// </summary>
internal sealed class FastSentencePiece : IFastSegmentEncoder, IFastIdsEncoder
{
    private const char Space = '\u2581';
    private readonly BpeModel _model;
    private readonly FastAddedTokens _added;

    private FastSentencePiece(BpeModel model, IEnumerable<AddedToken> added)
    {
        _model = model;
        _added = new FastAddedTokens(added);
    }

    internal static FastSentencePiece? TryCreate(INormalizer? normalizer, IPreTokenizer? preTokenizer, IModel model, IReadOnlyList<AddedToken> added)
    {
        if (!FastSplit.Enabled || preTokenizer != null) return null;
        if (model is not BpeModel { ContinuingSubwordPrefix: null, EndOfWordSuffix: null } bpe) return null;
        if (normalizer is not SequenceNormalizer { Items: [PrependNormalizer { Prepend: "\u2581" }, ReplaceNormalizer { Literal: " ", Content: "\u2581" }] })
            return null;
        // Added tokens are cut from the raw text; normalized ones would be matched after the normalizer.
        if (!FastAddedTokens.Supports(added, normalizerChangesText: true)) return null;
        if (BpeModel.AnyMetaspaceAfterOtherChar(bpe.Vocab)) return null;
        return new FastSentencePiece(bpe, added);
    }

    public bool TryEncodeIds(ReadOnlySpan<char> text, out int[] ids)
    {
        ids = _added.Encode(text, this);
        return true;
    }

    public void EncodeSegment(ReadOnlySpan<char> segment, List<int> ids)
    {
        // Normalized: "▁" + segment with ' ' -> '▁'.
        char[] rented = ArrayPool<char>.Shared.Rent(segment.Length + 1);
        var w = rented.AsSpan(0, segment.Length + 1);
        w[0] = Space;
        segment.Replace(w[1..], ' ', Space);
        // Lone surrogates become U+FFFD, as the general pipeline does (Tokenizer.Sanitize).
        for (int i = w[1..].IndexOfAnyInRange('\uD800', '\uDFFF') + 1; i > 0 && i < w.Length; i++)
        {
            if (char.IsHighSurrogate(w[i]) && i + 1 < w.Length && char.IsLowSurrogate(w[i + 1])) i++;
            else if (char.IsSurrogate(w[i])) w[i] = '\uFFFD';
        }
        int start = 0;
        for (int i = 1; i < w.Length; i++)
        {
            if (w[i] == Space && w[i - 1] != Space)
            {
                _model.TokenizeIds(w[start..i], ids);
                start = i;
            }
        }
        _model.TokenizeIds(w[start..], ids);
        ArrayPool<char>.Shared.Return(rented);
    }
}
