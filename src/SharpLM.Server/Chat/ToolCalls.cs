using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using SharpLM.Inference.ChatTemplates;
using SharpLM.Inference.Constrained;

namespace SharpLM.Server.Chat;

/// <summary>How a model writes a tool call, read off its chat template.</summary>
internal enum ToolCallFormat
{
    /// <summary>Hermes / Qwen 2.5 / Qwen 3: <c>&lt;tool_call&gt;\n{"name": ..., "arguments": {...}}\n&lt;/tool_call&gt;</c>.
    /// Also what SharpLM asks of a model whose template knows no tools.</summary>
    Hermes,
    /// <summary>Llama 3.1 / 3.2: the reply is one JSON object <c>{"name": ..., "parameters": {...}}</c>; after
    /// <c>&lt;|python_tag|&gt;</c> also a built-in tool's Python call <c>brave_search.call(query="...")</c>, or plain code
    /// (code_interpreter: a call of <c>python</c> with <c>{"code": ...}</c>).</summary>
    Llama3,
    /// <summary>Mistral: <c>[TOOL_CALLS] [{"name": ..., "arguments": {...}}]</c>.</summary>
    Mistral,
    /// <summary>Mistral v11+ templates (Mistral Small 3.2, Magistral, Devstral, Ministral 3): each call
    /// <c>[TOOL_CALLS]name[ARGS]{...}</c>, one after another; the older array form is read too.</summary>
    MistralArgs,
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
    public const string MistralOpen = "[TOOL_CALLS]";
    public const string MistralArgs = "[ARGS]";
    public const string PythonTag = "<|python_tag|>";

    /// <summary>Llama 3.1's built-in tools, called as <c>&lt;|python_tag|&gt;name.call(param=...)</c>, with the parameter
    /// each needs (as llama.cpp: a tool of that name whose schema lacks it is an ordinary tool).</summary>
    private static readonly Dictionary<string, string> BuiltinTools = new(StringComparer.Ordinal)
    {
        ["brave_search"] = "query", ["web_search"] = "query", ["wolfram_alpha"] = "query",
        ["python"] = "code", ["code_interpreter"] = "code",
    };

    /// <summary>The markup a format's calls are written with: it reaches the call reader as text even where the vocabulary
    /// has it as special tokens (Llama 3.1's &lt;|python_tag|&gt;, Mistral's [TOOL_CALLS] and [ARGS]), as llama.cpp keeps
    /// a format's "preserved tokens".</summary>
    public static string[] Tags(ToolCallFormat format) => format switch
    {
        ToolCallFormat.Hermes => [HermesOpen, HermesClose],
        ToolCallFormat.Llama3 => [PythonTag],
        ToolCallFormat.Mistral => [MistralOpen],
        _ => [MistralOpen, MistralArgs],
    };

