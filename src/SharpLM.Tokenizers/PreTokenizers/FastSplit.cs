using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace SharpLM.Tokenizers.PreTokenizers;

/// <summary>The split regexes that have a hand-written scanner.</summary>
internal enum FastSplitKind
{
    /// <summary><c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c> (GPT-2, r50k, p50k).</summary>
    Gpt2,

    /// <summary>cl100k_base as LLaMA-3 writes it: <c>(?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</c>.</summary>
    Cl100k,

    /// <summary>The cl100k form with single digits (<c>\p{N}</c>): Qwen2, Qwen2.5, Qwen3.</summary>
    Qwen,

    /// <summary>o200k_base (GPT-4o): case-aware letter runs with contraction suffixes, <c>[\r\n/]*</c> after punctuation.</summary>
    O200k,
}

/// <summary>
/// Hand-written scanners that give exactly the matches of the known split regexes, many times faster than
/// <see cref="System.Text.RegularExpressions.Regex"/>. They follow the regex's ordered alternation and backtracking
/// (as .NET, Oniguruma and fancy-regex do) on Unicode code points, as HF tokenizers (Rust) and tiktoken do: a
/// surrogate pair is one character, so an astral letter is a letter. On text without astral letters or digits the
/// matches equal .NET's Regex (tests check the whole Brown corpus and edge cases).
/// Every position of the text starts a match (every character is a letter, a number, whitespace or "other"), so a
/// split is: from position 0, take <see cref="MatchLength"/>, move on, repeat.
/// </summary>
internal static class FastSplit
{
    /// <summary>Recognizes a known pattern string (as written in tokenizer.json or by tiktoken; see <see cref="SplitPatterns"/>).</summary>
    public static bool TryGetKind(string? pattern, out FastSplitKind kind)
    {
        var known = SplitPatterns.ByPattern(pattern);
        kind = known?.Kind ?? default;
        return known is not null;
    }

    /// <summary>Disables the scanners (SHARPLM_FAST_SPLIT=0), e.g. to compare with the Regex path.</summary>
    public static bool Enabled { get; } = Environment.GetEnvironmentVariable("SHARPLM_FAST_SPLIT") != "0";

    private sealed record CachedKind(string Pattern, bool Known, FastSplitKind Kind);

    private static CachedKind? s_last;

    /// <summary><see cref="TryGetKind"/> behind a one-entry cache on the pattern reference (the pre-tokenizer asks
    /// for every piece), and off when <see cref="Enabled"/> is false.</summary>
    public static bool TryGetKindCached(string pattern, out FastSplitKind kind)
    {
        var last = s_last;
        if (last is null || !ReferenceEquals(last.Pattern, pattern))
        {
            FastSplitKind k = default;
            bool known = Enabled && TryGetKind(pattern, out k);
            s_last = last = new CachedKind(pattern, known, k);
        }
        kind = last.Kind;
        return last.Known;
    }

    /// <summary>Every match as (start, end, isMatch = true), tiling <paramref name="text"/> (HF's split input).</summary>
    public static void Matches(FastSplitKind kind, ReadOnlySpan<char> text, List<(int Start, int End, bool Match)> output)
    {
        int pos = 0;
        while (pos < text.Length)
        {
            int len = MatchLength(kind, text, pos);
            output.Add((pos, pos + len, true));
            pos += len;
        }
    }

    /// <summary>Appends (start, length) of every match in <paramref name="text"/>, in order; they tile the text.</summary>
    public static void Split(FastSplitKind kind, ReadOnlySpan<char> text, List<(int Start, int Length)> matches)
    {
        int pos = 0;
        while (pos < text.Length)
        {
            int len = MatchLength(kind, text, pos);
            matches.Add((pos, len));
            pos += len;
        }
    }

    /// <summary>The length (in chars, at least 1) of the regex match that starts at <paramref name="pos"/>.</summary>
    public static int MatchLength(FastSplitKind kind, ReadOnlySpan<char> s, int pos) => kind switch
    {
        FastSplitKind.Gpt2 => Gpt2(s, pos),
        FastSplitKind.Cl100k => Cl100k(s, pos, 3),
        FastSplitKind.Qwen => Cl100k(s, pos, 1),
        _ => O200k(s, pos),
    };

