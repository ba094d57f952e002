using System.Text.Json;
using SharpLM.Inference.ChatTemplates;
using SharpLM.Testing;
using Xunit;

namespace SharpLM.Tests.Inference.ChatTemplates;

/// <summary>
/// Every case of tests/testdata/chat-templates/golden.json, rendered by the reference implementation (Python Jinja2
/// configured exactly as transformers' apply_chat_template does; tools/chat_template_golden.py), must render to the
/// same string here, or fail here too where Jinja2 raised.
/// </summary>
public class JinjaGoldenTests
{
    private const string Magic = "sharplm-chat-template-golden";

    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (var c in Load().GetProperty("cases").EnumerateArray()) data.Add(c.GetProperty("name").GetString()!);
        return data;
    }

    private static JsonElement Load()
    {
        var path = Path.Combine(TestPaths.TestData, "chat-templates", "golden.json");
        var root = JsonDocument.Parse(File.ReadAllText(path)).RootElement;
        if (root.GetProperty("magic").GetString() != Magic || root.GetProperty("version").GetInt32() != 1)
            throw new InvalidDataException($"{path} is stale or not a golden file: regenerate with tools/chat_template_golden.py");
        return root;
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void RendersLikeJinja2(string name)
    {
        var c = Load().GetProperty("cases").EnumerateArray().First(x => x.GetProperty("name").GetString() == name);
        string text = c.TryGetProperty("template", out var t) ? t.GetString()!
            : c.TryGetProperty("fixture", out var f) ? File.ReadAllText(Path.Combine(TestPaths.TestData, "chat-templates", f.GetString()!))
            : JsonDocument.Parse(File.ReadAllText(TestPaths.Asset(c.GetProperty("asset").GetString()!.Split('/')))).RootElement.GetProperty("chat_template").GetString()!;
        var raw = c.GetProperty("messages").EnumerateArray().ToList();
        // rich messages: more keys than role and content (tool calls, tools), or content as a list of parts (Gemma 3)
        bool rich = raw.Any(m => m.EnumerateObject().Any(p => p.Name is not ("role" or "content")) || m.GetProperty("content").ValueKind != JsonValueKind.String);
        var messages = rich ? [] : raw.Select(m => new ChatTurn(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)).ToList();
        var richMessages = raw.Select(m => (IReadOnlyDictionary<string, object?>)m.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone())).ToList();
        bool gen = c.GetProperty("add_generation_prompt").GetBoolean();
        var extra = c.GetProperty("extra").EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone());
        string Render() => rich ? ChatTemplate.Parse(text).RenderMessages(richMessages, gen, extra) : ChatTemplate.Parse(text).Render(messages, gen, extra);

        if (c.TryGetProperty("error", out var err))
        {
            var e = Assert.Throws<ChatTemplateException>(() => Render());
            Assert.False(string.IsNullOrEmpty(e.Message), $"Jinja2 said: {err.GetString()}");
            return;
        }
        string expected = c.GetProperty("expected").GetString()!;
        string actual = Render();
        if (expected != actual)
        {
            int i = 0;
            while (i < Math.Min(expected.Length, actual.Length) && expected[i] == actual[i]) i++;
            Assert.Fail($"{name}: first difference at char {i}\nexpected: {JsonSerializer.Serialize(expected[i..])}\nactual:   {JsonSerializer.Serialize(actual[i..])}");
        }
    }
}
