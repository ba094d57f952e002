using System.Text.Json;
using Microsoft.AspNetCore.Http;
using SharpLM.Server.Http;

namespace SharpLM.Server;

/// <summary>/v1/models.</summary>
internal static class ModelsEndpoint
{
    private static void Entry(Utf8JsonWriter w, string id, long created)
    {
        w.WriteStartObject();
        w.WriteString("id", id);
        w.WriteString("object", "model");
        w.WriteNumber("created", created);
        w.WriteString("owned_by", "sharplm");
        w.WriteEndObject();
    }

    public static Task ListAsync(HttpContext ctx, ServerEngine engine) => JsonOut.WriteAsync(ctx, w =>
    {
        long created = engine.Created.ToUnixTimeSeconds();
        w.WriteStartObject();
        w.WriteString("object", "list");
        w.WriteStartArray("data");
        if (engine.Model != null) Entry(w, engine.ModelId, created);
        if (engine.Encoder != null) Entry(w, engine.EmbeddingModelId!, created);
        w.WriteEndArray();
        w.WriteEndObject();
    });

    public static Task GetAsync(HttpContext ctx, ServerEngine engine)
    {
        var id = (string)ctx.Request.RouteValues["id"]!;
        string? found = engine.IsChatModel(id) ? engine.ModelId : engine.IsEmbeddingModel(id) ? engine.EmbeddingModelId : null;
        if (found is null) throw new ApiException(404, $"The model '{id}' does not exist on this server", "model", "model_not_found");
        return JsonOut.WriteAsync(ctx, w => Entry(w, found, engine.Created.ToUnixTimeSeconds()));
    }
}

/// <summary>SharpLM's own endpoints: /tokenize, /detokenize (llama.cpp's shapes), /health, /metrics, the chat page.</summary>
internal static class Misc
{
    public static async Task TokenizeAsync(HttpContext ctx, ServerEngine engine)
    {
        using var doc = await Fields.ReadBodyAsync(ctx, engine.Options.MaxRequestBodyBytes).ConfigureAwait(false);
        var f = Fields.Root(doc);
        var text = f.String("content", required: true)!;
        bool special = f.Bool("add_special") ?? false;
        bool pieces = f.Bool("with_pieces") ?? false;
        var model = engine.Model ?? throw new ApiException(400, "this server has no language model loaded", "model", "model_not_found");
        var ids = model.RequireTokenizer().Encode(text, addBos: special);
        var vocab = pieces ? engine.Vocabulary : null;
        await JsonOut.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("tokens");
            foreach (var id in ids)
            {
                if (vocab is null) { w.WriteNumberValue(id); continue; }
                w.WriteStartObject();
                w.WriteNumber("id", id);
                w.WriteString("piece", vocab.Texts[id]);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    public static async Task DetokenizeAsync(HttpContext ctx, ServerEngine engine)
    {
        using var doc = await Fields.ReadBodyAsync(ctx, engine.Options.MaxRequestBodyBytes).ConfigureAwait(false);
        var f = Fields.Root(doc);
        var model = engine.Model ?? throw new ApiException(400, "this server has no language model loaded", "model", "model_not_found");
        var arr = f.Array("tokens") ?? throw f.Error("tokens", "is required", "missing_required_parameter");
        var ids = Fields.TokenIds(arr, "tokens", model.Config.Vocab, "tokens");
        var text = model.Detokenize(ids);
        await JsonOut.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("content", text);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    /// <summary>200 {"status":"ok"} when ready; 503 {"status":"loading"} (or "error") otherwise, as llama.cpp answers.</summary>
    public static Task HealthAsync(HttpContext ctx, ServerEngine engine)
    {
        var state = engine.State;
        int status = state == ServerState.Ready ? 200 : 503;
        return JsonOut.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("status", state switch { ServerState.Ready => "ok", ServerState.Loading => "loading", ServerState.Stopping => "stopping", _ => "error" });
            if (engine.LoadError is { } e) w.WriteString("error", e);
            if (engine.Scheduler is { } s)
            {
                w.WriteNumber("slots", s.Parallel);
                w.WriteNumber("slots_busy", s.Active);
                w.WriteNumber("queued", s.Queued);
            }
            w.WriteEndObject();
        }, status);
    }

    public static async Task MetricsAsync(HttpContext ctx, ServerEngine engine)
    {
        ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await ctx.Response.WriteAsync(engine.Metrics.Render(), ctx.RequestAborted).ConfigureAwait(false);
    }

    private static byte[]? s_page;

    public static async Task PageAsync(HttpContext ctx, ServerEngine engine)
    {
        s_page ??= ReadPage();
        ctx.Response.ContentType = "text/html; charset=utf-8";
        ctx.Response.Headers.CacheControl = "no-cache";
        await ctx.Response.Body.WriteAsync(s_page, ctx.RequestAborted).ConfigureAwait(false);
    }

    private static byte[] ReadPage()
    {
        using var s = typeof(Misc).Assembly.GetManifestResourceStream("SharpLM.Server.wwwroot.index.html")
            ?? throw new InvalidOperationException("the chat page is missing from SharpLM.Server.dll");
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }
}
