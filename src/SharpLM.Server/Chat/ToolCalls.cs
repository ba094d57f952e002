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

    /// <summary>Reads a call object {"name", "arguments"|"parameters"}; null when it is not one.</summary>
    internal static ToolCall? ReadCall(JsonElement o)
    {
        if (o.ValueKind != JsonValueKind.Object || !o.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String) return null;
        string args = "{}";
        if (o.TryGetProperty("arguments", out var a) || o.TryGetProperty("parameters", out a))
            args = a.ValueKind == JsonValueKind.String ? a.GetString()! : a.GetRawText();
        return new ToolCall(NewId(), n.GetString()!, args);
    }

    /// <summary>Calls in a JSON text: one call object, or an array of them; null when it is not that.</summary>
    internal static List<ToolCall>? ReadJsonCalls(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Object) return ReadCall(root) is { } c ? [c] : null;
            if (root.ValueKind != JsonValueKind.Array) return null;
            var list = new List<ToolCall>();
            foreach (var e in root.EnumerateArray())
            {
                if (ReadCall(e) is not { } call) return null;
                list.Add(call);
            }
            return list.Count > 0 ? list : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>
/// Splits the model's text, as it streams, into content and tool calls. Hermes: text outside
/// <c>&lt;tool_call&gt;...&lt;/tool_call&gt;</c> is content (a possible start of the tag is held back until settled); each
/// complete block is parsed into a call as soon as its closing tag arrives. Llama 3 / Mistral: a reply that starts with
/// a JSON object or array (or Llama's &lt;|python_tag|&gt;) is held until the end and parsed as calls.
/// A block that does not parse is given back as content.
/// </summary>
internal sealed class ToolCallStream(ToolCallFormat format)
{
    private readonly StringBuilder _buf = new();
    private bool _inCall;
    private bool? _jsonReply; // JSON formats: null until the first non-space char decides

    public bool SawCalls { get; private set; }

    /// <summary>Adds text; returns the content that is settled and the calls completed by it.</summary>
    public (string Content, List<ToolCall> Calls) Push(string text)
    {
        _buf.Append(text);
        return format == ToolCallFormat.Hermes ? Hermes(final: false) : Json(final: false);
    }

    /// <summary>Everything still held, at the end of the reply.</summary>
    public (string Content, List<ToolCall> Calls) Flush() => format == ToolCallFormat.Hermes ? Hermes(final: true) : Json(final: true);

    private (string, List<ToolCall>) Hermes(bool final)
    {
        var content = new StringBuilder();
        var calls = new List<ToolCall>();
        while (true)
        {
            var s = _buf.ToString();
            if (!_inCall)
            {
                int at = s.IndexOf(ToolCalls.HermesOpen, StringComparison.Ordinal);
                if (at >= 0)
                {
                    content.Append(s, 0, at);
                    _buf.Remove(0, at + ToolCalls.HermesOpen.Length);
                    _inCall = true;
                    continue;
                }
                int keep = final ? 0 : PartialSuffix(s, ToolCalls.HermesOpen);
                content.Append(s, 0, s.Length - keep);
                _buf.Remove(0, s.Length - keep);
                break;
            }
            int end = s.IndexOf(ToolCalls.HermesClose, StringComparison.Ordinal);
            if (end < 0 && !final) break;
            string body = end >= 0 ? s[..end] : s;
            var parsed = ToolCalls.ReadJsonCalls(body.Trim());
            if (parsed != null)
            {
                calls.AddRange(parsed);
                SawCalls = true;
            }
            else content.Append(ToolCalls.HermesOpen).Append(body).Append(end >= 0 ? ToolCalls.HermesClose : "");
            _buf.Remove(0, end >= 0 ? end + ToolCalls.HermesClose.Length : s.Length);
            _inCall = false;
            if (end < 0) break;
        }
        return (content.ToString(), calls);
    }

    private (string, List<ToolCall>) Json(bool final)
    {
        var s = _buf.ToString();
        if (_jsonReply is null)
        {
            var t = s.TrimStart();
            if (t.Length == 0) return ("", []);
            _jsonReply = t[0] is '{' or '[' || t.StartsWith("<|python_tag|>", StringComparison.Ordinal) || t.StartsWith("[TOOL_CALLS]", StringComparison.Ordinal)
                || "<|python_tag|>".StartsWith(t, StringComparison.Ordinal) || "[TOOL_CALLS]".StartsWith(t, StringComparison.Ordinal);
        }
        if (_jsonReply == false)
        {
            _buf.Clear();
            return (s, []);
        }
        if (!final) return ("", []);
        _buf.Clear();
        var body = s.Trim();
        foreach (var tag in new[] { "<|python_tag|>", "[TOOL_CALLS]" })
            if (body.StartsWith(tag, StringComparison.Ordinal)) body = body[tag.Length..].Trim();
        var calls = ToolCalls.ReadJsonCalls(body);
        if (calls is null) return (s, []);
        SawCalls = true;
        return ("", calls);
    }

    /// <summary>The length of the longest suffix of <paramref name="s"/> that is a proper prefix of <paramref name="tag"/>.</summary>
    private static int PartialSuffix(string s, string tag)
    {
        for (int k = Math.Min(tag.Length - 1, s.Length); k > 0; k--)
            if (s.AsSpan(s.Length - k).SequenceEqual(tag.AsSpan(0, k))) return k;
        return 0;
    }
}
