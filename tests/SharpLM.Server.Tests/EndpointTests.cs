using SharpLM.Testing;
using System.Net;
using System.Text;
using System.Text.Json;

namespace SharpLM.Server.Tests;

/// <summary>SharpLM's own endpoints, CORS and the per-request timeout.</summary>
[Collection("server")]
public sealed class EndpointTests(ServerFixture fixture)
{
    private TestServer S => fixture.Server;

    [Fact]
    public async Task Tokenize_and_detokenize_round_trip_and_health_and_metrics_answer()
    {
        var (st, t) = await S.PostAsync("tokenize", """{"content":"The jury said","with_pieces":true}""");
        Assert.Equal(200, st);
        var tokens = t.GetProperty("tokens").EnumerateArray().ToList();
        Assert.Equal("The jury said", string.Concat(tokens.Select(x => x.GetProperty("piece").GetString())));
        var ids = string.Join(',', tokens.Select(x => x.GetProperty("id").GetInt32()));
        var (sd, d) = await S.PostAsync("detokenize", $"{{\"tokens\":[{ids}]}}");
        Assert.Equal(200, sd);
        Assert.Equal("The jury said", d.GetProperty("content").GetString());

        var (sh, h) = await S.GetAsync("health");
        Assert.Equal(200, sh);
        Assert.Equal("ok", h.GetProperty("status").GetString());
        Assert.Equal(8, h.GetProperty("slots").GetInt32());
        var metrics = await S.Http.GetStringAsync("metrics");
        foreach (var name in new[] { "sharplm_requests_total", "sharplm_time_to_first_token_seconds_bucket", "sharplm_inter_token_latency_seconds_count", "sharplm_kv_cache_usage_ratio", "sharplm_sequences_active", "sharplm_requests_queued" })
            Assert.Contains(name, metrics, StringComparison.Ordinal);

        var (sm, m) = await S.GetAsync("v1/models/default");
        Assert.Equal(200, sm);
        Assert.Equal("model", m.GetProperty("object").GetString());
        Assert.Equal(404, (await S.GetAsync("v1/models/nope")).Status);
        var (sp, ps) = await S.GetAsync("api/ps");
        Assert.Equal(200, sp);
        Assert.True(ps.GetProperty("models")[0].TryGetProperty("expires_at", out _));
    }

    [Fact]
    public async Task Cors_is_off_by_default_and_on_for_the_given_origin_even_with_an_api_key()
    {
        using (var pre = new HttpRequestMessage(HttpMethod.Options, "v1/chat/completions"))
        {
            pre.Headers.Add("Origin", "http://example.com");
            pre.Headers.Add("Access-Control-Request-Method", "POST");
            using var r = await S.Http.SendAsync(pre);
            Assert.False(r.Headers.Contains("Access-Control-Allow-Origin"));
        }
        await using var s = await TestServer.StartAsync(TestServer.Defaults with { CorsOrigins = ["http://example.com"], ApiKey = "k" });
        using (var pre = new HttpRequestMessage(HttpMethod.Options, "v1/chat/completions"))
        {
            pre.Headers.Add("Origin", "http://example.com");
            pre.Headers.Add("Access-Control-Request-Method", "POST");
            pre.Headers.Add("Access-Control-Request-Headers", "authorization,content-type");
            using var r = await s.Http.SendAsync(pre);
            Assert.True(r.IsSuccessStatusCode, r.StatusCode.ToString());
            Assert.Equal("http://example.com", r.Headers.GetValues("Access-Control-Allow-Origin").Single());
        }
        using (var other = new HttpRequestMessage(HttpMethod.Options, "v1/chat/completions"))
        {
            other.Headers.Add("Origin", "http://evil.example");
            other.Headers.Add("Access-Control-Request-Method", "POST");
            using var r = await s.Http.SendAsync(other);
            Assert.False(r.Headers.Contains("Access-Control-Allow-Origin"));
        }
    }

