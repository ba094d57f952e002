using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using SharpLM.Tokenizers.Core;

namespace SharpLM.Tokenizers.Normalizers;

/// <summary>NFC / NFD / NFKC / NFKD (HF normalizers/unicode.rs). The text is exactly <see cref="UnicodeNormalization.Normalize"/>;
/// offsets are tracked per base char + its combining marks.</summary>
internal sealed class UnicodeNormalizer(NormalizationForm form) : INormalizer
{
    public NormalizationForm Form { get; } = form;

    public void Normalize(NormalizedString text) => Apply(text, Form);

    public static void Apply(NormalizedString text, NormalizationForm form)
    {
        string s = text.Text;
        if (s.Length == 0 || UnicodeNormalization.IsTriviallyNormalized(s, form)) return;
        string whole = UnicodeNormalization.Normalize(s, form);
        if (whole == s) return;
        if (!text.TracksOffsets) { text.Transform(whole, default); return; }
        // Per segment (a starter and the non-starters after it) so each output char maps to its segment.
        var b = new TransformBuilder(whole.Length + 8);
        var sb = new StringBuilder(whole.Length);
        int i = 0;
        while (i < s.Length)
        {
            int j = i + (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? 2 : 1);
            while (j < s.Length && IsNonStarter(s, j, out int w)) j += w;
            string seg = s.Substring(i, j - i);
            string ns = UnicodeNormalization.Normalize(seg, form);
            sb.Append(ns);
            if (ns.Length == seg.Length) for (int k = 0; k < ns.Length; k++) b.Append(ns[k], i + k);
            else foreach (char c in ns) b.Append(c, i);
            i = j;
        }
        if (sb.ToString() == whole) b.ApplyTo(text);
        else
        {
            b.Discard();
            text.SetTextCoarse(whole);
        }
    }

    private static bool IsNonStarter(string s, int j, out int width)
    {
        Rune.DecodeFromUtf16(s.AsSpan(j), out var r, out width);
        var c = Rune.GetUnicodeCategory(r);
        return c is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark;
    }
}

/// <summary>Unicode lowercase per code point, as Rust's char::to_lowercase (İ becomes "i̇").</summary>
internal sealed class LowercaseNormalizer : INormalizer
{
    public void Normalize(NormalizedString text) => Apply(text);

    public static void Apply(NormalizedString text)
    {
        string s = text.Text;
        // Fast path: nothing to lower.
        bool any = false;
        foreach (char c in s)
        {
            if (c < 128 ? (uint)(c - 'A') <= 'Z' - 'A' : true) { any = true; break; }
        }
        if (!any) return;
        var b = new TransformBuilder(s.Length + 4);
        Span<char> buf = stackalloc char[2];
        for (int i = 0; i < s.Length;)
        {
            Rune.DecodeFromUtf16(s.AsSpan(i), out var r, out int w);
            if (r.Value == 0x130) { b.Append('i', i); b.Append('\u0307', -1); }
            else if (w == 1 && char.IsSurrogate(s[i])) b.Append(s[i], i);
            else
            {
                var lr = Rune.ToLowerInvariant(r);
                int n = lr.EncodeToUtf16(buf);
                for (int k = 0; k < n; k++) b.Append(buf[k], n == w ? i + k : i);
            }
            i += w;
        }
        b.ApplyTo(text);
    }
}

/// <summary>Removes leading and/or trailing whitespace.</summary>
internal sealed class StripNormalizer(bool left, bool right) : INormalizer
{
    public void Normalize(NormalizedString text)
    {
        string s = text.Text;
        int a = 0, e = s.Length;
        if (left) while (a < e && char.IsWhiteSpace(s[a])) a++;
        if (right) while (e > a && char.IsWhiteSpace(s[e - 1])) e--;
        if (a == 0 && e == s.Length) return;
        var b = new TransformBuilder(e - a);
        for (int i = a; i < e; i++) b.Append(s[i], i);
        b.ApplyTo(text);
    }
}

/// <summary>Removes combining marks (Mn, Mc, Me); usually after NFD.</summary>
internal sealed class StripAccentsNormalizer : INormalizer
{
    public void Normalize(NormalizedString text) => Filter(text, static r =>
        Rune.GetUnicodeCategory(r) is not (UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark));

    /// <summary>Keeps the code points for which <paramref name="keep"/> is true.</summary>
    internal static void Filter(NormalizedString text, Func<Rune, bool> keep)
    {
        string s = text.Text;
        if (s.AsSpan().IndexOfAnyExceptInRange('\u0000', '\u02FF') < 0) return; // no marks below U+0300
        var b = new TransformBuilder(s.Length);
        bool changed = false;
        for (int i = 0; i < s.Length;)
        {
            Rune.DecodeFromUtf16(s.AsSpan(i), out var r, out int w);
            if (keep(r)) for (int k = 0; k < w; k++) b.Append(s[i + k], i + k);
            else changed = true;
            i += w;
        }
        if (changed) b.ApplyTo(text);
        else b.Discard();
    }
}

/// <summary>Replaces every match of a literal string or a regex by <see cref="Content"/>.</summary>
internal sealed class ReplaceNormalizer : INormalizer
{
    private readonly LazyRegex _regex;
    private readonly string? _literal;
    public string Content { get; }

    /// <summary>The literal pattern, or null for a regex (read by the tok-extra fast paths).</summary>
    internal string? Literal => _literal;

