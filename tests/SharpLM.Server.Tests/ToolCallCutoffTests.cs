using System.ClientModel;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using OllamaSharp;
using OllamaSharp.Models.Chat;
using OpenAI;
using OpenAI.Chat;
using SharpLM.Server.Chat;

namespace SharpLM.Server.Tests;

/// <summary>
/// A tool call cut off by a stop string, in every call form (Hermes/Qwen <c>&lt;tool_call&gt;</c>, Mistral
/// <c>[TOOL_CALLS]</c> arrays and v11's <c>name[ARGS]{...}</c>, Llama 3.1's JSON and its <c>&lt;|python_tag|&gt;</c> call),
/// cut right after its opener, inside its name, inside its arguments and inside a string argument, through real clients:
/// the whole response gives the model's text back as content, exactly as far as the cut (llama.cpp's server does the
/// same: the client loses nothing), with finish_reason "stop" and no call; streamed, the content deltas (the held-back
/// text flushed before the final chunk) reassemble into exactly that content. A call whose name was complete before the
/// cut had begun to stream (its name and argument fragments went out, as OpenAI streams them): those pieces stay, a
/// call never finished (finish_reason is not "tool_calls"), which the whole response does not have. Ollama's /api/chat
/// sends only finished calls, so there the stream and the whole response agree entirely. The model's text is known
/// from the tokens of the uncut reply (logprobs, ASCII here, so each token's text is exact). A constrained call never
/// meets max_tokens (its grammar does not start what it cannot finish), so max_tokens is tested where the model writes
/// freely: <see cref="Llama31TokenStreamTests"/>.
/// </summary>
public sealed class ToolCallCutoffTests
{
    private const string City = "Paris in France";
    private const string Query = "weather in Paris";
    private const string WeatherSchema = $$$"""{"type":"object","properties":{"city":{"type":"string","enum":["{{{City}}}"]},"unit":{"type":"string","enum":["celsius"]}},"required":["city","unit"]}""";
    private const string BraveSchema = $$$"""{"type":"object","properties":{"query":{"type":"string","enum":["{{{Query}}}"]}},"required":["query"]}""";

    /// <summary>A small template in the manner of Mistral's older templates: calls as <c>[TOOL_CALLS] [{...}]</c>.</summary>
    private const string MistralTemplate = """
        {%- if tools %}[AVAILABLE_TOOLS]{% for t in tools %}{{ t | tojson }}{% endfor %}[/AVAILABLE_TOOLS] To call tools reply [TOOL_CALLS] [{"name": ..., "arguments": ...}].
        {% endif %}
        {%- for m in messages %}[INST]{{ m.content }}[/INST]{% endfor %}
        """;

    private sealed record Form(string? Template, ToolCallFormat Format, string Tool, string Schema, (string Where, string Anchor, int Offset)[] Cuts);

    private static Form FormOf(string name) => name switch
    {
        "hermes" => new(null, ToolCallFormat.Hermes, "get_weather", WeatherSchema,
            [("after the opener", "<tool_call>", 11), ("inside the name", "get_weather", 4), ("inside the arguments", "\"city\"", 0), ("inside a string argument", City, 5)]),
        "mistral" => new(MistralTemplate, ToolCallFormat.Mistral, "get_weather", WeatherSchema,
            [("inside the name", "get_weather", 4), ("inside the arguments", "\"unit\"", 1), ("inside a string argument", City, 5)]),
        "mistral-args" => new(ToolCallFormatTests.MistralArgsTemplate, ToolCallFormat.MistralArgs, "get_weather", WeatherSchema,
            [("after the opener", "[TOOL_CALLS]", 12), ("inside the name", "get_weather", 4), ("inside the arguments", "\"city\"", 0), ("inside a string argument", City, 5)]),
        "llama3-json" => new(ToolStreamingTests.Llama3StyleTemplate, ToolCallFormat.Llama3, "get_weather", WeatherSchema,
            [("inside the name", "get_weather", 4), ("inside the arguments", "\"city\"", 3), ("inside a string argument", City, 5)]),
        "python-tag" => new(ToolCallFormatTests.PythonTagTemplate, ToolCallFormat.Llama3, "brave_search", BraveSchema,
            [("after the opener", "<|python_tag|>", 14), ("inside the name", "brave_search", 6), ("inside the arguments", "query", 2), ("inside a string argument", Query, 7)]),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };

