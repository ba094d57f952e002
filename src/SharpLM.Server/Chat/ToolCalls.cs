using System.Text;
using System.Text.Json;
using SharpLM.Inference.Constrained;

namespace SharpLM.Server.Chat;

/// <summary>How a model writes a tool call, read off its chat template.</summary>
internal enum ToolCallFormat
{
    /// <summary>Hermes / Qwen 2.5 / Qwen 3: <c>&lt;tool_call&gt;\n{"name": ..., "arguments": {...}}\n&lt;/tool_call&gt;</c>.
    /// Also what SharpLM asks of a model whose template knows no tools.</summary>
    Hermes,
    /// <summary>Llama 3.1 / 3.2: the reply is one JSON object <c>{"name": ..., "parameters": {...}}</c>.</summary>
    Llama3,
    /// <summary>Mistral: <c>[TOOL_CALLS] [{"name": ..., "arguments": {...}}]</c>.</summary>
    Mistral,
}

/// <summary>A tool the client offers: name, description and the JSON schema of its arguments.</summary>
internal sealed record ToolDef(string Name, string? Description, JsonElement? Parameters);

/// <summary>A call the model made: its arguments as JSON text.</summary>
internal sealed record ToolCall(string Id, string Name, string Arguments);

/// <summary>Tool calls: the format of a template, the grammar that forces a call, and the parser of the model's text.</summary>
internal static class ToolCalls
{
    public const string HermesOpen = "<tool_call>";
    public const string HermesClose = "</tool_call>";

    public static ToolCallFormat FormatOf(string templateSource)
    {
        if (templateSource.Contains(HermesOpen, StringComparison.Ordinal)) return ToolCallFormat.Hermes;
        if (templateSource.Contains("[TOOL_CALLS]", StringComparison.Ordinal)) return ToolCallFormat.Mistral;
        if (templateSource.Contains("<|python_tag|>", StringComparison.Ordinal) || templateSource.Contains("ipython", StringComparison.Ordinal)) return ToolCallFormat.Llama3;
        return ToolCallFormat.Hermes;
    }

    /// <summary>Whether the template renders the <c>tools</c> variable itself (else SharpLM describes them in the system message).</summary>
    public static bool TemplateKnowsTools(string templateSource) => templateSource.Contains("tools", StringComparison.Ordinal);

    /// <summary>The system text that teaches a template without tool support the Hermes format.</summary>
    public static string Instructions(IReadOnlyList<ToolDef> tools)
    {
        var sb = new StringBuilder("You may call one or more functions to assist with the user query. The functions are described in <tools></tools> XML tags:\n<tools>\n");
        foreach (var t in tools) sb.Append(ToolJson(t)).Append('\n');
        sb.Append("</tools>\nTo call a function, reply with a JSON object with the function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>");
        return sb.ToString();
    }

    /// <summary>A tool as the OpenAI wire form {"type":"function","function":{...}} (what templates print).</summary>
    public static string ToolJson(ToolDef t)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("type", "function");
            w.WriteStartObject("function");
            w.WriteString("name", t.Name);
            if (t.Description != null) w.WriteString("description", t.Description);
            w.WritePropertyName("parameters");
            if (t.Parameters is { } p) p.WriteTo(w);
            else { w.WriteStartObject(); w.WriteString("type", "object"); w.WriteStartObject("properties"); w.WriteEndObject(); w.WriteEndObject(); }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    /// <summary>
    /// The grammar of one call to any of <paramref name="tools"/> in <paramref name="format"/>. <paramref name="afterTrigger"/>:
    /// the part after the opening tag (a call the model started itself), else the whole call (tool_choice required or
    /// a named function).
    /// </summary>
    public static GrammarNode Grammar(ToolCallFormat format, IReadOnlyList<ToolDef> tools, bool afterTrigger)
    {
        string argsKey = format == ToolCallFormat.Llama3 ? "parameters" : "arguments";
        var calls = tools.Select(t => (GrammarNode)new ObjectNode(
        [
            new PropertyNode("name", "\"name\"", LiteralNode.Of(JsonSchemaCompiler.Literal(t.Name)), true),
            new PropertyNode(argsKey, $"\"{argsKey}\"", t.Parameters is { } p ? JsonSchemaCompiler.Compile(p) : JsonSchemaCompiler.AnyObject(), true),
        ], null)).ToArray();
        GrammarNode call = calls.Length == 1 ? calls[0] : new UnionNode(calls);
        GrammarNode root = format switch
        {
            ToolCallFormat.Hermes when afterTrigger => new SequenceNode([LiteralNode.Of("\n"), call, LiteralNode.Of("\n" + HermesClose)]),
            ToolCallFormat.Hermes => new SequenceNode([LiteralNode.Of(HermesOpen + "\n"), call, LiteralNode.Of("\n" + HermesClose)]),
            ToolCallFormat.Mistral => new ArrayNode([], call, 1, 1),
            _ => call,
        };
        GrammarNodes.Seal(root);
        return root;
    }

