using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using SharpLM.Server.Chat;
using SharpLM.Server.Http;

namespace SharpLM.Server.OpenAi;

/// <summary>POST /v1/chat/completions: messages through the chat template, streamed (SSE) or whole.</summary>
internal static class ChatCompletions
{
    public static async Task HandleAsync(HttpContext ctx, ServerEngine engine)
    {
        using var doc = await Fields.ReadBodyAsync(ctx, engine.Options.MaxRequestBodyBytes).ConfigureAwait(false);
        var f = Fields.Root(doc);
        OpenAiRequest.RequireChatModel(engine, f);
        var messages = Messages(f);
        foreach (var field in new[] { "audio", "prediction" })
            if (f.Has(field)) throw f.Error(field, "is not supported by this server", "unsupported_parameter");
        if (f.Array("modalities") is { } mods && mods.EnumerateArray().Any(m => m.ValueKind != JsonValueKind.String || m.GetString() != "text"))
            throw f.Error("modalities", "supports only [\"text\"]", "unsupported_parameter");

        bool stream = f.Bool("stream") ?? false;
        bool includeUsage = f.Object("stream_options") is { } so && (so.Bool("include_usage") ?? false);
        bool logprobs = f.Bool("logprobs") ?? false;
        int? topLogprobs = f.Int("top_logprobs", 0, 20);
        if (topLogprobs is not null && !logprobs) throw f.Error("top_logprobs", "needs 'logprobs': true");
        var stops = f.Strings("stop");
        var sampling = OpenAiRequest.Sampling(f, stops);
        var (tools, parse, toolConstraint) = OpenAiRequest.Tools(f, engine);
        var format = OpenAiRequest.ResponseFormat(f);
        var settings = new GenerationSettings
        {
            Sampling = sampling,
            MaxTokens = OpenAiRequest.MaxTokens(f) ?? int.MaxValue,
            N = OpenAiRequest.N(f, engine),
            LogitBias = OpenAiRequest.LogitBias(f, engine.Model!.Config.Vocab),
            TopLogprobs = logprobs ? topLogprobs ?? 0 : -1,
            Constraint = toolConstraint ?? format,
            Tools = parse,
            Chat = true,
        };
        var prompt = ChatPrompt.Encode(engine, messages, tools);
        var gen = Generation.Start(engine, prompt, settings, "chat");
        string id = "chatcmpl-" + Guid.NewGuid().ToString("N")[..24];
        long created = OpenAiRequest.Now();
        string model = f.String("model")!;

        if (stream)
        {
            var sse = new EventStream(ctx, sse: true);
            try
            {
                for (int i = 0; i < settings.N; i++)
                {
                    int index = i;
                    await sse.WriteAsync(w => Chunk(w, id, created, model, index, w2 =>
                    {
                        w2.WriteString("role", "assistant");
                        w2.WriteString("content", "");
                    }, null, null)).ConfigureAwait(false);
                }
                await foreach (var d in gen.ReadAsync(ctx.RequestAborted).ConfigureAwait(false))
                {
                    // text first, then each tool-call piece as OpenAI streams it: a call's first delta has its index, id,
                    // type, name and empty arguments; the following ones its index and a fragment of the arguments
                    var lp = d.Logprobs;
                    if (d.Content.Length > 0 || (lp != null && d.Calls is null))
                    {
                        var content = d.Content;
                        var l = lp;
                        await sse.WriteAsync(w => Chunk(w, id, created, model, d.Choice, w2 =>
                        {
                            if (content.Length > 0) w2.WriteString("content", content);
                        }, l, null)).ConfigureAwait(false);
                        lp = null;
                    }
                    foreach (var part in d.Calls ?? [])
                    {
                        if (part.Id != null)
                        {
                            var l = lp;
                            await sse.WriteAsync(w => Chunk(w, id, created, model, d.Choice, w2 => WriteCallDelta(w2, part.Index, part.Id, part.Name, ""), l, null)).ConfigureAwait(false);
                            lp = null;
                        }
                        if (part.Arguments.Length > 0)
                        {
                            var l = lp;
                            await sse.WriteAsync(w => Chunk(w, id, created, model, d.Choice, w2 => WriteCallDelta(w2, part.Index, null, null, part.Arguments), l, null)).ConfigureAwait(false);
                            lp = null;
                        }
                    }
                    if (lp != null)
                        await sse.WriteAsync(w => Chunk(w, id, created, model, d.Choice, _ => { }, lp, null)).ConfigureAwait(false);
                    if (d.Finish != null)
                        await sse.WriteAsync(w => Chunk(w, id, created, model, d.Choice, _ => { }, null, d.Finish)).ConfigureAwait(false);
                }
                if (includeUsage)
                    await sse.WriteAsync(w => OpenAiRequest.WriteUsageChunk(w, id, "chat.completion.chunk", created, model, gen.PromptTokens, gen.CompletionTokens, gen.CachedTokens)).ConfigureAwait(false);
                await sse.DoneAsync().ConfigureAwait(false);
            }
            catch (ApiException e)
            {
                await sse.ErrorAsync(e, ollama: false).ConfigureAwait(false);
            }
            return;
        }

        var text = new StringBuilder[settings.N];
        var calls = new ToolCallAssembler[settings.N];
        var lps = new List<LogprobEntry>[settings.N];
        var finish = new string?[settings.N];
        for (int i = 0; i < settings.N; i++) { text[i] = new(); calls[i] = new(); lps[i] = []; }
        await foreach (var d in gen.ReadAsync(ctx.RequestAborted).ConfigureAwait(false))
        {
            text[d.Choice].Append(d.Content);
            calls[d.Choice].Add(d.Calls);
            if (d.Logprobs != null) lps[d.Choice].AddRange(d.Logprobs);
            if (d.Finish != null) finish[d.Choice] = d.Finish;
        }
        await JsonOut.WriteAsync(ctx, w =>
        {
            OpenAiRequest.WriteHeader(w, id, "chat.completion", created, model);
            w.WriteStartArray("choices");
            for (int i = 0; i < settings.N; i++)
            {
                w.WriteStartObject();
                w.WriteNumber("index", i);
                w.WriteStartObject("message");
                w.WriteString("role", "assistant");
                var made = calls[i].Completed;
                if (made.Count > 0 && text[i].Length == 0) w.WriteNull("content");
                else w.WriteString("content", text[i].ToString());
                w.WriteNull("refusal");
                if (made.Count > 0) WriteCalls(w, made);
                w.WriteEndObject();
                if (logprobs) WriteLogprobs(w, lps[i]);
                else w.WriteNull("logprobs");
                w.WriteString("finish_reason", finish[i] ?? "stop");
                w.WriteEndObject();
            }
            w.WriteEndArray();
            OpenAiRequest.WriteUsage(w, gen.PromptTokens, gen.CompletionTokens, gen.CachedTokens);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static void Chunk(Utf8JsonWriter w, string id, long created, string model, int index, Action<Utf8JsonWriter> delta, List<LogprobEntry>? logprobs, string? finish)
    {
        OpenAiRequest.WriteHeader(w, id, "chat.completion.chunk", created, model);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", index);
        w.WriteStartObject("delta");
        delta(w);
        w.WriteEndObject();
        if (logprobs != null) WriteLogprobs(w, logprobs);
        else w.WriteNull("logprobs");
        if (finish is null) w.WriteNull("finish_reason"); else w.WriteString("finish_reason", finish);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteCalls(Utf8JsonWriter w, List<ToolCall> calls)
    {
        w.WriteStartArray("tool_calls");
        foreach (var c in calls)
        {
            w.WriteStartObject();
            w.WriteString("id", c.Id);
            w.WriteString("type", "function");
            w.WriteStartObject("function");
            w.WriteString("name", c.Name);
            w.WriteString("arguments", c.Arguments);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>One streamed tool-call delta: the first of a call has id, type and name, the rest an arguments fragment.</summary>
    private static void WriteCallDelta(Utf8JsonWriter w, int index, string? callId, string? name, string arguments)
    {
        w.WriteStartArray("tool_calls");
        w.WriteStartObject();
        w.WriteNumber("index", index);
        if (callId != null)
        {
            w.WriteString("id", callId);
            w.WriteString("type", "function");
        }
        w.WriteStartObject("function");
        if (name != null) w.WriteString("name", name);
        w.WriteString("arguments", arguments);
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndArray();
    }

    internal static void WriteLogprobs(Utf8JsonWriter w, List<LogprobEntry> entries)
    {
        w.WriteStartObject("logprobs");
        w.WriteStartArray("content");
        foreach (var e in entries)
        {
            w.WriteStartObject();
            WriteToken(w, e.Token, e.Logprob);
            w.WriteStartArray("top_logprobs");
            foreach (var (t, lp) in e.Top)
            {
                w.WriteStartObject();
                WriteToken(w, t, lp);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNull("refusal");
        w.WriteEndObject();
    }

    private static void WriteToken(Utf8JsonWriter w, string token, float logprob)
    {
        w.WriteString("token", token);
        w.WriteNumber("logprob", float.IsNegativeInfinity(logprob) ? -9999f : logprob);
        w.WriteStartArray("bytes");
        foreach (var b in Encoding.UTF8.GetBytes(token)) w.WriteNumberValue(b);
        w.WriteEndArray();
    }

    /// <summary>The messages array: roles, text content (a string or text parts), tool calls and tool results.</summary>
    private static List<ChatMessageIn> Messages(Fields f)
    {
        var arr = f.Array("messages") ?? throw f.Error("messages", "is required", "missing_required_parameter");
        if (arr.GetArrayLength() == 0) throw f.Error("messages", "must contain at least one message");
        var list = new List<ChatMessageIn>();
        int i = 0;
        foreach (var e in arr.EnumerateArray())
        {
            var m = f.Item(e, "messages", i++);
            var role = m.String("role", required: true)!;
            if (role == "developer") role = "system";
            if (role is not ("system" or "user" or "assistant" or "tool"))
                throw m.Error("role", $"must be 'system', 'developer', 'user', 'assistant' or 'tool', got '{role}'");
            var content = Content(m, role);
            List<ToolCall>? calls = null;
            if (role == "assistant" && m.Array("tool_calls") is { } tc)
            {
                calls = [];
                int k = 0;
                foreach (var c in tc.EnumerateArray())
                {
                    var cf = m.Item(c, "tool_calls", k++);
                    var fn = cf.Object("function") ?? throw cf.Error("function", "is required", "missing_required_parameter");
                    var args = fn.Get("arguments") is { } a ? a.ValueKind == JsonValueKind.String ? a.GetString()! : a.GetRawText() : "{}";
                    calls.Add(new ToolCall(cf.String("id") ?? ToolCalls.NewId(), fn.String("name", required: true)!, args));
                }
            }
            string? toolCallId = role == "tool" ? m.String("tool_call_id") : null;
            if (content is null && calls is null) throw m.Error("content", "is required for this role", "missing_required_parameter");
            list.Add(new ChatMessageIn(role, content ?? "", calls, toolCallId, m.String("name")));
        }
        return list;
    }

    private static string? Content(Fields m, string role)
    {
        if (m.Get("content") is not { } c) return null;
        if (c.ValueKind == JsonValueKind.String) return c.GetString();
        if (c.ValueKind != JsonValueKind.Array) throw m.Wrong("content", "a string or an array of content parts", c);
        var sb = new StringBuilder();
        int k = 0;
        foreach (var part in c.EnumerateArray())
        {
            var p = m.Item(part, "content", k++);
            var type = p.String("type", required: true);
            if (type is "text" or "input_text") sb.Append(p.String("text", required: true));
            else if (type == "refusal" && role == "assistant") sb.Append(p.String("refusal"));
            else throw p.Error("type", $"'{type}' content is not supported: this server's models read text only", "unsupported_content");
        }
        return sb.ToString();
    }
}
