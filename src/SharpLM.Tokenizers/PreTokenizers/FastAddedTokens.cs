using System.Buffers;

namespace SharpLM.Tokenizers.PreTokenizers;

/// <summary>Encodes the text between added tokens (for <see cref="FastAddedTokens"/>).</summary>
internal interface IFastSegmentEncoder
{
    void EncodeSegment(ReadOnlySpan<char> segment, List<int> ids);
}

/// <summary>
/// Cuts plain added tokens (no lstrip/rstrip/single_word) out of a text for the fast paths: one vectorized scan for
/// their first chars, leftmost-longest match (as HF's aho-corasick matcher), the segments between them handed to an
/// <see cref="IFastSegmentEncoder"/>.
/// </summary>
internal sealed class FastAddedTokens
{
    private readonly SearchValues<char>? _firsts;
    private readonly Dictionary<char, (string Text, int Id)[]> _byFirst = [];

    public FastAddedTokens(IEnumerable<AddedToken> added)
    {
        foreach (var g in added.Where(t => t.Content.Length > 0).GroupBy(t => t.Content[0]))
            _byFirst[g.Key] = g.OrderByDescending(t => t.Content.Length).Select(t => (t.Content, t.Id)).ToArray();
        if (_byFirst.Count > 0) _firsts = SearchValues.Create(_byFirst.Keys.ToArray());
    }

    /// <summary>Whether one raw-text matcher gives HF's result: no lstrip/rstrip/single_word, and the tokens are
    /// all raw (normalized=false), or all normalized while the normalizer leaves the text as it is.</summary>
    public static bool Supports(IEnumerable<AddedToken> added, bool normalizerChangesText)
    {
        bool anyRaw = false, anyNormalized = false;
        foreach (var t in added)
        {
            if (t.LStrip || t.RStrip || t.SingleWord) return false;
            if (t.Normalized) anyNormalized = true;
            else anyRaw = true;
        }
        return !(anyNormalized && (anyRaw || normalizerChangesText));
    }

    public int[] Encode(ReadOnlySpan<char> text, IFastSegmentEncoder segments)
    {
        var list = t_ids ??= new List<int>(1024);
        list.Clear();
        int pos = 0;
        if (_firsts != null)
        {
            int i = 0;
            while (i < text.Length)
            {
                int k = text[i..].IndexOfAny(_firsts);
                if (k < 0) break;
                i += k;
                int hitLen = 0, hitId = -1;
                foreach (var (t, id) in _byFirst[text[i]])
                {
                    if (text[i..].StartsWith(t, StringComparison.Ordinal))
                    {
                        hitLen = t.Length;
                        hitId = id;
                        break;
                    }
                }
                if (hitId < 0) { i++; continue; }
                if (i > pos) segments.EncodeSegment(text[pos..i], list);
                list.Add(hitId);
                i += hitLen;
                pos = i;
            }
        }
        if (pos < text.Length) segments.EncodeSegment(text[pos..], list);
        int[] ids = [.. list];
        if (list.Capacity > 1 << 20) t_ids = null;
        return ids;
    }

    [ThreadStatic] private static List<int>? t_ids;
}
