using SharpLM.Tokenizers.Core;

namespace SharpLM.Tokenizers.PreTokenizers;

/// <summary>An ids-only encoder for one pipeline shape; false sends the text down the general pipeline.</summary>
internal interface IFastIdsEncoder
{
    bool TryEncodeIds(ReadOnlySpan<char> text, out int[] ids);
}

/// <summary>Picks the ids-only fast path for a tokenizer's pipeline, if one applies (set SHARPLM_FAST_SPLIT=0 to
/// turn them all off): <see cref="FastByteLevel"/> (GPT-2, LLaMA-3, Qwen, tiktoken) or
/// <see cref="FastSentencePiece"/> (LLaMA-2, Mistral tokenizer.json) or <see cref="FastWordPiece"/> (BERT, on ASCII text).</summary>
internal static class FastPaths
{
    public static IFastIdsEncoder? TryCreate(INormalizer? normalizer, IPreTokenizer? preTokenizer, IModel model, IReadOnlyList<AddedToken> added) =>
        (IFastIdsEncoder?)FastByteLevel.TryCreate(normalizer, preTokenizer, model, added)
        ?? (IFastIdsEncoder?)FastSentencePiece.TryCreate(normalizer, preTokenizer, model, added)
        ?? FastWordPiece.TryCreate(normalizer, preTokenizer, model, added);
}
