using System.Globalization;
using System.Text;
using SharpLM.Tokenizers.Core;

namespace SharpLM.Tokenizers.AddedTokens;

/// <summary>
/// The added tokens (HF added_vocabulary.rs): they are cut out of the text before the model sees it, first those
/// with normalized=false on the raw text, then those with normalized=true on the normalized text. Matching is
/// leftmost-longest; single_word requires no word char on either side; lstrip/rstrip swallow the whitespace
/// beside the token.
/// </summary>
internal sealed class AddedVocabulary
{
    private readonly Dictionary<string, int> _byContent = new(StringComparer.Ordinal);
    private readonly Dictionary<int, AddedToken> _byId = [];
    private readonly HashSet<string> _special = new(StringComparer.Ordinal);
    private readonly Matcher _raw;
    private readonly Matcher _normalized;

    /// <summary>All added tokens by id order.</summary>
    public IReadOnlyList<AddedToken> Tokens { get; }

    public bool IsEmpty => _byId.Count == 0;

    /// <summary>Registers <paramref name="tokens"/> in order, giving each the id the model already has for its
    /// content, else the next free id after the model vocabulary (HF's AddedVocabulary::add_tokens).</summary>
    public AddedVocabulary(IEnumerable<AddedToken> tokens, IModel model, INormalizer? normalizer)
    {
        var ordered = new List<AddedToken>();
        var specials = new List<AddedToken>();
        var others = new List<AddedToken>();
        int maxId = -1;
        foreach (var t in tokens)
        {
            if (t.Content.Length == 0 || _byContent.ContainsKey(t.Content)) continue;
            int id;
            if (model.TokenToId(t.Content) is int mid) id = mid;
            else
            {
                int max = maxId;
                id = max < 0 ? model.VocabSize : (max >= model.VocabSize || model.VocabSize == 0 ? max + 1 : model.VocabSize);
            }
            maxId = Math.Max(maxId, id);
            var token = t with { Id = id };
            _byContent[t.Content] = id;
            _byId[id] = token;
            if (token.Special) { _special.Add(t.Content); specials.Add(token); }
            else others.Add(token);
            ordered.Add(token);
        }
        ordered.Sort((a, b) => a.Id.CompareTo(b.Id));
        Tokens = ordered;
        var all = specials.Concat(others).ToList();
        _raw = new Matcher(all.Where(t => !t.Normalized).Select(t => (t.Content, t)));
        _normalized = new Matcher(all.Where(t => t.Normalized).Select(t =>
        {
            string content = t.Content;
            if (normalizer != null)
            {
                var n = NormalizedString.FromOriginal(content, 0, content.Length, false);
                normalizer.Normalize(n);
                content = n.Text;
            }
            return (content, t);
        }));
    }

    public int? TokenToId(string content) => _byContent.TryGetValue(content, out int id) ? id : null;

    public int? TokenToId(ReadOnlySpan<char> content) =>
        _byContent.Count > 0 && _byContent.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(content, out int id) ? id : null;

    public string? IdToToken(int id) => _byId.TryGetValue(id, out var t) ? t.Content : null;

    public AddedToken? Get(int id) => _byId.TryGetValue(id, out var t) ? t : null;

    public bool IsSpecial(string content) => _special.Contains(content);

    public bool IsSpecialId(int id) => _byId.TryGetValue(id, out var t) && t.Special;

    public int MaxId => _byId.Count == 0 ? -1 : _byId.Keys.Max();

    /// <summary>HF extract_and_normalize: cuts raw added tokens, normalizes the rest, cuts normalized added tokens.</summary>
    public void ExtractAndNormalize(PreTokenizedString pts, INormalizer? normalizer)
    {
        if (!_raw.IsEmpty) pts.Split(this, static (self, n, outp) => self._raw.SplitInto(n, outp));
        if (normalizer != null || !_normalized.IsEmpty)
        {
            pts.Split((this, normalizer), static (st, n, outp) =>
            {
                st.normalizer?.Normalize(n);
                if (st.Item1._normalized.IsEmpty) outp.Add(new Split(n));
                else st.Item1._normalized.SplitInto(n, outp);
            });
        }
    }

    /// <summary>True when every added token is matched on the raw text (normalized=false), so the text can be cut
    /// before normalizing.</summary>
    public bool AllRaw => _normalized.IsEmpty;

