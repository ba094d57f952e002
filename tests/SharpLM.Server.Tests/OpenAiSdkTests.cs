#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK
using System.ClientModel;
using System.Text;
using System.Text.Json;
using Json.Schema;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Embeddings;
using OpenAI.Models;

namespace SharpLM.Server.Tests;

/// <summary>The official OpenAI .NET SDK (NuGet OpenAI) against the server on a loopback port.</summary>
[Collection("server")]
public sealed class OpenAiSdkTests(ServerFixture fixture)
{
    private TestServer S => fixture.Server;

    private OpenAIClientOptions Options => new() { Endpoint = S.V1, NetworkTimeout = TimeSpan.FromMinutes(2) };
    private ChatClient Chat => new("default", new ApiKeyCredential("unused"), Options);

    private static ChatCompletionOptions Greedy(int max) => new() { Temperature = 0, MaxOutputTokenCount = max };

    [Fact]
    public async Task Chat_completion_returns_text_finish_reason_and_usage()
    {
        ChatCompletion c = await Chat.CompleteChatAsync([new SystemChatMessage("Be brief."), new UserChatMessage("The jury said")], Greedy(12));
        Assert.Equal(ChatMessageRole.Assistant, c.Role);
        Assert.NotEmpty(c.Content[0].Text);
        Assert.Equal(ChatFinishReason.Length, c.FinishReason);
        Assert.Equal(12, c.Usage.OutputTokenCount);
        Assert.True(c.Usage.InputTokenCount > 5);
        Assert.Equal(c.Usage.InputTokenCount + c.Usage.OutputTokenCount, c.Usage.TotalTokenCount);
        Assert.Equal("default", c.Model);
    }

    [Fact]
    public async Task Streaming_gives_the_same_text_as_the_whole_response_and_usage_at_the_end()
    {
        var messages = new List<ChatMessage> { new UserChatMessage("Tell me about the county") };
        ChatCompletion whole = await Chat.CompleteChatAsync(messages, Greedy(20));
        var sb = new StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        int updates = 0;
        await foreach (var u in Chat.CompleteChatStreamingAsync(messages, Greedy(20)))
        {
            foreach (var part in u.ContentUpdate) sb.Append(part.Text);
            usage ??= u.Usage;
            finish ??= u.FinishReason;
            updates++;
        }
        Assert.True(updates > 3, $"only {updates} updates: the reply did not stream");
        Assert.Equal(whole.Content[0].Text, sb.ToString());
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.NotNull(usage);
        Assert.Equal(20, usage!.OutputTokenCount);
    }

