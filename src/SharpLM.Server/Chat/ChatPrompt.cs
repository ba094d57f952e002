using System.Text.Json;
using SharpLM.Inference.ChatTemplates;
using SharpLM.Server.Http;

namespace SharpLM.Server.Chat;

/// <summary>One message of a chat request, whatever API it came through.</summary>
internal sealed record ChatMessageIn(string Role, string Content, IReadOnlyList<ToolCall>? ToolCalls = null, string? ToolCallId = null, string? Name = null);

/// <summary>The chat template the server renders with (the model's, a --chat-template file, or ChatML) and the
/// texts of its BOS/EOS tokens.</summary>
internal sealed record ServingTemplate(ChatTemplate Template, string? BosToken, string? EosToken)
{
    /// <summary>The template writes BOS itself (so the encoder must not add another).</summary>
    public bool WritesBos => Template.Source.Contains("bos_token", StringComparison.Ordinal);
}

/// <summary>Renders a conversation with the model's chat template (tools included) and encodes it.</summary>
internal static class ChatPrompt
{
    /// <summary>The prompt ids of <paramref name="messages"/> plus the generation prompt.</summary>
    public static int[] Encode(ServerEngine engine, IReadOnlyList<ChatMessageIn> messages, IReadOnlyList<ToolDef>? tools, string messagesParam = "messages")
    {
        var template = engine.Template!;
        var source = template.Template.Source;
        var list = messages.ToList();
        var extra = new Dictionary<string, object?>();
        if (template.BosToken != null) extra["bos_token"] = template.BosToken;
        if (template.EosToken != null) extra["eos_token"] = template.EosToken;
        if (tools is { Count: > 0 })
        {
            if (ToolCalls.TemplateKnowsTools(source) && !engine.TemplateIsFallback)
            {
                var parsed = tools.Select(t => (object?)JsonDocument.Parse(ToolCalls.ToolJson(t)).RootElement.Clone()).ToList();
                extra["tools"] = parsed;
            }
            else
            {
                // the template cannot show tools: describe them (and the call format) in the system message
                var text = ToolCalls.Instructions(tools);
                if (list.Count > 0 && list[0].Role == "system") list[0] = list[0] with { Content = list[0].Content + "\n\n" + text };
                else list.Insert(0, new ChatMessageIn("system", text));
            }
        }
        var dicts = list.Select(ToDictionary).ToList();
        string prompt;
        try
        {
            prompt = template.Template.RenderMessages(dicts, addGenerationPrompt: true, extra);
        }
        catch (ChatTemplateException e)
        {
            throw ApiException.BadRequest($"the model's chat template refused these messages: {e.Message}", messagesParam);
        }
        return engine.Model!.RequireTokenizer().Encode(prompt, addBos: !template.WritesBos);
    }

    private static IReadOnlyDictionary<string, object?> ToDictionary(ChatMessageIn m)
    {
        var d = new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content };
        if (m.Name != null) d["name"] = m.Name;
        if (m.ToolCallId != null) d["tool_call_id"] = m.ToolCallId;
        if (m.ToolCalls is { Count: > 0 } calls)
            d["tool_calls"] = calls.Select(c => (object?)new Dictionary<string, object?>
            {
                ["id"] = c.Id,
                ["type"] = "function",
                ["function"] = new Dictionary<string, object?> { ["name"] = c.Name, ["arguments"] = ArgumentsValue(c.Arguments) },
            }).ToList();
        return d;
    }

    /// <summary>Templates print arguments with tojson and expect an object; OpenAI sends them as a JSON string.</summary>
    private static object? ArgumentsValue(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.Clone();
        }
        catch (JsonException)
        {
            return json;
        }
    }
}
