using System.Collections.Concurrent;
using System.Text.RegularExpressions;

namespace SharpLM.Tokenizers.Core;

/// <summary>Compiled, culture-invariant regexes shared by all tokenizers (patterns repeat across files). Built on
/// first use only (<see cref="LazyRegex"/>): compiling a regex costs milliseconds of start-up, and the common split
/// patterns run on hand-written scanners that never need it.</summary>
internal static class RegexCache
{
    private static readonly ConcurrentDictionary<string, Regex> s_cache = new(StringComparer.Ordinal);

    public static Regex Get(string pattern) =>
        s_cache.GetOrAdd(pattern, static p => new Regex(p, RegexOptions.Compiled | RegexOptions.CultureInvariant));

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