    [Fact]
    public async Task Stop_sequences_cut_the_text_and_finish_with_stop()
    {
        ChatCompletion full = await Chat.CompleteChatAsync([new UserChatMessage("Once upon a time")], Greedy(30));
        var text = full.Content[0].Text;
        Assert.True(text.Length > 6, text);
        // a stop string taken from the middle of the greedy answer
        var stop = text.Substring(text.Length / 2, 3);
        var o = Greedy(30);
        o.StopSequences.Add(stop);
        ChatCompletion cut = await Chat.CompleteChatAsync([new UserChatMessage("Once upon a time")], o);
        Assert.Equal(ChatFinishReason.Stop, cut.FinishReason);
        Assert.Equal(text[..text.IndexOf(stop, StringComparison.Ordinal)], cut.Content[0].Text);
        Assert.DoesNotContain(stop, cut.Content[0].Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_same_seed_gives_the_same_sampled_text_and_another_seed_usually_not()
    {
        var o = new ChatCompletionOptions { Temperature = 1.0f, TopP = 1f, MaxOutputTokenCount = 24, Seed = 1234 };
        var msgs = new List<ChatMessage> { new UserChatMessage("Write something") };
        var a = (await Chat.CompleteChatAsync(msgs, o)).Value.Content[0].Text;
        var b = (await Chat.CompleteChatAsync(msgs, o)).Value.Content[0].Text;
        Assert.Equal(a, b);
        var others = new HashSet<string>();
        for (int s = 0; s < 4; s++)
        {
            o.Seed = 99 + s;
            others.Add((await Chat.CompleteChatAsync(msgs, o)).Value.Content[0].Text);
        }
        others.Add(a);
        Assert.True(others.Count > 1, "five seeds all gave the same sampled text");
    }

    [Fact]
    public async Task Logprobs_have_the_requested_alternatives_and_the_chosen_token_is_the_most_likely_when_greedy()
    {
        var o = Greedy(6);
        o.IncludeLogProbabilities = true;
        o.TopLogProbabilityCount = 3;
        ChatCompletion c = await Chat.CompleteChatAsync([new UserChatMessage("Hello")], o);
        var lps = c.ContentTokenLogProbabilities;
        Assert.Equal(6, lps.Count);
        foreach (var t in lps)
        {
            Assert.Equal(3, t.TopLogProbabilities.Count);
            Assert.True(t.LogProbability <= 0);
            Assert.Equal(t.TopLogProbabilities[0].LogProbability, t.LogProbability, 4);
            Assert.True(t.TopLogProbabilities[0].LogProbability >= t.TopLogProbabilities[1].LogProbability);
        }
        Assert.Equal(c.Content[0].Text, string.Concat(lps.Select(t => t.Token)));
    }

    [Fact]
    public async Task Json_schema_response_format_gives_output_that_validates()
    {
        var schema = """
        {"type":"object","properties":{"name":{"type":"string","maxLength":24},"age":{"type":"integer","minimum":0,"maximum":130},
         "tags":{"type":"array","items":{"type":"string","enum":["red","green","blue"]},"maxItems":4}},
         "required":["name","age","tags"],"additionalProperties":false}
        """;
        var o = Greedy(120);
        o.ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("person", BinaryData.FromString(schema), jsonSchemaIsStrict: true);
        ChatCompletion c = await Chat.CompleteChatAsync([new UserChatMessage("Describe a person as JSON")], o);
        var text = c.Content[0].Text;
        using var doc = JsonDocument.Parse(text);
        var result = JsonSchema.FromText(schema).Evaluate(doc.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
        Assert.True(result.IsValid, $"{text} does not validate");
        Assert.Equal(ChatFinishReason.Stop, c.FinishReason);
    }

    [Fact]
    public async Task A_required_tool_call_is_parsed_and_its_streamed_deltas_reassemble_into_the_same_call()
    {
        var tool = ChatTool.CreateFunctionTool("get_weather", "Weather of a city", BinaryData.FromString(
            """{"type":"object","properties":{"city":{"type":"string","maxLength":20},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["city","unit"]}"""));
        ChatCompletionOptions O()
        {
            var o = Greedy(200);
            o.Tools.Add(tool);
            o.ToolChoice = ChatToolChoice.CreateRequiredChoice();
            return o;
        }
        var msgs = new List<ChatMessage> { new UserChatMessage("What is the weather in Paris?") };
        ChatCompletion c = await Chat.CompleteChatAsync(msgs, O());
        Assert.Equal(ChatFinishReason.ToolCalls, c.FinishReason);
        var call = Assert.Single(c.ToolCalls);
        Assert.Equal("get_weather", call.FunctionName);
        using (var args = JsonDocument.Parse(call.FunctionArguments.ToString()))
        {
            Assert.Equal(JsonValueKind.String, args.RootElement.GetProperty("city").ValueKind);
            Assert.Contains(args.RootElement.GetProperty("unit").GetString(), new[] { "celsius", "fahrenheit" });
        }

        var names = new Dictionary<int, string>();
        var argsText = new Dictionary<int, StringBuilder>();
        var ids = new Dictionary<int, string>();
        ChatFinishReason? finish = null;
        int fragments = 0;
        await foreach (var u in Chat.CompleteChatStreamingAsync(msgs, O()))
        {
            foreach (var t in u.ToolCallUpdates)
            {
                if (t.FunctionArgumentsUpdate?.ToString() is { Length: > 0 }) fragments++;
                if (t.FunctionName != null) names[t.Index] = t.FunctionName;
                if (t.ToolCallId != null) ids[t.Index] = t.ToolCallId;
                (argsText.TryGetValue(t.Index, out var sb) ? sb : argsText[t.Index] = new StringBuilder()).Append(t.FunctionArgumentsUpdate?.ToString());
            }
            finish ??= u.FinishReason;
        }
        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        Assert.Equal("get_weather", Assert.Single(names).Value);
        Assert.Equal(call.FunctionArguments.ToString(), argsText[0].ToString());
        Assert.StartsWith("call_", ids[0], StringComparison.Ordinal);
        Assert.True(fragments > 1, $"the arguments came in {fragments} fragment(s)"); // they stream as the model writes them

        // the call and its result go back into the conversation (the template renders them) and the model answers
        msgs.Add(new AssistantChatMessage([ChatToolCall.CreateFunctionToolCall(call.Id, call.FunctionName, call.FunctionArguments)]));
        msgs.Add(new ToolChatMessage(call.Id, """{"temperature": 21}"""));
        var after = Greedy(8);
        after.Tools.Add(tool);
        after.ToolChoice = ChatToolChoice.CreateNoneChoice();
        ChatCompletion answer = await Chat.CompleteChatAsync(msgs, after);
        Assert.Empty(answer.ToolCalls);
        Assert.NotEmpty(answer.Content[0].Text);
    }

    [Fact]
    public async Task Several_choices_come_back_with_their_indices()
    {
        // the SDK has no 'n'; send it raw
        var (status, body) = await S.PostAsync("v1/chat/completions",
            """{"model":"default","messages":[{"role":"user","content":"Hi"}],"n":3,"max_tokens":8,"temperature":1,"seed":7}""");
        Assert.Equal(200, status);
        var choices = body.GetProperty("choices");
        Assert.Equal(3, choices.GetArrayLength());
        Assert.Equal([0, 1, 2], choices.EnumerateArray().Select(c => c.GetProperty("index").GetInt32()));
        Assert.Equal(24, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Models_are_listed_and_embeddings_come_from_the_encoder()
    {
        var models = (await new OpenAIModelClient(new ApiKeyCredential("unused"), Options).GetModelsAsync()).Value;
        Assert.Contains(models, m => m.Id == "default");
        Assert.Contains(models, m => m.Id == "bert_mlm");

        var emb = new EmbeddingClient("bert_mlm", new ApiKeyCredential("unused"), Options);
        OpenAIEmbeddingCollection vs = await emb.GenerateEmbeddingsAsync(["the cat sat", "a dog ran"]);
        Assert.Equal(2, vs.Count);
        var a = vs[0].ToFloats().ToArray();
        var b = vs[1].ToFloats().ToArray();
        Assert.Equal(a.Length, b.Length);
        Assert.Equal(1.0, Math.Sqrt(a.Sum(x => (double)x * x)), 3); // normalised
        Assert.NotEqual(a, b);

        // the SDK asks for base64 by default; float gives the same numbers
        var (status, body) = await S.PostAsync("v1/embeddings", """{"model":"bert_mlm","input":"the cat sat","encoding_format":"float"}""");
        Assert.Equal(200, status);
        var floats = body.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(x => x.GetSingle()).ToArray();
        Assert.Equal(a, floats);
    }
}
