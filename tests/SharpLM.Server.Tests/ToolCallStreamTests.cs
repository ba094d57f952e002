using System.Text;
using SharpLM.Inference;
using SharpLM.Models;
using SharpLM.Server.Chat;

namespace SharpLM.Server.Tests;

/// <summary>
/// The incremental tool-call parser (<see cref="ToolCallStream"/>) fed the same text in many pieces: whole, split at
/// every character, in two and three pieces, byte by byte through a UTF-8 decoder, and token by token as the default
/// model's tokenizer and <see cref="TextStreamer"/> cut it. Every split gives the same content and the same calls; the
/// pieces of a call follow the streaming contract (name first, then argument fragments that concatenate to the
/// arguments' raw JSON text, one Done).
/// </summary>
public sealed class ToolCallStreamTests
{
    private const ToolCallFormat Hermes = ToolCallFormat.Hermes, Llama3 = ToolCallFormat.Llama3, Mistral = ToolCallFormat.Mistral,
        MistralArgs = ToolCallFormat.MistralArgs;

    private sealed record Fed(string Content, List<ToolCall> Calls, List<ToolCallPart> Parts, bool SawCalls);

    /// <summary>Feeds the pieces and flushes; <paramref name="cut"/>: the reply was cut (max_tokens, a stop string).</summary>
    private static Fed Feed(ToolCallFormat format, IEnumerable<string> pieces, bool cut = false)
    {
        var s = new ToolCallStream(format);
        var content = new StringBuilder();
        var parts = new List<ToolCallPart>();
        foreach (var p in pieces)
        {
            var (c, k) = s.Push(p);
            content.Append(c);
            parts.AddRange(k);
        }
        var (c2, k2) = s.Flush(cut);
        content.Append(c2);
        parts.AddRange(k2);
        var calls = new ToolCallAssembler();
        calls.Add(parts);
        return new Fed(content.ToString(), calls.Completed, parts, s.SawCalls);
    }

    private static readonly UTF8Encoding Strict = new(false, throwOnInvalidBytes: true);

    private static readonly Lazy<LanguageModel> Model = new(() => LanguageModel.Load(TestServer.DefaultModel));

    /// <summary>The text as the default model's tokens, each piece what <see cref="TextStreamer"/> gives for one token.</summary>
    private static List<string> TokenPieces(string text)
    {
        var codec = Model.Value.RequireTokenizer();
        var streamer = new TextStreamer(codec, null, []);
        var pieces = codec.Encode(text, addBos: false).Select(streamer.Push).ToList();
        pieces.Add(streamer.Flush());
        return pieces;
    }

