using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace SharpLM.Server.Tests;

/// <summary>
/// The real command line, as processes: <c>sharplm serve</c> prints its URL, serves, and on SIGINT lets a running
/// request finish before it exits 0; greedy text through the endpoints equals <c>sharplm generate</c>.
/// </summary>
[Collection("server")]
public sealed partial class CliServeTests(ServerFixture fixture)
{
    private static string CliDll => Path.Combine(AppContext.BaseDirectory, "SharpLM.Cli.dll");

    private static ProcessStartInfo Cli(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(CliDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["SHARPLM_MODEL"] = TestServer.DefaultModel;
        return psi;
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);

    [Fact]
    public async Task Serve_prints_its_url_and_on_sigint_finishes_the_running_request_then_exits_0()
    {
        using var p = Process.Start(Cli("serve", "--port", "0", "--json", "--context", "4096", "--parallel", "2"))!;
        var stderr = new StringBuilder();
        p.ErrorDataReceived += (_, e) => { lock (stderr) stderr.AppendLine(e.Data); };
        p.BeginErrorReadLine();
        try
        {
            var line = await p.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.NotNull(line);
            using var info = JsonDocument.Parse(line!);
            var url = info.RootElement.GetProperty("url").GetString()!;
            Assert.StartsWith("http://127.0.0.1:", url, StringComparison.Ordinal);
            using var http = new HttpClient { BaseAddress = new Uri(url + "/"), Timeout = TimeSpan.FromMinutes(2) };
            Assert.Equal("ok", JsonDocument.Parse(await http.GetStringAsync("health")).RootElement.GetProperty("status").GetString());

            // a long request is running when Ctrl+C arrives: it completes, then the process exits
            using var req = new HttpRequestMessage(HttpMethod.Post, "v1/completions")
            {
                Content = new StringContent("""{"model":"default","prompt":"The jury","max_tokens":400,"temperature":0.8,"seed":1,"stream":true}""", Encoding.UTF8, "application/json"),
            };
            using var resp = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await resp.Content.ReadAsStreamAsync());
            Assert.NotNull(await reader.ReadLineAsync());
            Assert.Equal(0, Kill(p.Id, 2)); // SIGINT
            string? l, last = null, finish = null;
            while ((l = await reader.ReadLineAsync()) != null)
            {
                if (!l.StartsWith("data: ", StringComparison.Ordinal)) continue;
                last = l;
                if (l != "data: [DONE]" && JsonDocument.Parse(l[6..]).RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString() is { } f) finish = f;
            }
            Assert.Equal("data: [DONE]", last);
            Assert.Equal("length", finish);
            if (!p.WaitForExit(180_000))
            {
                string status = File.Exists($"/proc/{p.Id}/status") ? string.Join(" | ", File.ReadAllLines($"/proc/{p.Id}/status").Where(l => l.StartsWith("Sig", StringComparison.Ordinal) || l.StartsWith("State", StringComparison.Ordinal))) : "";
                lock (stderr) Assert.Fail($"the server did not exit within 3 minutes of SIGINT; its stderr: {stderr}; {status}");
            }
            p.WaitForExit(); // and its output was read to the end
            Assert.Equal(0, p.ExitCode);
            lock (stderr) Assert.Contains("stopped", stderr.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task Serve_refuses_bad_options_with_a_usage_error()
    {
        using var p = Process.Start(Cli("serve", "--model", "/nonexistent/model.gguf", "--port", "0"))!;
        var err = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.Equal(2, p.ExitCode);
        Assert.Contains("does not exist", err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
    }

    private static async Task<string> Generate(params string[] args)
    {
        using var p = Process.Start(Cli(["generate", .. args, "--temperature", "0", "--json"]))!;
        var stdout = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.Equal(0, p.ExitCode);
        return JsonDocument.Parse(stdout).RootElement.GetProperty("text").GetString()!;
    }

    [Fact]
    public async Task Greedy_text_through_every_endpoint_equals_sharplm_generate()
    {
        var s = fixture.Server;
        const string prompt = "The Fulton County Grand Jury said";
        var expected = await Generate("--prompt", prompt, "--max-tokens", "16");
        var (_, c) = await s.PostAsync("v1/completions", $$"""{"model":"default","prompt":"{{prompt}}","max_tokens":16,"temperature":0}""");
        Assert.Equal(expected, c.GetProperty("choices")[0].GetProperty("text").GetString());
        var (_, g) = await s.PostAsync("api/generate", $$$"""{"model":"default","prompt":"{{{prompt}}}","stream":false,"options":{"num_predict":16,"temperature":0}}""");
        Assert.Equal(expected, g.GetProperty("response").GetString());

        // chat: the conversation rendered with the template (ChatML for this model) is the prompt
        var (_, t) = await s.PostAsync("tokenize", """{"content":"<|im_start|>user\nWhat did the jury say?<|im_end|>\n<|im_start|>assistant\n","add_special":true}""");
        var ids = string.Join(' ', t.GetProperty("tokens").EnumerateArray().Select(x => x.GetInt32()));
        var expectedChat = await Generate("--prompt-ids", ids, "--max-tokens", "12");
        var (_, oc) = await s.PostAsync("v1/chat/completions", """{"model":"default","messages":[{"role":"user","content":"What did the jury say?"}],"max_tokens":12,"temperature":0}""");
        Assert.Equal(expectedChat, oc.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        var (_, ol) = await s.PostAsync("api/chat", """{"model":"default","messages":[{"role":"user","content":"What did the jury say?"}],"stream":false,"options":{"num_predict":12,"temperature":0}}""");
        Assert.Equal(expectedChat, ol.GetProperty("message").GetProperty("content").GetString());
    }
}
