using System.Text;

namespace SharpLM.Inference;

/// <summary>Ids to text, as a tokenizer does it: the whole sequence at once (byte-fallback tokens and multi-byte UTF-8 joined).</summary>
internal interface ITokenDecoder
{
    string Decode(ReadOnlySpan<int> ids);
}

/// <summary>
/// Turns generated ids into text pieces as they arrive. Each step decodes the ids so far (after a context id, so a
/// SentencePiece leading space is kept) and emits only the new suffix; text that ends in an incomplete UTF-8 sequence
/// (U+FFFD) or could be the start of a stop string is held back until it is settled. A stop string ends the stream and
/// is not emitted.
/// </summary>
internal sealed class TextStreamer
{
    private readonly ITokenDecoder _decoder;
    private readonly List<int> _ids = [];
    private readonly IReadOnlyList<string> _stops;
    private readonly int _contextCount;
    private readonly string _contextText;
    private int _emitted;   // chars of the decoded text already returned

    /// <param name="decoder">The tokenizer's decoder.</param>
    /// <param name="contextId">The last prompt id (decoded in front of the output, then cut off), or null.</param>
    /// <param name="stops">Stop strings.</param>
    public TextStreamer(ITokenDecoder decoder, int? contextId, IReadOnlyList<string> stops)
    {
        _decoder = decoder;
        _stops = [.. stops.Where(s => s.Length > 0)];
        if (contextId is int c)
        {
            _ids.Add(c);
            _contextCount = 1;
        }
        _contextText = _contextCount == 0 ? "" : decoder.Decode(_ids.ToArray());
    }

    /// <summary>True once a stop string was seen.</summary>
    public bool Stopped { get; private set; }

    /// <summary>The decoded text of all ids so far (after the context, cut at a stop string). With invalid UTF-8 a
    /// byte-fallback decoder may later turn already returned characters into U+FFFD, so this can differ from
    /// <see cref="Emitted"/>.</summary>
    public string Text { get; private set; } = "";

    /// <summary>Exactly the pieces returned so far, concatenated.</summary>
    public string Emitted => _returned.ToString();

    private readonly StringBuilder _returned = new();

    /// <summary>Adds one id; returns the text that is now settled (possibly empty).</summary>
    public string Push(int id)
    {
        if (Stopped) return "";
        _ids.Add(id);
        var full = _decoder.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids));
        // a byte-fallback decoder may turn the context byte plus invalid continuation bytes into U+FFFD per byte: then
        // the context cannot be cut off, and the generated ids are decoded alone
        Text = full.StartsWith(_contextText, StringComparison.Ordinal) ? full[_contextText.Length..]
             : _decoder.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ids)[_contextCount..]);
        return Settle(final: false);
    }

    /// <summary>Returns whatever is still held back (call once at the end).</summary>
    public string Flush() => Stopped ? "" : Settle(final: true);

    private string Settle(bool final)
    {
        // a stop string anywhere in the unreturned part ends the stream
        foreach (var s in _stops)
        {
            int from = Math.Max(0, _emitted - s.Length + 1);
            int at = Text.IndexOf(s, from, StringComparison.Ordinal);
            if (at >= 0)
            {
                Stopped = true;
                Text = Text[..at];
                return Take(Math.Max(at, _emitted));
            }
        }
        int end = Text.Length;
        if (!final)
        {
            while (end > _emitted && Text[end - 1] == '\uFFFD') end--;   // an incomplete UTF-8 sequence so far
            foreach (var s in _stops)
                for (int k = Math.Min(s.Length - 1, end - _emitted); k > 0; k--)
                    if (Text.AsSpan(end - k, k).SequenceEqual(s.AsSpan(0, k))) { end -= k; break; }
            if (end > _emitted && char.IsHighSurrogate(Text[end - 1])) end--;
        }
        return Take(end);
    }

    private string Take(int end)
    {
        if (end <= _emitted) return "";
        var piece = Text[_emitted..end];
        _emitted = end;
        _returned.Append(piece);
        return piece;
    }
}
