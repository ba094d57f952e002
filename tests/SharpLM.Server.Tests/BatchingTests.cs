using System.Net;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace SharpLM.Server.Tests;

/// <summary>Continuous batching is invisible to clients; the prefix cache, cancellation, back-pressure and the context
/// limit behave as documented.</summary>
public sealed class BatchingTests(ITestOutputHelper output)
{
    private static string Completion(string prompt, int max) =>
        JsonSerializer.Serialize(new Dictionary<string, object> { ["model"] = "default", ["prompt"] = prompt, ["max_tokens"] = max, ["temperature"] = 0 });

    private static string Text(JsonElement body) => body.GetProperty("choices")[0].GetProperty("text").GetString()!;

    [Fact]
    public async Task Concurrent_greedy_requests_give_exactly_what_each_gives_alone()
    {
        // no prefix cache, so the concurrent run evaluates its prompts again; a small batch, so the long prompt is
        // prefilled in chunks interleaved with the other sequences' decode steps
        await using var s = await TestServer.StartAsync(TestServer.Defaults with { PrefixCache = false, BatchSize = 32, Parallel = 8 });
        var prompts = new List<string>
        {
            "The jury said",
            "Once upon a time there was",
            "In the morning the city",
            "He",
            "The committee approved the plan to build",
            string.Join(' ', Enumerable.Repeat("the long report of the county court described every case in detail", 12)),
        };
        var alone = new List<string>();
        foreach (var p in prompts)
        {
            var (status, body) = await s.PostAsync("v1/completions", Completion(p, 24));
            Assert.Equal(200, status);
            alone.Add(Text(body));
        }
        var passesBefore = await s.MetricAsync("sharplm_forward_passes_total");
        for (int round = 0; round < 2; round++)
        {
            var together = await Task.WhenAll(prompts.Select(p => s.PostAsync("v1/completions", Completion(p, 24))));
            for (int i = 0; i < prompts.Count; i++)
            {
                Assert.Equal(200, together[i].Status);
                Assert.Equal(alone[i], Text(together[i].Body));
            }
        }
        var passes = await s.MetricAsync("sharplm_forward_passes_total") - passesBefore;
        output.WriteLine($"2 rounds of {prompts.Count} concurrent requests x 24 tokens took {passes} forward passes");
        // alone, each request needs at least 24 passes; batched, the rounds need far fewer than 2 * 6 * 24
        Assert.True(passes < 2 * prompts.Count * 24 / 2, $"{passes} forward passes: the requests were not batched together");
    }

