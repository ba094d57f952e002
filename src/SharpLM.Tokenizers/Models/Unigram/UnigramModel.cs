using System.Text;
using SharpLM.Tokenizers.Core;

namespace SharpLM.Tokenizers.Models.Unigram;

/// <summary>Unigram (HF models/unigram, SentencePiece): the segmentation with the highest total score (Viterbi);
/// a code point no token covers is the unk token with score min_score - 10, consecutive unks fused; with
/// byte_fallback an unk piece becomes its &lt;0xNN&gt; byte tokens.</summary>
internal sealed class UnigramModel : IModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabSpan;
    private readonly string[] _pieces;
    private readonly double[] _scores;
    private readonly int _maxLen;
    private readonly double _unkScore;

    public int? UnkId { get; }
    public bool ByteFallback { get; }
    public string? UnkToken => UnkId is int u ? _pieces[u] : null;
    public int VocabSize => _pieces.Length;

    public int IdBound => _pieces.Length;

    public UnigramModel(IReadOnlyList<(string Piece, double Score)> vocab, int? unkId, bool byteFallback)
    {
        _pieces = vocab.Select(v => v.Piece).ToArray();
        _scores = vocab.Select(v => v.Score).ToArray();
        _vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < _pieces.Length; i++) _vocab.TryAdd(_pieces[i], i);
        _vocabSpan = _vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _maxLen = _pieces.Length == 0 ? 1 : _pieces.Max(p => p.Length);
        _unkScore = (_scores.Length == 0 ? 0 : _scores.Min()) - 10.0;
        UnkId = unkId;
        ByteFallback = byteFallback;
    }

    public int? TokenToId(ReadOnlySpan<char> token) => _vocabSpan.TryGetValue(token, out int id) ? id : null;

    public string? IdToToken(int id) => (uint)id < (uint)_pieces.Length ? _pieces[id] : null;

    public void Tokenize(ReadOnlySpan<char> word, TokenSink sink)
    {
        int n = word.Length;
        if (n == 0) return;
        var bestScore = new double[n + 1];
        var bestStart = new int[n + 1];
        var bestId = new int[n + 1];
        Array.Fill(bestStart, -1);
        bestStart[0] = 0;
        for (int s = 0; s < n;)
        {
            int mblen = char.IsHighSurrogate(word[s]) && s + 1 < n && char.IsLowSurrogate(word[s + 1]) ? 2 : 1;
            if (bestStart[s] < 0 && s != 0) { s += mblen; continue; }
            double till = bestScore[s];
            bool single = false;
            int maxL = Math.Min(_maxLen, n - s);
            for (int l = 1; l <= maxL; l++)
            {
                if (s + l < n && char.IsLowSurrogate(word[s + l]) && char.IsHighSurrogate(word[s + l - 1])) continue;
                if (!_vocabSpan.TryGetValue(word.Slice(s, l), out int id)) continue;
                double cand = till + _scores[id];
                int k = s + l;
                if (bestStart[k] < 0 || cand > bestScore[k]) { bestScore[k] = cand; bestStart[k] = s; bestId[k] = id; }
                if (l == mblen) single = true;
            }
            if (!single)
            {
                int k = s + mblen;
                double cand = till + _unkScore;
                if (bestStart[k] < 0 || cand > bestScore[k]) { bestScore[k] = cand; bestStart[k] = s; bestId[k] = -1; }
            }
            s += mblen;
        }
        // Backtrack.
        var pieces = new List<(int Start, int End, int Id)>();
        for (int e = n; e > 0;)
        {
            int s = bestStart[e];
            pieces.Add((s, e, bestId[e]));
            e = s;
        }
        pieces.Reverse();
        // Fuse consecutive unks.
        var fused = new List<(int Start, int End, int Id)>(pieces.Count);
        foreach (var p in pieces)
        {
            if (p.Id < 0 && fused.Count > 0 && fused[^1].Id < 0) fused[^1] = (fused[^1].Start, p.End, -1);
            else fused.Add(p);
        }
        Span<byte> bytes = stackalloc byte[4];
        foreach (var p in fused)
        {
            if (p.Id >= 0) { sink.Add(p.Id, p.Start, p.End); continue; }
            // An unknown piece: it may still be a vocab entry after fusing.
            if (_vocabSpan.TryGetValue(word[p.Start..p.End], out int vid)) { sink.Add(vid, p.Start, p.End); continue; }
            if (ByteFallback)
            {
                var all = new List<int>();
                bool ok = true;
                foreach (byte b in System.Text.Encoding.UTF8.GetBytes(word[p.Start..p.End].ToString()))
                {
                    if (_vocab.TryGetValue($"<0x{b:X2}>", out int bid)) all.Add(bid);
                    else { ok = false; break; }
                }
                if (ok) { foreach (int id in all) sink.Add(id, p.Start, p.End); continue; }
            }
            if (UnkId is not int unk) throw new InvalidOperationException("Unigram: a piece is not in the vocabulary and the model has no unk_id.");
            sink.Add(unk, p.Start, p.End);
        }
    }
}
