namespace SharpLM.Inference.Embeddings;

/// <summary>What the encoder needs from a tokenizer: ids with [CLS] ... [SEP], the special ids, and id -> token.</summary>
internal interface IEncoderTokenizer
{
    /// <summary>[CLS] tokens... [SEP].</summary>
    int[] Encode(string text);

    int SepId { get; }
    int PadId { get; }

    /// <summary>The [MASK] id, or -1 when the vocabulary has none.</summary>
    int MaskId { get; }

    string MaskToken { get; }

    string IdToToken(int id);
}

/// <summary><see cref="IEncoderTokenizer"/> over SharpLM.Tokenizers (tokenizer.json or vocab.txt).</summary>
internal sealed class SharpLmEncoderTokenizer : IEncoderTokenizer
{
    private readonly SharpLM.Tokenizers.Tokenizer _tok;

    public SharpLmEncoderTokenizer(SharpLM.Tokenizers.Tokenizer tok)
    {
        _tok = tok;
        SepId = tok.TokenToId("[SEP]") ?? tok.TokenToId("</s>")
            ?? throw new InvalidDataException($"{tok.SourceName}: the tokenizer has no [SEP] token; a BERT-family encoder needs one");
        PadId = tok.PadId ?? tok.TokenToId("[PAD]") ?? 0;
        MaskToken = tok.TokenToId("[MASK]") is not null ? "[MASK]" : "<mask>";
        MaskId = tok.TokenToId(MaskToken) ?? -1;
    }

    public int SepId { get; }
    public int PadId { get; }
    public int MaskId { get; }
    public string MaskToken { get; }

    public int[] Encode(string text) => _tok.EncodeToIds(text, addSpecialTokens: true);

    public string IdToToken(int id) => _tok.IdToToken(id) ?? $"<{id}>";
}
