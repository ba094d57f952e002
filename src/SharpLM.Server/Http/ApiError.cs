using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace SharpLM.Server.Http;

/// <summary>
/// A request the server refuses, written as OpenAI's error object
/// <c>{"error":{"message","type","param","code"}}</c> (or Ollama's <c>{"error":"message"}</c> on /api/*) with
/// <see cref="Status"/>. Every bad input ends as one of these, never as a stack trace.
/// </summary>
internal sealed class ApiException(int status, string message, string? param = null, string? code = null, string? type = null) : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    public string Type { get; } = type ?? status switch
    {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "invalid_request_error",
        429 => "rate_limit_error",
        >= 500 => "server_error",
        _ => "invalid_request_error",
    };

    /// <summary>Seconds a client should wait before retrying (429/503).</summary>
    public int? RetryAfter { get; init; }

    public static ApiException BadRequest(string message, string? param = null, string code = "invalid_value") => new(400, message, param, code);
}

/// <summary>The connection is gone (aborted by the server or closed by the client): nothing can be answered.</summary>
internal sealed class ConnectionGoneException(string message, Exception inner) : OperationCanceledException(message, inner);

internal static class ApiErrors
{
    /// <summary>Writes an error response (if the response has not started).</summary>
    public static async Task WriteAsync(HttpContext ctx, ApiException e, bool ollama)
    {
        if (ctx.Response.HasStarted || ctx.RequestAborted.IsCancellationRequested) return;
        ctx.Response.StatusCode = e.Status;
        if (e.RetryAfter is int s) ctx.Response.Headers.RetryAfter = s.ToString(System.Globalization.CultureInfo.InvariantCulture);
        ctx.Response.ContentType = "application/json";
        try
        {
            await ctx.Response.Body.WriteAsync(Body(e, ollama), ctx.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception x) when (x is OperationCanceledException or IOException)
        {
            // the client is gone: nobody to tell
        }
    }

    /// <summary>The error object as JSON bytes.</summary>
    public static byte[] Body(ApiException e, bool ollama)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, JsonOut.Options))
        {
            w.WriteStartObject();
            if (ollama) w.WriteString("error", e.Message);
            else
            {
                w.WriteStartObject("error");
                w.WriteString("message", e.Message);
                w.WriteString("type", e.Type);
                if (e.Param is null) w.WriteNull("param"); else w.WriteString("param", e.Param);
                if (e.Code is null) w.WriteNull("code"); else w.WriteString("code", e.Code);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return ms.ToArray();
    }
}
