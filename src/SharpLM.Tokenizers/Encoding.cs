namespace SharpLM.Tokenizers;

/// <summary>
/// The result of <see cref="Tokenizer.Encode(string, bool)"/>: one entry per token, all arrays of the same length.
/// Offsets are UTF-16 char spans [Start, End) into the ORIGINAL text given to Encode (for a pair, into the
/// text the token came from; <see cref="SequenceIds"/> tells which); special tokens added by the post-processor
/// have the span (0, 0).
/// </summary>
public sealed class Encoding
{
    internal Encoding(int[] ids, string[] tokens, (int Start, int End)[] offsets, int[] typeIds,
        int[] specialTokensMask, int[] attentionMask, int[] sequenceIds)
    {
        Ids = ids;
        Tokens = tokens;
        Offsets = offsets;
        TypeIds = typeIds;
        SpecialTokensMask = specialTokensMask;
        AttentionMask = attentionMask;
        SequenceIds = sequenceIds;
    }

    /// <summary>Token ids.</summary>
    public IReadOnlyList<int> Ids { get; internal set; }

    /// <summary>Token strings as the vocabulary spells them (e.g. "Ġthe", "##ing", "▁the").</summary>
    public IReadOnlyList<string> Tokens { get; internal set; }

    /// <summary>Char spans into the original text.</summary>
    public IReadOnlyList<(int Start, int End)> Offsets { get; internal set; }

    /// <summary>Segment (token type) ids: 0 for the first sequence, 1 for the pair in BERT-style templates.</summary>
    public IReadOnlyList<int> TypeIds { get; internal set; }

    /// <summary>1 for tokens added by the post-processor ([CLS], [SEP], &lt;s&gt;), 0 otherwise.</summary>
    public IReadOnlyList<int> SpecialTokensMask { get; internal set; }

    /// <summary>1 for real tokens, 0 for padding.</summary>
    public IReadOnlyList<int> AttentionMask { get; internal set; }

    /// <summary>0 or 1: which input sequence a token came from; -1 for special and padding tokens.</summary>
    public IReadOnlyList<int> SequenceIds { get; internal set; }

    /// <summary>The parts cut off by truncation (empty unless truncation was requested).</summary>
    public IReadOnlyList<Encoding> Overflowing { get; internal set; } = [];

    /// <summary>Number of tokens.</summary>
    public int Count => Ids.Count;

    /// <summary>The ids as a fresh array.</summary>
    public int[] ToIdArray() => [.. Ids];

    internal int[] IdsArray => (int[])Ids;
    internal string[] TokensArray => (string[])Tokens;
    internal (int Start, int End)[] OffsetsArray => ((int Start, int End)[])Offsets;
    internal int[] TypeIdsArray => (int[])TypeIds;
    internal int[] SpecialArray => (int[])SpecialTokensMask;
    internal int[] AttentionArray => (int[])AttentionMask;
    internal int[] SequenceArray => (int[])SequenceIds;

    internal static Encoding Empty() => new([], [], [], [], [], [], []);

    /// <summary>The tokens [start, end) of this encoding.</summary>
    internal Encoding Slice(int start, int end) => new(
        IdsArray[start..end], TokensArray[start..end], OffsetsArray[start..end], TypeIdsArray[start..end],
        SpecialArray[start..end], AttentionArray[start..end], SequenceArray[start..end]);

    internal static Encoding Concat(params Encoding[] parts)
    {
        int n = 0;
        foreach (var p in parts) n += p.Count;
        var ids = new int[n]; var toks = new string[n]; var offs = new (int, int)[n]; var types = new int[n];
        var spec = new int[n]; var att = new int[n]; var seq = new int[n];
        int k = 0;
        foreach (var p in parts)
        {
            p.IdsArray.CopyTo(ids, k); p.TokensArray.CopyTo(toks, k); p.OffsetsArray.CopyTo(offs, k);
            p.TypeIdsArray.CopyTo(types, k); p.SpecialArray.CopyTo(spec, k); p.AttentionArray.CopyTo(att, k);
            p.SequenceArray.CopyTo(seq, k);
            k += p.Count;
        }
        return new Encoding(ids, toks, offs, types, spec, att, seq);
    }

    /// <summary>One special token (mask 1, span (0,0), sequence id -1).</summary>
    internal static Encoding Special(int id, string token, int typeId) =>
        new([id], [token], [(0, 0)], [typeId], [1], [1], [-1]);

    internal void SetTypeIds(int typeId) => Array.Fill(TypeIdsArray, typeId);

    internal void SetSequenceId(int sequenceId) => Array.Fill(SequenceArray, sequenceId);

    /// <summary>Pads in place to <paramref name="length"/> tokens.</summary>
    internal void Pad(int length, int padId, int padTypeId, string padToken, PaddingDirection direction)
    {
        int n = Count;
        if (n >= length) return;
        int extra = length - n;
        T[] Grow<T>(T[] a, T fill)
        {
            var r = new T[length];
            if (direction == PaddingDirection.Right) { a.CopyTo(r, 0); Array.Fill(r, fill, n, extra); }
            else { Array.Fill(r, fill, 0, extra); a.CopyTo(r, extra); }
            return r;
        }
        Ids = Grow(IdsArray, padId);
        Tokens = Grow(TokensArray, padToken);
        Offsets = Grow(OffsetsArray, (0, 0));
        TypeIds = Grow(TypeIdsArray, padTypeId);
        SpecialTokensMask = Grow(SpecialArray, 1);
        AttentionMask = Grow(AttentionArray, 0);
        SequenceIds = Grow(SequenceArray, -1);
        foreach (var o in Overflowing) o.Pad(length, padId, padTypeId, padToken, direction);
    }

    public override string ToString() => "[" + string.Join(", ", Ids) + "]";
}