    // Character classes. L: \p{L}; N: \p{N}; S: \s; NL: \r or \n; U: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}];
    // W: [\p{Ll}\p{Lm}\p{Lo}\p{M}]. "Other" is none of L, N, S.
    private const byte L = 1, N = 2, S = 4, NL = 8, U = 16, W = 32;

    private static readonly byte[] Ascii = BuildAscii();

    private static byte[] BuildAscii()
    {
        var t = new byte[128];
        for (int c = 0; c < 128; c++) t[c] = Slow(c);
        return t;
    }

    private static byte Slow(int codePoint)
    {
        if (codePoint < 0x10000 && char.IsWhiteSpace((char)codePoint)) return (byte)(S | (codePoint is '\r' or '\n' ? NL : 0));
        return CharUnicodeInfo.GetUnicodeCategory(codePoint) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.TitlecaseLetter => L | U,
            UnicodeCategory.LowercaseLetter => L | W,
            UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => L | U | W,
            UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark => U | W,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => N,
            _ => 0,
        };
    }

    /// <summary>The class of the code point at <paramref name="i"/> and its width in chars (2 for a surrogate pair).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte Class(ReadOnlySpan<char> s, int i, out int width)
    {
        char c = s[i];
        width = 1;
        if (c < 128) return Ascii[c];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            width = 2;
            return Slow(char.ConvertToUtf32(c, s[i + 1]));
        }
        return Slow(c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte ClassAt(ReadOnlySpan<char> s, int i) => Class(s, i, out _);

    private static bool IsOther(byte cls) => (cls & (L | N | S)) == 0;

    /// <summary>End of the run of code points whose class has any bit of <paramref name="mask"/>, from <paramref name="i"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int RunOf(ReadOnlySpan<char> s, int i, byte mask)
    {
        while (i < s.Length)
        {
            char c = s[i];
            if (c < 128)
            {
                if ((Ascii[c] & mask) == 0) break;
                i++;
                continue;
            }
            if ((Class(s, i, out int w) & mask) == 0) break;
            i += w;
        }
        return i;
    }

    /// <summary>End of the run of "other" code points (not \s, \p{L}, \p{N}) from <paramref name="i"/>.</summary>
    private static int OtherRun(ReadOnlySpan<char> s, int i)
    {
        while (i < s.Length)
        {
            if (!IsOther(Class(s, i, out int w))) break;
            i += w;
        }
        return i;
    }

    /// <summary>Length of a contraction at i: 's 't 'm 'd (2) or 're 've 'll (3); 0 when none.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Contraction(ReadOnlySpan<char> s, int i, bool ignoreCase)
    {
        if (i + 1 >= s.Length || s[i] != '\'') return 0;
        char a = s[i + 1], b = i + 2 < s.Length ? s[i + 2] : '\0';
        if (ignoreCase)
        {
            a = Fold(a);
            b = Fold(b);
        }
        switch (a)
        {
            case 's' or 't' or 'm' or 'd': return 2;
            case 'r' or 'v': return b == 'e' ? 3 : 0;
            case 'l': return b == 'l' ? 3 : 0;
            default: return 0;
        }
    }

    /// <summary>ASCII case folding for the contraction letters. (.NET's Regex does not fold U+017F LONG S to 's'; neither do we.)</summary>
    private static char Fold(char c) => c is >= 'A' and <= 'Z' ? (char)(c | 0x20) : c;

    /// <summary>Whitespace run [pos, r): <c>\s+(?!\S)</c> then <c>\s+</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int TrailingSpace(ReadOnlySpan<char> s, int pos, int r)
    {
        if (r == s.Length) return r - pos;
        int len = r - pos;
        return len >= 2 ? len - 1 : len;
    }

    private static int Gpt2(ReadOnlySpan<char> s, int pos)
    {
        char c = s[pos];
        if (c == '\'')
        {
            int k = Contraction(s, pos, ignoreCase: false);
            if (k > 0) return k;
        }
        int q = pos;
        if (c == ' ' && pos + 1 < s.Length) q = pos + 1;
        byte cls = Class(s, q, out int w);
        if (q == pos && c == ' ') cls = S; // a lone trailing space
        if ((cls & L) != 0) return RunOf(s, q + w, L) - pos;
        if ((cls & N) != 0) return RunOf(s, q + w, N) - pos;
        if (IsOther(cls)) return OtherRun(s, q + w) - pos;
        // q starts whitespace: the space at pos (if any) joins the whitespace run.
        int r = RunOf(s, pos, S);
        return TrailingSpace(s, pos, r);
    }

    private static int Cl100k(ReadOnlySpan<char> s, int pos, int maxDigits)
    {
        char c = s[pos];
        if (c == '\'')
        {
            int k = Contraction(s, pos, ignoreCase: true);
            if (k > 0) return k;
        }
        byte cls = Class(s, pos, out int w);
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if ((cls & L) != 0) return RunOf(s, pos + w, L) - pos;
        if ((cls & (NL | N)) == 0 && pos + w < s.Length && (ClassAt(s, pos + w) & L) != 0)
            return RunOf(s, pos + w, L) - pos;
        // \p{N}{1,3}
        if ((cls & N) != 0)
        {
            int i = pos + w, n = 1;
            while (n < maxDigits && i < s.Length)
            {
                if ((Class(s, i, out int w2) & N) == 0) break;
                i += w2;
                n++;
            }
            return i - pos;
        }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        if (c == ' ' && pos + 1 < s.Length && IsOther(ClassAt(s, pos + 1)))
            return NewlineRun(s, OtherRun(s, pos + 1), slash: false) - pos;
        if (IsOther(cls)) return NewlineRun(s, OtherRun(s, pos + w), slash: false) - pos;
        return Whitespace(s, pos);
    }

    /// <summary>Whitespace at pos: <c>\s*[\r\n]+|\s+(?!\S)|\s+</c>.</summary>
    private static int Whitespace(ReadOnlySpan<char> s, int pos)
    {
        int r = RunOf(s, pos, S);
        for (int j = r - 1; j >= pos; j--)
            if (s[j] is '\r' or '\n') return j + 1 - pos;
        return TrailingSpace(s, pos, r);
    }

    private static int NewlineRun(ReadOnlySpan<char> s, int i, bool slash)
    {
        while (i < s.Length && (s[i] is '\r' or '\n' || (slash && s[i] == '/'))) i++;
        return i;
    }

    private static int O200k(ReadOnlySpan<char> s, int pos)
    {
        byte cls = Class(s, pos, out int w);
        bool prefixable = (cls & (NL | L | N)) == 0; // [^\r\n\p{L}\p{N}]
        // Alternative 1: P? U* W+ C?
        if (prefixable && pos + w < s.Length)
        {
            int e = UStarWPlus(s, pos + w);
            if (e >= 0) return WithContraction(s, e) - pos;
        }
        {
            int e = UStarWPlus(s, pos);
            if (e >= 0) return WithContraction(s, e) - pos;
        }
        // Alternative 2: P? U+ W* C?
        if (prefixable && pos + w < s.Length && (ClassAt(s, pos + w) & U) != 0)
            return WithContraction(s, RunOf(s, RunOf(s, pos + w, U), W)) - pos;
        if ((cls & U) != 0)
            return WithContraction(s, RunOf(s, RunOf(s, pos, U), W)) - pos;
        // \p{N}{1,3}
        if ((cls & N) != 0)
        {
            int i = pos + w, n = 1;
            while (n < 3 && i < s.Length)
            {
                if ((Class(s, i, out int w2) & N) == 0) break;
                i += w2;
                n++;
            }
            return i - pos;
        }
        char c = s[pos];
        if (c == ' ' && pos + 1 < s.Length && IsOther(ClassAt(s, pos + 1)))
            return NewlineRun(s, OtherRun(s, pos + 1), slash: true) - pos;
        if (IsOther(cls)) return NewlineRun(s, OtherRun(s, pos + w), slash: true) - pos;
        return Whitespace(s, pos);
    }

    /// <summary><c>[U]*[W]+</c> from q with the regex's backtracking: the end of the match, or -1.</summary>
    private static int UStarWPlus(ReadOnlySpan<char> s, int q)
    {
        int a = RunOf(s, q, U);
        if (a < s.Length && (ClassAt(s, a) & W) != 0) return RunOf(s, a, W);
        // Backtrack U*: the last code point in [q, a) that is also W (Lm, Lo, M) ends the match right after it.
        int end = -1;
        for (int i = q; i < a;)
        {
            byte cls = Class(s, i, out int w);
            i += w;
            if ((cls & W) != 0) end = i;
        }
        return end;
    }

    private static int WithContraction(ReadOnlySpan<char> s, int e) => e + Contraction(s, e, ignoreCase: true);
}
