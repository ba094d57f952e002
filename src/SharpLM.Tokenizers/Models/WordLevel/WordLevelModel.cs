using SharpLM.Tokenizers.Core;

namespace SharpLM.Tokenizers.Models.WordLevel;

/// <summary>WordLevel (HF models/wordlevel): the whole word is one token, else the unk token.</summary>
internal sealed class WordLevelModel : IModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabSpan;
    private readonly string?[] _idToToken;

    public string UnkToken { get; }
    string? IModel.UnkToken => UnkToken;
    public int VocabSize => _vocab.Count;

    public int IdBound => _idToToken.Length;

    public WordLevelModel(IReadOnlyDictionary<string, int> vocab, string unkToken)
    {
        _vocab = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        _vocabSpan = _vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        UnkToken = unkToken;
        _idToToken = TokenIds.Table(_vocab);
    }

    public int? TokenToId(ReadOnlySpan<char> token) => _vocabSpan.TryGetValue(token, out int id) ? id : null;

    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    public void Tokenize(ReadOnlySpan<char> word, TokenSink sink)
    {
        if (word.IsEmpty) return;
        if (_vocabSpan.TryGetValue(word, out int id)) sink.Add(id, 0, word.Length);
        else if (_vocab.TryGetValue(UnkToken, out int unk)) sink.Add(unk, 0, word.Length);
        else throw new InvalidOperationException($"WordLevel: '{word}' is not in the vocabulary and the unk token '{UnkToken}' is missing.");
    }
}
