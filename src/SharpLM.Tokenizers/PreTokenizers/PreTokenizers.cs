using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using SharpLM.Tokenizers.AddedTokens;
using SharpLM.Tokenizers.Core;

namespace SharpLM.Tokenizers.PreTokenizers;

/// <summary>GPT-2 byte-level pre-tokenizer (HF pre_tokenizers/byte_level.rs): optional prefix space, optional
/// split with the GPT-2 regex, then every UTF-8 byte becomes one printable char (<see cref="ByteLevelTables"/>).</summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool trimOffsets, bool useRegex) : IPreTokenizer
{
    public static string Gpt2Pattern => SplitPatterns.Gpt2.Pattern;

    public bool AddPrefixSpace { get; } = addPrefixSpace;
    public bool TrimOffsets { get; } = trimOffsets;
    public bool UseRegex { get; } = useRegex;

    private static readonly LazyRegex s_regex = new(Gpt2Pattern);

    public void PreTokenize(PreTokenizedString text)
    {
        text.Split(this, static (self, n, output) =>
        {
            if (self.AddPrefixSpace && !n.Text.StartsWith(' ')) n.Prepend(" ");
            if (self.UseRegex)
            {
                var m = SplitHelper.Matches();
                PreTokenizerRegex.Matches(Gpt2Pattern, s_regex, n.Text, m);
                SplitHelper.Apply(n, m, SplitBehavior.Isolated, output);
            }
            else output.Add(new Split(n));
        });
        text.Normalize(0, static (_, n) => ByteLevelTables.MapToByteChars(n));
    }
}

/// <summary>The GPT-2 byte-to-char table shared by the ByteLevel pre-tokenizer, decoder and BPE loaders.</summary>
internal static class ByteLevelTables
{
    /// <summary>Byte value -> printable char.</summary>
    public static readonly char[] ByteToChar = BuildByteToChar();

    /// <summary>Char -> byte value, -1 when the char is not in the table (index by char, size 512).</summary>
    public static readonly short[] CharToByte = BuildCharToByte();

    private static char[] BuildByteToChar()
    {
        var table = new char[256];
        var has = new bool[256];
        for (int b = '!'; b <= '~'; b++) { table[b] = (char)b; has[b] = true; }
        for (int b = 0xA1; b <= 0xAC; b++) { table[b] = (char)b; has[b] = true; }
        for (int b = 0xAE; b <= 0xFF; b++) { table[b] = (char)b; has[b] = true; }
        int n = 0;
        for (int b = 0; b < 256; b++)
            if (!has[b]) table[b] = (char)(256 + n++);
        return table;
    }

    private static short[] BuildCharToByte()
    {
        var t = new short[512];
        Array.Fill(t, (short)-1);
        var fwd = BuildByteToChar();
        for (int b = 0; b < 256; b++) t[fwd[b]] = (short)b;
        return t;
    }

    /// <summary>Maps a piece to byte chars: each UTF-8 byte of each code point becomes one char (lone
    /// surrogates count as U+FFFD, as .NET's UTF-8 encoder writes them).</summary>
    public static void MapToByteChars(NormalizedString n)
    {
        string s = n.Text;
        bool ascii = true;
        foreach (char c in s)
        {
            if (c >= 128 || ByteToChar[c] != c) { ascii = false; break; }
        }
        if (ascii) return;
        var b = new TransformBuilder(s.Length * 2);
        Span<byte> bytes = stackalloc byte[4];
        for (int i = 0; i < s.Length;)
        {
            Rune.DecodeFromUtf16(s.AsSpan(i), out var r, out int w);
            int nb = r.EncodeToUtf8(bytes);
            for (int k = 0; k < nb; k++) b.Append(ByteToChar[bytes[k]], i);
            i += w;
        }
        b.ApplyTo(n);
    }

    /// <summary>Writes the byte chars of <paramref name="text"/> to <paramref name="dest"/>; returns the count
    /// (dest must hold 3 chars per input char).</summary>
    public static int MapToByteChars(ReadOnlySpan<char> text, Span<char> dest)
    {
        int k = 0;
        Span<byte> bytes = stackalloc byte[4];
        for (int i = 0; i < text.Length;)
        {
            char c = text[i];
            if (c < 128) { dest[k++] = ByteToChar[c]; i++; continue; }
            Rune.DecodeFromUtf16(text[i..], out var r, out int w);
            int nb = r.EncodeToUtf8(bytes);
            for (int j = 0; j < nb; j++) dest[k++] = ByteToChar[bytes[j]];
            i += w;
        }
        return k;
    }
}

/// <summary>Split on a literal or a regex (HF pre_tokenizers/split.rs).</summary>
internal sealed class SplitPreTokenizer : IPreTokenizer
{
    public string Pattern { get; }
    public bool IsRegex { get; }
    public SplitBehavior Behavior { get; }
    public bool Invert { get; }
    private readonly LazyRegex _regex;

    public SplitPreTokenizer(string pattern, bool isRegex, SplitBehavior behavior, bool invert)
    {
        Pattern = pattern;
        IsRegex = isRegex;
        Behavior = behavior;
        Invert = invert;
        _regex = new LazyRegex(pattern, isLiteral: !isRegex);
    }

    public void PreTokenize(PreTokenizedString text) => text.Split(this, static (self, n, output) => self.SplitOne(n, output));

    internal void SplitOne(NormalizedString n, List<Split> output)
    {
        var m = SplitHelper.Matches();
        if (!IsRegex && Pattern.Length == 0) m.Add((0, n.Length, false));
        else if (IsRegex) PreTokenizerRegex.Matches(Pattern, _regex, n.Text, m);
        else SplitHelper.RegexMatches(_regex.Value, n.Text, m);
        if (Invert) SplitHelper.Invert(m);
        SplitHelper.Apply(n, m, Behavior, output);
    }
}

