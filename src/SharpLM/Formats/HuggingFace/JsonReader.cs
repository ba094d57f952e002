using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace SharpLM.Formats.HuggingFace;

/// <summary>Typed reads from a JSON object with errors naming the file and the JSON path.</summary>
internal readonly struct JsonReader(JsonElement root, string source, string prefix = "")
{
    public JsonElement Root => root;

    /// <summary>The file the JSON came from (for errors).</summary>
    public string Source => source;

    [DoesNotReturn]
    public void Fail(string key, string message) => throw new InvalidDataException($"{source}: '{prefix}{key}' {message}");

    [DoesNotReturn]
    public T Fail<T>(string key, string message) => throw new InvalidDataException($"{source}: '{prefix}{key}' {message}");

    private bool TryGet(string key, out JsonElement e) =>
        root.TryGetProperty(key, out e) && e.ValueKind != JsonValueKind.Null;

    public string? String(string key) => !TryGet(key, out var e) ? null
        : e.ValueKind == JsonValueKind.String ? e.GetString() : Fail<string>(key, $"is {e.GetRawText()}, expected a string");

    public int? Int(string key)
    {
        if (!TryGet(key, out var e)) return null;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int v)) return v;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) return (int)d;
        return Fail<int>(key, $"is {Short(e)}, expected an integer");
    }

    /// <summary>A nested object (null when absent or null; an error when it is something else).</summary>
    public JsonReader? Object(string key)
    {
        if (!TryGet(key, out var e)) return null;
        return e.ValueKind == JsonValueKind.Object ? new JsonReader(e, source, prefix + key + ".") : Fail<JsonReader>(key, $"is a {e.ValueKind}, expected an object or null");
    }

    public int RequiredInt(string key) => Int(key) ?? Fail<int>(key, "is missing (expected an integer)");

    /// <summary>A size: a positive integer (error naming the key and the value otherwise).</summary>
    public int Size(string key)
    {
        int v = RequiredInt(key);
        return v > 0 ? v : Fail<int>(key, $"is {v}, expected a positive integer");
    }

    /// <summary>An optional size: absent or null gives null; present, it must be a positive integer.</summary>
    public int? OptionalSize(string key)
    {
        int? v = Int(key);
        return v is null or > 0 ? v : Fail<int>(key, $"is {v}, expected a positive integer");
    }

    public float? Float(string key)
    {
        if (!TryGet(key, out var e)) return null;
        return e.ValueKind == JsonValueKind.Number ? (float)e.GetDouble() : Fail<float>(key, $"is {Short(e)}, expected a number");
    }

    public bool? Bool(string key)
    {
        if (!TryGet(key, out var e)) return null;
        return e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => Fail<bool>(key, $"is {Short(e)}, expected true or false"),
        };
    }

    /// <summary>A list of numbers (null when absent).</summary>
    public float[]? FloatList(string key)
    {
        if (!TryGet(key, out var e)) return null;
        if (e.ValueKind != JsonValueKind.Array) return Fail<float[]>(key, $"is {Short(e)}, expected a list of numbers");
        var r = new List<float>();
        foreach (var x in e.EnumerateArray())
            r.Add(x.ValueKind == JsonValueKind.Number ? (float)x.GetDouble() : Fail<float>(key, $"holds {Short(x)}, expected numbers"));
        return [.. r];
    }

    /// <summary>A list of strings (null when absent).</summary>
    public string[]? StringList(string key)
    {
        if (!TryGet(key, out var e)) return null;
        if (e.ValueKind != JsonValueKind.Array) return Fail<string[]>(key, $"is {Short(e)}, expected a list of strings");
        var r = new List<string>();
        foreach (var x in e.EnumerateArray())
            r.Add(x.ValueKind == JsonValueKind.String ? x.GetString()! : Fail<string>(key, $"holds {Short(x)}, expected strings"));
        return [.. r];
    }

    public int[] IntOrList(string key)
    {
        if (!TryGet(key, out var e)) return [];
        if (e.ValueKind == JsonValueKind.Array)
        {
            var r = new List<int>();
            foreach (var x in e.EnumerateArray())
                r.Add(x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out int v) ? v : Fail<int>(key, $"holds {Short(x)}, expected integers"));
            return [.. r];
        }
        return [Int(key)!.Value];
    }

    private static string Short(JsonElement e)
    {
        var t = e.GetRawText();
        return t.Length > 60 ? t[..60] + "..." : t;
    }
}
