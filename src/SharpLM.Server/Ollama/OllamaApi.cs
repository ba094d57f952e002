using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using SharpLM.Inference.Constrained;
using SharpLM.Inference.Sampling;
using SharpLM.Server.Chat;
using SharpLM.Server.Http;
using SharpLM.Server.OpenAi;
using SharpLM.Server.Scheduling;

namespace SharpLM.Server.Ollama;

/// <summary>
/// Ollama's API: /api/chat and /api/generate (NDJSON streaming by default, the last object with done: true and its
/// counters), /api/embed and /api/embeddings, /api/tags, /api/show, /api/ps, /api/version. Errors are Ollama's
/// <c>{"error": "..."}</c>.
/// </summary>
internal static class OllamaApi
{
    /// <summary>The Ollama API version this server follows (clients check it).</summary>
    public const string Version = "0.9.0";

    private static string Now() => DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    private static string ModelName(Fields f) => f.String("model") ?? f.String("name") ?? throw f.Error("model", "is required", "missing_required_parameter");

    private static void RequireChat(ServerEngine engine, string name)
    {
        if (engine.IsChatModel(name)) return;
        if (engine.IsEmbeddingModel(name)) throw ApiException.BadRequest($"\"{name}\" does not support chat or generate", "model");
        throw new ApiException(404, $"model \"{name}\" not found, try pulling it first (this server serves {OpenAiRequest.Served(engine)})", "model", "model_not_found");
    }

    /// <summary>options {...} and format: sampling, num_predict, stop, seed; format "json" or a JSON schema.</summary>
    private static (SamplingOptions Sampling, int MaxTokens, ConstraintSpec? Format) Options(Fields f)
    {
        var s = SamplingOptions.Default;
        int max = int.MaxValue;
        if (f.Object("options") is { } o)
        {
            s = OpenAiRequest.Sampling(o, o.Strings("stop"), ollama: true);
            if (o.Int("num_predict", -2) is int np && np >= 0) max = np;
            o.Int("num_ctx", 1); // accepted (the context is set at startup), but must be a number
        }
        ConstraintSpec? format = null;
        if (f.Get("format") is { } fm)
        {
            if (fm.ValueKind == JsonValueKind.String)
            {
                var v = fm.GetString();
                if (v == "json") format = new ConstraintSpec(JsonSchemaCompiler.AnyObject(), LeadingWhitespace: true);
                else if (v != "") throw f.Error("format", $"must be \"json\" or a JSON schema object, got \"{v}\"");
            }
            else if (fm.ValueKind == JsonValueKind.Object) format = new ConstraintSpec(OpenAiRequest.Compile(fm, "format"), LeadingWhitespace: true);
            else throw f.Wrong("format", "\"json\" or a JSON schema object", fm);
        }
        return (s, max, format);
    }

    /// <summary>What /api/chat and /api/generate read first: the chat model's name, options and format.</summary>
    private static (Fields F, string Name, SamplingOptions Sampling, int MaxTokens, ConstraintSpec? Format) Begin(JsonDocument doc, ServerEngine engine)
    {
        var f = Fields.Root(doc);
        var name = ModelName(f);
        RequireChat(engine, name);
        var (sampling, max, format) = Options(f);
        return (f, name, sampling, max, format);
    }

    private static void RejectImages(Fields f, string field = "images")
    {
        if (f.Array(field) is { } imgs && imgs.GetArrayLength() > 0) throw f.Error(field, "are not supported: this server's models read text only", "unsupported_content");
    }

