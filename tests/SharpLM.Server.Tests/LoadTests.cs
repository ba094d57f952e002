using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace SharpLM.Server.Tests;

/// <summary>Many streaming clients at once, on loopback, bounded in count and size: all complete without errors, the
/// ones that hang up free their slots, memory stays bounded (peak RSS is printed, not asserted against a time).</summary>
public sealed class LoadTests(ITestOutputHelper output)
{
    private const int Clients = 32, Rounds = 3, Quitters = 4, Tokens = 16;

    [Fact]
    public async Task Thirty_two_streaming_clients_for_three_rounds_all_complete_and_quitters_free_their_slots()
    {
        await using var s = await TestServer.StartAsync(TestServer.Defaults with { Parallel = 8, MaxQueue = 64, ContextSize = 8192 });
        long rssBefore = PeakRss();
        var sw = Stopwatch.StartNew();
        int completed = 0, quit = 0, tokens = 0;
        for (int round = 0; round < Rounds; round++)
        {
            var results = await Task.WhenAll(Enumerable.Range(0, Clients).Select(i => Client(s, round, i, quitEarly: i < Quitters)));
            foreach (var (done, n, quitted) in results)
            {
                if (quitted) quit++;
                else
                {
                    Assert.True(done, "a stream ended without [DONE]");
                    Assert.Equal(Tokens, n);
                    completed++;
                    tokens += n;
                }
            }
        }
        await BatchingTests.WaitFor(s, "sharplm_sequences_active", v => v == 0);
        await BatchingTests.WaitFor(s, "sharplm_requests_queued", v => v == 0);
        Assert.Equal(Rounds * (Clients - Quitters), completed);
        Assert.Equal(Rounds * Quitters, quit);
        Assert.Equal(Rounds * (Clients - Quitters), await s.MetricAsync("sharplm_requests_total{endpoint=\"chat\",status=\"200\"}") - Rounds * Quitters);
        Assert.True(await s.MetricAsync("sharplm_requests_cancelled_total") >= 1, "no disconnected client was seen as cancelled");
        long peak = PeakRss();
        output.WriteLine($"{Rounds} rounds x {Clients} streaming clients ({Quitters} hang up each round): {completed} completed, {tokens} tokens in {sw.Elapsed.TotalSeconds:F1} s; peak RSS {peak / 1048576.0:F0} MiB (before {rssBefore / 1048576.0:F0} MiB)");
        Assert.True(peak < 4L << 30, $"peak RSS {peak} bytes"); // a bound on memory, far above what this needs
    }

    private static async Task<(bool Done, int Tokens, bool Quit)> Client(TestServer s, int round, int i, bool quitEarly)
    {
        var body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model"] = "default",
            ["messages"] = new[] { new Dictionary<string, string> { ["role"] = "user", ["content"] = $"Client {i} of round {round} says" } },
            ["max_tokens"] = quitEarly ? 5000 : Tokens,
            // a quitter's stream must outlast its client: no end of turn, and a context it cannot fill in the meantime
            ["logit_bias"] = quitEarly ? TestServer.NoEndOfTurn : new Dictionary<string, int>(),
            ["temperature"] = 0.7,
            ["seed"] = round * 100 + i,
            ["stream"] = true,
            ["stream_options"] = new Dictionary<string, bool> { ["include_usage"] = true },
        });
        using var req = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var resp = await s.Http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        using var reader = new StreamReader(await resp.Content.ReadAsStreamAsync());
        int events = 0, completionTokens = -1;
        string? line;
        while ((line = await reader.ReadLineAsync()) != null)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
            var data = line[6..];
            if (data == "[DONE]") return (true, completionTokens, false);
            using var doc = JsonDocument.Parse(data);
            Assert.False(doc.RootElement.TryGetProperty("error", out _), data);
            if (doc.RootElement.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object)
                completionTokens = u.GetProperty("completion_tokens").GetInt32();
            if (quitEarly && ++events == 3) return (false, 0, true); // hang up mid-stream
        }
        return (false, completionTokens, false);
    }

    /// <summary>VmHWM of this process (the server runs in it), in bytes.</summary>
    private static long PeakRss()
    {
        foreach (var l in File.ReadLines("/proc/self/status"))
            if (l.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        return 0;
    }
}
