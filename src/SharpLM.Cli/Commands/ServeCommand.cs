using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using SharpLM.Server;

namespace SharpLM.Cli.Commands;

/// <summary>
/// <c>sharplm serve</c>: an OpenAI- and Ollama-compatible HTTP server (SharpLM.Server) with continuous batching.
/// Binds to loopback unless told otherwise, prints the URL, answers /health while the model loads, and on Ctrl+C (or
/// SIGTERM) stops accepting requests, lets the running ones finish, and exits.
/// </summary>
internal sealed class ServeCommand : ICliCommand
{
    public string Name => "serve";
    public string Description => "Serve a model over HTTP: OpenAI (/v1/...) and Ollama (/api/...) APIs, with continuous batching";
    public string Usage => "[--model PATH] [--embedding-model PATH|minilm] [--host 127.0.0.1] [--port 8080] [--parallel N] [--context N] [--threads N] [--mmap] [--api-key KEY] [--max-queue N] [--cors ORIGIN] [--chat-template FILE] [--json]";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        ModelCli.ModelOption,
        new("embedding-model", "a BERT-family model for /v1/embeddings and /api/embed: an .onnx file, a folder, or 'minilm'"),
        new("no-model", "serve only the embedding model", IsFlag: true),
        new("host", "address to listen on (default 127.0.0.1; 0.0.0.0 or * for every interface)"),
        new("port", "port (default 8080; 0 picks a free one)"),
        new("parallel", "sequences decoded together in one forward pass, each with its own KV cache (default 4)"),
        new("context", "positions per sequence, prompt and output (default: the model's, at most 4096)"),
        new("ctx", "same as --context"),
        new("batch", "rows per forward pass: decode tokens plus a chunk of prompt (default 128)"),
        ModelCli.ThreadsOption,
        ModelCli.MapOption,
        new("api-key", "require 'Authorization: Bearer KEY' on every endpoint but /health and the chat page (default: $SHARPLM_API_KEY)"),
        new("max-queue", "requests that may wait for a slot; more get 429 (default 64)"),
        new("cors", "allow browser requests from this origin ('*' for any; repeatable; default: CORS off)", Repeatable: true),
        new("chat-template", "a Jinja chat template file (or a tokenizer_config.json) replacing the model's"),
        new("alias", "another name the model answers to (repeatable)", Repeatable: true),
        new("timeout", "seconds a request may run before it is cancelled (default 600; 0 = no limit)"),
        new("max-body", "largest request body in bytes (default 8388608)"),
        new("max-connections", "open connections at most; more are closed at once (default 1024)"),
        new("no-prefix-cache", "do not reuse the KV cache of a slot whose last conversation starts like the new prompt", IsFlag: true),
        new("no-web", "do not serve the chat page at /", IsFlag: true),
        new("json", "print the startup information as one JSON line", IsFlag: true),
    ];

    public async Task<int> RunAsync(CliArgs args, CliContext context)
    {
        if (args.Positionals.Count > 0) throw new CliUsageException($"unexpected argument '{args.Positionals[0]}'");
        bool json = args.Flag("json");
        string? model = args.Flag("no-model") ? null : args.String("model") ?? ModelCli.DefaultModelPath();
        string? embedding = args.String("embedding-model") is { } e ? BuiltinModels.Resolve(e, context.Error) : null;
        if (model is null && embedding is null) throw new CliUsageException("--no-model needs --embedding-model");
        if (model != null && !File.Exists(model) && !Directory.Exists(model)) throw new CliUsageException($"--model: {model} does not exist (a .gguf file or a Hugging Face folder)");
        if (args.String("chat-template") is { } tpl && !File.Exists(tpl)) throw new CliUsageException($"--chat-template: {tpl} does not exist");
        if (args.Has("context") && args.Has("ctx")) throw new CliUsageException("give --context or --ctx, not both");
        int? ctx = args.Has("context") ? args.Int("context", 0, min: 2) : args.Has("ctx") ? args.Int("ctx", 0, min: 2) : null;
        int timeout = args.Int("timeout", 600, min: 0);
        var options = new SharpLMServerOptions
        {
            Model = model,
            EmbeddingModel = embedding,
            ModelAliases = args.All("alias"),
            Parallel = args.Int("parallel", 4, min: 1, max: 256),
            ContextSize = ctx,
            BatchSize = args.Int("batch", 128, min: 1, max: 65536),
            Threads = args.Int("threads", 0, min: 0, max: 1024),
            MapWeights = args.Flag("mmap"),
            MaxQueue = args.Int("max-queue", 64, min: 0),
            ApiKey = args.String("api-key") ?? (Environment.GetEnvironmentVariable("SHARPLM_API_KEY") is { Length: > 0 } k ? k : null),
            CorsOrigins = args.All("cors"),
            ChatTemplateFile = args.String("chat-template"),
            MaxRequestBodyBytes = args.Long("max-body", 8L * 1024 * 1024, min: 1024),
            MaxConnections = args.Int("max-connections", 1024, min: 1),
            RequestTimeout = timeout == 0 ? null : TimeSpan.FromSeconds(timeout),
            PrefixCache = !args.Flag("no-prefix-cache"),
            WebPage = !args.Flag("no-web"),
        };
        string host = args.String("host") ?? "127.0.0.1";
        int port = args.Int("port", 8080, min: 0, max: 65535);

        WebApplication app;
        try
        {
            app = SharpLMServer.Create(options, host, port);
        }
        catch (ArgumentException ex)
        {
            throw new CliUsageException(ex.Message);
        }
        await using var _ = app;
        try
        {
            await app.StartAsync(context.CancellationToken).ConfigureAwait(false);
        }
        catch (IOException ex)
        {
            await context.Error.WriteLineAsync($"error: cannot listen on {host}:{port}: {ex.Message}").ConfigureAwait(false);
            return 1;
        }
        var url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? $"http://{host}:{port}";
        if (!json) await context.Error.WriteLineAsync($"sharplm serve: listening on {url}/ (loading {model ?? embedding})").ConfigureAwait(false);
        try
        {
            await SharpLMServer.WhenLoaded(app).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            await context.Error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            return 1;
        }
        if (json)
        {
            var o = new Dictionary<string, string>
            {
                ["url"] = url,
                ["status"] = "ready",
                ["model"] = model ?? "",
                ["embedding_model"] = embedding ?? "",
                ["parallel"] = options.Parallel.ToString(CultureInfo.InvariantCulture),
                ["description"] = SharpLMServer.Describe(app),
            };
            await context.Out.WriteLineAsync(JsonSerializer.Serialize(o, CliJson.Default.DictionaryStringString)).ConfigureAwait(false);
            await context.Out.FlushAsync().ConfigureAwait(false);
        }
        else
        {
            await context.Error.WriteLineAsync($"ready: {SharpLMServer.Describe(app)}").ConfigureAwait(false);
            await context.Error.WriteLineAsync($"  OpenAI: {url}/v1   Ollama: {url}/api   chat page: {url}/   metrics: {url}/metrics{(options.ApiKey != null ? "   (API key required)" : "")}").ConfigureAwait(false);
            await context.Error.WriteLineAsync("  Ctrl+C stops (running requests finish first)").ConfigureAwait(false);
        }
        await app.WaitForShutdownAsync(context.CancellationToken).ConfigureAwait(false);
        await context.Error.WriteLineAsync("sharplm serve: stopped").ConfigureAwait(false);
        return 0;
    }
}