    public static string NewId() => "call_" + Guid.NewGuid().ToString("N")[..24];
}


/// <summary>
/// One piece of a tool call as the model writes it. The first piece of call <see cref="Index"/> (0, 1, ... in the order
/// the calls begin) carries its <see cref="Id"/> and <see cref="Name"/>; any piece may carry a fragment of the arguments'
/// JSON text, and the fragments of a call, in order, are exactly its arguments; <see cref="Done"/> marks the piece that
/// completes the call. A call that never gets its Done piece was cut off (max_tokens, a stop string) or broke.
/// </summary>
internal sealed record ToolCallPart(int Index, string? Id, string? Name, string Arguments, bool Done);

/// <summary>
/// Splits the model's text, as it streams, into content and tool-call pieces (<see cref="ToolCallPart"/>).
/// <para>A call block opens with the format's tag anywhere in the text (Hermes <c>&lt;tool_call&gt;</c>, Llama 3
/// <c>&lt;|python_tag|&gt;</c>, Mistral <c>[TOOL_CALLS]</c>) or, in the JSON formats (Llama 3, Mistral), with a bare
/// <c>{</c> or <c>[</c> at the start of the reply or right after a call. The block holds one call object
/// <c>{"name": ..., "arguments"|"parameters": ...}</c> or an array of them; Hermes closes it with <c>&lt;/tool_call&gt;</c>.</para>
/// <para>Text that could still be the start of an opener is held back, and given back as content as soon as it cannot
/// be; so is whitespace just before a call (content is what surrounds the calls, not the separators between them). A
/// call begins (its name goes out) when its <c>"name"</c> string is complete; its arguments then go out as their raw
/// JSON text arrives (a string-valued arguments member is decoded, and goes out once complete); it is done when its
/// object closes and the arguments parse. A block that turns out not to be a call before any call began in it is given
/// back as content; after that, the rest of a block that breaks is content and the broken call stays unfinished. A block
/// still open at the end (max_tokens, a stop string) is dropped, its call unfinished, unless it is bare JSON in which no
/// call began (then it was text).</para>
/// </summary>
internal sealed class ToolCallStream
{
    private enum Mode { Text, Block, CloseTag }

    /// <summary>Where the scanner is inside a block's JSON.</summary>
    private enum At { Top, FirstElement, NextElement, Element, KeyOrEnd, Key, InKey, Colon, ValueStart, InValue, AfterMember }

    private enum Member { Name, Args, Other }

    private readonly string[] _tags;
    private readonly bool _json;                     // bare JSON may open a block (Llama 3, Mistral)
    private readonly StringBuilder _content = new(); // output of the current Push/Flush
    private readonly List<ToolCallPart> _parts = [];

    private Mode _mode;
    private bool _bare;                              // a bare '{' or '[' would open a block now
    private bool _afterCall;                         // nothing but whitespace since the last call
    private readonly StringBuilder _held = new();    // a proper prefix of an opener (or a bare '[' that may be one)
    private readonly StringBuilder _ws = new();      // whitespace not yet given out (dropped if a call follows)

    // the open block
    private readonly StringBuilder _raw = new();     // its text since it opened or since its last finished call
    private string? _closer;
    private int _closeMatched;
    private bool _blockBegan;                        // a call began in this block
    private bool _tagged;                            // the block opened with a tag (not a bare '{' or '[')
    private bool _array;
    private At _at;