    [Fact]
    public async Task A_repeated_conversation_reuses_its_cached_prefix_and_answers_the_same()
    {
        await using var s = await TestServer.StartAsync(TestServer.Defaults with { Parallel = 2 });
        const string body = """{"model":"default","messages":[{"role":"system","content":"You write about the county court."},{"role":"user","content":"What did the jury say?"}],"max_tokens":10,"temperature":0}""";
        var (s1, first) = await s.PostAsync("v1/chat/completions", body);
        var (s2, second) = await s.PostAsync("v1/chat/completions", body);
        Assert.Equal(200, s1);
        Assert.Equal(200, s2);
        int prompt = second.GetProperty("usage").GetProperty("prompt_tokens").GetInt32();
        Assert.Equal(0, first.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
        // the whole prompt and the logits after it were kept: nothing is evaluated again, so the answer is the same bits
        Assert.Equal(prompt, second.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
        Assert.Equal(first.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(),
                     second.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        Assert.Equal(prompt, await s.MetricAsync("sharplm_prompt_tokens_cached_total"));

        // a longer conversation that begins with the first: its cached prefix is the first prompt
        const string longer = """{"model":"default","messages":[{"role":"system","content":"You write about the county court."},{"role":"user","content":"What did the jury say?"},{"role":"assistant","content":"Nothing."},{"role":"user","content":"And the judge?"}],"max_tokens":4,"temperature":0}""";
        var (s3, third) = await s.PostAsync("v1/chat/completions", longer);
        Assert.Equal(200, s3);
        int cached = third.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32();
        Assert.InRange(cached, 1, third.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() - 1);
    }

    [Fact]
    public async Task A_client_that_disconnects_mid_stream_frees_its_slot()
    {
        // a context long enough that the generation is still running when the client hangs up
        await using var s = await TestServer.StartAsync(TestServer.Defaults with { Parallel = 1, MaxQueue = 4, ContextSize = 16384 });
        using (var req = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions"))
        {
            var body = JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["model"] = "default",
                ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = "Talk for a long time" } },
                ["max_tokens"] = 100000,
                ["logit_bias"] = TestServer.NoEndOfTurn, // it runs until the context (16384) is full: long after the hang-up
                ["stream"] = true,
            });
            req.Content = new StringContent(body, Encoding.UTF8, "application/json");
            using var resp = await s.Http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
            using var reader = new StreamReader(await resp.Content.ReadAsStreamAsync());
            for (int i = 0; i < 6; i++) Assert.NotNull(await reader.ReadLineAsync());
        } // disposing the response closes the connection
        await WaitFor(s, "sharplm_requests_cancelled_total", v => v >= 1);
        await WaitFor(s, "sharplm_sequences_active", v => v == 0);
        // the one slot serves the next request
        var (status, _) = await s.PostAsync("v1/completions", Completion("The jury", 4));
        Assert.Equal(200, status);
    }

    [Fact]
    public async Task A_full_queue_is_refused_with_429_and_retry_after()
    {
        await using var s = await TestServer.StartAsync(TestServer.Defaults with { Parallel = 1, MaxQueue = 0, ContextSize = 16384 });
        using var busy = new HttpRequestMessage(HttpMethod.Post, "v1/completions")
        {
            Content = new StringContent("""{"model":"default","prompt":"The","max_tokens":100000,"stream":true}""", Encoding.UTF8, "application/json"),
        };
        using var resp = await s.Http.SendAsync(busy, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await resp.Content.ReadAsStreamAsync());
        Assert.NotNull(await reader.ReadLineAsync()); // it is running
        using var second = await s.Http.PostAsync("v1/completions", new StringContent(Completion("The jury", 4), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.TooManyRequests, second.StatusCode);
        Assert.NotNull(second.Headers.RetryAfter);
        using var err = JsonDocument.Parse(await second.Content.ReadAsStringAsync());
        Assert.Equal("rate_limit_exceeded", err.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.True(await s.MetricAsync("sharplm_requests_rejected_total") >= 1);
    }

    [Fact]
    public async Task A_prompt_longer_than_the_context_is_a_400_naming_the_limit()
    {
        await using var s = await TestServer.StartAsync(TestServer.Defaults with { ContextSize = 64 });
        var (status, body) = await s.PostAsync("v1/completions", Completion(string.Join(' ', Enumerable.Repeat("the county court", 40)), 4));
        Assert.Equal(400, status);
        var e = body.GetProperty("error");
        Assert.Equal("context_length_exceeded", e.GetProperty("code").GetString());
        Assert.Contains("64", e.GetProperty("message").GetString(), StringComparison.Ordinal);
        // a generation that reaches the end of the context stops there with "length"
        var (ok, b2) = await s.PostAsync("v1/completions", Completion("The jury", 1000));
        Assert.Equal(200, ok);
        Assert.Equal("length", b2.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.True(b2.GetProperty("usage").GetProperty("total_tokens").GetInt32() <= 65);
    }

    internal static async Task WaitFor(TestServer s, string metric, Func<double, bool> ok)
    {
        double v = double.NaN;
        for (int i = 0; i < 200; i++)
        {
            v = await s.MetricAsync(metric);
            if (ok(v)) return;
            await Task.Delay(50);
        }
        Assert.Fail($"{metric} stayed at {v}");
    }
}
