using System.Collections.Concurrent;
using System.Text.RegularExpressions;

namespace SharpLM.Tokenizers.Core;

/// <summary>Compiled, culture-invariant regexes shared by all tokenizers (patterns repeat across files).</summary>
internal static class RegexCache
{
    private static readonly ConcurrentDictionary<string, Regex> s_cache = new(StringComparer.Ordinal);

    public static Regex Get(string pattern) =>
        s_cache.GetOrAdd(pattern, static p => new Regex(p, RegexOptions.Compiled | RegexOptions.CultureInvariant));

    public static Regex Literal(string text) => Get(Regex.Escape(text));
}
