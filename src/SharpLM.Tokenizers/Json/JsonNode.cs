using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace SharpLM.Tokenizers.Json;

/// <summary>A JSON value with its path (e.g. <c>pre_tokenizer.pretokenizers[1].pattern</c>) for error messages.</summary>
internal readonly struct JsonNode(JsonElement element, string path, string source)
{
    public JsonElement Element { get; } = element;
    public string Path { get; } = path;
    public string Source { get; } = source;

    public JsonValueKind Kind => Element.ValueKind;
    public bool IsNull => Element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined;

    private string Child(string name) => Path.Length == 0 ? name : Path + "." + name;

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
        return Element.TryGetProperty(name, out var v) ? new JsonNode(v, Child(name), Source) : new JsonNode(default, Child(name), Source);
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
        foreach (var e in Element.EnumerateArray())
        {
            yield return new JsonNode(e, $"{Path}[{i}]", Source);
            i++;
        }
    }

    public int ArrayLength()
    {
        if (Kind != JsonValueKind.Array) Fail($"expected an array, found {Describe()}.");
        return Element.GetArrayLength();
    }

    public IEnumerable<(string Name, JsonNode Value)> Properties()
    {
        ExpectObject();
        foreach (var p in Element.EnumerateObject()) yield return (p.Name, new JsonNode(p.Value, Child(p.Name), Source));
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
