using SharpLM.Testing;
using System.ClientModel;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OllamaSharp;
using OllamaSharp.Models.Chat;
using OpenAI;
using OpenAI.Chat;

namespace SharpLM.Server.Tests;

/// <summary>
/// Tool calls while streaming, on the wire and through real clients: the OpenAI SSE deltas (a call's first delta with
/// index, id, type, name and empty arguments, then argument fragments), their reassembly into exactly the call of the
/// response that is not streamed, a call cut by max_tokens or a stop string, Microsoft.Extensions.AI's function-call accumulation, and
/// a Llama-3-style template (bare JSON calls) through the OpenAI SDK and OllamaSharp (Ollama sends each call whole).
/// The default model is steered to call: tool_choice "required" (OpenAI), a JSON schema of the call (Ollama's format).
/// </summary>
[Collection("server")]
public sealed class ToolStreamingTests(ServerFixture fixture)
{
    private TestServer S => fixture.Server;

    private const string Tools = """[{"type":"function","function":{"name":"get_weather","description":"Weather of a city","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":20},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["city","unit"]}}}]""";

    private static string Request(bool stream, int maxTokens, string extra = "") =>
        $$"""{"model":"default","messages":[{"role":"user","content":"What is the weather in Paris?"}],"tools":{{Tools}},"tool_choice":"required","temperature":0,"max_tokens":{{maxTokens}},"stream":{{(stream ? "true" : "false")}}{{extra}}}""";

    /// <summary>The chunks of an SSE response (after checking it ends with [DONE]).</summary>
    private static async Task<List<JsonElement>> SseAsync(TestServer s, string body)
    {
        using var r = await s.Http.PostAsync("v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await r.Content.ReadAsStringAsync();
        Assert.True(r.IsSuccessStatusCode, text);
        Assert.StartsWith("text/event-stream", r.Content.Headers.ContentType?.ToString(), StringComparison.Ordinal);
        var data = text.Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l[6..]).ToList();
        Assert.Equal("[DONE]", data[^1]);
        return [.. data.SkipLast(1).Select(d => { using var doc = JsonDocument.Parse(d); return doc.RootElement.Clone(); })];
    }

    private static IEnumerable<JsonElement> Deltas(List<JsonElement> chunks) =>
        chunks.SelectMany(c => c.GetProperty("choices").EnumerateArray()).Select(c => c.GetProperty("delta"));