    // the call being read
    private readonly StringBuilder _key = new();
    private readonly StringBuilder _value = new();   // the current member's raw value
    private readonly StringBuilder _nest = new();    // open brackets inside the value
    private readonly StringBuilder _args = new();    // the arguments text (raw JSON, or the decoded string)
    private Member _member;
    private bool _keyEscaped, _inString, _escape, _scalar;
    private string? _name;
    private bool _argsSeen, _argsOpen, _argsString;
    private int _argsSent;
    private int _callIndex = -1;
    private int _nextIndex;

    public ToolCallStream(ToolCallFormat format)
    {
        _tags = format switch
        {
            ToolCallFormat.Hermes => [ToolCalls.HermesOpen],
            ToolCallFormat.Llama3 => ["<|python_tag|>"],
            _ => ["[TOOL_CALLS]"],
        };
        _json = format != ToolCallFormat.Hermes;
        _bare = _json;
    }

    /// <summary>True once a call was completed.</summary>
    public bool SawCalls { get; private set; }

    /// <summary>Adds text; returns the content that is settled and the call pieces it completes.</summary>
    public (string Content, List<ToolCallPart> Parts) Push(string text)
    {
        foreach (char c in text) Step(c);
        if (_mode == Mode.Block && _callIndex >= 0 && TakeArgs(final: false) is { Length: > 0 } fragment)
            AddPart(new ToolCallPart(_callIndex, null, null, fragment, false));
        return Take();
    }

    /// <summary>The end of the reply: everything still held.</summary>
    public (string Content, List<ToolCallPart> Parts) Flush()
    {
        switch (_mode)
        {
            case Mode.Text:
                if (_held.Length > 0)
                {
                    var h = _held.ToString();
                    _held.Clear();
                    foreach (char c in h) EmitContent(c);
                }
                if (!_afterCall) _content.Append(_ws);
                break;
            case Mode.Block:
                if (!_tagged && !_blockBegan) _content.Append(_raw); // bare JSON that never was a call: text
                break;                                   // else a call was being written and got cut: it stays unfinished
            case Mode.CloseTag:
                break;                                   // the call is complete; a cut closing tag is markup
        }
        _ws.Clear();
        _raw.Clear();
        _mode = Mode.Text;
        _callIndex = -1;
        return Take();
    }

    private (string, List<ToolCallPart>) Take()
    {
        var r = (_content.ToString(), new List<ToolCallPart>(_parts));
        _content.Clear();
        _parts.Clear();
        return r;
    }

    private void Step(char c)
    {
        switch (_mode)
        {
            case Mode.Text: StepText(c); break;
            case Mode.Block: StepBlock(c); break;
            default: StepCloseTag(c); break;
        }
    }

    private IEnumerable<string> Openers() => _bare ? [.. _tags, "{", "["] : _tags;

    private void StepText(char c)
    {
        if (_held.Length == 0 && char.IsWhiteSpace(c))
        {
            _ws.Append(c);
            return;
        }
        _held.Append(c);
        var h = _held.ToString();
        if (Openers().Any(o => o.Length > h.Length && o.StartsWith(h, StringComparison.Ordinal))) return; // may still become one
        _held.Clear();
        string? open = Openers().Where(o => h.StartsWith(o, StringComparison.Ordinal)).MaxBy(o => o.Length);
        if (open is null)
        {
            EmitContent(h[0]);
            foreach (char r in h.AsSpan(1)) StepText(r);
            return;
        }
        OpenBlock(open);
        foreach (char r in h.AsSpan(open.Length)) Step(r);
    }

    private void EmitContent(char c)
    {
        _content.Append(_ws).Append(c);
        _ws.Clear();
        _bare = false;
        _afterCall = false;
    }

    private void OpenBlock(string opener)
    {
        bool bareJson = opener is "{" or "[";
        _mode = Mode.Block;
        _raw.Clear().Append(_ws);
        _ws.Clear();
        _closer = opener == ToolCalls.HermesOpen ? ToolCalls.HermesClose : null;
        _tagged = !bareJson;
        _blockBegan = false;
        _array = false;
        _at = At.Top;
        if (bareJson) StepBlock(opener[0]);
        else _raw.Append(opener);
    }

