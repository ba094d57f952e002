using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using SharpLM.Server.Http;
using SharpLM.Server.Ollama;
using SharpLM.Server.OpenAi;

namespace SharpLM.Server;

/// <summary>
/// Puts a SharpLM server into an ASP.NET Core app:
/// <code>
/// var builder = WebApplication.CreateSlimBuilder(args);
/// builder.Services.AddSharpLM(new SharpLMServerOptions { Model = "model.gguf" });
/// var app = builder.Build();
/// app.MapSharpLM();   // /v1/chat/completions, /api/chat, /health, ...
/// app.Run();
/// </code>
/// </summary>
public static class SharpLMEndpoints
{
    /// <summary>Registers the engine (loaded in the background when the app starts; /health says when it is ready)
    /// and its shutdown (in-flight requests are drained first).</summary>
    public static IServiceCollection AddSharpLM(this IServiceCollection services, SharpLMServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var engine = new ServerEngine(options);
        services.AddSingleton(engine);
        services.AddSingleton<IHostedService>(new EngineService(engine));
        return services;
    }

    /// <summary>Maps the OpenAI (/v1/...), Ollama (/api/...) and SharpLM (/health, /metrics, /tokenize, /detokenize, /)
    /// endpoints under <paramref name="prefix"/>.</summary>
    public static RouteGroupBuilder MapSharpLM(this IEndpointRouteBuilder app, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(app);
        var engine = app.ServiceProvider.GetService<ServerEngine>()
            ?? throw new InvalidOperationException("call builder.Services.AddSharpLM(options) before app.MapSharpLM()");
        var g = app.MapGroup(prefix);
        void Post(string path, string name, Func<HttpContext, ServerEngine, Task> h, bool ollama = false, bool needsModel = true) =>
            g.MapPost(path, Wrap(engine, name, h, ollama, needsModel));
        void Get(string path, string name, Func<HttpContext, ServerEngine, Task> h, bool ollama = false, bool needsModel = true, bool open = false) =>
            g.MapGet(path, Wrap(engine, name, h, ollama, needsModel, open));

        Get("/v1/models", "models", ModelsEndpoint.ListAsync);
        Get("/v1/models/{id}", "models", ModelsEndpoint.GetAsync);
        Post("/v1/chat/completions", "chat", ChatCompletions.HandleAsync);
        Post("/v1/completions", "completions", Completions.HandleAsync);
        Post("/v1/embeddings", "embeddings", Embeddings.HandleAsync);
        // the same without /v1, as llama.cpp's server also answers
        Post("/chat/completions", "chat", ChatCompletions.HandleAsync);
        Post("/completions", "completions", Completions.HandleAsync);
        Post("/embeddings", "embeddings", Embeddings.HandleAsync);

        Post("/api/chat", "api/chat", OllamaApi.ChatAsync, ollama: true);
        Post("/api/generate", "api/generate", OllamaApi.GenerateAsync, ollama: true);
        Post("/api/embed", "api/embed", (c, e) => OllamaApi.EmbedAsync(c, e, legacy: false), ollama: true);
        Post("/api/embeddings", "api/embeddings", (c, e) => OllamaApi.EmbedAsync(c, e, legacy: true), ollama: true);
        Get("/api/tags", "api/tags", (c, e) => OllamaApi.TagsAsync(c, e, running: false), ollama: true);
        Get("/api/ps", "api/ps", (c, e) => OllamaApi.TagsAsync(c, e, running: true), ollama: true);
        Post("/api/show", "api/show", OllamaApi.ShowAsync, ollama: true);
        Get("/api/version", "api/version", (c, _) => OllamaApi.VersionAsync(c), ollama: true, needsModel: false);
        foreach (var p in new[] { "/api/pull", "/api/push", "/api/create", "/api/copy" })
            Post(p, "api/unsupported", (c, _) => OllamaApi.UnsupportedAsync(c), ollama: true, needsModel: false);
        g.MapDelete("/api/delete", Wrap(engine, "api/unsupported", (c, _) => OllamaApi.UnsupportedAsync(c), true, false));

        Post("/tokenize", "tokenize", Misc.TokenizeAsync);
        Post("/detokenize", "detokenize", Misc.DetokenizeAsync);
        Get("/health", "health", Misc.HealthAsync, needsModel: false, open: true);
        Get("/metrics", "metrics", Misc.MetricsAsync, needsModel: false);
        if (engine.Options.WebPage)
        {
            Get("/", "page", Misc.PageAsync, needsModel: false, open: true);
            Get("/index.html", "page", Misc.PageAsync, needsModel: false, open: true);
        }
        return g;
    }

