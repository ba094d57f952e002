using System.Text.Encodings.Web;
using System.Text.Json;

namespace SharpLM.Inference.Constrained;

/// <summary>A JSON schema this engine cannot enforce; <see cref="Path"/> is the JSON pointer of the keyword.</summary>
internal sealed class JsonSchemaException(string message, string path) : Exception($"{message} (at {(path.Length == 0 ? "the schema root" : path)})")
{
    public string Path { get; } = path;
}

/// <summary>
/// Compiles a JSON schema (the subset structured output needs: type, properties, required, additionalProperties, items,
/// prefixItems, min/maxItems, enum, const, anyOf/oneOf, allOf of objects, $ref into $defs/definitions, min/maxLength,
/// minimum/maximum and their exclusive forms, nullable) into a <see cref="GrammarNode"/> the generation follows, so the
/// output always parses and validates. Annotations (title, description, default, examples, format, $schema, ...) are
/// ignored; assertions it cannot enforce (pattern, uniqueItems, multipleOf, not, if/then/else, ...) are a
/// <see cref="JsonSchemaException"/> naming the keyword, never a silently invalid answer.
/// </summary>
internal sealed class JsonSchemaCompiler
{
    /// <summary>Nesting allowed for values the schema leaves free ({} or true).</summary>
    public const int FreeDepth = 6;

    private static readonly JsonWriterOptions s_literal = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static readonly HashSet<string> s_unsupported =
    [
        "pattern", "patternProperties", "propertyNames", "dependentRequired", "dependentSchemas", "dependencies", "if", "then",
        "else", "not", "contains", "minContains", "maxContains", "unevaluatedProperties", "unevaluatedItems", "$dynamicRef",
    ];

    private readonly JsonElement _root;
    private readonly Dictionary<string, RefNode> _refs = new(StringComparer.Ordinal);
    private readonly List<(RefNode Node, string Pointer)> _pending = [];

    private JsonSchemaCompiler(JsonElement root) => _root = root;

    /// <summary>The grammar of values valid under <paramref name="schema"/> (an object or a boolean schema).</summary>
    public static GrammarNode Compile(JsonElement schema)
    {
        var c = new JsonSchemaCompiler(schema);
        var node = c.Node(schema, "");
        for (int i = 0; i < c._pending.Count; i++)
        {
            var (r, pointer) = c._pending[i];
            r.Target = c.Node(c.Resolve(pointer), pointer.TrimStart('#'));
        }
        GrammarNodes.Seal(node);
        if (node.MinChars == int.MaxValue) throw new JsonSchemaException("the schema accepts no value", "");
        return node;
    }

    /// <summary>Any JSON object (OpenAI's json_object mode).</summary>
    public static GrammarNode AnyObject()
    {
        var node = new ObjectNode([], new AnyNode(FreeDepth - 1));
        GrammarNodes.Seal(node);
        return node;
    }

    private GrammarNode Node(JsonElement s, string path)
    {
        if (s.ValueKind == JsonValueKind.True) return new AnyNode(FreeDepth);
        if (s.ValueKind == JsonValueKind.False) return new UnionNode([]);
        if (s.ValueKind != JsonValueKind.Object) throw new JsonSchemaException($"a schema must be an object or a boolean, not {Kind(s)}", path);

        foreach (var p in s.EnumerateObject())
            if (s_unsupported.Contains(p.Name)) throw new JsonSchemaException($"'{p.Name}' is not supported by constrained decoding", Join(path, p.Name));

        if (s.TryGetProperty("$ref", out var r))
        {
            if (r.ValueKind != JsonValueKind.String) throw new JsonSchemaException("'$ref' must be a string", Join(path, "$ref"));
            return Ref(r.GetString()!, Join(path, "$ref"));
        }

        GrammarNode node;
        if (s.TryGetProperty("const", out var cst)) node = LiteralNode.Of(Literal(cst));
        else if (s.TryGetProperty("enum", out var en))
        {
            if (en.ValueKind != JsonValueKind.Array || en.GetArrayLength() == 0) throw new JsonSchemaException("'enum' must be a non-empty array", Join(path, "enum"));
            var types = TypeList(s, path);
            node = new LiteralNode([.. en.EnumerateArray().Where(v => types is null || types.Contains(JsonType(v)) || (types.Contains("number") && JsonType(v) == "integer")).Select(Literal).Distinct(StringComparer.Ordinal)]);
        }
        else if (s.TryGetProperty("anyOf", out var any)) node = Union(any, Join(path, "anyOf"));
        else if (s.TryGetProperty("oneOf", out var one)) node = Union(one, Join(path, "oneOf"));
        else if (s.TryGetProperty("allOf", out var all)) node = AllOf(s, all, Join(path, "allOf"));
        else
        {
            var types = TypeList(s, path) ?? Implied(s);
            if (types is null) node = new AnyNode(FreeDepth);
            else
            {
                var options = types.Select(t => Typed(s, t, path)).ToArray();
                node = options.Length == 1 ? options[0] : new UnionNode(options);
            }
        }
        if (s.TryGetProperty("nullable", out var nl) && nl.ValueKind == JsonValueKind.True) node = new UnionNode([node, LiteralNode.Of("null")]);
        return node;
    }

