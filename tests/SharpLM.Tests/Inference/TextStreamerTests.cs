using System.Text;
using SharpLM.Inference;

namespace SharpLM.Tests.Inference;

public sealed class TextStreamerTests
{
    /// <summary>Ids are bytes; decoding is UTF-8 with U+FFFD for incomplete sequences (as byte-fallback tokenizers do).</summary>
    private sealed class ByteDecoder : ITokenDecoder
    {
        public string Decode(ReadOnlySpan<int> ids)
        {
            var b = new byte[ids.Length];
            for (int i = 0; i < ids.Length; i++) b[i] = (byte)ids[i];
            return Encoding.UTF8.GetString(b);
        }
    }

    private static List<string> Feed(TextStreamer s, string text)
    {
        var pieces = new List<string>();
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            var p = s.Push(b);
            if (p.Length > 0) pieces.Add(p);
            if (s.Stopped) return pieces;
        }
        var rest = s.Flush();
        if (rest.Length > 0) pieces.Add(rest);
        return pieces;
    }

    [Fact]
    public void Multi_byte_characters_split_over_tokens_come_out_whole()
    {
        const string text = "a中文é🎉b";
        var pieces = Feed(new TextStreamer(new ByteDecoder(), null, []), text);
        Assert.Equal(text, string.Concat(pieces));
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD', StringComparison.Ordinal));
        Assert.Equal(["a", "中", "文", "é", "🎉", "b"], pieces);
    }

    [Fact]
    public void A_stop_string_across_tokens_ends_the_stream_and_is_not_emitted()
    {
        var s = new TextStreamer(new ByteDecoder(), null, ["STOP", "never"]);
        var pieces = Feed(s, "hello STxSTOP world");
        Assert.True(s.Stopped);
        Assert.Equal("hello STx", string.Concat(pieces));
        Assert.Equal("hello STx", s.Text);
    }

    [Fact]
    public void A_held_back_stop_prefix_is_released_when_it_does_not_complete()
    {
        var s = new TextStreamer(new ByteDecoder(), null, ["<end>"]);
        var pieces = Feed(s, "a <en b");
        Assert.False(s.Stopped);
        Assert.Equal("a <en b", string.Concat(pieces));
    }

    [Fact]
    public void The_context_token_is_decoded_in_front_and_cut_off()
    {
        var s = new TextStreamer(new ByteDecoder(), 'x', []);
        Assert.Equal("yz", string.Concat(Feed(s, "yz")));
    }
}