    public ReplaceNormalizer(string pattern, bool isRegex, string content)
    {
        _regex = new LazyRegex(pattern, isLiteral: !isRegex);
        _literal = isRegex ? null : pattern;
        Content = content;
    }

    public void Normalize(NormalizedString text) => Apply(text, _literal, _regex, Content);

    internal static void Apply(NormalizedString text, string? literal, LazyRegex regex, string content)
    {
        string s = text.Text;
        if (literal != null)
        {
            if (literal.Length == 0 || !s.Contains(literal, StringComparison.Ordinal)) return;
            if (!text.TracksOffsets) { text.Transform(s.Replace(literal, content, StringComparison.Ordinal), default); return; }
        }
        var b = new TransformBuilder(s.Length + 8);
        int last = 0;
        bool any = false;
        for (var m = regex.Value.Match(s); m.Success; m = m.NextMatch())
        {
            if (m.Length == 0) continue;
            any = true;
            for (int i = last; i < m.Index; i++) b.Append(s[i], i);
            for (int k = 0; k < content.Length; k++) b.Append(content[k], k < m.Length ? m.Index + k : m.Index + m.Length - 1);
            last = m.Index + m.Length;
        }
        if (!any) { b.Discard(); return; }
        for (int i = last; i < s.Length; i++) b.Append(s[i], i);
        b.ApplyTo(text);
    }
}

/// <summary>Prepends a string to every non-empty piece.</summary>
internal sealed class PrependNormalizer(string prepend) : INormalizer
{
    public string Prepend { get; } = prepend;

    public void Normalize(NormalizedString text) => text.Prepend(Prepend);
}

/// <summary>Several normalizers in order.</summary>
internal sealed class SequenceNormalizer(IReadOnlyList<INormalizer> items) : INormalizer
{
    public IReadOnlyList<INormalizer> Items { get; } = items;

    public void Normalize(NormalizedString text)
    {
        foreach (var n in Items) n.Normalize(text);
    }
}

/// <summary>BERT's normalizer (HF normalizers/bert.rs): clean_text (drop controls, whitespace to ' '),
/// handle_chinese_chars (spaces around CJK ideographs), strip_accents (NFD then drop Mn; null follows
/// lowercase), lowercase.</summary>
internal sealed class BertNormalizer(bool cleanText, bool handleChineseChars, bool? stripAccents, bool lowercase) : INormalizer
{
    public bool CleanText { get; } = cleanText;
    public bool HandleChineseChars { get; } = handleChineseChars;
    public bool? StripAccents { get; } = stripAccents;
    public bool Lowercase { get; } = lowercase;

    public void Normalize(NormalizedString text)
    {
        string s = text.Text;
        if (CleanText)
        {
            bool needs = false;
            foreach (char c in s) if (c < 32 || c > 126) { needs = true; break; }
            if (needs)
            {
                var b = new TransformBuilder(s.Length);
                for (int i = 0; i < s.Length;)
                {
                    Rune.DecodeFromUtf16(s.AsSpan(i), out var r, out int w);
                    bool lone = w == 1 && char.IsSurrogate(s[i]);
                    if (!(r.Value == 0 || r.Value == 0xFFFD || lone || IsControl(r)))
                    {
                        if (IsBertWhitespace(r)) b.Append(' ', i);
                        else for (int k = 0; k < w; k++) b.Append(s[i + k], i + k);
                    }
                    i += w;
                }
                b.ApplyTo(text);
                s = text.Text;
            }
        }
        if (HandleChineseChars)
        {
            bool needs = false;
            foreach (char c in s) if (c >= 0x3400) { needs = true; break; }
            if (needs)
            {
                var b = new TransformBuilder(s.Length + 16);
                for (int i = 0; i < s.Length;)
                {
                    Rune.DecodeFromUtf16(s.AsSpan(i), out var r, out int w);
                    if (IsChineseChar(r.Value))
                    {
                        b.Append(' ', -1);
                        for (int k = 0; k < w; k++) b.Append(s[i + k], i + k);
                        b.Append(' ', -1);
                    }
                    else for (int k = 0; k < w; k++) b.Append(s[i + k], i + k);
                    i += w;
                }
                b.ApplyTo(text);
            }
        }
        if (StripAccents ?? Lowercase)
        {
            UnicodeNormalizer.Apply(text, NormalizationForm.FormD);
            StripAccentsNormalizer.Filter(text, static r => Rune.GetUnicodeCategory(r) != UnicodeCategory.NonSpacingMark);
        }
        if (Lowercase) LowercaseNormalizer.Apply(text);
    }

    /// <summary>Rust char::is_whitespace plus \t \n \r.</summary>
    internal static bool IsBertWhitespace(Rune r) => r.Value is '\t' or '\n' or '\r' || Rune.IsWhiteSpace(r);

    /// <summary>Categories C* (Cc, Cf, Cs, Co, Cn) except \t \n \r.</summary>
    internal static bool IsControl(Rune r)
    {
        if (r.Value is '\t' or '\n' or '\r') return false;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
            or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;
    }

    internal static bool IsChineseChar(int c) =>
        c is (>= 0x4E00 and <= 0x9FFF) or (>= 0x3400 and <= 0x4DBF) or (>= 0x20000 and <= 0x2A6DF)
            or (>= 0x2A700 and <= 0x2B73F) or (>= 0x2B740 and <= 0x2B81F) or (>= 0x2B920 and <= 0x2CEAF)
            or (>= 0xF900 and <= 0xFAFF) or (>= 0x2F800 and <= 0x2FA1F);
}