    public static ToolCallFormat FormatOf(string templateSource)
    {
        if (templateSource.Contains(HermesOpen, StringComparison.Ordinal)) return ToolCallFormat.Hermes;
        if (templateSource.Contains(MistralOpen, StringComparison.Ordinal))
            return templateSource.Contains(MistralArgs, StringComparison.Ordinal) ? ToolCallFormat.MistralArgs : ToolCallFormat.Mistral;
        if (templateSource.Contains(PythonTag, StringComparison.Ordinal) || templateSource.Contains("ipython", StringComparison.Ordinal)) return ToolCallFormat.Llama3;
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
        static GrammarNode Args(ToolDef t) => t.Parameters is { } p ? JsonSchemaCompiler.Compile(p) : JsonSchemaCompiler.AnyObject();
        var calls = tools.Select(t => format switch
        {
            ToolCallFormat.MistralArgs => new SequenceNode([LiteralNode.Of(MistralOpen + t.Name + MistralArgs), Args(t)]),
            ToolCallFormat.Llama3 when BuiltinCall(t) is { } builtin => builtin,
            _ => (GrammarNode)new ObjectNode(
            [
                new PropertyNode("name", "\"name\"", LiteralNode.Of(JsonSchemaCompiler.Literal(t.Name)), true),
                new PropertyNode(argsKey, $"\"{argsKey}\"", Args(t), true),
            ], null),
        }).ToArray();
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

    /// <summary>A Llama 3.1 built-in tool's call, as llama.cpp writes its grammar:
    /// <c>&lt;|python_tag|&gt;name.call(k1=v1, k2=v2)</c>, every property of the schema in order, each value JSON
    /// (which the parser reads as Python literals). Null for any other tool.</summary>
    private static SequenceNode? BuiltinCall(ToolDef t)
    {
        if (!BuiltinTools.TryGetValue(t.Name, out var needs) || t.Parameters is not { ValueKind: JsonValueKind.Object } p
            || !p.TryGetProperty("properties", out var props) || props.ValueKind != JsonValueKind.Object || !props.TryGetProperty(needs, out _))
            return null;
        var parts = new List<GrammarNode> { LiteralNode.Of(PythonTag + t.Name + ".call(") };
        foreach (var (prop, i) in props.EnumerateObject().Select((x, i) => (x, i)))
        {
            parts.Add(LiteralNode.Of((i > 0 ? ", " : "") + prop.Name + "="));
            parts.Add(JsonSchemaCompiler.Compile(prop.Value));
        }
        parts.Add(LiteralNode.Of(")"));
        return new SequenceNode([.. parts]);
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
/// <c>{"name": ..., "arguments"|"parameters": ...}</c> or an array of them; Hermes closes it with <c>&lt;/tool_call&gt;</c>.
/// After Mistral v11's tag it may instead be <c>name[ARGS]{...}</c> (one call; the next has its own tag). After Llama 3's
/// <c>&lt;|python_tag|&gt;</c> it may be a built-in tool's Python call <c>name.call(k=v, ...)</c>, its Python literals
/// (strings in either quote with escapes, numbers, True/False/None, lists, tuples, dicts) turned into the JSON object
/// <c>{"k":v,...}</c>; or, when the text after the tag is no such call, Python code: a call of <c>python</c> with
/// <c>{"code":...}</c>, the text up to the end of the reply when the model ended it (as llama.cpp reads code_interpreter).</para>
/// <para>Text that could still be the start of an opener is held back, and given back as content as soon as it cannot
/// be; so is whitespace just before a call (content is what surrounds the calls, not the separators between them). A
/// call begins (its name goes out) when its name is complete: its <c>"name"</c> string, the <c>[ARGS]</c> after it, the
/// <c>.call(</c> after it, or (code) the first text that rules out <c>name.call(</c>. Its arguments then go out as their
/// JSON text arrives, within string values too: raw JSON as written; a string-valued arguments member decoded as it
/// arrives (it must hold JSON; an empty one is <c>{}</c>); a Python call converted as it arrives; code escaped into its
/// JSON string. A call is done when its object or Python call closes and its arguments are JSON, or, for code, at the
/// end of a reply the model ended (not cut by max_tokens or a stop string). A block that turns out not to be a call
/// before any call began in it is given back as content; after that, the rest of a block that breaks (bad JSON, a bad
/// Python literal) is content and the broken call stays unfinished. A block still open at the end (max_tokens, a stop
/// string) is given back the same way, as llama.cpp's server does: its text since it opened or since its last finished
/// call is content (the opener included) and its call stays unfinished, so a client loses none of the model's text;
/// the calls finished before it stand.</para>
/// </summary>
internal sealed partial class ToolCallStream
{
    private enum Mode { Text, Block, CloseTag }

    /// <summary>Where the scanner is inside a block.</summary>
    private enum At
    {
        // JSON
        Top, FirstElement, NextElement, Element, KeyOrEnd, Key, InKey, Colon, ValueStart, InValue, AfterMember,
        /// <summary>Mistral v11: the name before <c>[ARGS]</c>.</summary>
        CallName,
        /// <summary>After <c>&lt;|python_tag|&gt;</c>: <c>name.call(</c> so far, or code.</summary>
        PyHead,
        /// <summary>Inside a Python call's parentheses.</summary>
        PyCall,
        /// <summary>Python code, up to the end of the reply.</summary>
        Code,
    }

    private enum Member { Name, Args, Other }

    private const int MaxName = 64;   // OpenAI's limit on a function name
    private const int MaxPyDepth = 64;

    private readonly string[] _tags;
    private readonly bool _json;                     // bare JSON may open a block (Llama 3, Mistral)
    private readonly bool _python;                   // <|python_tag|> may open a Python call or code (Llama 3)
    private readonly bool _named;                    // [TOOL_CALLS] may open name[ARGS]{...} (Mistral v11)
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
    private bool _tagged;                            // the block opened with a tag (not a bare '{' or '[')
    private bool _array;
    private At _at;

    // the call being read
    private readonly StringBuilder _key = new();     // a JSON key; Mistral's name before [ARGS]; the Python head
    private readonly StringBuilder _value = new();   // the current member's raw value
    private readonly StringBuilder _nest = new();    // open brackets inside the value
    private readonly StringBuilder _args = new();    // the arguments' JSON text
    private Member _member;
    private bool _keyEscaped, _inString, _escape, _scalar;
    private string? _name;
    private bool _argsSeen, _argsString, _argsOnly;  // _argsOnly: the value after [ARGS], which ends the call
    private bool _strEscape;                         // a string-valued arguments member: after a backslash
    private int _strHex = -1, _strCode;              // ... and its \uXXXX digits so far
    private int _argsSent;
    private int _callIndex = -1;
    private int _nextIndex;

    public ToolCallStream(ToolCallFormat format)
    {
        _tags = format switch
        {
            ToolCallFormat.Hermes => [ToolCalls.HermesOpen],
            ToolCallFormat.Llama3 => [ToolCalls.PythonTag],
            _ => [ToolCalls.MistralOpen],
        };
        _json = format != ToolCallFormat.Hermes;
        _python = format == ToolCallFormat.Llama3;
        _named = format == ToolCallFormat.MistralArgs;
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

    /// <summary>The end of the reply: everything still held. <paramref name="cut"/>: the reply did not end by the model's
    /// choice (max_tokens, a stop string), so code after <c>&lt;|python_tag|&gt;</c> is cut too (content, not a call).</summary>
    public (string Content, List<ToolCallPart> Parts) Flush(bool cut)
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
                if (_at == At.PyHead && !cut) StartCode(); // text after <|python_tag|> that never became name.call(: code
                if (_at == At.Code && !cut)
                {
                    _args.Append("\"}");
                    AddPart(new ToolCallPart(_callIndex, null, null, TakeArgs(final: true), true));
                    SawCalls = true;
                }
                else _content.Append(_raw);              // cut (or never a call): its text is content, its call unfinished
                break;
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
                else if (_named && IsNameChar(c)) { _key.Clear().Append(c); _at = At.CallName; }
                else if (_python && _tagged) { _key.Clear(); _at = At.PyHead; StepPyHead(c); }
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
            case At.CallName:
                _key.Append(c);
                StepCallName();
                return;
            case At.PyHead:
                StepPyHead(c);
                return;
            case At.PyCall:
                StepPy(c);
                return;
            case At.Code:
                AppendJsonChar(_args, c);
                return;
        }
    }

    private void BeginObject()
    {
        _name = null;
        _args.Clear();
        _argsSeen = _argsString = _argsOnly = false;
        _argsSent = 0;
        _callIndex = -1;
        _at = At.KeyOrEnd;
    }

    /// <summary>The call's name is known: it begins (its first piece goes out).</summary>
    private void StartCall(string name)
    {
        _name = name;
        _callIndex = _nextIndex++;
        AddPart(new ToolCallPart(_callIndex, ToolCalls.NewId(), name, TakeArgs(final: false), false));
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
        if (_argsOnly && c != '{') { Fail(); return; }  // [ARGS] takes an object
        _value.Clear();
        _nest.Clear();
        _inString = _escape = _scalar = false;
        if (c is '{' or '[') _nest.Append(c);
        else if (c == '"') _inString = true;
        else if (c is '-' or (>= '0' and <= '9') or 't' or 'f' or 'n') _scalar = true;
        else { Fail(); return; }
        if (_member == Member.Args)
        {
            _argsSeen = true;
            _argsString = c == '"';
            _strEscape = false;
            _strHex = -1;
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
        if (_member != Member.Args) return;
        if (_argsString) DecodeArgsChar(c);
        else _args.Append(c);
    }

    /// <summary>A character of a string-valued arguments member (its quotes included): its decoded text is the
    /// arguments, going out as it arrives. A bad escape is left for <see cref="EndMember"/> to refuse.</summary>
    private void DecodeArgsChar(char c)
    {
        if (_value.Length == 1) return;                  // the opening quote
        if (_strHex >= 0)
        {
            if (!char.IsAsciiHexDigit(c)) return;
            _strCode = _strCode * 16 + Convert.ToInt32(c.ToString(), 16);
            if (++_strHex == 4) { _args.Append((char)_strCode); _strHex = -1; }
            return;
        }
        if (_strEscape)
        {
            _strEscape = false;
            switch (c)
            {
                case 'u': _strHex = 0; _strCode = 0; break;
                case 'b': _args.Append('\b'); break;
                case 'f': _args.Append('\f'); break;
                case 'n': _args.Append('\n'); break;
                case 'r': _args.Append('\r'); break;
                case 't': _args.Append('\t'); break;
                default: _args.Append(c); break;         // \" \\ \/
            }
            return;
        }
        if (c == '\\') _strEscape = true;
        else if (c != '"') _args.Append(c);              // an unescaped quote closes the string
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
                StartCall(name);
                return true;
            case Member.Args:
                if (_argsString)
                {
                    // what went out must be the string's value, and that must be JSON ("" means no arguments)
                    if (DecodeString(text) is not { } s || !_args.Equals(s)) { Fail(); return false; }
                    if (s.Length == 0) _args.Append("{}");
                    else if (!IsJson(s)) { Fail(); return false; }
                }
                else if (!IsJson(text)) { Fail(); return false; }
                if (_argsOnly) EndObject();              // name[ARGS]{...}: the object ends the call
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

    // ---- Mistral v11: [TOOL_CALLS]name[ARGS]{...}

    private static bool IsNameChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.';

    /// <summary>The name so far (in <see cref="_key"/>), maybe followed by part of <c>[ARGS]</c>.</summary>
    private void StepCallName()
    {
        var k = _key.ToString();
        int open = k.IndexOf('[', StringComparison.Ordinal);
        var name = open < 0 ? k : k[..open];
        if (name.Length > MaxName || !name.All(IsNameChar)) { Fail(); return; }
        if (open < 0) return;
        var rest = k[open..];
        if (name.Length == 0 || !ToolCalls.MistralArgs.StartsWith(rest, StringComparison.Ordinal)) { Fail(); return; }
        if (rest.Length < ToolCalls.MistralArgs.Length) return;
        BeginObject();
        StartCall(name);
        _argsOnly = true;
        _key.Clear().Append("arguments");
        _keyEscaped = false;
        _at = At.ValueStart;
    }

    // ---- Llama 3.1 after <|python_tag|>: name.call(k=v, ...) or code

    private static bool IsWordChar(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';

    private void StepPyHead(char c)
    {
        _key.Append(c);
        switch (CallHead(_key, out var name))
        {
            case 0:
                return;                                  // may still be name.call(
            case 1:
                BeginObject();
                StartCall(name);
                _argsSeen = true;
                _args.Append('{');
                _py.Clear();
                _py.Add(new PyFrame(PyKind.Call));
                _inPyString = _inWord = _inName = false;
                _at = At.PyCall;
                return;
            default:
                StartCode();
                return;
        }
    }

    /// <summary>1 when <paramref name="h"/> is <c>name.call(</c> (spaces allowed around the dot and before the
    /// parenthesis, as llama.cpp), 0 while it may still become one, -1 when it cannot.</summary>
    private static int CallHead(StringBuilder h, out string name)
    {
        name = "";
        int i = 0, n = h.Length;
        if (!(char.IsAsciiLetter(h[0]) || h[0] == '_')) return -1;
        while (i < n && IsWordChar(h[i])) i++;
        if (i > MaxName) return -1;
        name = h.ToString(0, i);
        if (!SkipSpaces(h, ref i)) return 0;
        if (h[i++] != '.') return -1;
        if (!SkipSpaces(h, ref i)) return 0;
        foreach (char k in "call")
        {
            if (i == n) return 0;
            if (h[i++] != k) return -1;
        }
        if (!SkipSpaces(h, ref i)) return 0;
        return h[i] == '(' && i == n - 1 ? 1 : -1;

        static bool SkipSpaces(StringBuilder h, ref int i)
        {
            while (i < h.Length && char.IsWhiteSpace(h[i])) i++;
            return i < h.Length;
        }
    }

    /// <summary>The text after the tag is code: a call of <c>python</c> whose code is that text and what follows.</summary>
    private void StartCode()
    {
        var head = _key.ToString();
        BeginObject();
        StartCall("python");
        _argsSeen = true;
        _args.Append("{\"code\":\"");
        foreach (char h in head) AppendJsonChar(_args, h);
        _at = At.Code;
    }

    private enum PyKind { Call, List, Tuple, Dict }

    /// <summary>What a Python container expects next: a key (a keyword argument's name, a dict's string key) or its
    /// close; '=' or ':' after a key; a value (in a list, or its close); ',' or the close after a value.</summary>
    private enum PyWant { Key, Eq, Colon, Value, After }

    private sealed class PyFrame(PyKind kind)
    {
        public PyKind Kind { get; } = kind;
        public PyWant Want { get; set; } = kind is PyKind.Call or PyKind.Dict ? PyWant.Key : PyWant.Value;
        public int Count { get; set; }
        public char Close => Kind switch { PyKind.List => ']', PyKind.Dict => '}', _ => ')' };
    }

    private readonly List<PyFrame> _py = [];         // the call's parentheses, then the open containers
    private readonly StringBuilder _tok = new();     // a keyword argument's name, or a number / True / False / None
    private bool _inName, _inWord;
    private bool _inPyString;
    private PyStringReader _string;                  // the open string, while _inPyString

    private void StepPy(char c)
    {
        if (_inPyString)
        {
            var sink = new JsonStringSink(_args);
            switch (_string.Read(c, ref sink))
            {
                case PyStringReader.Step.End:
                    _inPyString = false;
                    _args.Append('"');
                    PyValueEnded();
                    break;
                case PyStringReader.Step.Bad:
                    Fail();
                    break;
            }
            return;
        }
        if (_inWord)
        {
            if (IsWordChar(c) || c == '.' || (c is '+' or '-' && _tok[^1] is 'e' or 'E' && (char.IsAsciiDigit(_tok[0]) || _tok[0] is '.' or '-')))
            {
                _tok.Append(c);
                return;
            }
            _inWord = false;
            if (PyWordJson(_tok.ToString()) is not { } json)
            {
                _raw.Length--;                           // c is not part of the broken call
                Fail();
                StepText(c);
                return;
            }
            _args.Append(json);
            PyValueEnded();
            StepPy(c);
            return;
        }
        if (_inName)
        {
            if (IsWordChar(c)) { _tok.Append(c); return; }
            _inName = false;
            _py[^1].Want = PyWant.Eq;
            StepPy(c);
            return;
        }
        var f = _py[^1];
        if (char.IsWhiteSpace(c)) return;
        switch (f.Want)
        {
            case PyWant.Key:
                if (c == f.Close) ClosePy();
                else if (f.Kind == PyKind.Call && (char.IsAsciiLetter(c) || c == '_')) { _tok.Clear().Append(c); _inName = true; }
                else if (f.Kind == PyKind.Dict && c is '"' or '\'') { Separate(f); StartPyValue(c); }
                else Fail();
                return;
            case PyWant.Eq:
                if (c != '=') { Fail(); return; }
                Separate(f);
                _args.Append('"').Append(_tok).Append("\":");
                f.Want = PyWant.Value;
                return;
            case PyWant.Colon:
                if (c != ':') { Fail(); return; }
                _args.Append(':');
                f.Want = PyWant.Value;
                return;
            case PyWant.Value:
                if (c == f.Close && f.Kind is PyKind.List or PyKind.Tuple) { ClosePy(); return; }
                if (f.Kind is PyKind.List or PyKind.Tuple) Separate(f);
                StartPyValue(c);
                return;
            case PyWant.After:
                if (c == ',') f.Want = f.Kind is PyKind.Call or PyKind.Dict ? PyWant.Key : PyWant.Value;
                else if (c == f.Close) ClosePy();
                else Fail();
                return;
        }
    }

    /// <summary>The comma before a container's next element, if it has one already.</summary>
    private void Separate(PyFrame f)
    {
        if (f.Count++ > 0) _args.Append(',');
    }

    private void StartPyValue(char c)
    {
        switch (c)
        {
            case '"' or '\'':
                _inPyString = true;
                _string = new PyStringReader(c, multiline: false, jsonSlash: true); // JSON's \/ too: llama.cpp's grammar writes JSON values
                _args.Append('"');
                return;
            case '[' or '(' or '{' when _py.Count >= MaxPyDepth:
                Fail();
                return;
            case '[':
                _args.Append('[');
                _py.Add(new PyFrame(PyKind.List));
                return;
            case '(':
                _args.Append('[');
                _py.Add(new PyFrame(PyKind.Tuple));
                return;
            case '{':
                _args.Append('{');
                _py.Add(new PyFrame(PyKind.Dict));
                return;
        }
        if (IsWordChar(c) || c is '-' or '.')
        {
            _tok.Clear().Append(c);
            _inWord = true;
        }
        else Fail();
    }

    /// <summary>A value (or a dict's key) ended: what its container wants next.</summary>
    private void PyValueEnded()
    {
        var f = _py[^1];
        f.Want = f.Want == PyWant.Key ? PyWant.Colon : PyWant.After;
    }

    private void ClosePy()
    {
        var f = _py[^1];
        _py.RemoveAt(_py.Count - 1);
        _args.Append(f.Kind is PyKind.Call or PyKind.Dict ? '}' : ']');
        if (f.Kind != PyKind.Call) { PyValueEnded(); return; }
        if (!IsJson(_args.ToString())) { Fail(); return; }
        EndObject();
    }

    /// <summary>A Python string's text into the arguments' JSON string: characters as written (a surrogate pair's halves
    /// stay raw, arriving one by one), escapes' code points JSON-escaped (a lone surrogate as <c>\uXXXX</c>).</summary>
    private readonly struct JsonStringSink(StringBuilder args) : IPyStringSink
    {
        public void Char(char c) => AppendJsonChar(args, c);

        public void CodePoint(int v)
        {
            if (v is >= 0xD800 and <= 0xDFFF) args.Append($"\\u{v:x4}"); // a lone surrogate: JSON's escape, never half a pair
            else if (v > 0xFFFF) args.Append(char.ConvertFromUtf32(v));
            else AppendJsonChar(args, (char)v);
        }
    }

    /// <summary>A Python number or constant as JSON; null when it is neither (a bad literal).</summary>
    private static string? PyWordJson(string w)
    {
        switch (w)
        {
            case "True" or "true": return "true";
            case "False" or "false": return "false";
            case "None" or "null": return "null";
        }
        var m = PyNumber().Match(w);
        if (!m.Success) return null;
        string sign = m.Groups[1].Value, whole = m.Groups[2].Value, frac = m.Groups[4].Value, exp = m.Groups[5].Value;
        bool dot = m.Groups[3].Success;
        if (whole.Length == 0 && frac.Length == 0) return null;
        if (whole.Length > 1 && whole[0] == '0')
        {
            if (!dot && exp.Length == 0 && whole.Any(d => d != '0')) return null; // 007: not Python 3 (007.5 is)
            whole = whole.TrimStart('0');
        }
        return sign + (whole.Length == 0 ? "0" : whole) + (dot ? "." + (frac.Length == 0 ? "0" : frac) : "") + (exp.Length > 0 ? "e" + exp : "");
    }

    [GeneratedRegex(@"^(-?)([0-9]*)(\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$", RegexOptions.CultureInvariant)]
    private static partial Regex PyNumber();

    private static void AppendJsonChar(StringBuilder sb, char c) => Values.AppendJsonChar(sb, c);

    // ----

    /// <summary>The arguments text not yet given out (a trailing high surrogate waits for its pair).</summary>
    private string TakeArgs(bool final)
    {
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
