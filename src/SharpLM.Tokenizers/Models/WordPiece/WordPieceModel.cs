using SharpLM.Tokenizers.Core;

namespace SharpLM.Tokenizers.Models.WordPiece;

/// <summary>WordPiece (HF models/wordpiece): greedy longest-match-first; pieces after the first carry the
/// continuing_subword_prefix ("##"); a word with an unmatchable rest, or longer than max_input_chars_per_word
/// code points, becomes the single unk token.</summary>
internal sealed class WordPieceModel : IModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabSpan;
    private readonly string?[] _idToToken;
    private readonly int _unkId;

    public string UnkToken { get; }
    string? IModel.UnkToken => UnkToken;
    public string ContinuingSubwordPrefix { get; }
    public int MaxInputCharsPerWord { get; }
    public int VocabSize => _vocab.Count;

    public int IdBound => _idToToken.Length;
    public IReadOnlyDictionary<string, int> Vocab => _vocab;

    public WordPieceModel(IReadOnlyDictionary<string, int> vocab, string unkToken = "[UNK]", string continuingSubwordPrefix = "##",
        int maxInputCharsPerWord = 100)
    {
        _vocab = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        _vocabSpan = _vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        UnkToken = unkToken;
        ContinuingSubwordPrefix = continuingSubwordPrefix;
        MaxInputCharsPerWord = maxInputCharsPerWord;
        _idToToken = TokenIds.Table(_vocab);
        _unkId = _vocab.TryGetValue(unkToken, out int u) ? u : -1;
    }

    /// <summary>Reads a BERT vocab.txt: one token per line, id = line number.</summary>
    public static Dictionary<string, int> ReadVocabTxt(TextReader reader)
    {
        var v = new Dictionary<string, int>(StringComparer.Ordinal);
        int id = 0;
        for (string? line = reader.ReadLine(); line != null; line = reader.ReadLine())
        {
            string t = line.TrimEnd('\r');
            v.TryAdd(t, id);
            id++;
        }
        return v;
    }

    public int? TokenToId(ReadOnlySpan<char> token) => _vocabSpan.TryGetValue(token, out int id) ? id : null;

    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    private int Unk => _unkId >= 0 ? _unkId : throw new InvalidOperationException($"WordPiece: the unk token '{UnkToken}' is not in the vocabulary.");

    public void Tokenize(ReadOnlySpan<char> word, TokenSink sink)
    {
        if (word.IsEmpty) return;
        int codePoints = 0;
        foreach (char c in word) if (!char.IsLowSurrogate(c)) codePoints++;
        if (codePoints > MaxInputCharsPerWord) { sink.Add(Unk, 0, word.Length); return; }
        int before = sink.Count;
        int plen = ContinuingSubwordPrefix.Length;
        Span<char> buf = word.Length + plen <= 256 ? stackalloc char[word.Length + plen] : new char[word.Length + plen];
        ContinuingSubwordPrefix.CopyTo(buf);
        int start = 0;
        while (start < word.Length)
        {
            int end = word.Length;
            int found = -1;
            while (start < end)
            {
                scoped ReadOnlySpan<char> sub;
                if (start > 0)
                {
                    word[start..end].CopyTo(buf[plen..]);
                    sub = buf[..(plen + end - start)];
                }
                else sub = word[..end];
                if (_vocabSpan.TryGetValue(sub, out int id)) { found = id; break; }
                end -= end - 2 >= start && char.IsLowSurrogate(word[end - 1]) && char.IsHighSurrogate(word[end - 2]) ? 2 : 1;
            }
            if (found < 0)
            {
                sink.Count = before;
                sink.Add(Unk, 0, word.Length);
                return;
            }
            sink.Add(found, start, end);
            start = end;
        }
    }
}
