namespace SharpLM.Tokenizers.Core;

/// <summary>One piece of a pre-tokenized sequence: either text still to tokenize, or an added token already found.</summary>
internal struct Split
{
    public NormalizedString Norm;
    /// <summary>The added token id when this split is an added token, else -1.</summary>
    public int TokenId;

    public Split(NormalizedString norm, int tokenId = -1)
    {
        Norm = norm;
        TokenId = tokenId;
    }
}

/// <summary>A sequence cut into splits (HF's PreTokenizedString).</summary>
internal sealed class PreTokenizedString
{
    public List<Split> Splits = new(8);
    private List<Split> _scratch = new(8);
    private readonly List<Split> _parts = new(8);

    /// <summary>Replaces every split that is not an added token by what <paramref name="fn"/> writes to its
    /// output list; empty results are dropped (as HF does).</summary>
    public void Split<TState>(TState state, Action<TState, NormalizedString, List<Split>> fn)
    {
        var output = _scratch;
        output.Clear();
        foreach (var s in Splits)
        {
            if (s.TokenId >= 0) { output.Add(s); continue; }
            _parts.Clear();
            fn(state, s.Norm, _parts);
            foreach (var p in _parts)
                if (p.Norm.Length > 0) output.Add(p);
        }
        _scratch = Splits;
        Splits = output;
    }

    /// <summary>Transforms every split that is not an added token in place.</summary>
    public void Normalize<TState>(TState state, Action<TState, NormalizedString> fn)
    {
        foreach (var s in Splits)
            if (s.TokenId < 0) fn(state, s.Norm);
    }
}

/// <summary>Where a model writes its tokens: ids and char spans relative to the word it was given.</summary>
internal sealed class TokenSink
{
    public int[] Ids = new int[64];
    public int[] Starts = new int[64];
    public int[] Ends = new int[64];
    public int Count;

    public void Clear() => Count = 0;

    public void Add(int id, int start, int end)
    {
        if (Count == Ids.Length)
        {
            Array.Resize(ref Ids, Count * 2);
            Array.Resize(ref Starts, Count * 2);
            Array.Resize(ref Ends, Count * 2);
        }
        Ids[Count] = id;
        Starts[Count] = start;
        Ends[Count] = end;
        Count++;
    }
}

/// <summary>Normalizer: rewrites the text of a piece (HF normalizers/).</summary>
internal interface INormalizer
{
    void Normalize(NormalizedString text);
}

/// <summary>Pre-tokenizer: cuts the pieces into words, possibly rewriting them (HF pre_tokenizers/).</summary>
internal interface IPreTokenizer
{
    void PreTokenize(PreTokenizedString text);
}

/// <summary>Model: turns one word into ids (HF models/).</summary>
internal interface IModel
{
    /// <summary>Appends the tokens of <paramref name="word"/> with spans relative to it.</summary>
    void Tokenize(ReadOnlySpan<char> word, TokenSink sink);

    int? TokenToId(ReadOnlySpan<char> token);

    string? IdToToken(int id);

    /// <summary>Number of ids of the model's own vocabulary (not counting added tokens beyond it).</summary>
    int VocabSize { get; }

    /// <summary>One past the largest id the model knows (ids may have holes).</summary>
    int IdBound { get; }

    /// <summary>The unknown token, if any.</summary>
    string? UnkToken { get; }
}

/// <summary>Post-processor: adds special tokens, sets type ids, merges pairs (HF processors/).</summary>
internal interface IPostProcessor
{
    int AddedTokens(bool isPair);

    Encoding Process(Encoding encoding, Encoding? pair, bool addSpecialTokens);
}

/// <summary>Decoder: turns token strings back into text pieces, in place (HF decoders/, decode_chain).</summary>
internal interface IDecoder
{
    void DecodeChain(List<string> tokens);
}
