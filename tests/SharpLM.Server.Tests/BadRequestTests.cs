using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace SharpLM.Server.Tests;

/// <summary>Malformed requests get a 4xx with an OpenAI-shaped error naming the field (Ollama's shape on /api), never a
/// stack trace, and the server keeps serving.</summary>
[Collection("server")]
public sealed class BadRequestTests(ServerFixture fixture)
{
    private TestServer S => fixture.Server;

    private const string Msg = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";

    public static TheoryData<string, string, int, string?> Cases => new()
    {
        { "v1/chat/completions", "{" + Msg + "}", 400, "model" },
        { "v1/chat/completions", "{\"model\":\"gpt-4o\"," + Msg + "}", 404, "model" },
        { "v1/chat/completions", "{\"model\":\"default\"}", 400, "messages" },
        { "v1/chat/completions", "{\"model\":\"default\",\"messages\":\"hi\"}", 400, "messages" },
        { "v1/chat/completions", "{\"model\":\"default\",\"messages\":[]}", 400, "messages" },
        { "v1/chat/completions", "{\"model\":\"default\",\"messages\":[{\"role\":\"wizard\",\"content\":\"hi\"}]}", 400, "messages[0].role" },
        { "v1/chat/completions", "{\"model\":\"default\",\"messages\":[{\"role\":\"user\"}]}", 400, "messages[0].content" },
        { "v1/chat/completions", "{\"model\":\"default\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}", 400, "messages[0].content[0].type" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"temperature\":\"hot\"}", 400, "temperature" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"temperature\":5}", 400, "temperature" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"top_p\":-1}", 400, "top_p" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"max_tokens\":0}", 400, "max_tokens" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"max_tokens\":1.5}", 400, "max_tokens" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"n\":1000}", 400, "n" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"stop\":5}", 400, "stop" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"seed\":\"x\"}", 400, "seed" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"stream\":\"yes\"}", 400, "stream" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"logit_bias\":{\"abc\":1}}", 400, "logit_bias" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"logit_bias\":{\"5\":500}}", 400, "logit_bias" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"top_logprobs\":3}", 400, "top_logprobs" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"response_format\":{\"type\":\"xml\"}}", 400, "response_format.type" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"string\",\"pattern\":\"^a+$\"}}}}", 400, "response_format.json_schema.schema" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"tool_choice\":\"required\"}", 400, "tool_choice" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"tools\":[{\"type\":\"function\"}]}", 400, "tools[0].function" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}}", 400, "tool_choice.function" },
        { "v1/chat/completions", "{\"model\":\"default\"," + Msg + ",\"functions\":[]}", 400, "functions" },
        { "v1/chat/completions", "[1,2]", 400, null },
        { "v1/chat/completions", "{\"model\":", 400, null },
        { "v1/chat/completions", "", 400, null },
        { "v1/completions", "{\"model\":\"default\"}", 400, "prompt" },
        { "v1/completions", "{\"model\":\"default\",\"prompt\":[1,2,999999]}", 400, "prompt" },
        { "v1/completions", "{\"model\":\"default\",\"prompt\":\"\"}", 400, "prompt" },
        { "v1/completions", "{\"model\":\"default\",\"prompt\":{}}", 400, "prompt" },
        { "v1/completions", "{\"model\":\"default\",\"prompt\":\"x\",\"best_of\":3}", 400, "best_of" },
        { "v1/embeddings", "{\"model\":\"bert_mlm\",\"input\":\"\"}", 400, "input" },
        { "v1/embeddings", "{\"model\":\"bert_mlm\"}", 400, "input" },
        { "v1/embeddings", "{\"model\":\"default\",\"input\":\"x\"}", 400, "model" },
        { "v1/embeddings", "{\"model\":\"nope\",\"input\":\"x\"}", 404, "model" },
        { "v1/embeddings", "{\"model\":\"bert_mlm\",\"input\":\"x\",\"encoding_format\":\"hex\"}", 400, "encoding_format" },
        { "v1/embeddings", "{\"model\":\"bert_mlm\",\"input\":\"x\",\"dimensions\":7}", 400, "dimensions" },
        { "tokenize", "{}", 400, "content" },
        { "detokenize", "{\"tokens\":[-1]}", 400, "tokens" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_bad_openai_request_is_a_json_error_naming_the_field(string path, string body, int status, string? param)
    {
        using var r = await S.Http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await r.Content.ReadAsStringAsync();
        Assert.Equal(status, (int)r.StatusCode);
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal); // no stack trace
        using var doc = JsonDocument.Parse(text);
        var e = doc.RootElement.GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(e.GetProperty("message").GetString()));
        Assert.False(string.IsNullOrEmpty(e.GetProperty("type").GetString()));
        Assert.True(e.TryGetProperty("code", out _));
        Assert.Equal(param, e.GetProperty("param").ValueKind == JsonValueKind.Null ? null : e.GetProperty("param").GetString());
        if (param != null) Assert.Contains(param.Split('.')[^1].Split('[')[0], e.GetProperty("message").GetString(), StringComparison.Ordinal);
        var (h, _) = await S.GetAsync("health");
        Assert.Equal(200, h);
    }

    public static TheoryData<string, string, int> OllamaCases => new()
    {
        { "api/chat", "{\"messages\":[]}", 400 },
        { "api/chat", "{\"model\":\"llama3\",\"messages\":[]}", 404 },
        { "api/chat", "{\"model\":\"default\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"images\":[\"aGk=\"]}]}", 400 },
        { "api/chat", "{\"model\":\"default\",\"messages\":[{\"content\":\"x\"}]}", 400 },
        { "api/generate", "{\"model\":\"default\",\"prompt\":\"x\",\"options\":{\"temperature\":\"warm\"}}", 400 },
        { "api/generate", "{\"model\":\"default\",\"prompt\":\"x\",\"format\":\"yaml\"}", 400 },
        { "api/embed", "{\"model\":\"bert_mlm\",\"input\":42}", 400 },
        { "api/show", "{\"model\":\"nope\"}", 404 },
        { "api/pull", "{\"model\":\"llama3\"}", 400 },
    };

    [Theory]
    [MemberData(nameof(OllamaCases))]
    public async Task A_bad_ollama_request_is_an_ollama_error(string path, string body, int status)
    {
        using var r = await S.Http.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await r.Content.ReadAsStringAsync();
        Assert.Equal(status, (int)r.StatusCode);
        using var doc = JsonDocument.Parse(text);
        Assert.Equal(JsonValueKind.String, doc.RootElement.GetProperty("error").ValueKind);
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("v1/chat/completions")]
    [InlineData("v1/completions")]
    [InlineData("api/chat")]
    public async Task A_body_that_is_not_utf8_is_a_400_naming_the_byte(string path)
    {
        // found by the server-request fuzzer: invalid bytes inside a JSON string parse, then fail when the string is read
        var body = Encoding.UTF8.GetBytes("{\"model\":\"default\",\"prompt\":\"ab\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
        int at = Array.IndexOf(body, (byte)'a');
        body[at] = 0xCA;
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var r = await S.Http.PostAsync(path, content);
        var text = await r.Content.ReadAsStringAsync();
        Assert.Equal(400, (int)r.StatusCode);
        Assert.Contains($"not valid UTF-8 (at byte {at})", text, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_path_is_a_json_404()
    {
        var (status, body) = await S.GetAsync("v1/nothing-here");
        Assert.Equal(404, status);
        Assert.Contains("/v1/nothing-here", body.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_body_over_the_limit_is_413_and_an_api_key_is_required_except_for_health()
    {
        await using var s = await TestServer.StartAsync(TestServer.Defaults with { MaxRequestBodyBytes = 4096, ApiKey = "s3cret" });
        var big = "{\"model\":\"default\",\"prompt\":\"" + new string('a', 10_000) + "\"}";
        using (var req = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = new StringContent(big, Encoding.UTF8, "application/json") })
        {
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "s3cret");
            using var r = await s.Http.SendAsync(req);
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, r.StatusCode);
            using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
            Assert.Equal("request_too_large", doc.RootElement.GetProperty("error").GetProperty("code").GetString());
        }
        Assert.Equal(401, (await s.GetAsync("v1/models")).Status);
        Assert.Equal(401, (await s.GetAsync("api/tags")).Status);
        Assert.Equal(401, (await s.GetAsync("metrics")).Status);
        Assert.Equal(200, (await s.GetAsync("health")).Status);
        foreach (var (key, expected) in new[] { ("wrong", HttpStatusCode.Unauthorized), ("s3cret", HttpStatusCode.OK) })
        {
            using var req = new HttpRequestMessage(HttpMethod.Get, "v1/models");
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            using var r = await s.Http.SendAsync(req);
            Assert.Equal(expected, r.StatusCode);
        }
    }
}
