using System.Text;
using System.Text.RegularExpressions;
using SharpLM.Testing;
using SharpLM.Tokenizers.PreTokenizers;

namespace SharpLM.Tokenizers.Tests;

/// <summary>
/// The hand-written split scanners against .NET's Regex with the same pattern: identical matches on the whole Brown
/// corpus, a mixed Chinese/English text and random strings over a tricky BMP alphabet. (On astral letters the scanners follow
/// code points, as HF tokenizers and tiktoken do, and .NET's Regex does not; see AstralLettersAreLetters.)
/// </summary>
public class FastSplitTests
{
    public static TheoryData<string> Patterns => new()
    {
        SplitPatterns.Gpt2.Pattern, SplitPatterns.Gpt2.OtherSpellings[0], SplitPatterns.Llama3.Pattern, SplitPatterns.Qwen2.Pattern, SplitPatterns.O200k.Pattern,
    };

    private static List<(int, int)> ByRegex(Regex r, string text)
    {
        var list = new List<(int, int)>();
        foreach (var m in r.EnumerateMatches(text)) list.Add((m.Index, m.Length));
        return list;
    }

    private static List<(int, int)> ByScanner(FastSplitKind kind, string text)
    {
        var list = new List<(int Start, int Length)>();
        FastSplit.Split(kind, text, list);
        return list;
    }

    private static void AssertSame(string pattern, string text, string what)
    {
        Assert.True(FastSplit.TryGetKind(pattern, out var kind));
        var regex = new Regex(pattern, RegexOptions.CultureInvariant);
        var expected = ByRegex(regex, text);
        var actual = ByScanner(kind, text);
        int n = Math.Min(expected.Count, actual.Count);
        for (int i = 0; i < n; i++)
        {
            if (expected[i] != actual[i])
            {
                int at = Math.Min(expected[i].Item1, actual[i].Item1);
                string ctx = text.Substring(Math.Max(0, at - 20), Math.Min(60, text.Length - Math.Max(0, at - 20)));
                Assert.Fail($"{kind} on {what}: match {i} differs at char {at}: regex {Show(text, expected[i])} vs scanner {Show(text, actual[i])}; context {Escape(ctx)}");
            }
        }
        Assert.Equal(expected.Count, actual.Count);
    }

    private static string Show(string text, (int Start, int Length) m) => $"[{m.Start},{m.Length}] {Escape(text.Substring(m.Start, m.Length))}";

    private static string Escape(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (char c in s) sb.Append(c is < ' ' or > '~' ? $"\\u{(int)c:X4}" : c.ToString());
        return sb.Append('"').ToString();
    }

    [Theory]
    [MemberData(nameof(Patterns))]
    public void SameMatchesAsRegexOnTheWholeBrownCorpus(string pattern) =>
        AssertSame(pattern, File.ReadAllText(TestPaths.Asset("brown.txt")), "brown.txt");

    [Theory]
    [MemberData(nameof(Patterns))]
    public void SameMatchesAsRegexOnMixedText(string pattern) =>
        AssertSame(pattern, File.ReadAllText(TestPaths.MixedText), "the mixed text");

    [Theory]
    [MemberData(nameof(Patterns))]
    public void SameMatchesAsRegexOnEdgeCases(string pattern)
    {
        foreach (var e in TrainerTests.EdgeCases.Where(e => !e.Any(char.IsSurrogate)))
            AssertSame(pattern, e, Escape(e));
    }

    /// <summary>Letters of every case class, marks, numbers of every kind, every kind of whitespace, apostrophes and
    /// the contraction letters in both cases (and U+017F, which folds to 's'), slashes and punctuation.</summary>
    private const string Alphabet =
        "aZsStTmMdDlLrReEvVkK\u017F\u212A'''  \t\n\r\n\v\f\u0085\u00A0\u1680\u2003\u2028\u2029\u202F\u3000\u200B\u001C\u001F" +
        "09\u0663\u00B2\u2167\u00BD/\\.,!?-_\"()[]{}#@$%^&*+=<>|~`:;" +
        "\u01C5\u02B0\u3042\u4E2D\u0301\u0903\u20DD\u00E9\u0130\u0131\u00DF\u03A3\u03C3\u0416\u0436\u05D0\u0627\uFF21\uFF41\uFF10";

    [Theory]
    [MemberData(nameof(Patterns))]
    public void SameMatchesAsRegexOnRandomStrings(string pattern)
    {
        var rng = new Random(1234);
        var sb = new StringBuilder();
        for (int t = 0; t < 3000; t++)
        {
            sb.Clear();
            int len = rng.Next(1, 24);
            for (int i = 0; i < len; i++) sb.Append(Alphabet[rng.Next(Alphabet.Length)]);
            var s = sb.ToString();
            AssertSame(pattern, s, Escape(s));
        }
    }

    [Fact]
    public void AstralLettersAreLetters()
    {
        // U+1D400 MATHEMATICAL BOLD CAPITAL A is \p{Lu}: one code point, two UTF-16 chars.
        // An emoji (So) followed by a letter is one cl100k piece ([^\r\n\p{L}\p{N}]?\p{L}+), as in HF and tiktoken.
        var text = " \U0001D400\U0001D400 x\U0001F389a";
        var m = ByScanner(FastSplitKind.Cl100k, text);
        Assert.Equal([(0, 5), (5, 2), (7, 3)], m);
    }

    [Fact]
    public void KnowsOnlyTheKnownPatterns()
    {
        Assert.True(FastSplit.TryGetKind(SplitPatterns.O200k.Pattern, out var k) && k == FastSplitKind.O200k);
        Assert.False(FastSplit.TryGetKind(@"\s+", out _));
        Assert.False(FastSplit.TryGetKind(null, out _));
    }
}
