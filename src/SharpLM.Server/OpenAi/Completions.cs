using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;
using SharpLM.Server.Http;

namespace SharpLM.Server.OpenAi;

/// <summary>POST /v1/completions: raw prompts (a string, strings, token ids, or lists of token ids), with echo and
/// legacy logprobs. A string prompt gets BOS as <c>sharplm generate</c> gives it; token ids are taken as they are.</summary>
internal static class Completions
{
    public static async Task HandleAsync(HttpContext ctx, ServerEngine engine)
    {
        using var doc = await Fields.ReadBodyAsync(ctx, engine.Options.MaxRequestBodyBytes).ConfigureAwait(false);
        var f = Fields.Root(doc);
        OpenAiRequest.RequireChatModel(engine, f);
        var model = engine.Model!;
        var prompts = Prompts(f, engine);
        if (f.String("suffix") is { Length: > 0 }) throw f.Error("suffix", "(fill-in-the-middle) is not supported", "unsupported_parameter");
        int n = OpenAiRequest.N(f, engine);
        if (f.Int("best_of", 1, 128) is int bestOf && bestOf != n) throw f.Error("best_of", $"must equal n ({n}): this server does not rank candidates", "unsupported_parameter");
        bool stream = f.Bool("stream") ?? false;
        bool includeUsage = f.Object("stream_options") is { } so && (so.Bool("include_usage") ?? false);
        bool echo = f.Bool("echo") ?? false;
        int? logprobs = f.Int("logprobs", 0, 20);
        var settings = new GenerationSettings
        {
            Sampling = OpenAiRequest.Sampling(f, f.Strings("stop")),
            MaxTokens = OpenAiRequest.MaxTokens(f) ?? 16, // OpenAI's documented default for this endpoint
            N = n,
            LogitBias = OpenAiRequest.LogitBias(f, model.Config.Vocab),
            TopLogprobs = logprobs ?? -1,
            PromptLogprobs = echo && logprobs is not null,
            Constraint = OpenAiRequest.ResponseFormat(f),
            Chat = false,
            PromptParam = "prompt",
        };
        var gens = new List<Generation>();
        try
        {
            foreach (var p in prompts) gens.Add(Generation.Start(engine, p, settings, "completions"));
        }
        catch
        {
            foreach (var g in gens) g.Job.Cancel();
            throw;
        }
        string id = "cmpl-" + Guid.NewGuid().ToString("N")[..24];
        long created = OpenAiRequest.Now();
        string modelName = f.String("model")!;
        var codec = model.RequireTokenizer();

        // all prompts' deltas in one stream, each tagged with its choice index (prompt * n + choice)
        var merged = Channel.CreateUnbounded<(int Index, Generation Gen, Delta D)>();
        var readers = gens.Select((g, pi) => Task.Run(async () =>
        {
            await foreach (var d in g.ReadAsync(ctx.RequestAborted).ConfigureAwait(false))
                await merged.Writer.WriteAsync((pi * n + d.Choice, g, d), ctx.RequestAborted).ConfigureAwait(false);
        })).ToArray();
        _ = Task.WhenAll(readers).ContinueWith(t => merged.Writer.TryComplete(t.Exception?.InnerException), TaskScheduler.Default);

        int total = prompts.Count * n;
        var started = new bool[total];
        var offsets = new int[total];
        string EchoText(int index) => echo ? codec.Decode(prompts[index / n]) : "";

        if (stream)
        {
            var sse = new EventStream(ctx, sse: true);
            try
            {
                await foreach (var (index, g, d) in merged.Reader.ReadAllAsync(ctx.RequestAborted).ConfigureAwait(false))
                {
                    string text = d.Content;
                    List<LogprobEntry?>? lps = d.Logprobs?.Select(x => (LogprobEntry?)x).ToList();
                    if (!started[index])
                    {
                        started[index] = true;
                        if (echo)
                        {
                            text = EchoText(index) + text;
                            if (lps != null && g.PromptLogprobs != null) lps.InsertRange(0, g.PromptLogprobs);
                        }
                    }
                    int offset = offsets[index];
                    offsets[index] += text.Length;
                    await sse.WriteAsync(w =>
                    {
                        OpenAiRequest.WriteHeader(w, id, "text_completion", created, modelName);
                        w.WriteStartArray("choices");
                        WriteChoice(w, index, text, lps, offset, d.Finish, logprobs is not null);
                        w.WriteEndArray();
                        w.WriteEndObject();
                    }).ConfigureAwait(false);
                }
                if (includeUsage)
                    await sse.WriteAsync(w => OpenAiRequest.WriteUsageChunk(w, id, "text_completion", created, modelName,
                        gens.Sum(g => g.PromptTokens), gens.Sum(g => g.CompletionTokens), gens.Sum(g => g.CachedTokens))).ConfigureAwait(false);
                await sse.DoneAsync().ConfigureAwait(false);
            }
            catch (ApiException e)
            {
                await sse.ErrorAsync(e, ollama: false).ConfigureAwait(false);
            }
            return;
        }

        var texts = new StringBuilder[total];
        var entries = new List<LogprobEntry?>[total];
        var finish = new string?[total];
        for (int i = 0; i < total; i++) { texts[i] = new(); entries[i] = []; }
        await foreach (var (index, g, d) in merged.Reader.ReadAllAsync(ctx.RequestAborted).ConfigureAwait(false))
        {
            if (!started[index])
            {
                started[index] = true;
                if (echo)
                {
                    texts[index].Append(EchoText(index));
                    if (logprobs is not null && g.PromptLogprobs != null) entries[index].AddRange(g.PromptLogprobs);
                }
            }
            texts[index].Append(d.Content);
            if (d.Logprobs != null) entries[index].AddRange(d.Logprobs);
            if (d.Finish != null) finish[index] = d.Finish;
        }
        await JsonOut.WriteAsync(ctx, w =>
        {
            OpenAiRequest.WriteHeader(w, id, "text_completion", created, modelName);
            w.WriteStartArray("choices");
            for (int i = 0; i < total; i++) WriteChoice(w, i, texts[i].ToString(), entries[i], 0, finish[i] ?? "stop", logprobs is not null);
            w.WriteEndArray();
            OpenAiRequest.WriteUsage(w, gens.Sum(g => g.PromptTokens), gens.Sum(g => g.CompletionTokens), gens.Sum(g => g.CachedTokens));
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    /// <summary>One choice with the legacy logprobs object {tokens, token_logprobs, top_logprobs, text_offset}.</summary>
    private static void WriteChoice(Utf8JsonWriter w, int index, string text, List<LogprobEntry?>? lps, int offset, string? finish, bool logprobs)
    {
        w.WriteStartObject();
        w.WriteString("text", text);
        w.WriteNumber("index", index);
        if (logprobs && lps != null)
        {
            w.WriteStartObject("logprobs");
            w.WriteStartArray("tokens");
            foreach (var e in lps) w.WriteStringValue(e?.Token ?? "");
            w.WriteEndArray();
            w.WriteStartArray("token_logprobs");
            foreach (var e in lps) { if (e is null || float.IsNaN(e.Logprob)) w.WriteNullValue(); else w.WriteNumberValue(Finite(e.Logprob)); }
            w.WriteEndArray();
            w.WriteStartArray("top_logprobs");
            foreach (var e in lps)
            {
                if (e is null || float.IsNaN(e.Logprob)) { w.WriteNullValue(); continue; }
                w.WriteStartObject();
                foreach (var (t, lp) in e.Top) w.WriteNumber(t, Finite(lp));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("text_offset");
            int at = offset;
            foreach (var e in lps) { w.WriteNumberValue(at); at += e?.Token.Length ?? 0; }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        else w.WriteNull("logprobs");
        if (finish is null) w.WriteNull("finish_reason"); else w.WriteString("finish_reason", finish);
        w.WriteEndObject();
    }

    private static float Finite(float x) => float.IsNegativeInfinity(x) ? -9999f : x;

    /// <summary>prompt: a string, an array of strings, an array of token ids, or an array of arrays of token ids.</summary>
    private static List<int[]> Prompts(Fields f, ServerEngine engine)
    {
        var p = f.Get("prompt") ?? throw f.Error("prompt", "is required", "missing_required_parameter");
        var codec = engine.Model!.RequireTokenizer();
        int vocab = engine.Model.Config.Vocab;
        var list = new List<int[]>();
        int[] Ids(JsonElement arr, string name) => [.. Fields.TokenIds(arr, name, vocab, "prompt")];
        int[] Text(string s) => codec.Encode(s, addBos: true);
        switch (p.ValueKind)
        {
            case JsonValueKind.String:
                list.Add(Text(p.GetString()!));
                break;
            case JsonValueKind.Array when p.GetArrayLength() == 0:
                throw f.Error("prompt", "is an empty array");
            case JsonValueKind.Array:
                {
                    var first = p[0];
                    if (first.ValueKind == JsonValueKind.Number) list.Add(Ids(p, "prompt"));
                    else
                    {
                        int i = 0;
                        foreach (var e in p.EnumerateArray())
                        {
                            if (e.ValueKind == JsonValueKind.String) list.Add(Text(e.GetString()!));
                            else if (e.ValueKind == JsonValueKind.Array) list.Add(Ids(e, $"prompt[{i}]"));
                            else throw ApiException.BadRequest($"'prompt[{i}]' must be a string or an array of token ids, got {Fields.Describe(e)}", "prompt", "invalid_type");
                            i++;
                        }
                    }
                    break;
                }
            default:
                throw f.Wrong("prompt", "a string, an array of strings, or an array of token ids", p);
        }
        for (int i = 0; i < list.Count; i++)
            if (list[i].Length == 0) throw ApiException.BadRequest(list.Count == 1 ? "'prompt' is empty" : $"'prompt[{i}]' is empty", "prompt");
        if (list.Count * OpenAiRequest.N(f, engine) > engine.Options.Parallel * 4 + engine.Options.MaxQueue)
            throw f.Error("prompt", $"has {list.Count} prompts; send fewer at once");
        return list;
    }
}