    /// <summary>
    /// Every endpoint goes through here: the API key (constant-time compare), the per-request timeout, metrics by
    /// endpoint and status, and errors as JSON: an <see cref="ApiException"/> with its status, a client that went away
    /// ends quietly, anything else is a 500 with a message and no stack trace, and the server keeps serving.
    /// </summary>
    private static RequestDelegate Wrap(ServerEngine engine, string name, Func<HttpContext, ServerEngine, Task> handler, bool ollama, bool needsModel, bool open = false) => async ctx =>
    {
        var clientGone = ctx.RequestAborted;
        using var timeout = engine.Options.RequestTimeout is { } t ? new CancellationTokenSource(t) : null;
        using var linked = timeout is null ? null : CancellationTokenSource.CreateLinkedTokenSource(clientGone, timeout.Token);
        if (linked != null) ctx.RequestAborted = linked.Token;
        try
        {
            if (!open && engine.Options.ApiKey is { } key && !Authorized(ctx, key))
                throw new ApiException(401, "Incorrect or missing API key: send 'Authorization: Bearer <key>'", null, "invalid_api_key");
            if (needsModel)
            {
                if (engine.State == ServerState.Loading) throw new ApiException(503, "the model is loading; retry shortly", null, "model_loading") { RetryAfter = 2 };
                if (engine.State == ServerState.Failed) throw new ApiException(503, $"the model failed to load: {engine.LoadError}", null, "model_load_failed");
                if (engine.State == ServerState.Stopping) throw new ApiException(503, "the server is shutting down", null, "unavailable") { RetryAfter = 5 };
            }
            try
            {
                await handler(ctx, engine).ConfigureAwait(false);
            }
            finally
            {
                ctx.RequestAborted = clientGone; // an error after a timeout is still written to the client
            }
        }
        catch (ApiException e)
        {
            await ApiErrors.WriteAsync(ctx, e, ollama).ConfigureAwait(false);
        }
        catch (ConnectionGoneException)
        {
            // the body could not be read and the connection was closed (the abort signals RequestAborted a moment later)
        }
        catch (OperationCanceledException) when (clientGone.IsCancellationRequested)
        {
            // the client went away: its job was cancelled and its slot freed
        }
        catch (OperationCanceledException) when (timeout?.IsCancellationRequested == true)
        {
            await ApiErrors.WriteAsync(ctx, new ApiException(408, $"the request took longer than the server's limit of {engine.Options.RequestTimeout!.Value.TotalSeconds:0} s", null, "timeout"), ollama).ConfigureAwait(false);
        }
        catch (BadHttpRequestException e)
        {
            await ApiErrors.WriteAsync(ctx, new ApiException(e.StatusCode, e.StatusCode == 413 ? $"the request body is larger than the server's limit of {engine.Options.MaxRequestBodyBytes} bytes" : e.Message), ollama).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            await ApiErrors.WriteAsync(ctx, new ApiException(500, $"internal error: {e.Message}", null, "internal_error"), ollama).ConfigureAwait(false);
        }
        finally
        {
            engine.Metrics.Request(name, ctx.Response.StatusCode);
        }
    };

    /// <summary>Bearer key check in constant time (the hashes are compared, so neither length nor content leaks).</summary>
    private static bool Authorized(HttpContext ctx, string key)
    {
        string? given = null;
        var auth = ctx.Request.Headers.Authorization.ToString();
        if (auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) given = auth[7..].Trim();
        else if (ctx.Request.Headers.TryGetValue("x-api-key", out var x)) given = x.ToString();
        if (given is null) return false;
        var a = SHA256.HashData(Encoding.UTF8.GetBytes(given));
        var b = SHA256.HashData(Encoding.UTF8.GetBytes(key));
        return CryptographicOperations.FixedTimeEquals(a, b);
    }

    /// <summary>Loads the engine in the background when the host starts; on shutdown drains in-flight requests.</summary>
    private sealed class EngineService(ServerEngine engine) : IHostedService
    {
        private Task? _load;

        public Task StartAsync(CancellationToken cancellationToken)
        {
            _load = Task.Run(engine.TryLoad, CancellationToken.None);
            return Task.CompletedTask;
        }

        public async Task StopAsync(CancellationToken cancellationToken)
        {
            if (_load != null) await _load.WaitAsync(cancellationToken).ConfigureAwait(false);
            if (engine.Scheduler is { } s) await s.DrainAsync(cancellationToken).ConfigureAwait(false);
            engine.Dispose();
        }
    }
}
