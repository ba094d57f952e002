using SharpLM.Testing;
using System.ClientModel;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using OpenAI;
using OpenAI.Chat;
using SharpLM.Server.Chat;

namespace SharpLM.Server.Tests;

/// <summary>
/// The call forms beyond Hermes and bare JSON, through the real server and real clients: Mistral v11's
/// <c>[TOOL_CALLS]name[ARGS]{...}</c> (the OpenAI SDK) and Llama 3.1's built-in tool call
/// <c>&lt;|python_tag|&gt;brave_search.call(query="...")</c> (Microsoft.Extensions.AI), each streamed and whole; and
/// malformed calls, which come back as plain content (never a 500). The default model is steered as in
/// <see cref="ToolStreamingTests"/>: tool_choice "required" makes the grammar write the template's own form; a
/// response_format schema writes a call whose arguments are unclosed JSON.
/// </summary>
public sealed class ToolCallFormatTests
{
    /// <summary>A small template in the manner of Mistral's v11 templates (they write each call as
    /// <c>[TOOL_CALLS]name[ARGS]arguments</c>).</summary>
    internal const string MistralArgsTemplate = """
        {%- if tools %}[AVAILABLE_TOOLS]{% for t in tools %}{{ t | tojson }}{% endfor %}[/AVAILABLE_TOOLS] To call a tool reply [TOOL_CALLS]name[ARGS]{arguments}.
        {% endif %}
        {%- for m in messages %}[INST]{{ m.content }}[/INST]{% endfor %}
        """;

    /// <summary>Llama 3.1's manner: built-in tools are called in Python after <c>&lt;|python_tag|&gt;</c>.</summary>
    internal const string PythonTagTemplate = """
        {%- if tools %}system: Environment: ipython. Tools: brave_search. Call it as <|python_tag|>brave_search.call(query="...").
        {% for t in tools %}{{ t | tojson }}
        {% endfor %}{% endif %}
        {%- for m in messages %}{{ m.role }}: {{ m.content }}
        {% endfor %}{% if add_generation_prompt %}assistant: {% endif %}
        """;

    /// <summary>A server of the default model with <paramref name="template"/> as its chat template.</summary>
    internal static async Task<TestServer> StartAsync(string template, string name)
    {
        var path = Path.Combine(TestPaths.NewTempDir(), name + ".jinja");
        await File.WriteAllTextAsync(path, template);
        try
        {
            return await TestServer.StartAsync(TestServer.Defaults with { ChatTemplateFile = path, Parallel = 2 });
        }
        finally
        {
            File.Delete(path); // the server read it at start
        }
    }

    private static ToolCallFormat FormatOf(TestServer s) => s.App.Services.GetRequiredService<ServerEngine>().ToolFormat;