    private static List<string>? Implied(JsonElement s)
    {
        if (s.TryGetProperty("properties", out _) || s.TryGetProperty("required", out _) || s.TryGetProperty("additionalProperties", out _)) return ["object"];
        if (s.TryGetProperty("items", out _) || s.TryGetProperty("prefixItems", out _)) return ["array"];
        return null;
    }

    private static List<string>? TypeList(JsonElement s, string path)
    {
        if (!s.TryGetProperty("type", out var t)) return null;
        List<string> types = t.ValueKind switch
        {
            JsonValueKind.String => [t.GetString()!],
            JsonValueKind.Array => [.. t.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString()! : throw new JsonSchemaException("'type' entries must be strings", Join(path, "type")))],
            _ => throw new JsonSchemaException("'type' must be a string or an array of strings", Join(path, "type")),
        };
        foreach (var x in types)
            if (x is not ("object" or "array" or "string" or "number" or "integer" or "boolean" or "null"))
                throw new JsonSchemaException($"unknown type '{x}' (expected object, array, string, number, integer, boolean or null)", Join(path, "type"));
        if (types.Count == 0) throw new JsonSchemaException("'type' is an empty list", Join(path, "type"));
        return types;
    }

    private GrammarNode Typed(JsonElement s, string type, string path) => type switch
    {
        "object" => Object(s, path),
        "array" => Array(s, path),
        "string" => String(s, path),
        "number" => Number(s, path, integer: false),
        "integer" => Number(s, path, integer: true),
        "boolean" => LiteralNode.Of("true", "false"),
        _ => LiteralNode.Of("null"),
    };

    private GrammarNode Object(JsonElement s, string path)
    {
        var props = new List<PropertyNode>();
        var required = new HashSet<string>(StringComparer.Ordinal);
        if (s.TryGetProperty("required", out var req))
        {
            if (req.ValueKind != JsonValueKind.Array) throw new JsonSchemaException("'required' must be an array of names", Join(path, "required"));
            foreach (var r in req.EnumerateArray())
                required.Add(r.ValueKind == JsonValueKind.String ? r.GetString()! : throw new JsonSchemaException("'required' entries must be strings", Join(path, "required")));
        }
        if (s.TryGetProperty("properties", out var ps))
        {
            if (ps.ValueKind != JsonValueKind.Object) throw new JsonSchemaException("'properties' must be an object", Join(path, "properties"));
            foreach (var p in ps.EnumerateObject())
                props.Add(new PropertyNode(p.Name, Literal(p.Name), Node(p.Value, Join(Join(path, "properties"), p.Name)), required.Contains(p.Name)));
        }
        foreach (var name in required)
            if (!props.Any(p => p.Name == name))
            {
                // a required key without a declared schema: any value
                props.Add(new PropertyNode(name, Literal(name), new AnyNode(FreeDepth - 1), true));
            }
        GrammarNode? additional = null;
        if (s.TryGetProperty("additionalProperties", out var ap))
        {
            if (ap.ValueKind is JsonValueKind.True or JsonValueKind.Object) additional = Node(ap, Join(path, "additionalProperties"));
            else if (ap.ValueKind != JsonValueKind.False) throw new JsonSchemaException("'additionalProperties' must be a boolean or a schema", Join(path, "additionalProperties"));
        }
        else if (props.Count == 0) additional = new AnyNode(FreeDepth - 1);
        if (s.TryGetProperty("minProperties", out var minP) && minP.TryGetInt32(out int mn) && mn > props.Count(p => p.Required))
            throw new JsonSchemaException("'minProperties' above the number of required properties is not supported; list the properties as required", Join(path, "minProperties"));
        if (s.TryGetProperty("maxProperties", out var maxP) && maxP.TryGetInt32(out int mx) && (props.Count == 0 || mx < props.Count))
            throw new JsonSchemaException("'maxProperties' below the number of declared properties is not supported", Join(path, "maxProperties"));
        return new ObjectNode([.. props], additional);
    }

    private GrammarNode Array(JsonElement s, string path)
    {
        var prefix = new List<GrammarNode>();
        if (s.TryGetProperty("prefixItems", out var pi))
        {
            if (pi.ValueKind != JsonValueKind.Array) throw new JsonSchemaException("'prefixItems' must be an array of schemas", Join(path, "prefixItems"));
            int i = 0;
            foreach (var x in pi.EnumerateArray()) prefix.Add(Node(x, Join(Join(path, "prefixItems"), (i++).ToString(System.Globalization.CultureInfo.InvariantCulture))));
        }
        GrammarNode? items = new AnyNode(FreeDepth - 1);
        if (s.TryGetProperty("items", out var it))
        {
            if (it.ValueKind == JsonValueKind.Array)
            {
                // draft-04 tuple form
                int i = 0;
                foreach (var x in it.EnumerateArray()) prefix.Add(Node(x, Join(Join(path, "items"), (i++).ToString(System.Globalization.CultureInfo.InvariantCulture))));
                items = s.TryGetProperty("additionalItems", out var ai) && ai.ValueKind != JsonValueKind.False ? Node(ai, Join(path, "additionalItems")) : null;
            }
            else items = it.ValueKind == JsonValueKind.False ? null : Node(it, Join(path, "items"));
        }
        int min = NonNegative(s, "minItems", path) ?? 0, max = NonNegative(s, "maxItems", path) ?? int.MaxValue;
        if (min > max) throw new JsonSchemaException($"minItems {min} is above maxItems {max}", Join(path, "minItems"));
        if (s.TryGetProperty("uniqueItems", out var u) && u.ValueKind == JsonValueKind.True && max > 1)
            throw new JsonSchemaException("'uniqueItems' is not supported by constrained decoding", Join(path, "uniqueItems"));
        return new ArrayNode([.. prefix], items, min, max);
    }

    private static GrammarNode String(JsonElement s, string path)
    {
        int min = NonNegative(s, "minLength", path) ?? 0, max = NonNegative(s, "maxLength", path) ?? int.MaxValue;
        if (min > max) throw new JsonSchemaException($"minLength {min} is above maxLength {max}", Join(path, "minLength"));
        return new StringNode(min, max);
    }

    private static GrammarNode Number(JsonElement s, string path, bool integer)
    {
        double? min = Num(s, "minimum", path), max = Num(s, "maximum", path);
        bool exMin = false, exMax = false;
        if (s.TryGetProperty("exclusiveMinimum", out var xm))
        {
            if (xm.ValueKind == JsonValueKind.True) exMin = true;
            else if (xm.ValueKind == JsonValueKind.Number) { double v = xm.GetDouble(); if (min is null || v >= min) { min = v; exMin = true; } }
        }
        if (s.TryGetProperty("exclusiveMaximum", out var xx))
        {
            if (xx.ValueKind == JsonValueKind.True) exMax = true;
            else if (xx.ValueKind == JsonValueKind.Number) { double v = xx.GetDouble(); if (max is null || v <= max) { max = v; exMax = true; } }
        }
        if (s.TryGetProperty("multipleOf", out var mo) && !(integer && mo.ValueKind == JsonValueKind.Number && mo.GetDouble() == 1))
            throw new JsonSchemaException("'multipleOf' is not supported by constrained decoding", Join(path, "multipleOf"));
        var node = new NumberNode(integer, min, max, exMin, exMax);
        if (node.Bounded && node.Lo > node.Hi)
            throw new JsonSchemaException(integer ? "no integer lies within the bounds" : "number bounds that contain no integer are not supported", Join(path, "minimum"));
        return node;
    }

    private GrammarNode Union(JsonElement arr, string path)
    {
        if (arr.ValueKind != JsonValueKind.Array || arr.GetArrayLength() == 0) throw new JsonSchemaException("must be a non-empty array of schemas", path);
        int i = 0;
        var options = arr.EnumerateArray().Select(x => Node(x, Join(path, (i++).ToString(System.Globalization.CultureInfo.InvariantCulture)))).ToArray();
        return options.Length == 1 ? options[0] : new UnionNode(options);
    }

    /// <summary>allOf: one schema, or object schemas merged (properties and required lists joined).</summary>
    private GrammarNode AllOf(JsonElement s, JsonElement all, string path)
    {
        if (all.ValueKind != JsonValueKind.Array || all.GetArrayLength() == 0) throw new JsonSchemaException("must be a non-empty array of schemas", path);
        var parts = all.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.Object && x.TryGetProperty("$ref", out var r) && r.ValueKind == JsonValueKind.String ? Resolve(r.GetString()!) : x).ToList();
        if (parts.Count == 1 && !s.TryGetProperty("properties", out _)) return Node(parts[0], Join(path, "0"));
        var props = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        var required = new List<string>();
        foreach (var p in parts.Append(s))
        {
            if (p.ValueKind != JsonValueKind.Object) throw new JsonSchemaException("allOf is supported for object schemas only", path);
            if (p.TryGetProperty("type", out var t) && !(t.ValueKind == JsonValueKind.String && t.GetString() == "object"))
                throw new JsonSchemaException("allOf is supported for object schemas only", path);
            if (p.TryGetProperty("properties", out var ps) && ps.ValueKind == JsonValueKind.Object)
                foreach (var x in ps.EnumerateObject()) props[x.Name] = x.Value;
            if (p.TryGetProperty("required", out var rq) && rq.ValueKind == JsonValueKind.Array)
                foreach (var x in rq.EnumerateArray()) if (x.ValueKind == JsonValueKind.String && !required.Contains(x.GetString()!)) required.Add(x.GetString()!);
        }
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("type", "object");
            w.WriteStartObject("properties");
            foreach (var (name, schema) in props)
            {
                w.WritePropertyName(name);
                schema.WriteTo(w);
            }
            w.WriteEndObject();
            w.WriteStartArray("required");
            foreach (var r in required) w.WriteStringValue(r);
            w.WriteEndArray();
            w.WriteBoolean("additionalProperties", false);
            w.WriteEndObject();
        }
        using var merged = JsonDocument.Parse(ms.ToArray());
        return Object(merged.RootElement.Clone(), path);
    }

    private GrammarNode Ref(string reference, string path)
    {
        if (!reference.StartsWith('#')) throw new JsonSchemaException($"only local references (#/...) are supported, not '{reference}'", path);
        if (_refs.TryGetValue(reference, out var known)) return known;
        Resolve(reference, path); // fail now when it points nowhere
        var node = new RefNode();
        _refs[reference] = node;
        _pending.Add((node, reference));
        return node;
    }

    private JsonElement Resolve(string pointer, string path = "")
    {
        var cur = _root;
        foreach (var raw in pointer.TrimStart('#').Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            var part = Uri.UnescapeDataString(raw).Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            if (cur.ValueKind == JsonValueKind.Object && cur.TryGetProperty(part, out var next)) cur = next;
            else if (cur.ValueKind == JsonValueKind.Array && int.TryParse(part, out int i) && i >= 0 && i < cur.GetArrayLength()) cur = cur[i];
            else throw new JsonSchemaException($"'$ref' {pointer} points to nothing in the schema", path);
        }
        return cur;
    }

    private static int? NonNegative(JsonElement s, string key, string path)
    {
        if (!s.TryGetProperty(key, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long n) || n < 0) throw new JsonSchemaException($"'{key}' must be a non-negative integer", Join(path, key));
        return (int)Math.Min(n, int.MaxValue);
    }

    private static double? Num(JsonElement s, string key, string path)
    {
        if (!s.TryGetProperty(key, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Number) throw new JsonSchemaException($"'{key}' must be a number", Join(path, key));
        return v.GetDouble();
    }

    /// <summary>A JSON value as the literal text the output must contain (compact, non-ASCII kept as is).</summary>
    internal static string Literal(JsonElement v)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, s_literal)) v.WriteTo(w);
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    internal static string Literal(string s)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, s_literal)) w.WriteStringValue(s);
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    private static string JsonType(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => v.TryGetInt64(out _) ? "integer" : "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        _ => "null",
    };

    private static string Kind(JsonElement v) => v.ValueKind.ToString().ToLowerInvariant();

    private static string Join(string path, string key) => path + "/" + key.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);
}