    private void StepCloseTag(char c)
    {
        if (_closeMatched == 0 && char.IsWhiteSpace(c)) return;
        if (c == _closer![_closeMatched])
        {
            if (++_closeMatched == _closer.Length) _mode = Mode.Text;
            return;
        }
        // something else follows the call: it is text
        var text = _closer[.._closeMatched] + c;
        _mode = Mode.Text;
        foreach (char r in text) StepText(r);
    }

    private void StepBlock(char c)
    {
        _raw.Append(c);
        bool ws = char.IsWhiteSpace(c);
        switch (_at)
        {
            case At.Top:
                if (ws) return;
                if (c == '{') BeginObject();
                else if (c == '[') { _array = true; _at = At.FirstElement; }
                else Fail();
                return;
            case At.FirstElement:
            case At.Element:
                if (ws) return;
                if (c == '{') BeginObject();
                else Fail(); // an empty array, or not an object: not a call
                return;
            case At.NextElement:
                if (ws) return;
                if (c == ',') _at = At.Element;
                else if (c == ']') EndValue();
                else Fail();
                return;
            case At.KeyOrEnd:
            case At.Key:
                if (ws) return;
                if (c == '"')
                {
                    _key.Clear();
                    _keyEscaped = false;
                    _escape = false;
                    _at = At.InKey;
                }
                else if (c == '}' && _at == At.KeyOrEnd) EndObject();
                else Fail();
                return;
            case At.InKey:
                if (_escape) _escape = false;
                else if (c == '\\') { _escape = _keyEscaped = true; }
                else if (c == '"') { _at = At.Colon; return; }
                _key.Append(c);
                return;
            case At.Colon:
                if (ws) return;
                if (c == ':') _at = At.ValueStart;
                else Fail();
                return;
            case At.ValueStart:
                if (ws) return;
                StartValue(c);
                return;
            case At.InValue:
                ValueChar(c);
                return;
            case At.AfterMember:
                if (ws) return;
                if (c == ',') _at = At.Key;
                else if (c == '}') EndObject();
                else Fail();
                return;
        }
    }

    private void BeginObject()
    {
        _name = null;
        _args.Clear();
        _argsSeen = _argsOpen = _argsString = false;
        _argsSent = 0;
        _callIndex = -1;
        _at = At.KeyOrEnd;
    }

    private void StartValue(char c)
    {
        string key = _key.ToString();
        if (_keyEscaped) key = DecodeString("\"" + key + "\"") ?? key;
        _member = key switch
        {
            "name" when _name is null => Member.Name,
            "arguments" or "parameters" when !_argsSeen => Member.Args,
            _ => Member.Other,
        };
        if (_member == Member.Name && c != '"') { Fail(); return; }
        _value.Clear();
        _nest.Clear();
        _inString = _escape = _scalar = false;
        if (c is '{' or '[') _nest.Append(c);
        else if (c == '"') _inString = true;
        else if (c is '-' or (>= '0' and <= '9') or 't' or 'f' or 'n') _scalar = true;
        else { Fail(); return; }
        if (_member == Member.Args)
        {
            _argsSeen = _argsOpen = true;
            _argsString = c == '"';
        }
        _at = At.InValue;
        Append(c);
    }

    private void ValueChar(char c)
    {
        if (_scalar)
        {
            if (char.IsWhiteSpace(c) || c is ',' or '}')
            {
                // the scalar ended before c: c belongs to the object
                _raw.Length--;
                if (EndMember()) StepBlock(c);
                else StepText(c); // the block failed: c is text
                return;
            }
            Append(c);
            return;
        }
        Append(c);
        if (_inString)
        {
            if (_escape) _escape = false;
            else if (c == '\\') _escape = true;
            else if (c == '"')
            {
                _inString = false;
                if (_nest.Length == 0) EndMember();
            }
            return;
        }
        if (c == '"') _inString = true;
        else if (c is '{' or '[') _nest.Append(c);
        else if (c is '}' or ']')
        {
            if (_nest[^1] != (c == '}' ? '{' : '[')) { Fail(); return; }
            _nest.Length--;
            if (_nest.Length == 0) EndMember();
        }
    }

    private void Append(char c)
    {
        _value.Append(c);
        if (_member == Member.Args && !_argsString) _args.Append(c);
    }