/// <summary>Metaspace (HF pre_tokenizers/metaspace.rs): spaces become the replacement (▁), a replacement is
/// prepended per the scheme, and pieces split before each replacement.</summary>
internal sealed class MetaspacePreTokenizer(char replacement, MetaspacePrependScheme scheme, bool split) : IPreTokenizer
{
    public char Replacement { get; } = replacement;
    public MetaspacePrependScheme Scheme { get; } = scheme;
    public bool SplitPieces { get; } = split;

    public void PreTokenize(PreTokenizedString text)
    {
        text.Split(this, static (self, n, output) =>
        {
            string s = n.Text;
            if (s.Contains(' '))
            {
                var b = new TransformBuilder(s.Length);
                for (int i = 0; i < s.Length; i++) b.Append(s[i] == ' ' ? self.Replacement : s[i], i);
                b.ApplyTo(n);
            }
            bool prepend = self.Scheme switch
            {
                MetaspacePrependScheme.Always => !n.Text.StartsWith(self.Replacement),
                MetaspacePrependScheme.First => !n.Text.StartsWith(self.Replacement) && n.OriginalStart == 0,
                _ => false,
            };
            if (prepend) n.Prepend(self.Replacement.ToString());
            if (self.SplitPieces)
            {
                var m = SplitHelper.Matches();
                char rep = self.Replacement;
                SplitHelper.CharMatches(n.Text, r => r.Value == rep, m);
                SplitHelper.Apply(n, m, SplitBehavior.MergedWithNext, output);
            }
            else output.Add(new Split(n));
        });
    }
}

internal enum MetaspacePrependScheme
{
    Always,
    First,
    Never,
}

/// <summary>Whitespace: runs of word chars and runs of other non-space chars (regex \w+|[^\w\s]+).</summary>
internal sealed class WhitespacePreTokenizer : IPreTokenizer
{
    public void PreTokenize(PreTokenizedString text)
    {
        text.Split(0, static (_, n, output) =>
        {
            string s = n.Text;
            int i = 0;
            while (i < s.Length)
            {
                Rune.DecodeFromUtf16(s.AsSpan(i), out var r, out int w);
                if (Rune.IsWhiteSpace(r)) { i += w; continue; }
                bool word = AddedVocabulary.IsWord(r);
                int start = i;
                i += w;
                while (i < s.Length)
                {
                    Rune.DecodeFromUtf16(s.AsSpan(i), out var r2, out int w2);
                    if (Rune.IsWhiteSpace(r2) || AddedVocabulary.IsWord(r2) != word) break;
                    i += w2;
                }
                output.Add(new Split(n.Slice(start, i)));
            }
        });
    }
}

/// <summary>Split on whitespace, removing it.</summary>
internal sealed class WhitespaceSplitPreTokenizer : IPreTokenizer
{
    public void PreTokenize(PreTokenizedString text) => text.Split(0, static (_, n, output) =>
    {
        var m = SplitHelper.Matches();
        SplitHelper.CharMatches(n.Text, Rune.IsWhiteSpace, m);
        SplitHelper.Apply(n, m, SplitBehavior.Removed, output);
    });
}

/// <summary>BERT: split on whitespace (removed), then isolate each punctuation char.</summary>
internal sealed class BertPreTokenizer : IPreTokenizer
{
    public void PreTokenize(PreTokenizedString text)
    {
        new WhitespaceSplitPreTokenizer().PreTokenize(text);
        new PunctuationPreTokenizer(SplitBehavior.Isolated).PreTokenize(text);
    }
}

/// <summary>Split on punctuation (ASCII punctuation or Unicode P*).</summary>
internal sealed class PunctuationPreTokenizer(SplitBehavior behavior) : IPreTokenizer
{
    public SplitBehavior Behavior { get; } = behavior;

    public void PreTokenize(PreTokenizedString text) => text.Split(this, static (self, n, output) =>
    {
        var m = SplitHelper.Matches();
        SplitHelper.CharMatches(n.Text, IsPunctuation, m);
        SplitHelper.Apply(n, m, self.Behavior, output);
    });

    internal static bool IsPunctuation(Rune r) =>
        (r.Value < 128 && char.IsAsciiLetterOrDigit((char)r.Value) == false && r.Value > 32 && r.Value < 127)
        || Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
}

/// <summary>Split on numeric chars: each alone (individual_digits) or in runs.</summary>
internal sealed class DigitsPreTokenizer(bool individualDigits) : IPreTokenizer
{
    public bool IndividualDigits { get; } = individualDigits;

    public void PreTokenize(PreTokenizedString text) => text.Split(this, static (self, n, output) =>
    {
        var m = SplitHelper.Matches();
        SplitHelper.CharMatches(n.Text, static r => Rune.GetUnicodeCategory(r) is UnicodeCategory.DecimalDigitNumber
            or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber, m);
        SplitHelper.Apply(n, m, self.IndividualDigits ? SplitBehavior.Isolated : SplitBehavior.Contiguous, output);
    });
}

/// <summary>Several pre-tokenizers in order.</summary>
internal sealed class SequencePreTokenizer(IReadOnlyList<IPreTokenizer> items) : IPreTokenizer
{
    public IReadOnlyList<IPreTokenizer> Items { get; } = items;

    public void PreTokenize(PreTokenizedString text)
    {
        foreach (var p in Items) p.PreTokenize(text);
    }
}