    private static string[] Names(JsonElement o) => [.. o.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal)];

    [Fact]
    public async Task Streamed_deltas_carry_the_name_first_then_argument_fragments_that_reassemble_into_the_whole_call()
    {
        var (status, whole) = await S.PostAsync("v1/chat/completions", Request(stream: false, 200));
        Assert.Equal(200, status);
        var choice = whole.GetProperty("choices")[0];
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        var call = Assert.Single(choice.GetProperty("message").GetProperty("tool_calls").EnumerateArray());
        string args = call.GetProperty("function").GetProperty("arguments").GetString()!;
        using (var parsed = JsonDocument.Parse(args)) Assert.Equal(JsonValueKind.String, parsed.RootElement.GetProperty("city").ValueKind);

        var chunks = await SseAsync(S, Request(stream: true, 200));
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        var finishes = chunks.SelectMany(c => c.GetProperty("choices").EnumerateArray())
            .Select(c => c.GetProperty("finish_reason")).Where(f => f.ValueKind != JsonValueKind.Null).Select(f => f.GetString()).ToList();
        Assert.Equal(["tool_calls"], finishes);
        Assert.Equal("", string.Concat(Deltas(chunks).Select(d => d.TryGetProperty("content", out var t) ? t.GetString() : "")));

        var calls = Deltas(chunks).Where(d => d.TryGetProperty("tool_calls", out _)).SelectMany(d => d.GetProperty("tool_calls").EnumerateArray()).ToList();
        var first = calls[0];
        Assert.Equal(["function", "id", "index", "type"], Names(first));
        Assert.Equal(0, first.GetProperty("index").GetInt32());
        Assert.StartsWith("call_", first.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.Equal("function", first.GetProperty("type").GetString());
        Assert.Equal(["arguments", "name"], Names(first.GetProperty("function")));
        Assert.Equal("get_weather", first.GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("", first.GetProperty("function").GetProperty("arguments").GetString());
        var rest = calls.Skip(1).ToList();
        Assert.All(rest, c =>
        {
            Assert.Equal(["function", "index"], Names(c));
            Assert.Equal(0, c.GetProperty("index").GetInt32());
            Assert.Equal(["arguments"], Names(c.GetProperty("function")));
        });
        Assert.True(rest.Count > 1, $"the arguments came in {rest.Count} fragment(s)");
        Assert.Equal(args, string.Concat(rest.Select(c => c.GetProperty("function").GetProperty("arguments").GetString())));
    }

    private static List<string?> Finishes(List<JsonElement> chunks) =>
        [.. chunks.SelectMany(k => k.GetProperty("choices").EnumerateArray()).Select(k => k.GetProperty("finish_reason"))
            .Where(f => f.ValueKind != JsonValueKind.Null).Select(f => f.GetString())];

    private static List<JsonElement> CallDeltas(List<JsonElement> chunks) =>
        [.. Deltas(chunks).Where(d => d.TryGetProperty("tool_calls", out _)).SelectMany(d => d.GetProperty("tool_calls").EnumerateArray())];

    [Fact]
    public async Task A_call_cut_off_is_not_a_call_and_its_text_is_content_streamed_or_whole()
    {
        var (_, full) = await S.PostAsync("v1/chat/completions", Request(stream: false, 200));
        string args = full.GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls")[0].GetProperty("function").GetProperty("arguments").GetString()!;
        int needs = full.GetProperty("usage").GetProperty("completion_tokens").GetInt32();

        // max_tokens below what the call needs: the call grammar knows the budget and does not start a call it cannot
        // finish, so the reply ends at once with "length" and no call (and no markup as content)
        var (status, r) = await S.PostAsync("v1/chat/completions", Request(stream: false, needs / 2));
        Assert.Equal(200, status);
        var c = r.GetProperty("choices")[0];
        Assert.Equal("length", c.GetProperty("finish_reason").GetString());
        Assert.False(c.GetProperty("message").TryGetProperty("tool_calls", out _), c.ToString());
        Assert.Equal("", c.GetProperty("message").GetProperty("content").GetString());
        var chunks = await SseAsync(S, Request(stream: true, needs / 2));
        Assert.Equal(["length"], Finishes(chunks));
        Assert.Empty(CallDeltas(chunks));
        Assert.Equal("", string.Concat(Deltas(chunks).Select(d => d.TryGetProperty("content", out var t) ? t.GetString() : "")));

        // a stop string inside the arguments cuts the call after it began: not a call in the whole response, its text
        // (the markup included) the content, as llama.cpp's server gives it back; streamed, the name and the arguments up
        // to the cut went out, then that same text as content before the finish
        const string stop = ",\"stop\":\"\\\"unit\"";
        Assert.Contains("\"unit", args, StringComparison.Ordinal);
        string before = args[..args.IndexOf("\"unit", StringComparison.Ordinal)];
        (status, r) = await S.PostAsync("v1/chat/completions", Request(stream: false, 200, stop));
        Assert.Equal(200, status);
        c = r.GetProperty("choices")[0];
        Assert.Equal("stop", c.GetProperty("finish_reason").GetString());
        Assert.False(c.GetProperty("message").TryGetProperty("tool_calls", out _), c.ToString());
        string content = c.GetProperty("message").GetProperty("content").GetString()!;
        Assert.StartsWith("<tool_call>", content, StringComparison.Ordinal);
        Assert.Contains("\"get_weather\"", content, StringComparison.Ordinal);
        Assert.EndsWith(before, content, StringComparison.Ordinal);
        chunks = await SseAsync(S, Request(stream: true, 200, stop));
        Assert.Equal(["stop"], Finishes(chunks));
        var calls = CallDeltas(chunks);
        Assert.Equal("get_weather", calls[0].GetProperty("function").GetProperty("name").GetString());
        string sent = string.Concat(calls.Select(k => k.GetProperty("function").GetProperty("arguments").GetString()));
        Assert.Equal(before, sent);
        Assert.Equal(content, string.Concat(Deltas(chunks).Select(d => d.TryGetProperty("content", out var t) ? t.GetString() : "")));
        Assert.Null(chunks[^1].GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out var last) ? last.GetString() : null);
        Assert.True(chunks[^2].GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out _), "the text comes just before the final chunk");
    }

    [Fact]
    public async Task Extensions_AI_accumulates_the_streamed_call_into_the_same_function_call_as_the_whole_response()
    {
        IChatClient client = new ChatClient("default", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = S.V1 }).AsIChatClient();
        using var schema = JsonDocument.Parse("""{"type":"object","properties":{"city":{"type":"string","maxLength":20},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["city","unit"]}""");
        var options = new ChatOptions
        {
            Temperature = 0,
            MaxOutputTokens = 200,
            Tools = [AIFunctionFactory.CreateDeclaration("get_weather", "Weather of a city", schema.RootElement)],
            ToolMode = ChatToolMode.RequireAny,
        };
        var whole = await client.GetResponseAsync("What is the weather in Paris?", options);
        Assert.Equal(Microsoft.Extensions.AI.ChatFinishReason.ToolCalls, whole.FinishReason);
        var expected = Assert.Single(whole.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>());

        var streamed = new List<FunctionCallContent>();
        Microsoft.Extensions.AI.ChatFinishReason? finish = null;
        var text = new StringBuilder();
        await foreach (var u in client.GetStreamingResponseAsync("What is the weather in Paris?", options))
        {
            streamed.AddRange(u.Contents.OfType<FunctionCallContent>());
            text.Append(u.Text);
            finish ??= u.FinishReason;
        }
        Assert.Equal(Microsoft.Extensions.AI.ChatFinishReason.ToolCalls, finish);
        var call = Assert.Single(streamed);
        Assert.Null(call.Exception);
        Assert.Equal("get_weather", call.Name);
        Assert.Equal(JsonSerializer.Serialize(expected.Arguments), JsonSerializer.Serialize(call.Arguments));
        Assert.Equal("", text.ToString());
    }

    /// <summary>A small template of my own in the Llama 3.1 manner ("ipython" in it: calls are a bare JSON object
    /// {"name", "parameters"}), with the tools printed in the system turn.</summary>
    internal const string Llama3StyleTemplate = """
        {%- if tools %}system: Environment: ipython. Call a function by replying {"name": function name, "parameters": arguments}.
        {% for t in tools %}{{ t | tojson }}
        {% endfor %}{% endif %}
        {%- for m in messages %}{{ m.role }}: {{ m.content }}
        {% endfor %}{% if add_generation_prompt %}assistant: {% endif %}
        """;

    [Fact]
    public async Task Bare_json_calls_stream_through_the_OpenAI_SDK_and_come_whole_through_OllamaSharp()
    {
        var template = Path.Combine(TestPaths.NewTempDir(), "llama3-style.jinja");
        await File.WriteAllTextAsync(template, Llama3StyleTemplate);
        try
        {
            await using var s = await TestServer.StartAsync(TestServer.Defaults with { ChatTemplateFile = template, Parallel = 2 });
            Assert.Equal(SharpLM.Server.Chat.ToolCallFormat.Llama3, Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<ServerEngine>(s.App.Services).ToolFormat);

            // OpenAI SDK: required call, streamed and whole
            var chat = new ChatClient("default", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = s.V1 });
            var tool = ChatTool.CreateFunctionTool("get_weather", "Weather of a city", BinaryData.FromString(
                """{"type":"object","properties":{"city":{"type":"string","maxLength":12}},"required":["city"]}"""));
            var o = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 120, ToolChoice = ChatToolChoice.CreateRequiredChoice() };
            o.Tools.Add(tool);
            List<OpenAI.Chat.ChatMessage> msgs = [new UserChatMessage("Weather in Paris?")];
            ChatCompletion c = await chat.CompleteChatAsync(msgs, o);
            Assert.Equal(OpenAI.Chat.ChatFinishReason.ToolCalls, c.FinishReason);
            var call = Assert.Single(c.ToolCalls);
            var args = new StringBuilder();
            int fragments = 0;
            string? name = null;
            await foreach (var u in chat.CompleteChatStreamingAsync(msgs, o))
                foreach (var t in u.ToolCallUpdates)
                {
                    Assert.Equal(0, t.Index);
                    name ??= t.FunctionName;
                    var piece = t.FunctionArgumentsUpdate?.ToString() ?? "";
                    if (piece.Length > 0) fragments++;
                    args.Append(piece);
                }
            Assert.Equal(("get_weather", call.FunctionArguments.ToString()), (name, args.ToString()));
            Assert.True(fragments > 1, $"{fragments} fragment(s)");

            // Ollama: no tool_choice; the format (a JSON schema of the call) steers the model into the bare-JSON call
            var ollama = new OllamaApiClient(new HttpClient { BaseAddress = s.Url, Timeout = TimeSpan.FromMinutes(2) }, "default");
            using var format = JsonDocument.Parse("""{"type":"object","properties":{"name":{"type":"string","enum":["get_weather"]},"parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":12}},"required":["city"],"additionalProperties":false}},"required":["name","parameters"],"additionalProperties":false}""");
            ChatRequest Req(bool stream) => new()
            {
                Model = "default",
                Stream = stream,
                Messages = [new Message(OllamaSharp.Models.Chat.ChatRole.User, "Weather in Paris?")],
                Tools = [new Tool { Function = new Function { Name = "get_weather", Description = "Weather of a city", Parameters = new Parameters { Properties = new Dictionary<string, Property> { ["city"] = new() { Type = "string" } }, Required = ["city"] } } }],
                Format = format.RootElement,
                Options = new OllamaSharp.Models.RequestOptions { Temperature = 0, NumPredict = 120 },
            };
            var withCalls = new List<ChatResponseStream>();
            ChatResponseStream? last = null;
            var content = new StringBuilder();
            await foreach (var r in ollama.ChatAsync(Req(stream: true)))
            {
                if (r?.Message?.ToolCalls?.Any() == true) withCalls.Add(r);
                content.Append(r?.Message?.Content);
                last = r;
            }
            Assert.True(last!.Done);
            Assert.Equal("stop", ((ChatDoneResponseStream)last).DoneReason);
            var message = Assert.Single(withCalls).Message; // the call comes whole, in one message
            var oc = Assert.Single(message.ToolCalls!);
            Assert.Equal("get_weather", oc.Function!.Name);
            Assert.Equal(0, oc.Function.Index);
            Assert.StartsWith("call_", oc.Id, StringComparison.Ordinal);
            Assert.Equal("", content.ToString());
            string streamedArgs = JsonSerializer.Serialize(oc.Function.Arguments);

            ChatResponseStream? whole = null;
            await foreach (var r in ollama.ChatAsync(Req(stream: false))) whole = r;
            var wc = Assert.Single(whole!.Message.ToolCalls!);
            Assert.Equal("get_weather", wc.Function!.Name);
            Assert.Equal(streamedArgs, JsonSerializer.Serialize(wc.Function.Arguments));
            Assert.Equal(JsonValueKind.String, JsonDocument.Parse(streamedArgs).RootElement.GetProperty("city").ValueKind);
        }
        finally
        {
            File.Delete(template);
        }
    }
}
