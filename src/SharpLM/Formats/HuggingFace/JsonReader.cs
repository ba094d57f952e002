using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace SharpLM.Formats.HuggingFace;

/// <summary>Typed reads from a JSON object with errors naming the file and the JSON path.</summary>
internal readonly struct JsonReader(JsonElement root, string source, string prefix = "")
{
    public JsonElement Root => root;

    /// <summary>The file (or other source) errors name.</summary>
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

    public double? Double(string key)
    {
        if (!TryGet(key, out var e)) return null;
        return e.ValueKind == JsonValueKind.Number ? e.GetDouble() : Fail<double>(key, $"is {Short(e)}, expected a number");
    }

    public ulong? ULong(string key)
    {
        if (!TryGet(key, out var e)) return null;
        return e.ValueKind == JsonValueKind.Number && e.TryGetUInt64(out ulong v) ? v : Fail<ulong>(key, $"is {Short(e)}, expected a non-negative integer");
    }

    public string RequiredString(string key) => String(key) ?? Fail<string>(key, "is missing (expected a string)");

    public double RequiredDouble(string key) => Double(key) ?? Fail<double>(key, "is missing (expected a number)");

    public ulong RequiredULong(string key) => ULong(key) ?? Fail<ulong>(key, "is missing (expected a non-negative integer)");

    /// <summary>A JSON file that must hold an object (config.json, tokenizer_config.json, a checkpoint's state):
    /// every error names the file: missing, not UTF-8, not JSON, not an object.</summary>
    public static JsonReader Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FileNotFoundException($"{path} not found", path, e);
        }
        return Parse(bytes, path);
    }

    /// <summary>JSON text that must hold an object; <paramref name="source"/> names it in errors.</summary>
    public static JsonReader Parse(ReadOnlySpan<byte> json, string source)
    {
        if (!System.Text.Unicode.Utf8.IsValid(json)) throw new InvalidDataException($"{source}: not valid UTF-8 text");
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 64, AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            root = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not valid JSON: {e.Message}", e);
        }
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{source}: the JSON is a {root.ValueKind}, expected an object");
        return new JsonReader(root, source);
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
