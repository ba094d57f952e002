using System.Diagnostics;
using System.Text.Json;
using Json.Schema;
using SharpLM.Testing;

namespace SharpLM.Server.Tests;

/// <summary>Runs only where node and the npm openai package (scripts/fetch-test-assets.sh) are present.</summary>
public sealed class NodeFactAttribute : FactAttribute
{
    public static string Package => Path.Combine(TestPaths.Assets, "npm", "openai");

    public static string? Node => Environment.GetEnvironmentVariable("PATH")?.Split(':').Select(d => Path.Combine(d, "node")).FirstOrDefault(File.Exists);

    public NodeFactAttribute()
    {
        if (Node is null) Skip = "node is not on PATH";
        else if (!File.Exists(Path.Combine(Package, "index.mjs"))) Skip = $"the npm openai package is missing at {Package}: run scripts/fetch-test-assets.sh";
    }
}

/// <summary>The official OpenAI JavaScript client (npm openai) against the server, from node/client.mjs.</summary>
[Collection("server")]
public sealed class NodeClientTests(ServerFixture fixture)
{
    [NodeFact]
    public async Task The_npm_openai_client_chats_streams_completes_calls_tools_embeds_and_reads_errors()
    {
        var s = fixture.Server;
        var psi = new ProcessStartInfo(NodeFactAttribute.Node!) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "node", "client.mjs"));
        psi.ArgumentList.Add(NodeFactAttribute.Package);
        psi.ArgumentList.Add(s.V1.ToString().TrimEnd('/'));
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));
        Assert.True(p.ExitCode == 0, $"node exited {p.ExitCode}: {await stderr}");
        using var doc = JsonDocument.Parse(await stdout);
        var r = doc.RootElement;

        Assert.Contains("default", r.GetProperty("models").EnumerateArray().Select(m => m.GetString()));
        var chat = r.GetProperty("chat");
        var stream = r.GetProperty("stream");
        Assert.Equal(chat.GetProperty("text").GetString(), stream.GetProperty("text").GetString());
        Assert.Equal("length", stream.GetProperty("finish").GetString());
        Assert.True(stream.GetProperty("chunks").GetInt32() > 3);
        Assert.Equal(12, stream.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(chat.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), stream.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());

        var completion = r.GetProperty("completion");
        Assert.StartsWith("The jury said", completion.GetProperty("text").GetString(), StringComparison.Ordinal); // echo
        var lp = completion.GetProperty("logprobs");
        int n = lp.GetProperty("tokens").GetArrayLength();
        Assert.Equal(n, lp.GetProperty("token_logprobs").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, lp.GetProperty("token_logprobs")[0].ValueKind); // the first prompt token has none
        Assert.Equal(completion.GetProperty("text").GetString(), string.Concat(lp.GetProperty("tokens").EnumerateArray().Select(t => t.GetString())));

        const string schema = """{"type":"object","properties":{"city":{"type":"string","maxLength":16},"days":{"type":"integer","minimum":1,"maximum":7}},"required":["city","days"],"additionalProperties":false}""";
        using var structured = JsonDocument.Parse(r.GetProperty("structured").GetString()!);
        Assert.True(JsonSchema.FromText(schema).Evaluate(structured.RootElement).IsValid, r.GetProperty("structured").GetString());

        var tool = r.GetProperty("tool");
        Assert.Equal("tool_calls", tool.GetProperty("finish").GetString());
        var call = tool.GetProperty("calls")[0];
        Assert.Equal("lookup", call.GetProperty("function").GetProperty("name").GetString());
        using var args = JsonDocument.Parse(call.GetProperty("function").GetProperty("arguments").GetString()!);
        Assert.Equal(JsonValueKind.String, args.RootElement.GetProperty("word").ValueKind);
        var toolStream = r.GetProperty("toolStream");
        Assert.Equal("tool_calls", toolStream.GetProperty("finish").GetString());
        var streamedCall = Assert.Single(toolStream.GetProperty("calls").EnumerateArray());
        Assert.Equal("lookup", streamedCall.GetProperty("function").GetProperty("name").GetString());
        Assert.Equal(call.GetProperty("function").GetProperty("arguments").GetString(), streamedCall.GetProperty("function").GetProperty("arguments").GetString());
        Assert.True(toolStream.GetProperty("argDeltas").GetInt32() > 1, toolStream.ToString());

        Assert.Equal(2, r.GetProperty("embeddings").GetArrayLength());
        var error = r.GetProperty("error");
        Assert.Equal(404, error.GetProperty("status").GetInt32());
        Assert.Equal("model", error.GetProperty("param").GetString());
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
        Assert.Equal(400, r.GetProperty("badType").GetProperty("status").GetInt32());
        Assert.Equal("temperature", r.GetProperty("badType").GetProperty("param").GetString());
    }
}