    [Fact]
    public async Task A_request_past_the_timeout_is_a_408_and_frees_its_slot()
    {
        await using var s = await TestServer.StartAsync(TestServer.Defaults with { RequestTimeout = TimeSpan.FromSeconds(1), ContextSize = 65536, Parallel = 1 });
        using var r = await s.Http.PostAsync("v1/completions", new StringContent("""{"model":"default","prompt":"The","max_tokens":60000}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.RequestTimeout, r.StatusCode);
        using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        Assert.Equal("timeout", doc.RootElement.GetProperty("error").GetProperty("code").GetString());
        await BatchingTests.WaitFor(s, "sharplm_sequences_active", v => v == 0);
        var (ok, _) = await s.PostAsync("v1/completions", """{"model":"default","prompt":"The","max_tokens":3}""");
        Assert.Equal(200, ok);
    }

    [Fact]
    public async Task A_model_that_fails_to_load_is_reported_by_health_and_requests_get_503()
    {
        var app = SharpLMServer.Create(new SharpLMServerOptions { Model = "/nonexistent/model.gguf" }, "127.0.0.1", 0);
        await app.StartAsync();
        try
        {
            await Assert.ThrowsAnyAsync<Exception>(() => SharpLMServer.WhenLoaded(app));
            Assert.Equal(ServerState.Failed, SharpLMServer.State(app));
            var addr = app.Urls.First();
            using var http = new HttpClient { BaseAddress = new Uri(addr + "/") };
            using var h = await http.GetAsync("health");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, h.StatusCode);
            using var hd = JsonDocument.Parse(await h.Content.ReadAsStringAsync());
            Assert.Equal("error", hd.RootElement.GetProperty("status").GetString());
            Assert.Contains("model.gguf", hd.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
            using var c = await http.PostAsync("v1/chat/completions", new StringContent("""{"model":"model","messages":[{"role":"user","content":"x"}]}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, c.StatusCode);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>While the model is still loading, /health answers 503 {"status":"loading"} and a request gets 503 with
    /// Retry-After. The model is a folder whose config.json is a named pipe, so the load waits (reading it) until the test
    /// writes to it.</summary>
    [Fact]
    public async Task While_the_model_loads_health_says_loading_and_requests_get_503_with_retry_after()
    {
        string dir = TestPaths.NewTempDir();
        string fifo = Path.Combine(dir, "config.json");
        using (var mk = System.Diagnostics.Process.Start("mkfifo", [fifo])) await mk.WaitForExitAsync();
        var app = SharpLMServer.Create(new SharpLMServerOptions { Model = dir }, "127.0.0.1", 0);
        await app.StartAsync();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First() + "/") };
            using var h = await http.GetAsync("health");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, h.StatusCode);
            using (var hd = JsonDocument.Parse(await h.Content.ReadAsStringAsync()))
                Assert.Equal("loading", hd.RootElement.GetProperty("status").GetString());
            Assert.Equal(ServerState.Loading, SharpLMServer.State(app));
            using var c = await http.PostAsync("v1/chat/completions", new StringContent("""{"model":"model","messages":[{"role":"user","content":"x"}]}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, c.StatusCode);
            Assert.NotNull(c.Headers.RetryAfter);
            using (var cd = JsonDocument.Parse(await c.Content.ReadAsStringAsync()))
                Assert.Equal("model_loading", cd.RootElement.GetProperty("error").GetProperty("code").GetString());
        }
        finally
        {
            // the loader is blocked opening the pipe for reading: a writer that sends a few bad bytes lets it fail (opening
            // the writer end waits for that reader, so a loader that never came would time out here instead of hanging)
            var writer = await Task.Run(() => new FileStream(fifo, FileMode.Open, FileAccess.Write)).WaitAsync(TimeSpan.FromSeconds(60));
            await using (writer) await writer.WriteAsync("not json"u8.ToArray());
            await Assert.ThrowsAnyAsync<Exception>(() => SharpLMServer.WhenLoaded(app));
            Assert.Equal(ServerState.Failed, SharpLMServer.State(app));
            await app.StopAsync();
            await app.DisposeAsync();
            Directory.Delete(dir, true);
        }
    }
}
