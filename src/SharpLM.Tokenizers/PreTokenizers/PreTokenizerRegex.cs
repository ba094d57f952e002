using System.Buffers;
using System.Globalization;
using System.Text;
using SharpLM.Tokenizers.Core;

namespace SharpLM.Tokenizers.PreTokenizers;

/// <summary>
/// Finds the matches of a pre-tokenizer regex with Rust (onig / fancy-regex) code-point semantics. .NET Regex works
/// on UTF-16 units, so a surrogate pair is two chars of category Cs there: \p{L} misses 𝐀 and 𠀀. Text with
/// surrogate pairs is therefore matched on a projection where each pair becomes one BMP stand-in char of the same
/// general category, and the match bounds are mapped back.
/// </summary>
internal static class PreTokenizerRegex
{
    public static void Matches(string pattern, LazyRegex regex, string text, List<(int, int, bool)> output)
    {
        if (text.Length == 0) return;
        if (text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
        {
            // tok-extra hook: hand-written scanners for the known split patterns (BMP text only; astral text takes
            // the code-point projection below).
            if (FastSplit.TryGetKindCached(pattern, out var kind)) { FastSplit.Matches(kind, text, output); return; }
            SplitHelper.RegexMatches(regex.Value, text, output);
            return;
        }
        // Project: one char per code point; map[i] = index in text of projected char i (map[n] = text.Length).
        var chars = ArrayPool<char>.Shared.Rent(text.Length);
        var map = ArrayPool<int>.Shared.Rent(text.Length + 1);
        int n = 0;
        for (int i = 0; i < text.Length;)
        {
            map[n] = i;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                chars[n++] = StandIn(Rune.GetUnicodeCategory(new Rune(text[i], text[i + 1])));
                i += 2;
            }
            else chars[n++] = text[i++];
        }
        map[n] = text.Length;
        string projected = new(chars, 0, n);
        var tmp = new List<(int, int, bool)>();
        SplitHelper.RegexMatches(regex.Value, projected, tmp);
        foreach (var (s, e, m) in tmp) output.Add((map[s], map[e], m));
        ArrayPool<char>.Shared.Return(chars);
        ArrayPool<int>.Shared.Return(map);
    }

    /// <summary>A BMP char of the given general category (rare in patterns, so only its category matters).</summary>
    internal static char StandIn(UnicodeCategory c) => c switch
    {
        UnicodeCategory.UppercaseLetter => '\uA640',
        UnicodeCategory.LowercaseLetter => '\uA641',
        UnicodeCategory.TitlecaseLetter => '\u01C5',
        UnicodeCategory.ModifierLetter => '\u02B0',
        UnicodeCategory.OtherLetter => '\uA000',
        UnicodeCategory.NonSpacingMark => '\u0300',
        UnicodeCategory.SpacingCombiningMark => '\u0903',
        UnicodeCategory.EnclosingMark => '\u20DD',
        UnicodeCategory.DecimalDigitNumber => '\u0660',
        UnicodeCategory.LetterNumber => '\u2160',
        UnicodeCategory.OtherNumber => '\u00B2',
        UnicodeCategory.MathSymbol => '\u2200',
        UnicodeCategory.CurrencySymbol => '\u20AC',
        UnicodeCategory.ModifierSymbol => '\u02C2',
        UnicodeCategory.OtherSymbol => '\u2600',
        UnicodeCategory.ConnectorPunctuation => '\u203F',
        UnicodeCategory.DashPunctuation => '\u2010',
        UnicodeCategory.OpenPunctuation => '\u2045',
        UnicodeCategory.ClosePunctuation => '\u2046',
        UnicodeCategory.InitialQuotePunctuation => '\u00AB',
        UnicodeCategory.FinalQuotePunctuation => '\u00BB',
        UnicodeCategory.OtherPunctuation => '\u2020',
        UnicodeCategory.Format => '\u00AD',
        UnicodeCategory.PrivateUse => '\uE000',
        _ => '\u0378',
    };
}
