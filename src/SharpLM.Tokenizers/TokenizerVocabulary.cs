using SharpLM.Tokenizers.Core;
using SharpLM.Tokenizers.Models.Bpe;
using SharpLM.Tokenizers.Models.Unigram;
using SharpLM.Tokenizers.Models.WordPiece;
using SharpLM.Tokenizers.PostProcessors;
using SharpLM.Tokenizers.PreTokenizers;
using SharpLM.Tokenizers.Tiktoken;

namespace SharpLM.Tokenizers;

/// <summary>
/// What a tokenizer's vocabulary is, for writers of other formats (GGUF): the model type, the tokens by id, the merges
/// or scores, whether the strings are GPT-2 byte-level chars, byte fallback, the split regex and the added tokens.
/// <see cref="Tokenizer.Describe"/> makes it; nothing here needs the tokenizer's internals or its tokenizer.json.
/// </summary>
public sealed record TokenizerVocabulary
{
    /// <summary>"BPE", "WordPiece", "Unigram", "WordLevel" or "Tiktoken".</summary>
    public required string ModelType { get; init; }

    /// <summary>Every token by id (model and added tokens); null where an id has none.</summary>
    public required IReadOnlyList<string?> Tokens { get; init; }

    /// <summary>BPE merges in rank order (empty when the BPE merges by scores or ranks).</summary>
    public IReadOnlyList<(string Left, string Right)> Merges { get; init; } = [];

    /// <summary>Per-token scores (SentencePiece-style BPE and Unigram), or null.</summary>
    public IReadOnlyList<float>? Scores { get; init; }

    /// <summary>Token strings are GPT-2 byte-level chars (a ByteLevel pre-tokenizer).</summary>
    public bool ByteLevel { get; init; }

    /// <summary>Unknown characters become &lt;0xNN&gt; byte tokens.</summary>
    public bool ByteFallback { get; init; }

    public string? UnkToken { get; init; }

    /// <summary>The known split regex of the pre-tokenizer, or null.</summary>
    public SplitPattern? Split { get; init; }

    /// <summary>The pre-tokenizer's split regex as written, when it has one (known or not).</summary>
    public string? SplitRegex { get; init; }

    public IReadOnlyList<AddedToken> AddedTokens { get; init; } = [];

    /// <summary>Whether the post-processor puts a special token before the text (BOS); null without a post-processor.</summary>
    public bool? AddsBos { get; init; }

    /// <summary>The id of a token string, or null.</summary>
    public int? IdOf(string? token)
    {
        if (token is null) return null;
        for (int i = 0; i < Tokens.Count; i++) if (Tokens[i] == token) return i;
        return null;
    }
}

public sealed partial class Tokenizer
{
    /// <summary>Describes the vocabulary (see <see cref="TokenizerVocabulary"/>).</summary>
    public TokenizerVocabulary Describe()
    {
        int bound = _model.IdBound;
        foreach (var a in _added.Tokens) bound = Math.Max(bound, a.Id + 1);
        var tokens = new string?[bound];
        for (int i = 0; i < bound; i++) tokens[i] = _model.IdToToken(i);
        foreach (var a in _added.Tokens) tokens[a.Id] = a.Content;
        string? regex = FindSplitRegex(_preTokenizer);
        return new TokenizerVocabulary
        {
            ModelType = _model switch
            {
                BpeModel => "BPE",
                WordPieceModel => "WordPiece",
                UnigramModel => "Unigram",
                TiktokenModel => "Tiktoken",
                _ => "WordLevel",
            },
            Tokens = tokens,
            Merges = (_model as BpeModel)?.Merges ?? [],
            Scores = (_model as BpeModel)?.Scores,
            ByteLevel = HasByteLevel(_preTokenizer) || _model is TiktokenModel,
            ByteFallback = _model is BpeModel { ByteFallback: true },
            UnkToken = _model.UnkToken,
            SplitRegex = regex ?? (_preTokenizer is ByteLevelPreTokenizer { UseRegex: true } ? SplitPatterns.Gpt2.Pattern : null),
            Split = SplitPatterns.ByPattern(regex) ?? (_preTokenizer is ByteLevelPreTokenizer { UseRegex: true } ? SplitPatterns.Gpt2 : null),
            AddedTokens = _added.Tokens,
            AddsBos = _postProcessor switch
            {
                null => null,
                TemplateProcessor t => t.Single.Count > 0 && !t.Single[0].IsSequence,
                BertProcessor or RobertaProcessor => true,
                SequenceProcessor s => s.Items.OfType<TemplateProcessor>().Any(t => t.Single.Count > 0 && !t.Single[0].IsSequence),
                _ => false,
            },
        };
    }

    private static string? FindSplitRegex(IPreTokenizer? p) => p switch
    {
        SplitPreTokenizer { IsRegex: true } s => s.Pattern,
        SequencePreTokenizer seq => seq.Items.Select(FindSplitRegex).FirstOrDefault(r => r is not null),
        _ => null,
    };

    private static bool HasByteLevel(IPreTokenizer? p) => p switch
    {
        ByteLevelPreTokenizer => true,
        SequencePreTokenizer seq => seq.Items.Any(HasByteLevel),
        _ => false,
    };
}