    [Fact]
    public async Task Mistral_v11_calls_stream_through_the_OpenAI_SDK_as_the_whole_response_has_them()
    {
        await using var s = await StartAsync(MistralArgsTemplate, "mistral-args");
        Assert.Equal(ToolCallFormat.MistralArgs, FormatOf(s));
        var chat = new ChatClient("default", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = s.V1 });
        var o = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 120, ToolChoice = ChatToolChoice.CreateRequiredChoice() };
        o.Tools.Add(ChatTool.CreateFunctionTool("get_weather", "Weather of a city", BinaryData.FromString(
            """{"type":"object","properties":{"city":{"type":"string","maxLength":24}},"required":["city"]}""")));
        List<OpenAI.Chat.ChatMessage> msgs = [new UserChatMessage("Weather in Paris?")];

        ChatCompletion whole = await chat.CompleteChatAsync(msgs, o);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.ToolCalls, whole.FinishReason);
        var call = Assert.Single(whole.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        using (var args = JsonDocument.Parse(call.FunctionArguments.ToString()))
            Assert.Equal(JsonValueKind.String, args.RootElement.GetProperty("city").ValueKind);
        Assert.True(whole.Content.Count == 0 || whole.Content.All(p => p.Text.Length == 0), "content beside the call");

        var streamed = new StringBuilder();
        string? name = null, id = null;
        int fragments = 0;
        OpenAI.Chat.ChatFinishReason? finish = null;
        await foreach (var u in chat.CompleteChatStreamingAsync(msgs, o))
        {
            finish ??= u.FinishReason;
            Assert.DoesNotContain(u.ContentUpdate, p => p.Text.Length > 0);
            foreach (var t in u.ToolCallUpdates)
            {
                Assert.Equal(0, t.Index);
                name ??= t.FunctionName;
                id ??= t.ToolCallId;
                var piece = t.FunctionArgumentsUpdate?.ToString() ?? "";
                if (piece.Length > 0) fragments++;
                streamed.Append(piece);
            }
        }
        Assert.Equal(OpenAI.Chat.ChatFinishReason.ToolCalls, finish);
        Assert.Equal(("get_weather", call.FunctionArguments.ToString()), (name, streamed.ToString()));
        Assert.StartsWith("call_", id, StringComparison.Ordinal);
        Assert.True(fragments > 1, $"{fragments} fragment(s)");
    }

    private const string BraveSchema = """{"type":"object","properties":{"query":{"type":"string","maxLength":16}},"required":["query"]}""";

    [Fact]
    public async Task A_builtin_python_tag_call_comes_through_Extensions_AI_the_same_streamed_and_whole()
    {
        await using var s = await StartAsync(PythonTagTemplate, "python-tag");
        Assert.Equal(ToolCallFormat.Llama3, FormatOf(s));
        IChatClient client = new ChatClient("default", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = s.V1 }).AsIChatClient();
        using var schema = JsonDocument.Parse(BraveSchema);
        var options = new ChatOptions
        {
            Temperature = 0,
            MaxOutputTokens = 120,
            Tools = [AIFunctionFactory.CreateDeclaration("brave_search", "Searches the web", schema.RootElement)],
            ToolMode = ChatToolMode.RequireAny,
        };
        var whole = await client.GetResponseAsync("Weather in Paris?", options);
        Assert.Equal(Microsoft.Extensions.AI.ChatFinishReason.ToolCalls, whole.FinishReason);
        var expected = Assert.Single(whole.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());
        Assert.Equal("brave_search", expected.Name);
        Assert.IsType<string>(Assert.Single(expected.Arguments!, a => a.Key == "query").Value?.ToString());
        Assert.Equal("", whole.Text);

        var streamed = new List<FunctionCallContent>();
        var text = new StringBuilder();
        await foreach (var u in client.GetStreamingResponseAsync("Weather in Paris?", options))
        {
            streamed.AddRange(u.Contents.OfType<FunctionCallContent>());
            text.Append(u.Text);
        }
        var call = Assert.Single(streamed);
        Assert.Null(call.Exception);
        Assert.Equal("brave_search", call.Name);
        Assert.Equal(JsonSerializer.Serialize(expected.Arguments), JsonSerializer.Serialize(call.Arguments));
        Assert.Equal("", text.ToString());

        // on the wire the call came as Python text: a stop string at its closing '")' cuts it after it began: not a
        // call (finish "stop") whole, its text the content; streamed, the name and the arguments up to the cut, then that
        // text as content
        // (these requests' tools have no description, so their prompt is not the one above: the query is this prompt's own)
        string stop = JsonSerializer.Serialize("\")");
        string body(bool stream, bool cut = true) => $$$"""{"model":"default","messages":[{"role":"user","content":"Weather in Paris?"}],"tools":[{"type":"function","function":{"name":"brave_search","parameters":{{{BraveSchema}}}}}],"tool_choice":"required","temperature":0,"max_tokens":120,{{{(cut ? $"\"stop\":[{stop}]," : "")}}}"stream":{{{(stream ? "true" : "false")}}}}""";
        var (status, r) = await s.PostAsync("v1/chat/completions", body(false, cut: false));
        Assert.Equal(200, status);
        var uncut = r.GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls")[0].GetProperty("function");
        Assert.Equal("brave_search", uncut.GetProperty("name").GetString());
        string query;
        using (var args = JsonDocument.Parse(uncut.GetProperty("arguments").GetString()!)) query = args.RootElement.GetProperty("query").GetString()!;
        (status, r) = await s.PostAsync("v1/chat/completions", body(false));
        Assert.Equal(200, status);
        var c = r.GetProperty("choices")[0];
        Assert.Equal("stop", c.GetProperty("finish_reason").GetString());
        Assert.False(c.GetProperty("message").TryGetProperty("tool_calls", out _), c.ToString());
        string cutText = "<|python_tag|>brave_search.call(query=" + JsonSerializer.Serialize(query, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping })[..^1];
        Assert.Equal(cutText, c.GetProperty("message").GetProperty("content").GetString());
        var (chunks, content) = await SseAsync(s, body(true));
        Assert.Equal(cutText, content);
        Assert.Equal(["stop"], Finishes(chunks));
        var calls = chunks.SelectMany(k => k.GetProperty("choices").EnumerateArray()).Select(k => k.GetProperty("delta"))
            .Where(d => d.TryGetProperty("tool_calls", out _)).SelectMany(d => d.GetProperty("tool_calls").EnumerateArray()).ToList();
        Assert.Equal("brave_search", calls[0].GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("{\"query\":" + JsonSerializer.Serialize(query, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping })[..^1],
            string.Concat(calls.Select(k => k.GetProperty("function").GetProperty("arguments").GetString())));
    }

    /// <summary>A call whose arguments are a JSON string holding unclosed JSON, in each JSON-reading format: plain
    /// content, whole and streamed, and finish "stop".</summary>
    [Theory]
    [InlineData("mistral")]
    [InlineData("llama")]
    public async Task A_malformed_call_comes_back_as_plain_content(string which)
    {
        await using var s = await StartAsync(which == "mistral" ? MistralArgsTemplate : PythonTagTemplate, "malformed-" + which);
        string argsKey = which == "mistral" ? "arguments" : "parameters";
        // tool_choice auto: no call grammar in these formats, so response_format steers the reply
        string format = $$$$"""{"type":"json_schema","json_schema":{"name":"call","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string","enum":["brave_search"]},"{{{{argsKey}}}}":{"type":"string","enum":["{\"query\": \"Par"]}},"required":["name","{{{{argsKey}}}}"],"additionalProperties":false}}}""";
        string body(bool stream) => $$$"""{"model":"default","messages":[{"role":"user","content":"Weather in Paris?"}],"tools":[{"type":"function","function":{"name":"brave_search","parameters":{{{BraveSchema}}}}}],"response_format":{{{format}}},"temperature":0,"max_tokens":80,"stream":{{{(stream ? "true" : "false")}}}}""";

        var (status, r) = await s.PostAsync("v1/chat/completions", body(false));
        Assert.Equal(200, status);
        var c = r.GetProperty("choices")[0];
        Assert.Equal("stop", c.GetProperty("finish_reason").GetString());
        Assert.False(c.GetProperty("message").TryGetProperty("tool_calls", out _), c.ToString());
        string content = c.GetProperty("message").GetProperty("content").GetString()!;
        using (var doc = JsonDocument.Parse(content)) // the whole reply, as the model wrote it
            Assert.Equal("{\"query\": \"Par", doc.RootElement.GetProperty(argsKey).GetString());

        var (chunks, streamed) = await SseAsync(s, body(true));
        Assert.Equal(content, streamed);
        Assert.Equal(["stop"], Finishes(chunks));
    }

    /// <summary>The chunks of an SSE response and the concatenated content deltas.</summary>
    private static async Task<(List<JsonElement> Chunks, string Content)> SseAsync(TestServer s, string body)
    {
        using var r = await s.Http.PostAsync("v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await r.Content.ReadAsStringAsync();
        Assert.True(r.IsSuccessStatusCode, text);
        var data = text.Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l[6..]).ToList();
        Assert.Equal("[DONE]", data[^1]);
        List<JsonElement> chunks = [.. data.SkipLast(1).Select(d => { using var doc = JsonDocument.Parse(d); return doc.RootElement.Clone(); })];
        var content = string.Concat(chunks.SelectMany(k => k.GetProperty("choices").EnumerateArray())
            .Select(k => k.GetProperty("delta")).Select(d => d.TryGetProperty("content", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : ""));
        return (chunks, content);
    }

    private static List<string?> Finishes(List<JsonElement> chunks) =>
        [.. chunks.SelectMany(k => k.GetProperty("choices").EnumerateArray()).Select(k => k.GetProperty("finish_reason"))
            .Where(f => f.ValueKind != JsonValueKind.Null).Select(f => f.GetString())];
}
