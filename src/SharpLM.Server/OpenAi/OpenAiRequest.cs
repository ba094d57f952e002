using System.Globalization;
using System.Text.Json;
using SharpLM.Inference.Constrained;
using SharpLM.Inference.Sampling;
using SharpLM.Server.Chat;
using SharpLM.Server.Http;
using SharpLM.Server.Scheduling;

namespace SharpLM.Server.OpenAi;

/// <summary>The request fields /v1/chat/completions and /v1/completions share: model, sampling, stop, logit_bias,
/// n, response_format, tools.</summary>
internal static class OpenAiRequest
{
    /// <summary>The chat model, or 404 naming the model.</summary>
    public static void RequireChatModel(ServerEngine engine, Fields f)
    {
        var name = f.String("model", required: true)!;
        if (engine.IsChatModel(name)) return;
        if (engine.IsEmbeddingModel(name))
            throw ApiException.BadRequest(engine.Model is null
                ? $"'{name}' is an embedding model and this server has no chat model; use /v1/embeddings"
                : $"'{name}' is an embedding model; use /v1/embeddings, or the chat model '{engine.ModelId}' here", "model", "model_not_supported");
        throw new ApiException(404, $"The model '{name}' does not exist on this server; it serves {Served(engine)}", "model", "model_not_found");
    }

    public static string Served(ServerEngine e)
    {
        var names = new List<string>();
        if (e.Options.Model != null) names.Add($"'{e.ModelId}'");
        if (e.EmbeddingModelId != null) names.Add($"'{e.EmbeddingModelId}' (embeddings)");
        return string.Join(" and ", names);
    }

    /// <summary>Sampling options from OpenAI's fields and SharpLM's extensions (top_k, min_p, repeat_penalty, repeat_last_n),
    /// or from Ollama's options (the same names, wider ranges). Fields left out keep SharpLM's defaults (llama.cpp's:
    /// temperature 0.8, top_k 40, top_p 0.95, min_p 0.05).</summary>
    public static SamplingOptions Sampling(Fields f, List<string> stops, bool ollama = false)
    {
        var d = SamplingOptions.Default;
        double maxTemperature = ollama ? 100 : 2, maxRepeat = ollama ? 100 : 10, penalty = ollama ? 100 : 2;
        return d with
        {
            Temperature = (float)(f.Number("temperature", 0, maxTemperature) ?? d.Temperature),
            TopP = (float)(f.Number("top_p", 0, 1) ?? d.TopP),
            TopK = f.Int("top_k", 0, 1_000_000) ?? d.TopK,
            MinP = (float)(f.Number("min_p", 0, 1) ?? d.MinP),
            RepeatPenalty = (float)(f.Number("repeat_penalty", 1e-6, maxRepeat) ?? d.RepeatPenalty),
            RepeatLastN = f.Int("repeat_last_n", -1, 1_000_000) ?? d.RepeatLastN,
            PresencePenalty = (float)(f.Number("presence_penalty", -penalty, penalty) ?? d.PresencePenalty),
            FrequencyPenalty = (float)(f.Number("frequency_penalty", -penalty, penalty) ?? d.FrequencyPenalty),
            Seed = f.Integer("seed") is long s ? unchecked((ulong)s) : null,
            StopStrings = stops,
        };
    }

    /// <summary>logit_bias: {"token id": bias in [-100, 100]}.</summary>
    public static Dictionary<int, float>? LogitBias(Fields f, int vocab)
    {
        if (f.Object("logit_bias") is not { } o) return null;
        var map = new Dictionary<int, float>();
        foreach (var p in o.Element.EnumerateObject())
        {
            string name = $"logit_bias.{p.Name}";
            if (!int.TryParse(p.Name, NumberStyles.None, CultureInfo.InvariantCulture, out int id) || id >= vocab)
                throw ApiException.BadRequest($"'logit_bias' keys must be token ids below the vocabulary size {vocab}, got \"{p.Name}\"", "logit_bias");
            if (p.Value.ValueKind != JsonValueKind.Number || p.Value.GetDouble() is < -100 or > 100)
                throw ApiException.BadRequest($"'{name}' must be a number between -100 and 100, got {Fields.Describe(p.Value)}", "logit_bias");
            double b = p.Value.GetDouble();
            map[id] = b <= -100 ? float.NegativeInfinity : (float)b; // -100 bans the token, as OpenAI documents
        }
        return map.Count > 0 ? map : null;
    }

    /// <summary>The most tokens: max_completion_tokens or max_tokens (null: until the context is full).</summary>
    public static int? MaxTokens(Fields f)
    {
        var a = f.Int("max_completion_tokens", 1);
        var b = f.Int("max_tokens", 1);
        return a ?? b;
    }

    public static int N(Fields f, ServerEngine engine)
    {
        int parallel = engine.Options.Parallel;
        var n = f.Integer("n", 1, 128) ?? 1;
        if (n > parallel) throw ApiException.BadRequest($"'n' = {n} asks for more choices than this server decodes at once ({parallel}, its --parallel); ask for at most {parallel}", "n");
        return (int)n;
    }

