using System.Text;
using System.Text.RegularExpressions;
using SharpLM.Tokenizers.Core;

namespace SharpLM.Tokenizers.PreTokenizers;

/// <summary>What happens to the delimiter when splitting (HF SplitDelimiterBehavior).</summary>
internal enum SplitBehavior
{
    Removed,
    Isolated,
    MergedWithPrevious,
    MergedWithNext,
    Contiguous,
}

/// <summary>HF NormalizedString::split with a pattern's (span, is_match) list.</summary>
internal static class SplitHelper
{
    [ThreadStatic] private static List<(int Start, int End, bool Match)>? t_matches;

    public static List<(int Start, int End, bool Match)> Matches()
    {
        var m = t_matches ??= new List<(int, int, bool)>(64);
        m.Clear();
        return m;
    }

    /// <summary>Regex matches as a (span, is_match) partition of <paramref name="s"/> (empty matches skipped).</summary>
    public static void RegexMatches(Regex regex, string s, List<(int, int, bool)> output)
    {
        int prev = 0;
        try
        {
            foreach (var m in regex.EnumerateMatches(s))
            {
                if (m.Length == 0) continue;
                if (prev != m.Index) output.Add((prev, m.Index, false));
                output.Add((m.Index, m.Index + m.Length, true));
                prev = m.Index + m.Length;
            }
        }
        catch (RegexMatchTimeoutException e)
        {
            throw RegexCache.TooSlow(e);
        }
        if (prev != s.Length) output.Add((prev, s.Length, false));
    }

    /// <summary>Each code point for which <paramref name="pred"/> holds is a match.</summary>
    public static void CharMatches(string s, Func<Rune, bool> pred, List<(int, int, bool)> output)
    {
        int last = 0;
        for (int i = 0; i < s.Length;)
        {
            Rune.DecodeFromUtf16(s.AsSpan(i), out var r, out int w);
            if (pred(r))
            {
                if (last < i) output.Add((last, i, false));
                output.Add((i, i + w, true));
                last = i + w;
            }
            i += w;
        }
        if (last < s.Length) output.Add((last, s.Length, false));
    }

    public static void Invert(List<(int Start, int End, bool Match)> matches)
    {
        for (int i = 0; i < matches.Count; i++) matches[i] = matches[i] with { Match = !matches[i].Match };
    }

    /// <summary>Cuts <paramref name="n"/> at the matches according to <paramref name="behavior"/>.</summary>
    public static void Apply(NormalizedString n, List<(int Start, int End, bool Match)> matches, SplitBehavior behavior, List<Split> output)
    {
        switch (behavior)
        {
            case SplitBehavior.Isolated:
                foreach (var m in matches) output.Add(new Split(n.Slice(m.Start, m.End)));
                return;
            case SplitBehavior.Removed:
                foreach (var m in matches) if (!m.Match) output.Add(new Split(n.Slice(m.Start, m.End)));
                return;
        }
        var spans = new List<(int Start, int End)>(matches.Count);
        bool previousMatch = false;
        switch (behavior)
        {
            case SplitBehavior.Contiguous:
                foreach (var m in matches)
                {
                    if (m.Match == previousMatch && spans.Count > 0) spans[^1] = (spans[^1].Start, m.End);
                    else spans.Add((m.Start, m.End));
                    previousMatch = m.Match;
                }
                break;
            case SplitBehavior.MergedWithPrevious:
                foreach (var m in matches)
                {
                    if (m.Match && !previousMatch && spans.Count > 0) spans[^1] = (spans[^1].Start, m.End);
                    else spans.Add((m.Start, m.End));
                    previousMatch = m.Match;
                }
                break;
            case SplitBehavior.MergedWithNext:
                for (int i = matches.Count - 1; i >= 0; i--)
                {
                    var m = matches[i];
                    if (m.Match && !previousMatch && spans.Count > 0) spans[^1] = (m.Start, spans[^1].End);
                    else spans.Add((m.Start, m.End));
                    previousMatch = m.Match;
                }
                spans.Reverse();
                break;
        }
        foreach (var sp in spans) output.Add(new Split(n.Slice(sp.Start, sp.End)));
    }
}