    /// <summary>The shortest stop string that first occurs in <paramref name="text"/> at <paramref name="at"/>.</summary>
    internal static string StopAt(string text, int at)
    {
        for (int n = 1; at + n <= text.Length; n++)
            if (text.IndexOf(text.Substring(at, n), StringComparison.Ordinal) == at) return text.Substring(at, n);
        throw new InvalidOperationException($"no stop string cuts '{text}' at {at}");
    }

    [Theory]
    [InlineData("hermes")]
    [InlineData("mistral")]
    [InlineData("mistral-args")]
    [InlineData("llama3-json")]
    [InlineData("python-tag")]
    public async Task A_call_cut_by_a_stop_string_comes_back_as_its_text_through_the_OpenAI_SDK_streamed_and_whole(string name)
    {
        var form = FormOf(name);
        await using var s = form.Template is { } t ? await ToolCallFormatTests.StartAsync(t, "cutoff-" + name)
                                                   : await TestServer.StartAsync(TestServer.Defaults with { Parallel = 2 });
        Assert.Equal(form.Format, s.App.Services.GetRequiredService<ServerEngine>().ToolFormat);
        var chat = new ChatClient("default", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = s.V1, NetworkTimeout = TimeSpan.FromMinutes(2) });
        List<OpenAI.Chat.ChatMessage> msgs = [new UserChatMessage("Weather in Paris?")];
        ChatCompletionOptions Options(string? stop)
        {
            var o = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 120, ToolChoice = ChatToolChoice.CreateRequiredChoice(), IncludeLogProbabilities = stop is null };
            o.Tools.Add(ChatTool.CreateFunctionTool(form.Tool, "a tool", BinaryData.FromString(form.Schema)));
            if (stop != null) o.StopSequences.Add(stop);
            return o;
        }

        // the uncut reply: the call, and the model's text it came from
        ChatCompletion whole = await chat.CompleteChatAsync(msgs, Options(null));
        Assert.Equal(OpenAI.Chat.ChatFinishReason.ToolCalls, whole.FinishReason);
        Assert.Equal(form.Tool, Assert.Single(whole.ToolCalls).FunctionName);
        string text = string.Concat(whole.ContentTokenLogProbabilities.Select(p => p.Token));
        Assert.True(text.All(char.IsAscii), text);
        Assert.Contains(form.Tool, text, StringComparison.Ordinal);

        foreach (var (where, anchor, offset) in form.Cuts)
        {
            int at = text.IndexOf(anchor, StringComparison.Ordinal) + offset;
            Assert.True(at >= offset, $"'{anchor}' is not in '{text}'");
            string stop = StopAt(text, at), expected = text[..at];
            bool begun = where is "inside the arguments" or "inside a string argument";

            ChatCompletion cut = await chat.CompleteChatAsync(msgs, Options(stop));
            string how = $"{name}, cut {where} (stop '{stop}'): ";
            Assert.True(OpenAI.Chat.ChatFinishReason.Stop == cut.FinishReason, how + cut.FinishReason);
            Assert.True(cut.ToolCalls.Count == 0, how + "a call in the whole response");
            Assert.True(expected == string.Concat(cut.Content.Select(p => p.Text)), how + $"content '{string.Concat(cut.Content.Select(p => p.Text))}', expected '{expected}'");

            var content = new StringBuilder();
            var finishes = new List<OpenAI.Chat.ChatFinishReason>();
            string? calledName = null;
            int updates = 0, lastContent = -1, finishAt = -1;
            await foreach (var u in chat.CompleteChatStreamingAsync(msgs, Options(stop)))
            {
                foreach (var p in u.ContentUpdate)
                    if (p.Text.Length > 0) { content.Append(p.Text); lastContent = updates; }
                foreach (var c in u.ToolCallUpdates) calledName ??= c.FunctionName;
                if (u.FinishReason is { } f) { finishes.Add(f); finishAt = updates; }
                updates++;
            }
            Assert.True(expected == content.ToString(), how + $"streamed content '{content}', expected '{expected}'");
            Assert.Equal([OpenAI.Chat.ChatFinishReason.Stop], finishes);
            Assert.True(lastContent >= 0 && lastContent < finishAt, how + $"content at update {lastContent}, the finish at {finishAt}");
            Assert.True((begun ? form.Tool : null) == calledName, how + $"streamed call '{calledName}'");
        }
    }

    /// <summary>Ollama (OllamaSharp, streamed and whole) with a Llama-3-style and a Mistral template: the format (a JSON
    /// schema of the call) steers the model into a bare JSON call; a stop string cuts it. Ollama sends a call only when it
    /// is finished, so the stream and the whole response agree exactly: the text as content, no call, done_reason
    /// "stop". The text is read off a first cut just before the arguments' closing brace.</summary>
    [Theory]
    [InlineData("llama3-json", "parameters")]
    [InlineData("mistral", "arguments")]
    public async Task A_call_cut_by_a_stop_string_comes_back_as_its_text_through_OllamaSharp(string name, string argsKey)
    {
        var form = FormOf(name);
        await using var s = await ToolCallFormatTests.StartAsync(form.Template!, "cutoff-ollama-" + name);
        var ollama = new OllamaApiClient(new HttpClient { BaseAddress = s.Url, Timeout = TimeSpan.FromMinutes(2) }, "default");
        using var format = JsonDocument.Parse($$$"""{"type":"object","properties":{"name":{"type":"string","enum":["get_weather"]},"{{{argsKey}}}":{{{WeatherSchema}}}},"required":["name","{{{argsKey}}}"],"additionalProperties":false}""");
        ChatRequest Request(bool stream, string stop) => new()
        {
            Model = "default",
            Stream = stream,
            Messages = [new Message(OllamaSharp.Models.Chat.ChatRole.User, "Weather in Paris?")],
            Tools = [new Tool { Function = new Function { Name = "get_weather", Description = "Weather of a city", Parameters = new Parameters { Properties = new Dictionary<string, Property> { ["city"] = new() { Type = "string" } }, Required = ["city"] } } }],
            Format = format.RootElement,
            Options = new OllamaSharp.Models.RequestOptions { Temperature = 0, NumPredict = 120, Stop = [stop] },
        };
        async Task<string> CutAsync(string stop, string how)
        {
            ChatResponseStream? whole = null;
            await foreach (var r in ollama.ChatAsync(Request(stream: false, stop))) whole = r;
            Assert.True(whole!.Done, how);
            Assert.Equal("stop", ((ChatDoneResponseStream)whole).DoneReason);
            Assert.True(whole.Message.ToolCalls is null || !whole.Message.ToolCalls.Any(), how + "a call in the whole response");
            var streamed = new StringBuilder();
            ChatResponseStream? last = null;
            await foreach (var r in ollama.ChatAsync(Request(stream: true, stop)))
            {
                Assert.True(r?.Message?.ToolCalls is null || !r.Message.ToolCalls.Any(), how + "a streamed call");
                streamed.Append(r?.Message?.Content);
                last = r;
            }
            Assert.Equal("stop", ((ChatDoneResponseStream)last!).DoneReason);
            Assert.True(whole.Message.Content == streamed.ToString(), how + $"streamed '{streamed}', whole '{whole.Message.Content}'");
            return whole.Message.Content!;
        }

        // the first '}' closes the arguments: cut there, the reply is the whole call but its last two braces
        string text = await CutAsync("}", $"{name}, cut before the arguments' '}}': ");
        Assert.StartsWith("{", text.TrimStart(), StringComparison.Ordinal); // the format lets JSON's whitespace in
        Assert.Contains($"\"{argsKey}\"", text, StringComparison.Ordinal);
        Assert.EndsWith("\"celsius\"", text.TrimEnd(), StringComparison.Ordinal);
        foreach (var (where, anchor, offset) in form.Cuts)
        {
            int at = text.IndexOf(anchor, StringComparison.Ordinal) + offset;
            string stop = StopAt(text, at), how = $"{name}, cut {where} (stop '{stop}'): ";
            Assert.True(text[..at] == await CutAsync(stop, how), how);
        }
    }
}
