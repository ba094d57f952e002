using System.Globalization;
using System.Text;

namespace SharpLM.Inference.Embeddings;

/// <summary>What the encoder needs from a tokenizer: ids with [CLS] ... [SEP], the special ids, and id -> token.</summary>
internal interface IEncoderTokenizer
{
    /// <summary>[CLS] tokens... [SEP].</summary>
    int[] Encode(string text);

    int SepId { get; }
    int PadId { get; }

    /// <summary>The [MASK] id, or -1 when the vocabulary has none.</summary>
    int MaskId { get; }

    string MaskToken { get; }

    string IdToToken(int id);
}

/// <summary>
/// BERT's tokenizer from a vocab.txt: BasicTokenizer (clean control characters, split CJK ideographs and punctuation,
/// optional lower-casing with accent stripping) then greedy longest-match WordPiece with "##" continuations.
/// Special tokens written in the text ("[MASK]", "[SEP]" ...) are kept whole. A small self-contained version for the
/// encoder; checked against Microsoft.ML.Tokenizers' BertTokenizer in the tests.
/// </summary>
internal sealed class VocabTxtTokenizer : IEncoderTokenizer
{
    private readonly Dictionary<string, int> _vocab = new(StringComparer.Ordinal);
    private readonly string[] _tokens;
    private readonly string[] _specials;
    private readonly bool _lowercase;
    private readonly int _unk;
    private readonly int _cls;

    public int SepId { get; }
    public int PadId { get; }
    public int MaskId { get; }
    public string MaskToken => "[MASK]";

    public VocabTxtTokenizer(string vocabPath, bool lowercase = true)
    {
        if (!File.Exists(vocabPath)) throw new FileNotFoundException($"vocab.txt not found: {vocabPath}", vocabPath);
        var lines = File.ReadAllLines(vocabPath);
        _tokens = new string[lines.Length];
        for (int i = 0; i < lines.Length; i++)
        {
            var tok = lines[i].TrimEnd('\r');
            _tokens[i] = tok;
            _vocab.TryAdd(tok, i);
        }
        _lowercase = lowercase;
        int Need(string t) => _vocab.TryGetValue(t, out int id) ? id
            : throw new InvalidDataException($"{vocabPath}: the vocabulary has no '{t}' token; a BERT vocab.txt needs [CLS], [SEP], [UNK] and [PAD]");
        _cls = Need("[CLS]");
        SepId = Need("[SEP]");
        _unk = Need("[UNK]");
        PadId = Need("[PAD]");
        MaskId = _vocab.GetValueOrDefault("[MASK]", -1);
        _specials = [.. new[] { "[CLS]", "[SEP]", "[UNK]", "[PAD]", "[MASK]" }.Where(_vocab.ContainsKey)];
    }

