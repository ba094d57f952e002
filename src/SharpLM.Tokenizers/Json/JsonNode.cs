using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace SharpLM.Tokenizers.Json;

/// <summary>A JSON value with its path (e.g. <c>pre_tokenizer.pretokenizers[1].pattern</c>) for error messages.</summary>
internal readonly struct JsonNode
{
    // The path is built only when an error needs it: a parent path plus a member name or an array index.
    private readonly string _parentPath;
    private readonly string? _name;
    private readonly int _index;

    public JsonNode(JsonElement element, string path, string source) : this(element, path, null, -1, source) { }

    private JsonNode(JsonElement element, string parentPath, string? name, int index, string source)
    {
        Element = element;
        _parentPath = parentPath;
        _name = name;
        _index = index;
        Source = source;
    }

    public JsonElement Element { get; }
    public string Source { get; }

    public string Path => _name != null ? (_parentPath.Length == 0 ? _name : _parentPath + "." + _name)
        : _index >= 0 ? $"{_parentPath}[{_index}]" : _parentPath;

    public JsonValueKind Kind => Element.ValueKind;
    public bool IsNull => Element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined;


    [DoesNotReturn]
    public void Fail(string message) => throw new InvalidDataException($"{Source}: {(Path.Length == 0 ? "(root)" : Path)}: {message}");

    [DoesNotReturn]
    public static void Fail(string source, string path, string message) =>
        throw new InvalidDataException($"{source}: {path}: {message}");

    public JsonNode ExpectObject()
    {
        if (Element.ValueKind != JsonValueKind.Object) Fail($"expected an object, found {Describe()}.");
        return this;
    }

    public string Describe() => Element.ValueKind switch
    {
        JsonValueKind.Undefined => "nothing",
        JsonValueKind.Null => "null",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array",
        _ => "an object",
    };

    /// <summary>The member, or a node of kind Undefined when absent.</summary>
    public JsonNode Get(string name)
    {
        ExpectObject();
        return new JsonNode(Element.TryGetProperty(name, out var v) ? v : default, Path, name, -1, Source);
    }

    public bool Has(string name) => Element.ValueKind == JsonValueKind.Object && Element.TryGetProperty(name, out var v)
        && v.ValueKind != JsonValueKind.Null;

    public JsonNode Required(string name)
    {
        var n = Get(name);
        if (n.Kind == JsonValueKind.Undefined) Fail($"missing field '{name}'.");
        return n;
    }

    public string String()
    {
        if (Kind != JsonValueKind.String) Fail($"expected a string, found {Describe()}.");
        return Element.GetString()!;
    }

    public string RequiredString(string name) => Required(name).String();

    public string? OptString(string name)
    {
        var n = Get(name);
        return n.IsNull ? null : n.String();
    }

    public bool Bool(string name, bool defaultValue)
    {
        var n = Get(name);
        if (n.IsNull) return defaultValue;
        if (n.Kind is not (JsonValueKind.True or JsonValueKind.False)) n.Fail($"expected true or false, found {n.Describe()}.");
        return n.Element.GetBoolean();
    }

    public bool? OptBool(string name)
    {
        var n = Get(name);
        if (n.IsNull) return null;
        return n.Bool();
    }

    public bool Bool()
    {
        if (Kind is not (JsonValueKind.True or JsonValueKind.False)) Fail($"expected true or false, found {Describe()}.");
        return Element.GetBoolean();
    }

    public int Int()
    {
        if (Kind == JsonValueKind.Number && Element.TryGetInt32(out int v)) return v;
        Fail($"expected an integer, found {Describe()}.");
        return 0;
    }

    /// <summary>A token id: an integer in [0, <see cref="Core.TokenIds.Limit"/>); an error names the path and the value.</summary>
    public int TokenId()
    {
        if (Kind == JsonValueKind.Number && Element.TryGetInt64(out long v))
        {
            if (Core.TokenIds.Problem(v) is { } why) Fail(why + ".");
            return (int)v;
        }
        Fail($"expected an integer, found {Describe()}.");
        return 0;
    }

    public int Int(string name, int defaultValue)
    {
        var n = Get(name);
        return n.IsNull ? defaultValue : n.Int();
    }

    public int? OptInt(string name)
    {
        var n = Get(name);
        return n.IsNull ? null : n.Int();
    }

    public double Double()
    {
        if (Kind != JsonValueKind.Number) Fail($"expected a number, found {Describe()}.");
        return Element.GetDouble();
    }

    public IEnumerable<JsonNode> Array()
    {
        if (Kind != JsonValueKind.Array) Fail($"expected an array, found {Describe()}.");
        int i = 0;
        string path = Path;
        foreach (var e in Element.EnumerateArray())
        {
            yield return new JsonNode(e, path, null, i, Source);
            i++;
        }
    }

    /// <summary>The node of <paramref name="item"/>, the element at <paramref name="index"/> of this array.</summary>
    public JsonNode Item(JsonElement item, int index) => new(item, Path, null, index, Source);

    /// <summary>The node of <paramref name="member"/>, a member of this object.</summary>
    public JsonNode Member(JsonProperty member) => new(member.Value, Path, member.Name, -1, Source);

    public int ArrayLength()
    {
        if (Kind != JsonValueKind.Array) Fail($"expected an array, found {Describe()}.");
        return Element.GetArrayLength();
    }

    public IEnumerable<(string Name, JsonNode Value)> Properties()
    {
        ExpectObject();
        string path = Path;
        foreach (var p in Element.EnumerateObject()) yield return (p.Name, new JsonNode(p.Value, path, p.Name, -1, Source));
    }

    /// <summary>The "type" field of a component.</summary>
    public string Type()
    {
        ExpectObject();
        return Required("type").String();
    }

    [DoesNotReturn]
    public void UnknownType(string type, string supported) =>
        Get("type").Fail($"unknown type '{type}'; supported: {supported}.");
}