    private static IEnumerable<(string How, IReadOnlyList<string> Pieces)> Splits(string text)
    {
        yield return ("whole", [text]);
        yield return ("every char", [.. text.Select(c => c.ToString())]);
        for (int i = 1; i < text.Length; i++) yield return ($"at {i}", [text[..i], text[i..]]);
        for (int i = 1; i < text.Length; i += 3)
            for (int j = i + 1; j < text.Length; j += 5)
                yield return ($"at {i},{j}", [text[..i], text[i..j], text[j..]]);
        var decoder = Encoding.UTF8.GetDecoder();
        var chars = new char[4];
        var bytes = new List<string>();
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            int n = decoder.GetChars([b], chars, flush: false);
            bytes.Add(new string(chars, 0, n));
        }
        yield return ("byte by byte", bytes);
        yield return ("token by token", TokenPieces(text));
        var rng = new Random(text.Length); // random chunkings, the same every run
        for (int k = 0; k < 20; k++)
        {
            var cuts = Enumerable.Range(0, rng.Next(1, Math.Max(2, text.Length / 3))).Select(_ => rng.Next(text.Length + 1)).Append(0).Append(text.Length).Distinct().Order().ToList();
            yield return ($"random {k}", [.. cuts.Zip(cuts.Skip(1), (a, b) => text[a..b])]);
        }
    }

    public static TheoryData<int, string, string, string[]> Calls => new()
    {
        { (int)Hermes, "Let me look.<tool_call>\n{\"name\": \"lookup\", \"arguments\": {\"word\": \"jury\", \"n\": 2}}\n</tool_call>", "Let me look.", ["lookup", "{\"word\": \"jury\", \"n\": 2}"] },
        { (int)Hermes, "<tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call> and <tooling> stays text", " and <tooling> stays text", ["a", "{}"] },
        { (int)Hermes, "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": [1, {\"y\": \"}]\\\"{\"}], \"z\": -2.5e-3}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": {\"ok\": true}}\n</tool_call>", "", ["a", "{\"x\": [1, {\"y\": \"}]\\\"{\"}], \"z\": -2.5e-3}", "b", "{\"ok\": true}"] },
        { (int)Hermes, "Weather: <tool_call>\n{\"name\": \"w\", \"arguments\": {\"city\": \"Zürich — 東京 😀\", \"esc\": \"\\u00e9\\n\\\\\"}}\n</tool_call>\nDone.", "Weather:\nDone.", ["w", "{\"city\": \"Zürich — 東京 😀\", \"esc\": \"\\u00e9\\n\\\\\"}"] },
        { (int)Hermes, "<tool_call>{\"arguments\": {\"q\": [1, 2]}, \"id\": \"x\", \"name\": \"f\"}</tool_call>", "", ["f", "{\"q\": [1, 2]}"] },
        { (int)Hermes, "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"q\\\": \\\"é\\\"}\"}</tool_call>", "", ["f", "{\"q\": \"é\"}"] },
        { (int)Hermes, "<tool_call>{\"name\": \"f\"}</tool_call>", "", ["f", "{}"] },
        { (int)Hermes, "<tool_call>[{\"name\": \"f\", \"arguments\": {\"a\": 1}}, {\"name\": \"g\", \"arguments\": {\"b\": null}}]</tool_call>", "", ["f", "{\"a\": 1}", "g", "{\"b\": null}"] },
        { (int)Llama3, "{\"name\": \"lookup\", \"parameters\": {\"word\": \"x\"}}", "", ["lookup", "{\"word\": \"x\"}"] },
        { (int)Llama3, "<|python_tag|>{\"name\": \"f\", \"parameters\": {}}", "", ["f", "{}"] },
        { (int)Llama3, "Sure. <|python_tag|>{\"name\": \"f\", \"parameters\": {\"a\": true}}", "Sure.", ["f", "{\"a\": true}"] },
        { (int)Llama3, "{\"name\": \"a\", \"parameters\": {}}\n{\"name\": \"b\", \"parameters\": {\"k\": [\"]\"]}}", "", ["a", "{}", "b", "{\"k\": [\"]\"]}"] },
        { (int)Mistral, "[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {\"q\": [1, 2]}}, {\"name\": \"g\", \"arguments\": {\"s\": \"a b\"}}]", "", ["f", "{\"q\": [1, 2]}", "g", "{\"s\": \"a b\"}"] },
        { (int)Mistral, "[{\"name\":\"f\",\"arguments\":{\"n\":-1.5e3}}]", "", ["f", "{\"n\":-1.5e3}"] },
        // string-valued arguments: decoded as they arrive
        { (int)Hermes, """<tool_call>{"name": "f", "arguments": "{\"q\": \"a \\\"long\\\" value, \u00e9 \ud83d\ude00 😀 \\n\"}"}</tool_call>""", "", ["f", """{"q": "a \"long\" value, é 😀 😀 \n"}"""] },
        { (int)Llama3, """{"name": "f", "parameters": ""}""", "", ["f", "{}"] },
        // Mistral v11: [TOOL_CALLS]name[ARGS]{...}, one after another
        { (int)MistralArgs, """[TOOL_CALLS]get_weather[ARGS]{"city": "Paris", "n": [1, {"x": "]}"}]}""", "", ["get_weather", """{"city": "Paris", "n": [1, {"x": "]}"}]}"""] },
        { (int)MistralArgs, """Sure.[TOOL_CALLS]a[ARGS]{}[TOOL_CALLS]b.c-d[ARGS]{"k": "v"}""", "Sure.", ["a", "{}", "b.c-d", """{"k": "v"}"""] },
        { (int)MistralArgs, "[TOOL_CALLS]a[ARGS]{\"x\": 1}\n[TOOL_CALLS] b[ARGS] {\"y\": \"\u00e9\"}\nDone.", "\nDone.", ["a", "{\"x\": 1}", "b", "{\"y\": \"\u00e9\"}"] },
        { (int)MistralArgs, """[TOOL_CALLS] [{"name": "f", "arguments": {"a": 1}}]""", "", ["f", """{"a": 1}"""] },
        // Llama 3.1's built-in tools: name.call(k=v) with Python literals, as JSON
        { (int)Llama3, """<|python_tag|>brave_search.call(query="weather in Paris")""", "", ["brave_search", """{"query":"weather in Paris"}"""] },
        { (int)Llama3, """Looking.<|python_tag|>wolfram_alpha.call(query='2+2 \'x\' "y"')""", "Looking.", ["wolfram_alpha", """{"query":"2+2 'x' \"y\""}"""] },
        { (int)Llama3, """<|python_tag|>f.call(a=1, b=-2.5e3, c=.5, d=True, e=None, f=[1, 'x', (2, 3)], g={'k': [False], "j": {}}, h=5., i=(), j=007.5,)""", "", ["f", """{"a":1,"b":-2.5e3,"c":0.5,"d":true,"e":null,"f":[1,"x",[2,3]],"g":{"k":[false],"j":{}},"h":5.0,"i":[],"j":7.5}"""] },
        { (int)Llama3, """<|python_tag|>f.call(s="tab\there\nnl \x41 \u00e9 \U0001F600 \101\q \\ \/ \ud800 😀")""", "", ["f", """{"s":"tab\there\nnl A é 😀 A\\q \\ / \ud800 😀"}"""] },
        { (int)Llama3, "<|python_tag|> f . call ( a = true , b=null)", "", ["f", """{"a":true,"b":null}"""] },
        { (int)Llama3, "<|python_tag|>f.call()", "", ["f", "{}"] },
        // ... and code after the tag: a call of python
        { (int)Llama3, "<|python_tag|>import math\nprint(math.sqrt(2), \"\\t\")", "", ["python", """{"code":"import math\nprint(math.sqrt(2), \"\\t\")"}"""] },
        { (int)Llama3, "Let me run it.\n<|python_tag|>print(\"hi\")", "Let me run it.", ["python", """{"code":"print(\"hi\")"}"""] },
        { (int)Llama3, "<|python_tag|>x", "", ["python", """{"code":"x"}"""] },
    };

    [Theory]
    [MemberData(nameof(Calls))]
    public void Calls_stream_the_same_whatever_the_pieces(int formatValue, string text, string content, string[] expected)
    {
        var format = (ToolCallFormat)formatValue;
        var want = Enumerable.Range(0, expected.Length / 2).Select(i => (expected[2 * i], expected[2 * i + 1])).ToList();
        foreach (var (how, pieces) in Splits(text))
        {
            Assert.Equal(text, string.Concat(pieces));
            var r = Feed(format, pieces);
            Assert.True(content == r.Content, $"{how}: content '{r.Content}', expected '{content}'");
            Assert.True(want.SequenceEqual(r.Calls.Select(c => (c.Name, c.Arguments))), $"{how}: calls {string.Join(" ", r.Calls)}");
            Assert.True(r.SawCalls, how);
            CheckContract(r.Parts, how);
            Assert.All(r.Calls, c => Assert.StartsWith("call_", c.Id, StringComparison.Ordinal));
            Assert.Equal(r.Calls.Count, r.Calls.Select(c => c.Id).Distinct().Count());
        }

        // fed a character at a time, a call whose name comes before its arguments goes out first with empty arguments,
        // and then object arguments come in many fragments
        var chars = Feed(format, text.Select(c => c.ToString()));
        foreach (var (call, i) in chars.Calls.Select((c, i) => (c, i)))
        {
            int at = text.IndexOf(call.Arguments, StringComparison.Ordinal); // raw object arguments written after the name
            if (call.Arguments.Length <= 2 || at < 0 || text.LastIndexOf("\"name\"", at, StringComparison.Ordinal) < 0) continue;
            var mine = chars.Parts.Where(p => p.Index == i).ToList();
            Assert.Equal("", mine[0].Arguments);
            Assert.True(mine.Count(p => p.Arguments.Length > 0) > 1, $"call {i} came in {mine.Count} pieces");
        }
    }

    /// <summary>Indices 0, 1, ... in order of their first piece; the first piece of each call has its id and name, the
    /// others neither; nothing after a call's Done.</summary>
    private static void CheckContract(List<ToolCallPart> parts, string how)
    {
        var begun = new List<int>();
        var done = new HashSet<int>();
        foreach (var p in parts)
        {
            Assert.False(done.Contains(p.Index), $"{how}: a piece of call {p.Index} after its end");
            if (!begun.Contains(p.Index))
            {
                Assert.Equal(begun.Count, p.Index);
                Assert.True(p.Id != null && p.Name != null, $"{how}: the first piece of call {p.Index} has no id or name");
                begun.Add(p.Index);
            }
            else Assert.True(p.Id is null && p.Name is null, $"{how}: call {p.Index} named twice");
            Strict.GetByteCount(p.Arguments); // each fragment is whole UTF-16 (a surrogate pair is never split), or this throws
            if (p.Done) done.Add(p.Index);
        }
    }

    [Theory]
    [InlineData((int)Hermes, "just words <tool")]
    [InlineData((int)Hermes, "a <tool_cal> b <tool_call")]
    [InlineData((int)Hermes, "<tool_call>not json</tool_call>")]
    [InlineData((int)Hermes, "<tool_call>{\"foo\": 1}</tool_call> after")]
    [InlineData((int)Hermes, "{\"name\": \"f\", \"arguments\": {}} is not a call in Hermes")]
    [InlineData((int)Hermes, "Plain text that ends with newlines\n\n")]
    [InlineData((int)Llama3, "Hello there")]
    [InlineData((int)Llama3, "  {\"a\": {\"name\": \"x\"}} nested names do not count")]
    [InlineData((int)Llama3, "{not a call")]
    [InlineData((int)Llama3, "[1] the first point")]
    [InlineData((int)Llama3, "<|python_tag|>brave_search.call(query=Paris)")]           // a bad literal
    [InlineData((int)Llama3, "<|python_tag|>f.call(a=0x1F) and then")]
    [InlineData((int)Llama3, "<|python_tag|>f.call(a='two\nlines')")]
    [InlineData((int)Llama3, "<|python_tag|>f.call(a=\"\\x4\")")]
    [InlineData((int)Llama3, "<|python_tag|>f.call(\"positional\")")]
    [InlineData((int)Llama3, "<|python_tag|>f.call(a=1 b=2)")]
    [InlineData((int)Llama3, "<|python_tag|>f.call(a=[1, 2), b=1)")]
    [InlineData((int)Llama3, "<|python_tag|>f.call(a={1: 2})")]
    [InlineData((int)Llama3, "<|python_tag|>f.call(a=r\"x\")")]
    [InlineData((int)Llama3, "{\"name\": \"f\", \"parameters\": \"{\\\"a\\\": \"}")]     // string arguments that are not JSON
    [InlineData((int)Hermes, "<tool_call>{\"name\": \"f\", \"arguments\": \"not json\"}</tool_call>")]
    [InlineData((int)Mistral, "[TOOL_CAL] x [TOOL_CALLS] []")]
    [InlineData((int)MistralArgs, "[TOOL_CALLS]get weather[ARGS]{}")]
    [InlineData((int)MistralArgs, "[TOOL_CALLS]f[ARG]{}")]
    [InlineData((int)MistralArgs, "[TOOL_CALLS]f[ARGS]\"x\"")]
    [InlineData((int)MistralArgs, "[TOOL_CALLS]f[ARGS]{\"a\": 1] tail")]
    [InlineData((int)MistralArgs, "[TOOL_CALLS][ARGS]{}")]
    [InlineData((int)MistralArgs, "[1] the first point")]
    [InlineData((int)Mistral, "[ \"name\", 1]")]
    public void Text_that_is_not_a_call_comes_back_unchanged(int formatValue, string text)
    {
        foreach (var (how, pieces) in Splits(text))
        {
            var r = Feed((ToolCallFormat)formatValue, pieces);
            Assert.True(text == r.Content, $"{how}: '{r.Content}'");
            Assert.Empty(r.Calls);
            Assert.False(r.SawCalls, how);
        }
    }

    [Fact]
    public void Held_text_is_only_what_could_still_open_a_call()
    {
        var s = new ToolCallStream(Hermes);
        Assert.Equal("It is", s.Push("It is <tool").Content);   // the space waits too: it is dropped if a call follows
        Assert.Equal(" <tooling", s.Push("ing").Content);
        Assert.Equal(" done", s.Push(" done").Content);
        var l = new ToolCallStream(Llama3);
        Assert.Equal("", l.Push("{\"answer\"").Content);                 // bare JSON at the start: held until settled
        Assert.Equal("{\"answer\": 4}", l.Push(": 4}").Content);         // an object without a name: not a call
        Assert.Equal(" {\"name\": \"x\"}", l.Push(" {\"name\": \"x\"}").Content); // after text, a '{' is only text
    }

    [Fact]
    public void A_call_cut_off_stays_unfinished_and_its_text_is_content()
    {
        const string text = "Ok.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Par";
        foreach (var (how, pieces) in Splits(text))
        {
            var r = Feed(Hermes, pieces, cut: true);
            Assert.Equal(text, r.Content);     // given back whole, as llama.cpp's server does
            Assert.Empty(r.Calls);
            Assert.False(r.SawCalls, how);
            var first = r.Parts[0];            // streamed, the call had begun: its pieces went out, never Done
            Assert.Equal(("get_weather", 0), (first.Name, first.Index));
            Assert.Equal("{\"city\": \"Par", string.Concat(r.Parts.Select(p => p.Arguments)));
            Assert.DoesNotContain(r.Parts, p => p.Done);
        }
        // cut before the name: the opener and all after it are content, and no call began
        var early = Feed(Hermes, ["Ok. <tool_call>\n{\"na"], cut: true);
        Assert.Equal(("Ok. <tool_call>\n{\"na", 0), (early.Content, early.Parts.Count));
        Assert.Equal("Ok.<tool_", Feed(Hermes, ["Ok.<tool_"], cut: true).Content); // a partial opener at the end is text
        // a first call complete, the second cut: the first stands, the second's text is content
        var two = Feed(Hermes, ["<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>\n<tool_call>{\"name\": \"b\", \"arguments\": {\"x"], cut: true);
        Assert.Equal("a", Assert.Single(two.Calls).Name);
        Assert.True(two.SawCalls);
        Assert.Contains(two.Parts, p => p is { Index: 1, Name: "b", Done: false });
        Assert.Equal("\n<tool_call>{\"name\": \"b\", \"arguments\": {\"x", two.Content);
        var array = Feed(Mistral, ["[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {}}, {\"name\": \"b\", \"argu"], cut: true);
        Assert.Equal("a", Assert.Single(array.Calls).Name);
        Assert.Equal(", {\"name\": \"b\", \"argu", array.Content);
        // a complete call whose closing tag is cut: the call stands, the partial tag is its markup
        var tag = Feed(Hermes, ["<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_ca"], cut: true);
        Assert.Equal(("a", ""), (Assert.Single(tag.Calls).Name, tag.Content));
    }

    /// <summary>Single-call replies of <see cref="Calls"/>, every form.</summary>
    public static TheoryData<int, string, string, string> SingleCalls()
    {
        var data = new TheoryData<int, string, string, string>();
        foreach (var row in Calls)
            if (row[3] is string[] { Length: 2 } call) data.Add((int)row[0], (string)row[1], call[0], call[1]);
        return data;
    }

    /// <summary>A reply cut at any point comes back as what it was: until its call is complete the text, every character
    /// of it, is content (the client loses nothing; llama.cpp's server does the same), whatever the pieces; once the
    /// call is complete it stands. Code after <c>&lt;|python_tag|&gt;</c> is complete only when the model ends the reply:
    /// cut, it is content too.</summary>
    [Theory]
    [MemberData(nameof(SingleCalls))]
    public void A_reply_cut_anywhere_is_its_text_until_its_call_is_complete(int formatValue, string text, string name, string args)
    {
        var format = (ToolCallFormat)formatValue;
        bool code = name == "python" && !text.Contains(".call(", StringComparison.Ordinal);
        int completeAt = -1, begunCuts = 0;
        for (int k = 0; k <= text.Length; k++)
        {
            if (k > 0 && char.IsLowSurrogate(text[k - 1]) && k < text.Length) continue; // never half a pair
            var prefix = text[..k];
            foreach (var pieces in new IReadOnlyList<string>[] { [prefix], [.. prefix.Select(c => c.ToString())], TokenPieces(prefix) })
            {
                if (string.Concat(pieces) != prefix) continue; // a token split inside a surrogate pair
                var r = Feed(format, pieces, cut: true);
                if (r.Calls.Count == 0)
                {
                    Assert.True(r.Content == prefix, $"cut at {k} ('{prefix}'): content '{r.Content}'");
                    Assert.False(r.SawCalls);
                    Assert.True(completeAt < 0, $"cut at {k}: the call completed at {completeAt} and is gone again");
                    if (r.Parts.Count > 0) begunCuts++;
                }
                else
                {
                    Assert.Equal((name, args), (r.Calls[0].Name, r.Calls[0].Arguments));
                    if (completeAt < 0) completeAt = k;
                }
            }
        }
        // the cases are not vacuous: a cut fell after the name went out (unless only the end of the reply settles the
        // name: the code "x" might have become x.call), and (but for code) the call completed before the end
        if (Feed(format, [text], cut: true).Parts.Count > 0) Assert.True(begunCuts > 0, "no cut fell after the call began");
        if (code) Assert.Equal(-1, completeAt);
        else Assert.InRange(completeAt, 1, text.Length);
        // not cut, code is a call at the end of the reply
        Assert.Equal((name, args), (Feed(format, [text]).Calls[0].Name, Feed(format, [text]).Calls[0].Arguments));
    }

    /// <summary>Long string values stream as they arrive, in every form: the arguments sent before the value's closing
    /// quote already hold most of it.</summary>
    [Theory]
    [InlineData((int)Hermes, "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"text\\\": \\\"", "\\\"}\"}</tool_call>")]
    [InlineData((int)Hermes, "<tool_call>{\"name\": \"f\", \"arguments\": {\"text\": \"", "\"}}</tool_call>")]
    [InlineData((int)MistralArgs, "[TOOL_CALLS]f[ARGS]{\"text\": \"", "\"}")]
    [InlineData((int)Llama3, "<|python_tag|>f.call(text='", "')")]
    [InlineData((int)Llama3, "<|python_tag|># ", "")]
    public void Long_strings_stream_as_they_arrive(int formatValue, string before, string after)
    {
        const string Long = "The quick brown fox jumps over the lazy dog, again and again, until the story ends.";
        var s = new ToolCallStream((ToolCallFormat)formatValue);
        var sent = new StringBuilder();
        int fragments = 0;
        foreach (var piece in before.Chunk(3).Select(c => new string(c)).Concat(Long.Chunk(4).Select(c => new string(c))))
            foreach (var p in s.Push(piece).Parts)
            {
                sent.Append(p.Arguments);
                if (p.Arguments.Length > 0) fragments++;
            }
        Assert.Contains(Long[..^4], sent.ToString(), StringComparison.Ordinal);
        Assert.True(fragments > 10, $"{fragments} fragments");
        foreach (var p in s.Push(after).Parts.Concat(s.Flush(cut: false).Parts)) sent.Append(p.Arguments);
        Assert.True(s.SawCalls);
        var whole = Feed((ToolCallFormat)formatValue, [before + Long + after]);
        Assert.Equal(Assert.Single(whole.Calls).Arguments, sent.ToString());
    }

    [Fact]
    public void New_forms_cut_off_stay_unfinished_and_their_text_is_content()
    {
        foreach (var (format, text, name, args) in new[]
        {
            (MistralArgs, "Ok.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Par", "get_weather", "{\"city\": \"Par"),
            (Llama3, "Ok.<|python_tag|>brave_search.call(query=\"Par", "brave_search", "{\"query\":\"Par"),
            (Llama3, "Ok.<|python_tag|>f.call(a=[1, {'b': 2", "f", "{\"a\":[1,{\"b\":"),
            (Llama3, "Ok.<|python_tag|>import os\nprint(os.ge", "python", "{\"code\":\"import os\\nprint(os.ge"),
            (Hermes, "Ok.<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": \\\"x", "f", "{\"a\": \"x"),
        })
        {
            foreach (var (how, pieces) in Splits(text))
            {
                var r = Feed(format, pieces, cut: true);
                Assert.True(r.Content == text, $"{text} {how}: content '{r.Content}'");
                Assert.Empty(r.Calls);
                Assert.False(r.SawCalls);
                Assert.Equal(name, r.Parts[0].Name);
                Assert.Equal(args, string.Concat(r.Parts.Select(p => p.Arguments)));
            }
        }
        // cut before the name is complete: all of it is content, no piece went out
        foreach (var text in new[] { "Ok.[TOOL_CALLS]get_wea", "Ok.[TOOL_CALLS]get_weather[AR" })
            Assert.Equal((text, 0), (Feed(MistralArgs, [text], cut: true).Content, Feed(MistralArgs, [text], cut: true).Parts.Count));
        Assert.Equal(("Ok.<|python_tag|>brave_sea", 0), (Feed(Llama3, ["Ok.<|python_tag|>brave_sea"], cut: true).Content, Feed(Llama3, ["Ok.<|python_tag|>brave_sea"], cut: true).Parts.Count));
        Assert.Equal("Ok.<|python_tag|>", Feed(Llama3, ["Ok.<|python_tag|>"], cut: true).Content);
    }

    [Theory]
    [InlineData("{{ '[TOOL_CALLS]' + name + '[ARGS]' + arguments }}", (int)MistralArgs)]
    [InlineData("{{ '[TOOL_CALLS]' + tool_calls|tojson }}", (int)Mistral)]
    [InlineData("{{ '<|python_tag|>' + tool.name + '.call(' }}", (int)Llama3)]
    [InlineData("{{ '<tool_call>' }} [TOOL_CALLS] [ARGS]", (int)Hermes)]
    public void The_format_is_read_off_the_template(string template, int expected) =>
        Assert.Equal((ToolCallFormat)expected, ToolCalls.FormatOf(template));

    [Fact]
    public void A_call_that_breaks_after_it_began_is_given_back_as_text_and_stays_unfinished()
    {
        const string text = "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": 1]}</tool_call>";
        var r = Feed(Hermes, [text]);
        Assert.Empty(r.Calls);
        Assert.Equal(text, r.Content);
        Assert.Contains(r.Parts, p => p is { Index: 0, Name: "f", Done: false });
        // arguments that are not JSON: the call does not finish
        var bad = Feed(Llama3, ["{\"name\": \"f\", \"parameters\": tru}"]);
        Assert.Empty(bad.Calls);
        Assert.Equal("{\"name\": \"f\", \"parameters\": tru}", bad.Content);
    }
}
