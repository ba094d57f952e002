using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SharpLM.Server.Http;

namespace SharpLM.Server;

/// <summary>
/// A stand-alone SharpLM server (what <c>sharplm serve</c> runs): Kestrel on one address, CORS when asked, the
/// endpoints of <see cref="SharpLMEndpoints.MapSharpLM"/>, and a JSON 404 for anything else.
/// <code>
/// await using var app = SharpLMServer.Create(new SharpLMServerOptions { Model = "model.gguf" }, "127.0.0.1", 8080);
/// await app.RunAsync();
/// </code>
/// </summary>
public static class SharpLMServer
{
    /// <summary>A connection must send its request line and headers within this once they have begun (Kestrel closes it otherwise).</summary>
    internal static readonly TimeSpan RequestHeadersTimeout = TimeSpan.FromSeconds(15);

    /// <summary>A connection that sends nothing, before its first request or between two, is closed after this
    /// (Kestrel's default, 130 s, let a client that connects and stays silent hold a connection for two minutes).</summary>
    internal static readonly TimeSpan KeepAliveTimeout = TimeSpan.FromSeconds(15);

    /// <summary>A request body must arrive whole within this from when the endpoint starts reading it (the connection is
    /// closed otherwise): a client that sends most of a body and stalls, or trickles it just fast enough for
    /// Kestrel's minimum data rate (an average since the start), would otherwise hold its connection and its buffered
    /// body for the whole request timeout. 30 s is 8 MiB (the default body limit) at 280 KB/s.</summary>
    internal static readonly TimeSpan RequestBodyTimeout = TimeSpan.FromSeconds(30);

    /// <summary>How long Ctrl+C waits for running requests when no per-request timeout is set.</summary>
    internal static readonly TimeSpan ShutdownDrain = TimeSpan.FromMinutes(2);

    /// <summary>Builds the app listening on <paramref name="host"/>:<paramref name="port"/> (port 0: any free port;
    /// read the chosen one from the app's URLs after it started).</summary>
    public static WebApplication Create(SharpLMServerOptions options, string host = "127.0.0.1", int port = 8080, LogLevel logLevel = LogLevel.Warning)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(logLevel);
        // every log line to stderr: stdout carries `sharplm serve --json`'s ready line, and a host that reads only that
        // line (a script, a test) would otherwise stop the server mid-write once Kestrel's warnings fill the pipe
        builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            k.Limits.MaxConcurrentConnections = options.MaxConnections;
            k.Limits.MaxConcurrentUpgradedConnections = options.MaxConnections;
            k.Limits.RequestHeadersTimeout = RequestHeadersTimeout;
            k.Limits.KeepAliveTimeout = KeepAliveTimeout;
            k.AddServerHeader = false;
            if (host is "localhost") k.ListenLocalhost(port);
            else if (host is "*" or "+") k.ListenAnyIP(port);
            else k.Listen(IPAddress.TryParse(host, out var ip) ? ip : throw new ArgumentException($"'{host}' is not an IP address (use 127.0.0.1, ::1, 0.0.0.0, localhost or *)", nameof(host)), port);
        });
        // Ctrl+C drains: running requests may finish for as long as a request may run at all (the per-request timeout), and
        // for two minutes without one; then the connections still open are closed, so a stuck client never keeps the
        // process alive
        builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(o => o.ShutdownTimeout = options.RequestTimeout ?? ShutdownDrain);
        if (options.CorsOrigins.Count > 0)
            builder.Services.AddCors(c => c.AddDefaultPolicy(p =>
            {
                if (options.CorsOrigins.Contains("*")) p.AllowAnyOrigin();
                else p.WithOrigins([.. options.CorsOrigins]);
                p.AllowAnyHeader().AllowAnyMethod();
            }));
        builder.Services.AddSharpLM(options);
        var app = builder.Build();
        if (options.CorsOrigins.Count > 0) app.UseCors();
        app.MapSharpLM();
        app.MapFallback(async ctx =>
        {
            bool ollama = ctx.Request.Path.StartsWithSegments("/api", StringComparison.Ordinal);
            await ApiErrors.WriteAsync(ctx, new ApiException(404, $"no endpoint {ctx.Request.Method} {ctx.Request.Path}; see /v1/models, /v1/chat/completions, /api/chat, /health", null, "not_found"), ollama).ConfigureAwait(false);
        });
        return app;
    }

    /// <summary>The engine's state (loading, ready, failed), for a host that waits for the model.</summary>
    public static ServerState State(WebApplication app) => Engine(app).State;

    /// <summary>Completes when the models are loaded; faults with the load error.</summary>
    public static Task WhenLoaded(WebApplication app) => Engine(app).Loaded;

    /// <summary>A one-line description of what is served (model, context, slots, KV memory).</summary>
    public static string Describe(WebApplication app)
    {
        var e = Engine(app);
        var parts = new List<string>();
        if (e.Model is { } m)
        {
            long kvBytes = (long)e.Options.Parallel * m.ContextSize * m.Config.Layers * 2L * m.Config.KvWidth * sizeof(float);
            parts.Add($"model {e.ModelId} ({m.Config.Architecture}, context {m.ContextSize}, {e.Options.Parallel} slots, KV cache up to {kvBytes / (1024.0 * 1024):0.#} MiB{(e.TemplateIsFallback ? ", no chat template: ChatML" : "")})");
        }
        if (e.Encoder is { } enc) parts.Add($"embeddings {e.EmbeddingModelId} ({enc.Dimensions} dimensions)");
        parts.Add($"loaded in {e.LoadSeconds:0.0} s");
        return string.Join("; ", parts);
    }

    private static ServerEngine Engine(WebApplication app) => app.Services.GetRequiredService<ServerEngine>();
}
