using System.Text;
using System.Text.RegularExpressions;
using SharpLM.Tokenizers.Training;

namespace SharpLM.Training.Data;

/// <summary>
/// Encodes text with a byte-level BPE vocabulary fresh from <see cref="BpeTrainer"/> (ids: specials, then the 256
/// bytes, then one per merge): split by the trainer's regex, bytes to ids, then repeatedly merge the adjacent pair of
/// lowest merge rank (leftmost first), as Hugging Face's BPE model does. Words are cached.
/// The tokenizer.json it carries into checkpoints is the trainer's own output.
/// </summary>
internal sealed class BpeTextTokenizer : ITextTokenizer
{
    private readonly Regex _split;
    private readonly Dictionary<long, (int Rank, int Id)> _merges = [];
    private readonly (int Left, int Right)[] _parts;
    private readonly int _specials;
    private readonly Dictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private readonly IReadOnlyList<string> _tokens;

    public BpeTextTokenizer(BpeTrainerResult trained)
    {
        ArgumentNullException.ThrowIfNull(trained);
        _tokens = trained.Tokens;
        _specials = trained.Options.SpecialTokens.Count;
        _split = new Regex(BpeTrainer.PatternOf(trained.Options.Split), RegexOptions.Compiled | RegexOptions.CultureInvariant);
        var idOf = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < trained.Tokens.Count; i++) idOf.TryAdd(trained.Tokens[i], i);
        _parts = new (int, int)[trained.Tokens.Count];
        for (int r = 0; r < trained.Merges.Count; r++)
        {
            var (l, rr) = trained.Merges[r];
            int li = idOf[l], ri = idOf[rr], id = idOf[l + rr];
            _merges.TryAdd(Key(li, ri), (r, id));
            _parts[id] = (li, ri);
        }
        MergeStrings = [.. trained.Merges.Select(m => m.Left + " " + m.Right)];
        TokenizerJson = trained.ToTokenizerJson();
    }

    public int VocabSize => _tokens.Count;
    /// <summary>Token strings by id (byte-level characters), as GGUF's tokenizer.ggml.tokens wants them.</summary>
    public IReadOnlyList<string> Tokens => _tokens;
    /// <summary>Merges in rank order as "left right".</summary>
    public IReadOnlyList<string> MergeStrings { get; private set; } = [];
    public int SpecialCount => _specials;
    public string? TokenizerJson { get; }

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    public int[] Encode(string text)
    {
        var ids = new List<int>(text.Length / 3);
        foreach (Match m in _split.Matches(text))
        {
            if (!_cache.TryGetValue(m.Value, out var w))
            {
                w = EncodeWord(m.Value);
                if (_cache.Count < 1_000_000) _cache[m.Value] = w;
            }
            ids.AddRange(w);
        }
        return [.. ids];
    }

    private int[] EncodeWord(string word)
    {
        var bytes = Encoding.UTF8.GetBytes(word);
        var s = new List<int>(bytes.Length);
        foreach (var b in bytes) s.Add(_specials + b);
        while (s.Count > 1)
        {
            int best = -1, bestRank = int.MaxValue, bestId = 0;
            for (int i = 0; i + 1 < s.Count; i++)
                if (_merges.TryGetValue(Key(s[i], s[i + 1]), out var m) && m.Rank < bestRank) { bestRank = m.Rank; best = i; bestId = m.Id; }
            if (best < 0) break;
            s[best] = bestId;
            s.RemoveAt(best + 1);
        }
        return [.. s];
    }

    private void AppendBytes(int id, List<byte> into)
    {
        if (id < _specials) { into.AddRange(Encoding.UTF8.GetBytes(_tokens[id])); return; }
        if (id < _specials + 256) { into.Add((byte)(id - _specials)); return; }
        AppendBytes(_parts[id].Left, into);
        AppendBytes(_parts[id].Right, into);
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        var bytes = new List<byte>();
        foreach (var id in ids) AppendBytes(id, bytes);
        return Encoding.UTF8.GetString([.. bytes]);
    }

    public long ByteCount(ReadOnlySpan<int> ids)
    {
        var bytes = new List<byte>();
        long n = 0;
        foreach (var id in ids) { bytes.Clear(); AppendBytes(id, bytes); n += bytes.Count; }
        return n;
    }
}
