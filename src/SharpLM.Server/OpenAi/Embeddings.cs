using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using SharpLM.Inference.Embeddings;
using SharpLM.Server.Http;

namespace SharpLM.Server.OpenAi;

/// <summary>POST /v1/embeddings (and the parsing Ollama's /api/embed shares): sentence embeddings from the BERT-family
/// encoder given with --embedding-model.</summary>
internal static class Embeddings
{
    /// <summary>The encoder for a request's model name, or 404/400 naming it.</summary>
    public static void RequireEmbeddingModel(ServerEngine engine, string name, bool ollama)
    {
        if (engine.IsEmbeddingModel(name)) return;
        if (engine.IsChatModel(name))
            throw ApiException.BadRequest(engine.Encoder is null
                ? $"'{name}' is a chat model; this server has no embedding model (start it with --embedding-model PATH or minilm)"
                : $"'{name}' is a chat model; embeddings come from '{engine.EmbeddingModelId}'", "model", "model_not_supported");
        throw new ApiException(404, $"The model '{name}' does not exist on this server; it serves {OpenAiRequest.Served(engine)}", "model", "model_not_found");
    }

    /// <summary>input: a string, strings, token ids, or lists of token ids → token sequences for the encoder.</summary>
    public static List<int[]> Inputs(Fields f, string field, TextEncoder enc, bool truncate = true)
    {
        var p = f.Get(field) ?? throw f.Error(field, "is required", "missing_required_parameter");
        var list = new List<int[]>();
        int vocab = enc.Model.Config.Vocab;
        var empty = enc.Tokenize(""); // [CLS] [SEP]
        int[] Text(string s, string name)
        {
            if (s.Length == 0) throw ApiException.BadRequest($"'{name}' is an empty string", field);
            var ids = enc.Tokenizer.Encode(s);
            if (ids.Length > enc.MaxTokens)
            {
                if (!truncate) throw ApiException.BadRequest($"'{name}' has {ids.Length} tokens, more than the model's limit of {enc.MaxTokens}", field, "context_length_exceeded");
                ids = enc.Tokenize(s);
            }
            return ids;
        }
        int[] Ids(JsonElement arr, string name)
        {
            var ids = Fields.TokenIds(arr, name, vocab, field);
            int k = ids.Count;
            if (empty.Length == 2) ids.Insert(0, empty[0]);
            if (k == 0) throw ApiException.BadRequest($"'{name}' is an empty list of tokens", field);
            if (empty.Length == 2) ids.Add(empty[1]);
            if (ids.Count > enc.MaxTokens)
            {
                if (!truncate) throw ApiException.BadRequest($"'{name}' has {ids.Count} tokens, more than the model's limit of {enc.MaxTokens}", field, "context_length_exceeded");
                ids.RemoveRange(enc.MaxTokens - 1, ids.Count - enc.MaxTokens + 1);
                if (empty.Length == 2) ids.Add(empty[1]);
            }
            return [.. ids];
        }
        switch (p.ValueKind)
        {
            case JsonValueKind.String:
                list.Add(Text(p.GetString()!, field));
                break;
            case JsonValueKind.Array when p.GetArrayLength() == 0:
                throw f.Error(field, "is an empty array");
            case JsonValueKind.Array:
                if (p[0].ValueKind == JsonValueKind.Number) list.Add(Ids(p, field));
                else
                {
                    int i = 0;
                    foreach (var e in p.EnumerateArray())
                    {
                        if (e.ValueKind == JsonValueKind.String) list.Add(Text(e.GetString()!, $"{field}[{i}]"));
                        else if (e.ValueKind == JsonValueKind.Array) list.Add(Ids(e, $"{field}[{i}]"));
                        else throw ApiException.BadRequest($"'{field}[{i}]' must be a string or an array of token ids, got {Fields.Describe(e)}", field, "invalid_type");
                        i++;
                    }
                }
                break;
            default:
                throw f.Wrong(field, "a string, an array of strings, or an array of token ids", p);
        }
        if (list.Count > 2048) throw f.Error(field, $"has {list.Count} inputs; at most 2048 are allowed");
        return list;
    }

    public static async Task HandleAsync(HttpContext ctx, ServerEngine engine)
    {
        using var doc = await Fields.ReadBodyAsync(ctx, engine.Options.MaxRequestBodyBytes).ConfigureAwait(false);
        var f = Fields.Root(doc);
        var name = f.String("model", required: true)!;
        RequireEmbeddingModel(engine, name, ollama: false);
        var enc = engine.Encoder!;
        var format = f.String("encoding_format") ?? "float";
        if (format is not ("float" or "base64")) throw f.Error("encoding_format", $"must be 'float' or 'base64', got '{format}'");
        if (f.Int("dimensions", 1) is int dims && dims != enc.Dimensions)
            throw f.Error("dimensions", $"is {dims} but {name} makes {enc.Dimensions}-dimensional embeddings (it cannot shorten them)");
        var inputs = Inputs(f, "input", enc);
        var vectors = await engine.EmbedAsync(e => e.EmbedIds(inputs, ctx.RequestAborted), ctx.RequestAborted).ConfigureAwait(false);
        int tokens = inputs.Sum(i => i.Length);
        await JsonOut.WriteAsync(ctx, w =>
        {
            w.WriteStartObject();
            w.WriteString("object", "list");
            w.WriteStartArray("data");
            for (int i = 0; i < vectors.Length; i++)
            {
                w.WriteStartObject();
                w.WriteString("object", "embedding");
                w.WriteNumber("index", i);
                if (format == "base64") w.WriteBase64String("embedding", MemoryMarshal.AsBytes(vectors[i].AsSpan()));
                else
                {
                    w.WriteStartArray("embedding");
                    foreach (var x in vectors[i]) w.WriteNumberValue(x);
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteString("model", name);
            w.WriteStartObject("usage");
            w.WriteNumber("prompt_tokens", tokens);
            w.WriteNumber("total_tokens", tokens);
            w.WriteEndObject();
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }
}