    /// <summary>Added-token matches (start, end, id) on raw text, with the single_word/lstrip/rstrip rules.</summary>
    public void FindRaw(string text, List<(int Start, int End, int Id)> output) => _raw.Find(text, output);

    /// <summary>Leftmost-longest literal matcher over a set of token strings.</summary>
    private sealed class Matcher
    {
        private readonly Dictionary<char, (string Text, AddedToken Token)[]> _byFirst = [];
        private readonly System.Buffers.SearchValues<char> _firsts;

        public bool IsEmpty => _byFirst.Count == 0;

        public Matcher(IEnumerable<(string Text, AddedToken Token)> patterns)
        {
            foreach (var g in patterns.Where(p => p.Text.Length > 0).GroupBy(p => p.Text[0]))
                _byFirst[g.Key] = g.OrderByDescending(p => p.Text.Length).ToArray();
            _firsts = System.Buffers.SearchValues.Create(_byFirst.Keys.ToArray());
        }

        public void SplitInto(NormalizedString n, List<Split> output)
        {
            var found = t_found ??= new List<(int, int, int)>();
            found.Clear();
            Find(n.Text, found);
            if (found.Count == 0) { output.Add(new Split(n)); return; }
            int last = 0;
            foreach (var (start, stop, id) in found)
            {
                if (last < start) output.Add(new Split(n.Slice(last, start)));
                output.Add(new Split(n.Slice(start, stop), id));
                last = stop;
            }
            if (last < n.Length) output.Add(new Split(n.Slice(last, n.Length)));
        }

        [ThreadStatic] private static List<(int, int, int)>? t_found;

        public void Find(string s, List<(int Start, int End, int Id)> output)
        {
            if (IsEmpty) return;
            int startOffset = 0;
            int i = 0;
            while (i < s.Length)
            {
                int k = s.AsSpan(i).IndexOfAny(_firsts);
                if (k < 0) break;
                i += k;
                (string Text, AddedToken Token)? hit = null;
                foreach (var cand in _byFirst[s[i]])
                {
                    if (i + cand.Text.Length <= s.Length && string.CompareOrdinal(s, i, cand.Text, 0, cand.Text.Length) == 0)
                    {
                        hit = cand;
                        break;
                    }
                }
                if (hit is not { } h) { i++; continue; }
                int start = i, stop = i + h.Text.Length;
                i = stop;
                var tok = h.Token;
                if (tok.SingleWord)
                {
                    bool startSpace = start == 0 || !IsWordChar(s, start, before: true);
                    bool stopSpace = stop == s.Length || !IsWordChar(s, stop, before: false);
                    if (!startSpace || !stopSpace) continue;
                }
                if (tok.LStrip)
                {
                    int ns = start;
                    while (ns > 0 && IsSpaceBefore(s, ns, out int w)) ns -= w;
                    start = Math.Max(ns, startOffset);
                }
                if (tok.RStrip)
                {
                    while (stop < s.Length && IsSpaceAt(s, stop, out int w)) stop += w;
                    i = stop;
                }
                output.Add((start, stop, tok.Id));
                startOffset = stop;
            }
        }

        private static bool IsSpaceAt(string s, int i, out int width)
        {
            Rune.DecodeFromUtf16(s.AsSpan(i), out var r, out width);
            return Rune.IsWhiteSpace(r);
        }

        private static bool IsSpaceBefore(string s, int i, out int width)
        {
            Rune.DecodeLastFromUtf16(s.AsSpan(0, i), out var r, out width);
            return Rune.IsWhiteSpace(r);
        }

        private static bool IsWordChar(string s, int i, bool before)
        {
            Rune r;
            if (before) Rune.DecodeLastFromUtf16(s.AsSpan(0, i), out r, out _);
            else Rune.DecodeFromUtf16(s.AsSpan(i), out r, out _);
            return IsWord(r);
        }
    }

    /// <summary>Rust regex's Unicode \w: alphabetic, marks, decimal digits, connector punctuation, joiners.</summary>
    internal static bool IsWord(Rune r)
    {
        if (Rune.IsLetterOrDigit(r)) return true;
        var cat = Rune.GetUnicodeCategory(r);
        return cat is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.ConnectorPunctuation or UnicodeCategory.LetterNumber
            || r.Value is 0x200C or 0x200D;
    }
}