    /// <summary>response_format: text, json_object (any JSON object) or json_schema (output valid under the schema).</summary>
    public static ConstraintSpec? ResponseFormat(Fields f)
    {
        if (f.Object("response_format") is not { } rf) return null;
        var type = rf.String("type", required: true);
        switch (type)
        {
            case "text":
                return null;
            case "json_object":
                return new ConstraintSpec(JsonSchemaCompiler.AnyObject(), LeadingWhitespace: true);
            case "json_schema":
                {
                    var js = rf.Object("json_schema") ?? throw rf.Error("json_schema", "is required when type is json_schema", "missing_required_parameter");
                    var schema = js.Get("schema");
                    var node = schema is { } s ? Compile(s, js.Name("schema")) : JsonSchemaCompiler.AnyObject();
                    return new ConstraintSpec(node, LeadingWhitespace: true);
                }
            default:
                throw rf.Error("type", $"must be 'text', 'json_object' or 'json_schema', got '{type}'");
        }
    }

    public static GrammarNode Compile(JsonElement schema, string param)
    {
        try
        {
            return JsonSchemaCompiler.Compile(schema);
        }
        catch (JsonSchemaException e)
        {
            throw ApiException.BadRequest($"'{param}': {e.Message}", param, "invalid_schema");
        }
    }

    /// <summary>tools + tool_choice: the tools to render, whether to parse calls, and the grammar forcing a call.</summary>
    public static (List<ToolDef>? Tools, ToolCallFormat? Parse, ConstraintSpec? Constraint) Tools(Fields f, ServerEngine engine)
    {
        if (f.Has("functions") || f.Has("function_call"))
            throw ApiException.BadRequest("'functions' and 'function_call' are deprecated and not supported; use 'tools' and 'tool_choice'", f.Has("functions") ? "functions" : "function_call");
        var arr = f.Array("tools");
        var tools = new List<ToolDef>();
        if (arr is { } a)
        {
            int i = 0;
            foreach (var e in a.EnumerateArray())
            {
                var t = f.Item(e, "tools", i);
                var type = t.String("type") ?? "function";
                if (type != "function") throw t.Error("type", $"must be 'function', got '{type}'");
                var fn = t.Object("function") ?? throw t.Error("function", "is required", "missing_required_parameter");
                var name = fn.String("name", required: true)!;
                if (name.Length == 0 || name.Length > 64) throw fn.Error("name", "must be 1 to 64 characters");
                var parameters = fn.Get("parameters");
                if (parameters is { } p)
                {
                    if (p.ValueKind != JsonValueKind.Object) throw fn.Wrong("parameters", "a JSON schema object", p);
                    Compile(p, fn.Name("parameters")); // refuse a schema we cannot enforce now, not when the model calls
                }
                if (tools.Any(x => x.Name == name)) throw fn.Error("name", $"'{name}' is defined twice");
                tools.Add(new ToolDef(name, fn.String("description"), parameters?.Clone()));
                i++;
            }
        }
        string choice = "auto";
        ToolDef? forced = null;
        if (f.Get("tool_choice") is { } tc)
        {
            if (tc.ValueKind == JsonValueKind.String)
            {
                choice = tc.GetString()!;
                if (choice is not ("none" or "auto" or "required")) throw f.Error("tool_choice", $"must be 'none', 'auto', 'required' or {{\"type\":\"function\",\"function\":{{\"name\":...}}}}, got '{choice}'");
            }
            else if (tc.ValueKind == JsonValueKind.Object)
            {
                var o = f.Object("tool_choice")!.Value;
                var name = (o.Object("function") ?? throw o.Error("function", "is required", "missing_required_parameter")).String("name", required: true)!;
                forced = tools.FirstOrDefault(t => t.Name == name) ?? throw o.Error("function", $"names '{name}', which is not among the tools");
                choice = "function";
            }
            else throw f.Wrong("tool_choice", "a string or an object", tc);
        }
        if (tools.Count == 0)
        {
            if (choice is "required" or "function") throw f.Error("tool_choice", $"is '{choice}' but no tools were given");
            return (null, null, null);
        }
        var fmt = engine.ToolFormat;
        return choice switch
        {
            "none" => (tools, null, null),
            "required" => (tools, fmt, new ConstraintSpec(ToolCalls.Grammar(fmt, tools, afterTrigger: false))),
            "function" => (tools, fmt, new ConstraintSpec(ToolCalls.Grammar(fmt, [forced!], afterTrigger: false))),
            _ => (tools, fmt, fmt == ToolCallFormat.Hermes ? new ConstraintSpec(ToolCalls.Grammar(fmt, tools, afterTrigger: true), ToolCalls.HermesOpen) : null),
        };
    }

    /// <summary>The usage object every response carries.</summary>
    public static void WriteUsage(Utf8JsonWriter w, int prompt, int completion, int cached)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", prompt);
        w.WriteNumber("completion_tokens", completion);
        w.WriteNumber("total_tokens", prompt + completion);
        w.WriteStartObject("prompt_tokens_details");
        w.WriteNumber("cached_tokens", cached);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>Opens a response or chunk object: id, object, created, model, system_fingerprint.</summary>
    public static void WriteHeader(Utf8JsonWriter w, string id, string obj, long created, string model)
    {
        w.WriteStartObject();
        w.WriteString("id", id);
        w.WriteString("object", obj);
        w.WriteNumber("created", created);
        w.WriteString("model", model);
        w.WriteString("system_fingerprint", Fingerprint);
    }

    /// <summary>The last chunk of a stream with stream_options.include_usage: no choices, the usage.</summary>
    public static void WriteUsageChunk(Utf8JsonWriter w, string id, string obj, long created, string model, int prompt, int completion, int cached)
    {
        WriteHeader(w, id, obj, created, model);
        w.WriteStartArray("choices");
        w.WriteEndArray();
        WriteUsage(w, prompt, completion, cached);
        w.WriteEndObject();
    }

    public static long Now() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public const string Fingerprint = "sharplm";
}