    public static async Task ChatAsync(HttpContext ctx, ServerEngine engine)
    {
        using var doc = await Fields.ReadBodyAsync(ctx, engine.Options.MaxRequestBodyBytes).ConfigureAwait(false);
        var (f, name, sampling, max, format) = Begin(doc, engine);
        var messages = new List<ChatMessageIn>();
        if (f.Array("messages") is { } arr)
        {
            int i = 0;
            foreach (var e in arr.EnumerateArray())
            {
                var m = f.Item(e, "messages", i++);
                var role = m.String("role", required: true)!;
                if (role is not ("system" or "user" or "assistant" or "tool")) throw m.Error("role", $"must be system, user, assistant or tool, got \"{role}\"");
                RejectImages(m);
                List<ToolCall>? calls = null;
                if (m.Array("tool_calls") is { } tc)
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
                messages.Add(new ChatMessageIn(role, m.String("content") ?? "", calls, role == "tool" ? m.String("tool_call_id") : null, m.String("tool_name") ?? m.String("name")));
            }
        }
        var tools = Tools(f);
        bool stream = f.Bool("stream") ?? true;
        if (messages.Count == 0)
        {
            // Ollama loads the model and answers at once
            await JsonOut.WriteAsync(ctx, w =>
            {
                w.WriteStartObject();
                w.WriteString("model", name);
                w.WriteString("created_at", Now());
                w.WriteStartObject("message"); w.WriteString("role", "assistant"); w.WriteString("content", ""); w.WriteEndObject();
                w.WriteString("done_reason", "load");
                w.WriteBoolean("done", true);
                w.WriteEndObject();
            }).ConfigureAwait(false);
            return;
        }
        var fmt = engine.ToolFormat;
        var settings = new GenerationSettings
        {
            Sampling = sampling,
            MaxTokens = max,
            Constraint = tools is { Count: > 0 } && fmt == ToolCallFormat.Hermes
                ? new ConstraintSpec(ToolCalls.Grammar(fmt, tools, afterTrigger: true), ToolCalls.HermesOpen) : format,
            Tools = tools is { Count: > 0 } ? fmt : null,
            Chat = true,
        };
        var prompt = ChatPrompt.Encode(engine, messages, tools);
        var gen = Generation.Start(engine, prompt, settings, "api/chat");
        await RespondAsync(ctx, engine, gen, name, stream, chat: true, null).ConfigureAwait(false);
    }

    private static List<ToolDef>? Tools(Fields f)
    {
        if (f.Array("tools") is not { } arr) return null;
        var tools = new List<ToolDef>();
        int i = 0;
        foreach (var e in arr.EnumerateArray())
        {
            var t = f.Item(e, "tools", i++);
            var fn = t.Object("function") ?? throw t.Error("function", "is required", "missing_required_parameter");
            var parameters = fn.Get("parameters") is { ValueKind: JsonValueKind.Object } p ? WithoutUnset(p) : fn.Get("parameters");
            if (parameters is { } ps) OpenAiRequest.Compile(ps, fn.Name("parameters"));
            tools.Add(new ToolDef(fn.String("name", required: true)!, fn.String("description"), parameters?.Clone()));
        }
        return tools;
    }

