using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace SharpLM.Server.Http;

/// <summary>
/// Responses written with <see cref="Utf8JsonWriter"/> (no reflection, so the server stays native-AOT friendly): a
/// whole JSON body, server-sent events (OpenAI streaming) or newline-delimited JSON (Ollama streaming).
/// </summary>
internal static class JsonOut
{
    /// <summary>Non-ASCII text is written as is (UTF-8), as OpenAI and Ollama do.</summary>
    public static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static byte[] Bytes(Action<Utf8JsonWriter> write)
    {
        var buf = new ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buf, Options)) write(w);
        return buf.WrittenSpan.ToArray();
    }

    public static async Task WriteAsync(HttpContext ctx, Action<Utf8JsonWriter> write, int status = 200)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json; charset=utf-8";
        await ctx.Response.Body.WriteAsync(Bytes(write), ctx.RequestAborted).ConfigureAwait(false);
    }
}

/// <summary>A stream of JSON events: SSE (<c>data: {...}\n\n</c>, ended by <c>data: [DONE]</c>) or NDJSON (one object a line).</summary>
internal sealed class EventStream(HttpContext ctx, bool sse)
{
    private static readonly byte[] s_data = "data: "u8.ToArray();
    private static readonly byte[] s_sseEnd = "\n\n"u8.ToArray();
    private static readonly byte[] s_done = "data: [DONE]\n\n"u8.ToArray();
    private bool _started;

    public bool Started => _started;

    private void Start()
    {
        if (_started) return;
        _started = true;
        var r = ctx.Response;
        r.StatusCode = 200;
        r.ContentType = sse ? "text/event-stream; charset=utf-8" : "application/x-ndjson";
        r.Headers.CacheControl = "no-cache";
        r.Headers["X-Accel-Buffering"] = "no"; // nginx: pass events through at once
    }

    public async Task WriteAsync(Action<Utf8JsonWriter> write)
    {
        Start();
        var body = ctx.Response.Body;
        var bytes = JsonOut.Bytes(write);
        var ct = ctx.RequestAborted;
        if (sse) await body.WriteAsync(s_data, ct).ConfigureAwait(false);
        await body.WriteAsync(bytes, ct).ConfigureAwait(false);
        await body.WriteAsync(sse ? s_sseEnd : "\n"u8.ToArray(), ct).ConfigureAwait(false);
        await body.FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>SSE's closing <c>data: [DONE]</c>.</summary>
    public async Task DoneAsync()
    {
        Start();
        if (sse) await ctx.Response.Body.WriteAsync(s_done, ctx.RequestAborted).ConfigureAwait(false);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>An error after the stream started: an event with the error object.</summary>
    public Task ErrorAsync(ApiException e, bool ollama)
    {
        var bytes = ApiErrors.Body(e, ollama);
        return WriteAsync(w => { using var doc = JsonDocument.Parse(bytes); doc.RootElement.WriteTo(w); });
    }
}
