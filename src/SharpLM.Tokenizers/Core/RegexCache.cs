using System.Collections.Concurrent;
using System.Text.RegularExpressions;

namespace SharpLM.Tokenizers.Core;

/// <summary>Compiled, culture-invariant regexes shared by all tokenizers (patterns repeat across files). Built on
/// first use only (<see cref="LazyRegex"/>): compiling a regex costs milliseconds of start-up, and the common split
/// patterns run on hand-written scanners that never need it.
/// Patterns come from files (tokenizer.json Split and Replace), so each match has a time limit
/// (<see cref="MatchTimeout"/>): a pattern that backtracks catastrophically ((a+)+b on a run of a's) stops with
/// <see cref="TooSlow"/>'s clear error instead of hanging the process. One match of a real pre-tokenizer pattern takes
/// microseconds; the limit is seconds.</summary>
internal static class RegexCache
{
    private static readonly ConcurrentDictionary<string, Regex> s_cache = new(StringComparer.Ordinal);

    /// <summary>The time one match may take: 2 s, or SHARPLM_REGEX_TIMEOUT_MS.</summary>
    public static TimeSpan MatchTimeout { get; } =
        int.TryParse(Environment.GetEnvironmentVariable("SHARPLM_REGEX_TIMEOUT_MS"), out int ms) && ms > 0
            ? TimeSpan.FromMilliseconds(ms) : TimeSpan.FromSeconds(2);

    public static Regex Get(string pattern) =>
        s_cache.GetOrAdd(pattern, static p => new Regex(p, RegexOptions.Compiled | RegexOptions.CultureInvariant, MatchTimeout));

    /// <summary>The error for a match that ran past <see cref="MatchTimeout"/>: names the pattern and the text length.</summary>
    public static InvalidDataException TooSlow(RegexMatchTimeoutException e)
    {
        string p = e.Pattern.Length <= 200 ? e.Pattern : e.Pattern[..200] + "...";
        return new InvalidDataException(
            $"the tokenizer regex '{p}' needed more than {MatchTimeout.TotalSeconds:0.###} s for one match on a text of {e.Input.Length} characters: " +
            "the pattern backtracks catastrophically (it comes from the tokenizer file's Split pre-tokenizer or Replace normalizer; fix the pattern there)", e);
    }

    public static Regex Literal(string text) => Get(Regex.Escape(text));

    /// <summary>Throws <see cref="ArgumentException"/> when .NET cannot parse <paramref name="pattern"/> (parses it,
    /// compiles nothing).</summary>
    public static void Validate(string pattern)
    {
        if (!s_cache.ContainsKey(pattern)) _ = new Regex(pattern, RegexOptions.CultureInvariant);
    }
}

/// <summary>A pattern (or a literal) whose compiled <see cref="Regex"/> is made on first use.</summary>
internal sealed class LazyRegex(string pattern, bool isLiteral = false)
{
    private Regex? _regex;

    public Regex Value => _regex ??= isLiteral ? RegexCache.Literal(pattern) : RegexCache.Get(pattern);
}
