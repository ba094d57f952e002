using System.Buffers;

namespace SharpLM.Tokenizers.Core;

/// <summary>
/// A piece of text being normalized/pre-tokenized, with (optionally) the span of the ORIGINAL input that each
/// of its chars comes from. <see cref="Starts"/>/<see cref="Ends"/> are null when offsets are not tracked
/// (the ids-only path), which makes every transformation a plain string rewrite.
/// </summary>
internal sealed class NormalizedString
{
    /// <summary>The current text.</summary>
    public string Text { get; private set; }

    /// <summary>Per char of <see cref="Text"/>: start of its source span in the original input (or null).</summary>
    internal int[]? Starts { get; private set; }

    /// <summary>Per char of <see cref="Text"/>: end of its source span in the original input (or null).</summary>
    internal int[]? Ends { get; private set; }

    /// <summary>Start of the whole piece in the original input (for Metaspace prepend_scheme "first").</summary>
    public int OriginalStart { get; private set; }

    /// <summary>End of the whole piece in the original input.</summary>
    public int OriginalEnd { get; private set; }

    public bool TracksOffsets => Starts != null;

    public int Length => Text.Length;

    internal NormalizedString(string text, int[]? starts, int[]? ends, int originalStart, int originalEnd)
    {
        Text = text;
        Starts = starts;
        Ends = ends;
        OriginalStart = originalStart;
        OriginalEnd = originalEnd;
    }

    /// <summary>A piece of the original input [start, start+length) of <paramref name="original"/>.</summary>
    internal static NormalizedString FromOriginal(string original, int start, int length, bool trackOffsets)
    {
        string text = start == 0 && length == original.Length ? original : original.Substring(start, length);
        if (!trackOffsets) return new NormalizedString(text, null, null, start, start + length);
        var s = new int[length];
        var e = new int[length];
        for (int i = 0; i < length; i++) { s[i] = start + i; e[i] = start + i + 1; }
        return new NormalizedString(text, s, e, start, start + length);
    }

    /// <summary>The sub-piece [start, end) of this one (in current-text chars).</summary>
    internal NormalizedString Slice(int start, int end)
    {
        if (start == 0 && end == Text.Length) return this;
        string t = Text.Substring(start, end - start);
        if (Starts == null)
        {
            // Without alignments: a piece that does not start the parent does not start the original either
            // (exact for the cases that matter: Metaspace prepend_scheme "first" after an added token).
            int approx = start == 0 ? OriginalStart : OriginalStart + start;
            return new NormalizedString(t, null, null, approx, approx + (end - start));
        }
        int os = end > start ? Starts[start] : (start < Starts.Length ? Starts[start] : OriginalEnd);
        int oe = end > start ? Ends![end - 1] : os;
        return new NormalizedString(t, Starts[start..end], Ends![start..end], os, oe);
    }

    /// <summary>Original span of the current-text range [start, end).</summary>
    internal (int Start, int End) OriginalSpan(int start, int end)
    {
        if (Starts == null) return (0, 0);
        if (end <= start)
        {
            int p = start < Starts.Length ? Starts[start] : (Starts.Length > 0 ? Ends![^1] : OriginalStart);
            return (p, p);
        }
        int s = int.MaxValue, e = int.MinValue;
        for (int i = start; i < end; i++)
        {
            if (Starts[i] < s) s = Starts[i];
            if (Ends![i] > e) e = Ends[i];
        }
        return (s, e);
    }

    /// <summary>Replaces the text; each new char i comes from old char <paramref name="source"/>[i]
    /// (-1 = inserted: it takes the span of the nearest source char, the next one if none came before).</summary>
    internal void Transform(ReadOnlySpan<char> newText, ReadOnlySpan<int> source)
    {
        // A char-for-char rewrite (byte-level on ASCII, lowercasing ...) keeps the alignments as they are: no new arrays.
        if (Starts != null && !IsCharForChar(Text, newText, source))
        {
            var ns = new int[newText.Length];
            var ne = new int[newText.Length];
            int prev = -1;
            for (int i = 0; i < newText.Length; i++)
            {
                int src = source[i];
                if (src < 0)
                {
                    src = prev;
                    if (src < 0)
                    {
                        for (int j = i + 1; j < newText.Length; j++) if (source[j] >= 0) { src = source[j]; break; }
                    }
                }
                else prev = src;
                if (src >= 0 && src < Starts.Length)
                {
                    ns[i] = Starts[src];
                    ne[i] = Ends![src];
                    // A char made from a high surrogate comes from the whole code point.
                    if (char.IsHighSurrogate(Text[src]) && src + 1 < Text.Length && char.IsLowSurrogate(Text[src + 1])) ne[i] = Ends[src + 1];
                }
                else { ns[i] = OriginalStart; ne[i] = OriginalStart; }
            }
            Starts = ns;
            Ends = ne;
        }
        Text = newText.Length == Text.Length && newText.SequenceEqual(Text) ? Text : new string(newText);
    }

