using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using SharpLM.Testing;
using Xunit.Abstractions;

namespace SharpLM.Server.Tests;

/// <summary>Runs only where Debian's chromium is installed (apt-get install chromium).</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public const string Path = "/usr/bin/chromium";

    public ChromiumFactAttribute()
    {
        if (!File.Exists(Path)) Skip = $"{Path} is missing (Debian: apt-get install chromium)";
    }
}

/// <summary>The chat page at / in headless Chromium, driven over the DevTools protocol: a prompt typed and sent, the
/// streamed answer appears in the page. A screenshot is kept under .cache/testresults.</summary>
[Collection("server")]
public sealed class WebPageTests(ServerFixture fixture, ITestOutputHelper output)
{
    [ChromiumFact]
    public async Task The_chat_page_streams_an_answer_into_the_page()
    {
        var s = fixture.Server;
        var profile = TestPaths.NewTempDir();
        var psi = new ProcessStartInfo(ChromiumFactAttribute.Path) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0", $"--user-data-dir={profile}", "about:blank" })
            psi.ArgumentList.Add(a);
        using var browser = Process.Start(psi)!;
        try
        {
            // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/..."
            string? line, ws = null;
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (ws is null && DateTime.UtcNow < deadline && (line = await browser.StandardError.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60))) != null)
                if (line.Contains("DevTools listening on ", StringComparison.Ordinal)) ws = line[(line.IndexOf("ws://", StringComparison.Ordinal))..].Trim();
            Assert.NotNull(ws);
            var port = new Uri(ws!).Port;
            using var http = new HttpClient();
            string? pageWs = null;
            for (int i = 0; i < 50 && pageWs is null; i++)
            {
                using var list = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json/list"));
                pageWs = list.RootElement.EnumerateArray().Where(t => t.GetProperty("type").GetString() == "page")
                    .Select(t => t.GetProperty("webSocketDebuggerUrl").GetString()).FirstOrDefault();
                if (pageWs is null) await Task.Delay(100);
            }
            Assert.NotNull(pageWs);
            await using var cdp = await Cdp.ConnectAsync(new Uri(pageWs!));
            await cdp.SendAsync("Page.enable");
            await cdp.SendAsync("Page.navigate", w => w.WriteString("url", s.Url.ToString()));
            await WaitUntil(cdp, "document.readyState === 'complete' && document.getElementById('status').textContent.startsWith('model:')");
            await cdp.EvalAsync("document.getElementById('temperature').value = '0'; document.getElementById('max_tokens').value = '24';"
                              + "document.getElementById('prompt').value = 'What did the jury say?'; document.getElementById('send').click(); true");
            await WaitUntil(cdp, "(document.querySelector('.assistant') || {dataset: {}}).dataset.done === 'true'");
            var answer = (await cdp.EvalAsync("document.querySelector('.assistant').textContent")).GetString();
            var user = (await cdp.EvalAsync("document.querySelector('.user').textContent")).GetString();
            Assert.Equal("What did the jury say?", user);

            // the page shows what the API gives for the same request
            var (_, r) = await s.PostAsync("v1/chat/completions", """{"model":"default","messages":[{"role":"user","content":"What did the jury say?"}],"max_tokens":24,"temperature":0,"top_p":0.95}""");
            Assert.Equal(r.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(), answer);

            var shot = await cdp.SendAsync("Page.captureScreenshot", w => w.WriteString("format", "png"));
            var dir = Path.Combine(TestPaths.RepoRoot, ".cache", "testresults");
            Directory.CreateDirectory(dir);
            var file = Path.Combine(dir, "chat-page.png");
            await File.WriteAllBytesAsync(file, Convert.FromBase64String(shot.GetProperty("data").GetString()!));
            output.WriteLine($"answer in the page: {answer}\nscreenshot: {file}");
        }
        finally
        {
            if (!browser.HasExited) browser.Kill(entireProcessTree: true);
            await browser.WaitForExitAsync();
            try { Directory.Delete(profile, true); } catch (IOException) { }
        }
    }

    private static async Task WaitUntil(Cdp cdp, string condition)
    {
        for (int i = 0; i < 600; i++)
        {
            if ((await cdp.EvalAsync(condition)).ValueKind == JsonValueKind.True) return;
            await Task.Delay(100);
        }
        Assert.Fail($"the page never got to: {condition}");
    }

    /// <summary>A minimal Chrome DevTools Protocol client: numbered commands, results matched by id.</summary>
    private sealed class Cdp : IAsyncDisposable
    {
        private readonly ClientWebSocket _ws = new();
        private int _id;

        public static async Task<Cdp> ConnectAsync(Uri url)
        {
            var c = new Cdp();
            await c._ws.ConnectAsync(url, CancellationToken.None);
            return c;
        }

        public async Task<JsonElement> EvalAsync(string expression)
        {
            var r = await SendAsync("Runtime.evaluate", w => { w.WriteString("expression", expression); w.WriteBoolean("returnByValue", true); });
            var result = r.GetProperty("result");
            return result.TryGetProperty("value", out var v) ? v : default;
        }

        public async Task<JsonElement> SendAsync(string method, Action<Utf8JsonWriter>? parameters = null)
        {
            int id = ++_id;
            using var ms = new MemoryStream();
            using (var w = new Utf8JsonWriter(ms))
            {
                w.WriteStartObject();
                w.WriteNumber("id", id);
                w.WriteString("method", method);
                w.WriteStartObject("params");
                parameters?.Invoke(w);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            await _ws.SendAsync(ms.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
            var buf = new byte[1 << 16];
            while (true)
            {
                using var msg = new MemoryStream();
                WebSocketReceiveResult rr;
                do
                {
                    rr = await _ws.ReceiveAsync(buf, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
                    msg.Write(buf, 0, rr.Count);
                } while (!rr.EndOfMessage);
                using var doc = JsonDocument.Parse(msg.ToArray());
                if (!doc.RootElement.TryGetProperty("id", out var rid) || rid.GetInt32() != id) continue; // an event
                if (doc.RootElement.TryGetProperty("error", out var err)) throw new InvalidOperationException($"{method}: {err}");
                return doc.RootElement.GetProperty("result").Clone();
            }
        }

        public async ValueTask DisposeAsync()
        {
            try { await _ws.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None); } catch (WebSocketException) { }
            _ws.Dispose();
        }
    }
}
