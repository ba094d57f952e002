using System.Text;
using System.Text.RegularExpressions;
using SharpLM.Tokenizers.Core;
using SharpLM.Tokenizers.PreTokenizers;

namespace SharpLM.Tokenizers.Decoders;

/// <summary>ByteLevel: every char back to its byte (tokens with a char outside the table keep their UTF-8),
/// the bytes decoded as UTF-8 with U+FFFD for invalid sequences; yields one string.</summary>
internal sealed class ByteLevelDecoder : IDecoder
{
    public void DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>(tokens.Count * 4);
        foreach (var t in tokens)
        {
            bool ok = true;
            foreach (char c in t) if (c >= 512 || ByteLevelTables.CharToByte[c] < 0) { ok = false; break; }
            if (ok) foreach (char c in t) bytes.Add((byte)ByteLevelTables.CharToByte[c]);
            else bytes.AddRange(System.Text.Encoding.UTF8.GetBytes(t));
        }
        tokens.Clear();
        tokens.Add(System.Text.Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes)));
    }
}

/// <summary>Metaspace: the replacement char becomes a space; in the first token it is dropped (unless the
/// prepend scheme is "never").</summary>
internal sealed class MetaspaceDecoder(char replacement, MetaspacePrependScheme scheme) : IDecoder
{
    public void DecodeChain(List<string> tokens)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < tokens.Count; i++)
        {
            sb.Clear();
            foreach (char c in tokens[i])
            {
                if (c == replacement)
                {
                    if (i == 0 && scheme != MetaspacePrependScheme.Never) continue;
                    sb.Append(' ');
                }
                else sb.Append(c);
            }
            tokens[i] = sb.ToString();
        }
    }
}

/// <summary>ByteFallback: runs of &lt;0xNN&gt; tokens become their UTF-8 text, or one U+FFFD per byte when invalid.</summary>
internal sealed class ByteFallbackDecoder : IDecoder
{
    public void DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var pending = new List<byte>();
        var strict = new UTF8Encoding(false, true);
        void Flush()
        {
            if (pending.Count == 0) return;
            try { result.Add(strict.GetString(pending.ToArray())); }
            catch (DecoderFallbackException) { for (int i = 0; i < pending.Count; i++) result.Add("\uFFFD"); }
            pending.Clear();
        }
        foreach (var t in tokens)
        {
            if (t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>'
                && byte.TryParse(t.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out byte b))
                pending.Add(b);
            else
            {
                Flush();
                result.Add(t);
            }
        }
        Flush();
        tokens.Clear();
        tokens.AddRange(result);
    }
}

/// <summary>Fuse: all tokens into one string.</summary>
internal sealed class FuseDecoder : IDecoder
{
    public void DecodeChain(List<string> tokens)
    {
        string s = string.Concat(tokens);
        tokens.Clear();
        tokens.Add(s);
    }
}

/// <summary>Strip: removes up to <c>start</c> leading and <c>stop</c> trailing <c>content</c> chars of each token.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : IDecoder
{
    public void DecodeChain(List<string> tokens)
    {
        for (int k = 0; k < tokens.Count; k++)
        {
            string t = tokens[k];
            int a = 0;
            for (int i = 0; i < start && i < t.Length; i++)
            {
                if (t[i] == content) a = i + 1;
                else break;
            }
            int e = t.Length;
            for (int i = 0; i < stop && i < t.Length; i++)
            {
                int idx = t.Length - i - 1;
                if (t[idx] == content) e = idx;
                else break;
            }
            tokens[k] = e > a ? t[a..e] : "";
        }
    }
}

/// <summary>Replace: a literal or regex replaced in each token.</summary>
internal sealed class ReplaceDecoder(string pattern, bool isRegex, string content) : IDecoder
{
    private readonly LazyRegex? _regex = isRegex ? new LazyRegex(pattern) : null;

    public void DecodeChain(List<string> tokens)
    {
        for (int i = 0; i < tokens.Count; i++)
        {
            if (_regex != null) tokens[i] = _regex.Value.Replace(tokens[i], content.Replace("$", "$$", StringComparison.Ordinal));
            else if (pattern.Length > 0) tokens[i] = tokens[i].Replace(pattern, content, StringComparison.Ordinal);
        }
    }
}

/// <summary>WordPiece: "##" pieces glued to the previous one, others preceded by a space; optional cleanup of
/// spaces before punctuation and English contractions.</summary>
internal sealed class WordPieceDecoder(string prefix, bool cleanup) : IDecoder
{
    public void DecodeChain(List<string> tokens)
    {
        for (int i = 0; i < tokens.Count; i++)
        {
            string t = tokens[i];
            if (i != 0)
                t = t.StartsWith(prefix, StringComparison.Ordinal) ? t[prefix.Length..] : " " + t;
            if (cleanup) t = Cleanup(t);
            tokens[i] = t;
        }
    }

    internal static string Cleanup(string s) => s
        .Replace(" .", ".", StringComparison.Ordinal).Replace(" ?", "?", StringComparison.Ordinal)
        .Replace(" !", "!", StringComparison.Ordinal).Replace(" ,", ",", StringComparison.Ordinal)
        .Replace(" ' ", "'", StringComparison.Ordinal).Replace(" n't", "n't", StringComparison.Ordinal)
        .Replace(" 'm", "'m", StringComparison.Ordinal).Replace(" do not", " don't", StringComparison.Ordinal)
        .Replace(" 's", "'s", StringComparison.Ordinal).Replace(" 've", "'ve", StringComparison.Ordinal)
        .Replace(" 're", "'re", StringComparison.Ordinal);
}

/// <summary>BPEDecoder: the end-of-word suffix becomes a space (nothing on the last token).</summary>
internal sealed class BpeDecoder(string suffix) : IDecoder
{
    public void DecodeChain(List<string> tokens)
    {
        for (int i = 0; i < tokens.Count; i++)
            tokens[i] = suffix.Length == 0 ? tokens[i] : tokens[i].Replace(suffix, i == tokens.Count - 1 ? "" : " ", StringComparison.Ordinal);
    }
}

/// <summary>CTC: collapse repeats, drop the pad token, word delimiter to space.</summary>
internal sealed class CtcDecoder(string padToken, string wordDelimiterToken, bool cleanup) : IDecoder
{
    public void DecodeChain(List<string> tokens)
    {
        var r = new List<string>();
        string? prev = null;
        foreach (var t in tokens)
        {
            if (t == prev) continue;
            prev = t;
            if (t == padToken) continue;
            string x = t.Replace(wordDelimiterToken, " ", StringComparison.Ordinal);
            if (cleanup) x = WordPieceDecoder.Cleanup(x).Replace(wordDelimiterToken, " ", StringComparison.Ordinal);
            r.Add(x);
        }
        tokens.Clear();
        tokens.AddRange(r);
    }
}

/// <summary>Several decoders in order.</summary>
internal sealed class SequenceDecoder(IReadOnlyList<IDecoder> items) : IDecoder
{
    public void DecodeChain(List<string> tokens)
    {
        foreach (var d in items) d.DecodeChain(tokens);
    }
}