    public string IdToToken(int id) => (uint)id < (uint)_tokens.Length ? _tokens[id] : $"<{id}>";

    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int> { _cls };
        int pos = 0;
        while (pos < text.Length)
        {
            int next = -1;
            string? special = null;
            foreach (var s in _specials)
            {
                int at = text.IndexOf(s, pos, StringComparison.Ordinal);
                if (at >= 0 && (next < 0 || at < next)) { next = at; special = s; }
            }
            int end = next < 0 ? text.Length : next;
            EncodeChunk(text.AsSpan(pos, end - pos), ids);
            if (special is null) break;
            ids.Add(_vocab[special]);
            pos = next + special.Length;
        }
        ids.Add(SepId);
        return [.. ids];
    }

    private void EncodeChunk(ReadOnlySpan<char> text, List<int> ids)
    {
        // BasicTokenizer: clean, pad CJK and punctuation with spaces, split on whitespace.
        var sb = new StringBuilder(text.Length + 16);
        foreach (var rune in text.EnumerateRunes())
        {
            int cp = rune.Value;
            if (cp == 0 || cp == 0xFFFD || IsControl(rune)) continue;
            if (IsWhitespace(rune)) { sb.Append(' '); continue; }
            if (IsCjk(cp)) { sb.Append(' ').Append(rune.ToString()).Append(' '); continue; }
            sb.Append(rune.ToString());
        }
        foreach (var word in sb.ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            string w = word;
            if (_lowercase) w = StripAccents(Lower(w));
            // split punctuation into its own tokens
            var piece = new StringBuilder();
            foreach (var r in w.EnumerateRunes())
            {
                if (IsPunctuation(r))
                {
                    if (piece.Length > 0) { WordPiece(piece.ToString(), ids); piece.Clear(); }
                    WordPiece(r.ToString(), ids);
                }
                else piece.Append(r.ToString());
            }
            if (piece.Length > 0) WordPiece(piece.ToString(), ids);
        }
    }

    private void WordPiece(string word, List<int> ids)
    {
        if (word.Length > 100) { ids.Add(_unk); return; }
        int start = 0;
        var pieces = new List<int>();
        while (start < word.Length)
        {
            int end = word.Length;
            int found = -1;
            while (start < end)
            {
                var sub = start > 0 ? "##" + word[start..end] : word[start..end];
                if (_vocab.TryGetValue(sub, out int id)) { found = id; break; }
                end--;
                if (end > start && char.IsLowSurrogate(word[end])) end--;
            }
            if (found < 0) { ids.Add(_unk); return; }
            pieces.Add(found);
            start = end;
        }
        ids.AddRange(pieces);
    }

    /// <summary>Unicode lower-casing as Rust/Python do it: İ (U+0130) becomes "i" + U+0307, which .NET's invariant casing leaves alone.</summary>
    internal static string Lower(string s)
    {
        var l = s.ToLowerInvariant();
        return l.Contains('\u0130', StringComparison.Ordinal) ? l.Replace("\u0130", "i\u0307", StringComparison.Ordinal) : l;
    }

    /// <summary>
    /// NFD then drop non-spacing marks (BERT's strip_accents). string.Normalize is a no-op under InvariantGlobalization,
    /// so precomposed characters come from <see cref="AccentTable"/> and Hangul syllables decompose algorithmically.
    /// </summary>
    internal static string StripAccents(string s)
    {
        bool ascii = true;
        foreach (var c in s) ascii &= c < 0x80;
        if (ascii) return s;
        var sb = new StringBuilder(s.Length);
        foreach (var r in s.EnumerateRunes())
        {
            int cp = r.Value;
            if (cp is >= 0xAC00 and <= 0xD7A3)
            {
                int si = cp - 0xAC00;
                sb.Append((char)(0x1100 + si / 588)).Append((char)(0x1161 + si % 588 / 28));
                if (si % 28 != 0) sb.Append((char)(0x11A7 + si % 28));
                continue;
            }
            int k = Array.BinarySearch(AccentTable.Keys, cp);
            if (k >= 0) { sb.Append(AccentTable.Values[k]); continue; }
            if (Rune.GetUnicodeCategory(r) == UnicodeCategory.NonSpacingMark) continue;
            sb.Append(r.ToString());
        }
        return sb.ToString();
    }

    private static bool IsWhitespace(Rune r) =>
        r.Value is ' ' or '\t' or '\n' or '\r' || Rune.GetUnicodeCategory(r) == UnicodeCategory.SpaceSeparator;

    private static bool IsControl(Rune r)
    {
        if (r.Value is '\t' or '\n' or '\r') return false;
        var c = Rune.GetUnicodeCategory(r);
        return c is UnicodeCategory.Control or UnicodeCategory.Format;
    }

    private static bool IsPunctuation(Rune r)
    {
        int cp = r.Value;
        if (cp is >= 33 and <= 47 or >= 58 and <= 64 or >= 91 and <= 96 or >= 123 and <= 126) return true;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    private static bool IsCjk(int cp) =>
        cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F
            or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;
}

/// <summary><see cref="IEncoderTokenizer"/> over SharpLM.Tokenizers (tokenizer.json or vocab.txt).</summary>
internal sealed class SharpLmEncoderTokenizer : IEncoderTokenizer
{
    private readonly SharpLM.Tokenizers.Tokenizer _tok;

    public SharpLmEncoderTokenizer(SharpLM.Tokenizers.Tokenizer tok)
    {
        _tok = tok;
        SepId = tok.TokenToId("[SEP]") ?? tok.TokenToId("</s>")
            ?? throw new InvalidDataException($"{tok.SourceName}: the tokenizer has no [SEP] token; a BERT-family encoder needs one");
        PadId = tok.PadId ?? tok.TokenToId("[PAD]") ?? 0;
        MaskToken = tok.TokenToId("[MASK]") is not null ? "[MASK]" : "<mask>";
        MaskId = tok.TokenToId(MaskToken) ?? -1;
    }

    public int SepId { get; }
    public int PadId { get; }
    public int MaskId { get; }
    public string MaskToken { get; }

    public int[] Encode(string text) => _tok.EncodeToIds(text, addSpecialTokens: true);

    public string IdToToken(int id) => _tok.IdToToken(id) ?? $"<{id}>";
}