    /// <summary>
    /// A tool's parameter schema without the keywords a client left unset: members that are null (but for const,
    /// default and examples, where null is a value) and empty enum arrays. Typed Ollama clients serialise every property
    /// of their schema classes (OllamaSharp sends "enum" for a property without one); Ollama itself ignores them.
    /// </summary>
    internal static JsonElement WithoutUnset(JsonElement schema)
    {
        static bool Unset(JsonProperty p) =>
            (p.Value.ValueKind == JsonValueKind.Null && p.Name is not ("const" or "default" or "examples"))
            || (p.Name == "enum" && p.Value.ValueKind == JsonValueKind.Array && p.Value.GetArrayLength() == 0);
        static bool Any(JsonElement e) => e.ValueKind switch
        {
            JsonValueKind.Object => e.EnumerateObject().Any(p => Unset(p) || Any(p.Value)),
            JsonValueKind.Array => e.EnumerateArray().Any(Any),
            _ => false,
        };
        static void Write(Utf8JsonWriter w, JsonElement e)
        {
            if (e.ValueKind == JsonValueKind.Object)
            {
                w.WriteStartObject();
                foreach (var p in e.EnumerateObject())
                {
                    if (Unset(p)) continue;
                    w.WritePropertyName(p.Name);
                    if (p.Name is "const" or "default" or "examples" or "enum") p.Value.WriteTo(w); // values, not schemas
                    else Write(w, p.Value);
                }
                w.WriteEndObject();
            }
            else if (e.ValueKind == JsonValueKind.Array)
            {
                w.WriteStartArray();
                foreach (var x in e.EnumerateArray()) Write(w, x);
                w.WriteEndArray();
            }
            else e.WriteTo(w);
        }
        if (!Any(schema)) return schema;
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) Write(w, schema);
        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return doc.RootElement.Clone();
    }

    public static async Task GenerateAsync(HttpContext ctx, ServerEngine engine)
    {
        using var doc = await Fields.ReadBodyAsync(ctx, engine.Options.MaxRequestBodyBytes).ConfigureAwait(false);
        var (f, name, sampling, max, format) = Begin(doc, engine);
        RejectImages(f);
        if (f.String("suffix") is { Length: > 0 }) throw f.Error("suffix", "(fill-in-the-middle) is not supported", "unsupported_parameter");
        if (f.String("template") is { Length: > 0 }) throw f.Error("template", "(a Go template) is not supported; use raw: true with a prompt you formatted", "unsupported_parameter");
        var text = f.String("prompt") ?? "";
        bool raw = f.Bool("raw") ?? false;
        bool stream = f.Bool("stream") ?? true;
        var system = f.String("system");
        int[] context = [];
        if (f.Array("context") is { } ctxArr) context = [.. Fields.TokenIds(ctxArr, "context", engine.Model!.Config.Vocab, "context")];
        if (text.Length == 0 && context.Length == 0)
        {
            await JsonOut.WriteAsync(ctx, w =>
            {
                w.WriteStartObject();
                w.WriteString("model", name);
                w.WriteString("created_at", Now());
                w.WriteString("response", "");
                w.WriteBoolean("done", true);
                w.WriteString("done_reason", "load");
                w.WriteEndObject();
            }).ConfigureAwait(false);
            return;
        }
        var codec = engine.Model!.RequireTokenizer();
        int[] ids2;
        if (raw || engine.TemplateIsFallback)
        {
            // no template (or raw): the prompt as given, as `sharplm generate --prompt` encodes it
            var full = system != null && !raw ? system + "\n\n" + text : text;
            ids2 = codec.Encode(full, addBos: context.Length == 0);
        }
        else
        {
            var msgs = new List<ChatMessageIn>();
            if (system != null) msgs.Add(new ChatMessageIn("system", system));
            msgs.Add(new ChatMessageIn("user", text));
            ids2 = ChatPrompt.Encode(engine, msgs, null, "prompt");
        }
        int[] prompt = [.. context, .. ids2];
        var settings = new GenerationSettings { Sampling = sampling, MaxTokens = max, Constraint = format, Chat = !raw && !engine.TemplateIsFallback, PromptParam = "prompt" };
        var gen = Generation.Start(engine, prompt, settings, "api/generate");
        await RespondAsync(ctx, engine, gen, name, stream, chat: false, prompt).ConfigureAwait(false);
    }

    private static async Task RespondAsync(HttpContext ctx, ServerEngine engine, Generation gen, string name, bool stream, bool chat, int[]? prompt)
    {
        var text = new StringBuilder();
        var calls = new ToolCallAssembler(); // Ollama sends each tool call whole, in the message that finishes it
        string reason = "stop";
        var nd = stream ? new EventStream(ctx, sse: false) : null;
        try
        {
            await foreach (var d in gen.ReadAsync(ctx.RequestAborted).ConfigureAwait(false))
            {
                if (d.Finish != null) reason = d.Finish == "tool_calls" ? "stop" : d.Finish;
                int before = calls.Completed.Count;
                var finished = calls.Add(d.Calls);
                if (nd != null && (d.Content.Length > 0 || finished.Count > 0))
                    await nd.WriteAsync(w => Piece(w, name, chat, d.Content, finished.Count > 0 ? finished : null, before, done: false)).ConfigureAwait(false);
                text.Append(d.Content);
            }
        }
        catch (ApiException e) when (nd is { Started: true })
        {
            await nd.ErrorAsync(e, ollama: true).ConfigureAwait(false);
            return;
        }
        var (total, promptSec, evalSec) = gen.Durations();
        void Final(Utf8JsonWriter w)
        {
            // streamed: the text went out in the pieces; whole: it is all here
            Head(w, name, chat, nd is null ? text.ToString() : "", nd is null && calls.Completed.Count > 0 ? calls.Completed : null, 0);
            w.WriteBoolean("done", true);
            w.WriteString("done_reason", reason);
            if (!chat && prompt != null)
            {
                w.WriteStartArray("context");
                foreach (var id in prompt) w.WriteNumberValue(id);
                foreach (var id in gen.Tokens(0)) w.WriteNumberValue(id);
                w.WriteEndArray();
            }
            w.WriteNumber("total_duration", (long)(total * 1e9));
            w.WriteNumber("load_duration", 0);
            w.WriteNumber("prompt_eval_count", gen.PromptTokens - gen.CachedTokens);
            w.WriteNumber("prompt_eval_duration", (long)(promptSec * 1e9));
            w.WriteNumber("eval_count", gen.CompletionTokens);
            w.WriteNumber("eval_duration", (long)(evalSec * 1e9));
            w.WriteEndObject();
        }
        if (nd != null) await nd.WriteAsync(Final).ConfigureAwait(false);
        else await JsonOut.WriteAsync(ctx, Final).ConfigureAwait(false);
    }

    private static void Piece(Utf8JsonWriter w, string name, bool chat, string content, List<ToolCall>? calls, int firstIndex, bool done)
    {
        Head(w, name, chat, content, calls, firstIndex);
        w.WriteBoolean("done", done);
        w.WriteEndObject();
    }

    /// <summary>Opens a streamed or final object: model, created_at, and the message (chat) or response (generate).</summary>
    private static void Head(Utf8JsonWriter w, string name, bool chat, string content, List<ToolCall>? calls, int firstIndex)
    {
        w.WriteStartObject();
        w.WriteString("model", name);
        w.WriteString("created_at", Now());
        if (chat)
        {
            w.WriteStartObject("message");
            w.WriteString("role", "assistant");
            w.WriteString("content", content);
            if (calls != null) WriteCalls(w, calls, firstIndex);
            w.WriteEndObject();
        }
        else w.WriteString("response", content);
    }

    /// <summary>Ollama's tool_calls: {"id", "function": {"index", "name", "arguments": an object}}.</summary>
    private static void WriteCalls(Utf8JsonWriter w, List<ToolCall> calls, int firstIndex)
    {
        w.WriteStartArray("tool_calls");
        for (int k = 0; k < calls.Count; k++)
        {
            var c = calls[k];
            w.WriteStartObject();
            w.WriteString("id", c.Id);
            w.WriteStartObject("function");
            w.WriteNumber("index", firstIndex + k);
            w.WriteString("name", c.Name);
            w.WritePropertyName("arguments");
            try
            {
                using var a = JsonDocument.Parse(c.Arguments);
                a.RootElement.WriteTo(w);
            }
            catch (JsonException)
            {
                w.WriteStringValue(c.Arguments);
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    public static async Task EmbedAsync(HttpContext ctx, ServerEngine engine, bool legacy)
    {
        using var doc = await Fields.ReadBodyAsync(ctx, engine.Options.MaxRequestBodyBytes).ConfigureAwait(false);
        var f = Fields.Root(doc);
        var name = ModelName(f);
        Embeddings.RequireEmbeddingModel(engine, name, ollama: true);
        var enc = engine.Encoder!;
        if (f.Int("dimensions", 1) is int dims && dims != enc.Dimensions)
            throw f.Error("dimensions", $"is {dims} but {name} makes {enc.Dimensions}-dimensional embeddings");
        var inputs = Embeddings.Inputs(f, legacy ? "prompt" : "input", enc, truncate: f.Bool("truncate") ?? true);
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        var vectors = await engine.EmbedAsync(e => e.EmbedIds(inputs, ctx.RequestAborted), ctx.RequestAborted).ConfigureAwait(false);
        long ns = (long)(System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds * 1e9);
        await JsonOut.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            if (legacy)
            {
                w.WriteStartArray("embedding");
                foreach (var x in vectors[0]) w.WriteNumberValue(x);
                w.WriteEndArray();
            }
            else
            {
                w.WriteString("model", name);
                w.WriteStartArray("embeddings");
                foreach (var v in vectors)
                {
                    w.WriteStartArray();
                    foreach (var x in v) w.WriteNumberValue(x);
                    w.WriteEndArray();
                }
                w.WriteEndArray();
                w.WriteNumber("total_duration", ns);
                w.WriteNumber("load_duration", 0);
                w.WriteNumber("prompt_eval_count", inputs.Sum(i => i.Length));
            }
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    /// <summary>A model entry of /api/tags and /api/ps.</summary>
    private static void ModelEntry(Utf8JsonWriter w, ServerEngine engine, string path, string id, bool embedding, bool running)
    {
        long size = File.Exists(path) ? new FileInfo(path).Length : Directory.Exists(path) ? Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Sum(p => new FileInfo(p).Length) : 0;
        var modified = File.Exists(path) ? File.GetLastWriteTimeUtc(path) : Directory.Exists(path) ? Directory.GetLastWriteTimeUtc(path) : DateTime.UtcNow;
        w.WriteStartObject();
        w.WriteString("name", id + ":latest");
        w.WriteString("model", id + ":latest");
        w.WriteString("modified_at", modified.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture));
        w.WriteNumber("size", size);
        w.WriteString("digest", Digest(path, size, modified));
        Details(w, engine, embedding);
        if (running)
        {
            // /api/ps: loaded models stay loaded while the server runs; nothing is on a GPU
            w.WriteString("expires_at", DateTime.MaxValue.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
            w.WriteNumber("size_vram", 0);
        }
        w.WriteEndObject();
    }

    /// <summary>A stable identifier of the file (path, size, time), not a hash of its bytes.</summary>
    private static string Digest(string path, long size, DateTime modified) =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes($"{Path.GetFullPath(path)}|{size}|{modified.Ticks}")));

    private static void Details(Utf8JsonWriter w, ServerEngine engine, bool embedding)
    {
        w.WriteStartObject("details");
        w.WriteString("parent_model", "");
        if (embedding)
        {
            w.WriteString("format", "onnx");
            w.WriteString("family", "bert");
            w.WriteStartArray("families"); w.WriteStringValue("bert"); w.WriteEndArray();
            w.WriteString("parameter_size", "");
            w.WriteString("quantization_level", "F32");
        }
        else
        {
            var m = engine.Model!;
            string arch = m.Config.Architecture;
            w.WriteString("format", Directory.Exists(m.Path) ? "safetensors" : "gguf");
            w.WriteString("family", arch);
            w.WriteStartArray("families"); w.WriteStringValue(arch); w.WriteEndArray();
            w.WriteString("parameter_size", ParameterSize(m));
            w.WriteString("quantization_level", Quantization(m));
        }
        w.WriteEndObject();
    }

    private static string ParameterSize(SharpLM.Models.LanguageModel m)
    {
        double p = Parameters(m.Config);
        return p >= 1e9 ? $"{p / 1e9:0.#}B".Replace(',', '.') : p >= 1e6 ? $"{p / 1e6:0.#}M".Replace(',', '.') : $"{p / 1e3:0.#}K".Replace(',', '.');
    }

    private static long Parameters(SharpLM.Models.ModelConfig c) => new Sizing.ParameterCount(c).Total;

    private static string Quantization(SharpLM.Models.LanguageModel m) => m.Weights.Layers.Length > 0 ? m.Weights.Layers[0].Down.W.Type.ToString().ToUpperInvariant() : "F32";

    public static Task TagsAsync(HttpContext ctx, ServerEngine engine, bool running) => JsonOut.WriteAsync(ctx, w =>
    {
        w.WriteStartObject();
        w.WriteStartArray("models");
        if (engine.Options.Model is { } p && engine.Model != null) ModelEntry(w, engine, p, engine.ModelId, false, running);
        if (engine.Options.EmbeddingModel is { } e && engine.Encoder != null) ModelEntry(w, engine, e, engine.EmbeddingModelId!, true, running);
        w.WriteEndArray();
        w.WriteEndObject();
    });

    public static async Task ShowAsync(HttpContext ctx, ServerEngine engine)
    {
        using var doc = await Fields.ReadBodyAsync(ctx, engine.Options.MaxRequestBodyBytes).ConfigureAwait(false);
        var f = Fields.Root(doc);
        var name = ModelName(f);
        bool embedding = engine.IsEmbeddingModel(name);
        if (!embedding && !engine.IsChatModel(name)) throw new ApiException(404, $"model \"{name}\" not found", "model", "model_not_found");
        await JsonOut.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("license", "");
            w.WriteString("modelfile", $"# served by SharpLM\nFROM {(embedding ? engine.Options.EmbeddingModel : engine.Options.Model)}\n");
            w.WriteString("parameters", "temperature 0.8\ntop_k 40\ntop_p 0.95\nmin_p 0.05");
            w.WriteString("template", embedding ? "" : engine.Template!.Template.Source);
            Details(w, engine, embedding);
            w.WriteStartObject("model_info");
            if (!embedding)
            {
                var c = engine.Model!.Config;
                string a = c.Architecture;
                w.WriteString("general.architecture", a);
                w.WriteNumber("general.parameter_count", Parameters(c));
                w.WriteNumber($"{a}.context_length", engine.Model.ContextSize);
                w.WriteNumber($"{a}.embedding_length", c.Width);
                w.WriteNumber($"{a}.block_count", c.Layers);
                w.WriteNumber($"{a}.attention.head_count", c.Heads);
                w.WriteNumber($"{a}.attention.head_count_kv", c.KvHeads);
                w.WriteNumber($"{a}.vocab_size", c.Vocab);
            }
            else
            {
                w.WriteString("general.architecture", "bert");
                w.WriteNumber("bert.embedding_length", engine.Encoder!.Dimensions);
                w.WriteNumber("bert.context_length", engine.Encoder.MaxTokens);
            }
            w.WriteEndObject();
            w.WriteStartArray("capabilities");
            if (embedding) w.WriteStringValue("embedding");
            else
            {
                w.WriteStringValue("completion");
                w.WriteStringValue("tools");
            }
            w.WriteEndArray();
            w.WriteString("modified_at", DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture));
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    public static Task VersionAsync(HttpContext ctx) => JsonOut.WriteAsync(ctx, w =>
    {
        w.WriteStartObject();
        w.WriteString("version", Version);
        w.WriteEndObject();
    });

    /// <summary>pull, push, create, copy, delete: models are files given at startup.</summary>
    public static Task UnsupportedAsync(HttpContext ctx) =>
        throw ApiException.BadRequest($"{ctx.Request.Path} is not supported: SharpLM serves the model files given when it started (sharplm serve --model PATH)", null, "unsupported");
}
