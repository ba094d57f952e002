using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using SharpLM.Inference.Constrained;
using SharpLM.Inference.Sampling;
using SharpLM.Server.Chat;
using SharpLM.Server.Scheduling;

namespace SharpLM.Server.Tests;

/// <summary>Tool calls: the Qwen template's tool prompt, a required call, and the
/// lazy grammar that takes over once the output contains the call's opening tag.</summary>
public sealed class ToolCallTests
{
    [Fact]
    public async Task With_qwens_template_tools_are_in_the_prompt_and_a_required_call_comes_back_in_its_format()
    {
        await using var s = await TestServer.StartAsync(TestServer.Defaults with { ChatTemplateFile = TestServer.QwenTemplate, ContextSize = 1024 });
        var engine = s.App.Services.GetRequiredService<ServerEngine>();
        Assert.Equal(ToolCallFormat.Hermes, engine.ToolFormat);
        using var p = JsonDocument.Parse("""{"type":"object","properties":{"city":{"type":"string","maxLength":10}},"required":["city"]}""");
        var ids = ChatPrompt.Encode(engine, [new ChatMessageIn("user", "Weather in Paris?")], [new ToolDef("get_weather", "Weather of a city", p.RootElement)]);
        var prompt = engine.Model!.Detokenize(ids);
        Assert.Contains("<tools>", prompt, StringComparison.Ordinal);
        Assert.Contains("\"name\": \"get_weather\"", prompt, StringComparison.Ordinal);

        const string tools = """[{"type":"function","function":{"name":"get_weather","description":"Weather of a city","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":10}},"required":["city"]}}}]""";
        var (status, r) = await s.PostAsync("v1/chat/completions", "{\"model\":\"default\",\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}],\"tools\":" + tools + ",\"tool_choice\":\"required\",\"temperature\":0}");
        Assert.Equal(200, status);
        var choice = r.GetProperty("choices")[0];
        Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
        var call = choice.GetProperty("message").GetProperty("tool_calls")[0];
        Assert.Equal("get_weather", call.GetProperty("function").GetProperty("name").GetString());
        var id = call.GetProperty("id").GetString();
        var args = call.GetProperty("function").GetProperty("arguments").GetString();

        // the call and its result go back through Qwen's template (tool_calls, role tool) and the model goes on
        var follow = $$"""
            {"model":"default","tools":{{tools}},"max_tokens":8,"temperature":0,"messages":[
              {"role":"user","content":"Weather in Paris?"},
              {"role":"assistant","content":null,"tool_calls":[{"id":"{{id}}","type":"function","function":{"name":"get_weather","arguments":{{JsonSerializer.Serialize(args)}} } }]},
              {"role":"tool","tool_call_id":"{{id}}","content":"21 C"}]}
            """;
        var (s2, r2) = await s.PostAsync("v1/chat/completions", follow);
        Assert.Equal(200, s2);
        int used = r2.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
        Assert.InRange(used, 1, 8);
        var rendered = engine.Model!.Detokenize(ChatPrompt.Encode(engine,
        [
            new ChatMessageIn("user", "Weather in Paris?"),
            new ChatMessageIn("assistant", "", [new ToolCall(id!, "get_weather", args!)]),
            new ChatMessageIn("tool", "21 C", ToolCallId: id),
        ], null));
        Assert.Contains("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": ", rendered, StringComparison.Ordinal);
        Assert.Contains("<tool_response>\n21 C\n</tool_response>", rendered, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_lazy_grammar_starts_at_its_trigger_and_the_rest_of_the_call_follows_it()
    {
        await using var s = await TestServer.StartAsync(TestServer.Defaults with { Parallel = 1 });
        var engine = s.App.Services.GetRequiredService<ServerEngine>();
        var prompt = engine.Model!.Tokenize("The jury said", addBos: true);
        // what the model says freely, and a trigger taken from it (the way "<tool_call>" would appear)
        var free = await Run(engine, new GenerationJob(prompt, 1, SamplingOptions.Greedy, 24, engine.EndOfTurn));
        Assert.True(free.Length > 8, free);
        var trigger = free[..Math.Min(4, free.Length)];
        var job = new GenerationJob(prompt, 1, SamplingOptions.Greedy, 200, engine.EndOfTurn)
        {
            Constraint = new ConstraintSpec(JsonSchemaCompiler.AnyObject(), trigger, LeadingWhitespace: true),
        };
        var text = await Run(engine, job);
        int at = text.IndexOf(trigger, StringComparison.Ordinal);
        Assert.True(at >= 0, text);
        var rest = Encoding.UTF8.GetBytes(text[(at + trigger.Length)..]);
        var reader = new Utf8JsonReader(rest, new JsonReaderOptions { AllowMultipleValues = true });
        Assert.True(JsonDocument.TryParseValue(ref reader, out var doc), $"no JSON object after the trigger: {text}");
        Assert.Equal(JsonValueKind.Object, doc!.RootElement.ValueKind);
        doc.Dispose();
    }

    private static async Task<string> Run(ServerEngine engine, GenerationJob job)
    {
        engine.Scheduler!.Submit(job);
        var ids = new List<int>();
        await foreach (var e in job.Events.ReadAllAsync())
            if (e.Finish is null && e.Token >= 0) ids.Add(e.Token);
        return engine.Model!.Detokenize(ids);
    }
}
