using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace SharpLM.Server.Http;

/// <summary>
/// A JSON request body and typed access to its fields: every accessor checks the JSON type and the range and throws an
/// <see cref="ApiException"/> (400) whose message names the field (<c>messages[2].content</c>), what was expected and what
/// came. Bodies over the size limit are 413; a body that does not arrive whole within
/// <see cref="SharpLMServer.RequestBodyTimeout"/> closes its connection.
/// </summary>
internal readonly struct Fields(JsonElement obj, string path)
{
    public JsonElement Element => obj;
    public string Path => path;

    public static async Task<JsonDocument> ReadBodyAsync(HttpContext ctx, long limit)
    {
        if (ctx.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } f) f.MaxRequestBodySize = limit;
        if (ctx.Request.ContentLength > limit) throw TooLarge(limit);
        // The read takes no cancellation token, and a read that fails aborts the connection: a cancelled or failed read
        // leaves Kestrel's body reader "in progress", and its automatic drain of the rest of the body at the end of the
        // request then fails in the log ("Reading is already in progress"); on an aborted connection Kestrel does not
        // drain. Aborting also ends a pending read: at the body deadline, and when the request is cancelled (the client
        // went away, or the per-request timeout).
        using var deadline = new CancellationTokenSource(SharpLMServer.RequestBodyTimeout);
        using var abort = deadline.Token.Register(static c => ((HttpContext)c!).Abort(), ctx);
        using var cancelled = ctx.RequestAborted.Register(static c => ((HttpContext)c!).Abort(), ctx);
        try
        {
            using var ms = new MemoryStream();
            var buf = new byte[16384];
            int n;
            while ((n = await ctx.Request.Body.ReadAsync(buf, CancellationToken.None).ConfigureAwait(false)) > 0)
            {
                if (ms.Length + n > limit) throw TooLarge(limit);
                ms.Write(buf, 0, n);
            }
            if (ms.Length == 0) throw ApiException.BadRequest("the request body is empty: send a JSON object", null, "invalid_json");
            return Parse(ms.GetBuffer().AsMemory(0, (int)ms.Length));
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw TooLarge(limit);
        }
        catch (Exception e) when (e is not ApiException)
        {
            // the body cannot be read to its end (the client closed the connection mid-body, or was cut off): the
            // connection is done; end the request as a client that went away (quietly, nothing to answer)
            ctx.Abort();
            throw new ConnectionGoneException(deadline.IsCancellationRequested
                ? $"the request body did not arrive within {SharpLMServer.RequestBodyTimeout.TotalSeconds:0} s; the connection was closed"
                : $"the request body could not be read: {e.Message}", e);
        }
    }

    /// <summary>A request body as JSON: valid UTF-8 (JSON text is UTF-8; System.Text.Json checks a string's bytes only
    /// when it is read, which would fail deep in a handler), nesting at most 128; anything else is a 400.</summary>
    public static JsonDocument Parse(ReadOnlyMemory<byte> body)
    {
        if (!System.Text.Unicode.Utf8.IsValid(body.Span))
        {
            System.Text.Unicode.Utf8.ToUtf16(body.Span, new char[body.Length], out int valid, out _, replaceInvalidSequences: false);
            throw ApiException.BadRequest($"the request body is not valid UTF-8 (at byte {valid})", null, "invalid_json");
        }
        try
        {
            return JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 128 });
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"the request body is not valid JSON: {e.Message}", null, "invalid_json");
        }
    }

    private static ApiException TooLarge(long limit) =>
        new(413, $"the request body is larger than the server's limit of {limit} bytes", null, "request_too_large");

    public static Fields Root(JsonDocument doc)
    {
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw ApiException.BadRequest($"the request body must be a JSON object, not {Kind(doc.RootElement)}", null, "invalid_json");
        return new Fields(doc.RootElement, "");
    }

    public string Name(string field) => path.Length == 0 ? field : $"{path}.{field}";

    /// <summary>The field, or null when absent or JSON null.</summary>
    public JsonElement? Get(string field) =>
        obj.TryGetProperty(field, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public bool Has(string field) => Get(field) is not null;

    public ApiException Error(string field, string message, string code = "invalid_value") => ApiException.BadRequest($"'{Name(field)}' {message}", Name(field), code);

    public ApiException Wrong(string field, string expected, JsonElement got) =>
        Error(field, $"must be {expected}, got {Describe(got)}", "invalid_type");

    public string? String(string field, bool required = false)
    {
        if (Get(field) is not { } v)
        {
            if (required) throw Error(field, "is required", "missing_required_parameter");
            return null;
        }
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw Wrong(field, "a string", v);
    }

    public bool? Bool(string field)
    {
        if (Get(field) is not { } v) return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Wrong(field, "a boolean", v),
        };
    }

    public double? Number(string field, double min = double.MinValue, double max = double.MaxValue)
    {
        if (Get(field) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number) throw Wrong(field, "a number", v);
        double d = v.GetDouble();
        if (!double.IsFinite(d) || d < min || d > max) throw Error(field, $"must be between {F(min)} and {F(max)}, got {v.GetRawText()}");
        return d;
    }

    public long? Integer(string field, long min = long.MinValue, long max = long.MaxValue)
    {
        if (Get(field) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number) throw Wrong(field, "an integer", v);
        if (!v.TryGetInt64(out long n))
        {
            if (v.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) < 9e18) n = (long)d;
            else throw Wrong(field, "an integer", v);
        }
        if (n < min || n > max) throw Error(field, $"must be between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)}, got {n.ToString(CultureInfo.InvariantCulture)}");
        return n;
    }

    public int? Int(string field, int min = int.MinValue, int max = int.MaxValue) => (int?)Integer(field, min, max);

    public Fields? Object(string field)
    {
        if (Get(field) is not { } v) return null;
        return v.ValueKind == JsonValueKind.Object ? new Fields(v, Name(field)) : throw Wrong(field, "an object", v);
    }

    public JsonElement? Array(string field)
    {
        if (Get(field) is not { } v) return null;
        return v.ValueKind == JsonValueKind.Array ? v : throw Wrong(field, "an array", v);
    }

    /// <summary>A string or an array of strings (stop sequences), at most <paramref name="max"/>.</summary>
    public List<string> Strings(string field, int max = 16)
    {
        if (Get(field) is not { } v) return [];
        var list = new List<string>();
        if (v.ValueKind == JsonValueKind.String) list.Add(v.GetString()!);
        else if (v.ValueKind == JsonValueKind.Array)
        {
            int i = 0;
            foreach (var e in v.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.String)
                    throw ApiException.BadRequest($"'{Name(field)}[{i}]' must be a string, got {Describe(e)}", $"{Name(field)}[{i}]", "invalid_type");
                list.Add(e.GetString()!);
                i++;
            }
        }
        else throw Wrong(field, "a string or an array of strings", v);
        if (list.Count > max) throw Error(field, $"has {list.Count} entries; at most {max} are allowed");
        return list;
    }

    /// <summary>An array of token ids below <paramref name="vocab"/>; <paramref name="name"/> is how the error calls the
    /// array (e.g. prompt[2]), <paramref name="param"/> the request field.</summary>
    public static List<int> TokenIds(JsonElement arr, string name, int vocab, string param)
    {
        var ids = new List<int>();
        int k = 0;
        foreach (var t in arr.EnumerateArray())
        {
            if (t.ValueKind != JsonValueKind.Number || !t.TryGetInt32(out int id) || id < 0 || id >= vocab)
                throw ApiException.BadRequest($"'{name}[{k}]' must be a token id from 0 to {vocab - 1}, got {Describe(t)}", param);
            ids.Add(id);
            k++;
        }
        return ids;
    }

    public Fields Item(JsonElement e, string field, int index) =>
        e.ValueKind == JsonValueKind.Object ? new Fields(e, $"{Name(field)}[{index}]")
        : throw ApiException.BadRequest($"'{Name(field)}[{index}]' must be an object, got {Describe(e)}", $"{Name(field)}[{index}]", "invalid_type");

    public static string Describe(JsonElement v)
    {
        var raw = v.GetRawText();
        if (raw.Length > 40) raw = raw[..40] + "...";
        return $"{Kind(v)} {raw}";
    }

    public static string Kind(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    private static string F(double d) => d switch
    {
        double.MinValue => "-inf",
        double.MaxValue => "+inf",
        _ => d.ToString(CultureInfo.InvariantCulture),
    };
}