    /// <summary>A member's value is complete; false when the block failed on it.</summary>
    private bool EndMember()
    {
        _at = At.AfterMember;
        var text = _value.ToString();
        switch (_member)
        {
            case Member.Name:
                if (DecodeString(text) is not { } name) { Fail(); return false; }
                _name = name;
                _callIndex = _nextIndex++;
                _blockBegan = true;
                AddPart(new ToolCallPart(_callIndex, ToolCalls.NewId(), name, TakeArgs(final: false), false));
                return true;
            case Member.Args:
                _argsOpen = false;
                if (_argsString)
                {
                    if (DecodeString(text) is not { } s) { Fail(); return false; }
                    _args.Append(s);
                }
                else if (!IsJson(text)) { Fail(); return false; }
                return true;
            default:
                return true;
        }
    }

    private void EndObject()
    {
        if (_name is null) { Fail(); return; } // a JSON object, but not a call
        if (!_argsSeen) _args.Append("{}");
        AddPart(new ToolCallPart(_callIndex, null, null, TakeArgs(final: true), true));
        SawCalls = true;
        _callIndex = -1;
        _raw.Clear();
        if (_array) _at = At.NextElement;
        else EndValue();
    }

    private void EndValue()
    {
        _afterCall = true;
        if (_closer != null)
        {
            _mode = Mode.CloseTag;
            _closeMatched = 0;
        }
        else
        {
            _mode = Mode.Text;
            _bare = _json; // another bare call may follow
        }
    }

    /// <summary>Not a call after all: the block's text is content; a call that began in it stays unfinished.</summary>
    private void Fail()
    {
        var raw = _raw.ToString();
        _raw.Clear();
        _callIndex = -1;
        _mode = Mode.Text;
        _bare = false;
        _content.Append(raw);
        if (raw.Length > 0) _afterCall = false;
    }

    /// <summary>The arguments text not yet given out (a string value only once complete; a trailing high surrogate
    /// waits for its pair).</summary>
    private string TakeArgs(bool final)
    {
        if (_argsOpen && _argsString) return "";
        int end = _args.Length;
        if (!final && end > _argsSent && char.IsHighSurrogate(_args[end - 1])) end--;
        var s = _args.ToString(_argsSent, end - _argsSent);
        _argsSent = end;
        return s;
    }

    /// <summary>Adds a piece, merged into the previous one when it continues the same call.</summary>
    private void AddPart(ToolCallPart p)
    {
        if (_parts.Count > 0 && _parts[^1] is { Done: false } last && last.Index == p.Index && p.Id is null)
            _parts[^1] = last with { Arguments = last.Arguments + p.Arguments, Done = p.Done };
        else if (p.Id != null || p.Arguments.Length > 0 || p.Done)
            _parts.Add(p);
    }

    private static string? DecodeString(string json)
    {
        try
        {
            using var d = JsonDocument.Parse(json);
            return d.RootElement.ValueKind == JsonValueKind.String ? d.RootElement.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static bool IsJson(string json)
    {
        try
        {
            using var d = JsonDocument.Parse(json);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}

/// <summary>Puts the pieces of <see cref="ToolCallStream"/> back together into whole calls: for a response that is not
/// streamed, and for Ollama, which streams each call whole. Only finished calls come out.</summary>
internal sealed class ToolCallAssembler
{
    private readonly Dictionary<int, (string Id, string Name, StringBuilder Args)> _open = [];

    /// <summary>Every call finished so far, in order.</summary>
    public List<ToolCall> Completed { get; } = [];

    /// <summary>Adds pieces; returns the calls they finished (empty when none).</summary>
    public List<ToolCall> Add(IEnumerable<ToolCallPart>? parts)
    {
        var done = new List<ToolCall>();
        if (parts is null) return done;
        foreach (var p in parts)
        {
            if (p.Id != null) _open[p.Index] = (p.Id, p.Name!, new StringBuilder());
            if (!_open.TryGetValue(p.Index, out var call)) continue;
            call.Args.Append(p.Arguments);
            if (!p.Done) continue;
            _open.Remove(p.Index);
            done.Add(new ToolCall(call.Id, call.Name, call.Args.ToString()));
        }
        Completed.AddRange(done);
        return done;
    }
}
