using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using SharpLM.Testing;

namespace SharpLM.Server.Tests;

/// <summary>
/// A real SharpLM server on a loopback port (Kestrel, port 0), serving the default model (models/default.gguf, the
/// small LLaMA trained on the Brown corpus) and the tiny BERT of tests/testdata as its embedding model.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    public static string DefaultModel => Path.Combine(TestPaths.RepoRoot, "models", "default.gguf");
    /// <summary>A <c>logit_bias</c> object that bans the default model's end-of-turn tokens (-100), so a request meant to
    /// outlast its client cannot end early by the model's choice, however fast the model runs.</summary>
    public static Dictionary<string, int> NoEndOfTurn { get; } = BanEndOfTurn();

    private static Dictionary<string, int> BanEndOfTurn()
    {
        using var model = SharpLM.Models.LanguageModel.Load(DefaultModel);
        return SharpLM.Inference.ChatSession.EndOfTurnIds(model, null)
            .ToDictionary(id => id.ToString(System.Globalization.CultureInfo.InvariantCulture), _ => -100);
    }

    public static string EmbeddingModel => Path.Combine(TestPaths.TestData, "bert", "bert_mlm");
    public static string QwenTemplate => Path.Combine(TestPaths.TestData, "chat-templates", "qwen2.5-instruct.jinja");

    private TestServer(WebApplication app, Uri url)
    {
        App = app;
        Url = url;
        Http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromMinutes(2) };
    }

    public WebApplication App { get; }
    public Uri Url { get; }
    public HttpClient Http { get; }

    /// <summary>The OpenAI base address (http://127.0.0.1:port/v1/).</summary>
    public Uri V1 => new(Url, "v1/");

    public static SharpLMServerOptions Defaults => new()
    {
        Model = DefaultModel,
        EmbeddingModel = EmbeddingModel,
        ContextSize = 512,
        Parallel = 8,
        Threads = 2,
    };

    public static async Task<TestServer> StartAsync(SharpLMServerOptions? options = null)
    {
        var app = SharpLMServer.Create(options ?? Defaults, "127.0.0.1", 0);
        await app.StartAsync();
        await SharpLMServer.WhenLoaded(app);
        var addr = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new TestServer(app, new Uri(addr.TrimEnd('/') + "/"));
    }

    public async Task<(int Status, JsonElement Body)> PostAsync(string path, string json)
    {
        using var r = await Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await r.Content.ReadAsStringAsync();
        return ((int)r.StatusCode, Parse(text));
    }

    public async Task<(int Status, JsonElement Body)> GetAsync(string path)
    {
        using var r = await Http.GetAsync(path);
        return ((int)r.StatusCode, Parse(await r.Content.ReadAsStringAsync()));
    }

    private static JsonElement Parse(string text)
    {
        try
        {
            using var d = JsonDocument.Parse(text);
            return d.RootElement.Clone();
        }
        catch (JsonException)
        {
            throw new Xunit.Sdk.XunitException($"the response is not JSON: {text}");
        }
    }

    /// <summary>One metric's value from /metrics (the first line with that name and labels).</summary>
    public async Task<double> MetricAsync(string nameWithLabels)
    {
        var text = await Http.GetStringAsync("metrics");
        foreach (var line in text.Split('\n'))
            if (line.StartsWith(nameWithLabels + " ", StringComparison.Ordinal))
                return double.Parse(line[(nameWithLabels.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        throw new Xunit.Sdk.XunitException($"metric {nameWithLabels} not found in:\n{text}");
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>Collects what a test server logs at Error or above (a client's misbehaviour is never the server's error).</summary>
public sealed class ServerErrorLog : Microsoft.Extensions.Logging.ILoggerProvider, Microsoft.Extensions.Logging.ILogger
{
    public System.Collections.Concurrent.ConcurrentQueue<string> Errors { get; } = new();

    public static ServerErrorLog Attach(TestServer s)
    {
        var log = new ServerErrorLog();
        s.App.Services.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>().AddProvider(log);
        return log;
    }

    public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => this;
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => logLevel >= Microsoft.Extensions.Logging.LogLevel.Error;
    public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel)) Errors.Enqueue($"{logLevel} {eventId}: {formatter(state, exception)}");
    }
    public void Dispose() { }
}

/// <summary>One server shared by the tests of a collection (loading takes a fraction of a second, but the slots'
/// KV caches and the JIT warm-up are worth sharing).</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;
    public async Task InitializeAsync() => Server = await TestServer.StartAsync();
    public async Task DisposeAsync() => await Server.DisposeAsync();
}

[CollectionDefinition("server")]
public sealed class ServerCollection : ICollectionFixture<ServerFixture>;