    /// <summary>Whether new char i comes from old char i for every i, with no surrogate pair in the old text (whose
    /// first half would take the span of the whole pair).</summary>
    private static bool IsCharForChar(string text, ReadOnlySpan<char> newText, ReadOnlySpan<int> source)
    {
        if (newText.Length != text.Length || source.Length < newText.Length) return false;
        for (int i = 0; i < newText.Length; i++)
            if (source[i] != i || char.IsHighSurrogate(text[i])) return false;
        return true;
    }

    /// <summary>Text replacement without per-char provenance (the whole piece maps to its original span).</summary>
    internal void SetTextCoarse(string newText)
    {
        if (Starts != null)
        {
            int n = newText.Length;
            var ns = new int[n];
            var ne = new int[n];
            int os = Starts.Length > 0 ? Starts.Min() : OriginalStart, oe = Ends!.Length > 0 ? Ends.Max() : OriginalStart;
            for (int i = 0; i < n; i++) { ns[i] = os; ne[i] = oe; }
            Starts = ns; Ends = ne;
        }
        Text = newText;
    }

    internal void Prepend(string s)
    {
        if (Text.Length == 0) return;
        var b = new TransformBuilder(Text.Length + s.Length);
        foreach (char c in s) b.Append(c, -1);
        for (int i = 0; i < Text.Length; i++) b.Append(Text[i], i);
        b.ApplyTo(this);
    }

    internal void Append(string s)
    {
        var b = new TransformBuilder(Text.Length + s.Length);
        for (int i = 0; i < Text.Length; i++) b.Append(Text[i], i);
        foreach (char c in s) b.Append(c, -1);
        b.ApplyTo(this);
    }

    public override string ToString() => Text;
}

/// <summary>Builds a transformed text with per-char provenance; buffers come from the array pool.</summary>
internal ref struct TransformBuilder
{
    private char[] _chars;
    private int[] _src;
    private int _count;

    public TransformBuilder(int capacity)
    {
        _chars = ArrayPool<char>.Shared.Rent(Math.Max(16, capacity));
        _src = ArrayPool<int>.Shared.Rent(Math.Max(16, capacity));
        _count = 0;
    }

    public readonly int Count => _count;

    public void Append(char c, int source)
    {
        if (_count == _chars.Length) Grow();
        _chars[_count] = c;
        _src[_count] = source;
        _count++;
    }

    public void Append(ReadOnlySpan<char> s, int source)
    {
        foreach (char c in s) Append(c, source);
    }

    private void Grow()
    {
        var nc = ArrayPool<char>.Shared.Rent(_chars.Length * 2);
        var ns = ArrayPool<int>.Shared.Rent(_chars.Length * 2);
        _chars.AsSpan(0, _count).CopyTo(nc);
        _src.AsSpan(0, _count).CopyTo(ns);
        ArrayPool<char>.Shared.Return(_chars);
        ArrayPool<int>.Shared.Return(_src);
        _chars = nc;
        _src = ns;
    }

    /// <summary>Returns the buffers without applying anything.</summary>
    public void Discard()
    {
        ArrayPool<char>.Shared.Return(_chars);
        ArrayPool<int>.Shared.Return(_src);
        _chars = [];
        _src = [];
    }

    /// <summary>Applies the result to <paramref name="target"/> and returns the buffers.</summary>
    public void ApplyTo(NormalizedString target)
    {
        target.Transform(_chars.AsSpan(0, _count), _src.AsSpan(0, _count));
        ArrayPool<char>.Shared.Return(_chars);
        ArrayPool<int>.Shared.Return(_src);
        _chars = [];
        _src = [];
    }
}
