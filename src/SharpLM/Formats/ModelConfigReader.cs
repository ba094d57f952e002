using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.HuggingFace;
using SharpLM.Models;

namespace SharpLM.Formats;

/// <summary>
/// The one reader (and writer) of model hyper-parameters: a Hugging Face config.json of any architecture in
/// <see cref="Architectures"/>, or a GGUF file's metadata, into a <see cref="ModelConfig"/>; and back, for convert,
/// GGUF export and training checkpoints. Which keys each architecture reads, and its defaults, live in its entry of the
/// architecture table. Errors name the file and the key: a broken config.json is an <see cref="InvalidDataException"/>,
/// an architecture SharpLM does not know a <see cref="NotSupportedException"/>.
/// </summary>
public static class ModelConfigReader
{
    /// <summary>Reads a config.json file.</summary>
    public static ModelConfig FromHfConfigFile(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException e)
        {
            throw new FileNotFoundException($"'{path}' does not exist: a Hugging Face model folder needs config.json", path, e);
        }
        catch (DirectoryNotFoundException e)
        {
            throw new FileNotFoundException($"'{path}' does not exist: a Hugging Face model folder needs config.json", path, e);
        }
        return FromHfJson(bytes, path);
    }

    /// <summary>Parses config.json text; <paramref name="source"/> names it in errors.</summary>
    public static ModelConfig FromHfJson(string json, string source) => FromHfJson(System.Text.Encoding.UTF8.GetBytes(json), source);

    /// <summary>Parses config.json bytes; <paramref name="source"/> names it in errors.</summary>
    public static ModelConfig FromHfJson(ReadOnlySpan<byte> json, string source)
    {
        var r = JsonReader.Parse(json, source);
        string? className = null;
        if (r.Root.TryGetProperty("architectures", out var archs) && archs.ValueKind == JsonValueKind.Array && archs.GetArrayLength() > 0
            && archs[0].ValueKind == JsonValueKind.String)
            className = archs[0].GetString();
        string? modelType = r.String("model_type");
        if (className is null && modelType is null)
            r.Fail("model_type", $"is missing (and so is 'architectures'); supported model types: {string.Join(", ", Architectures.All.SelectMany(a => a.HfModelTypes))}");
        var arch = Architectures.FromHf(className, modelType)
            ?? throw new NotSupportedException(
                $"{source}: architecture '{className ?? modelType}'{(className != null && modelType != null ? $" (model_type '{modelType}')" : "")} is not supported " +
                $"(supported model types: {string.Join(", ", Architectures.All.SelectMany(a => a.HfModelTypes))})");
        var config = NormOptions.FromHf(r, arch.FromHf(r, arch.Name));
        config.Validate(source);
        return config;
    }

    /// <summary>The hyper-parameters in a GGUF file's metadata (general.architecture and its keys).</summary>
    internal static ModelConfig FromGguf(GgufFile g)
    {
        string name = g.GetStringOrNull(GgufKeys.Architecture) ?? throw new InvalidDataException($"{g.Path}: GGUF metadata has no {GgufKeys.Architecture}");
        var arch = Architectures.FromGguf(name) ?? throw new NotSupportedException(
            $"{g.Path}: architecture '{name}' is not supported (supported: {string.Join(", ", Architectures.All.Select(a => a.GgufName).Distinct())})");
        var config = NormOptions.FromGguf(g, arch.FromGguf(g, arch.Name));
        config.Validate(g.Path);
        return config;
    }

    /// <summary>Writes the hyper-parameter keys llama.cpp reads for this architecture (general.architecture included).</summary>
    internal static void ToGguf(ModelConfig config, GgufWriter w)
    {
        config.Arch.ToGguf(config, w);
        NormOptions.ToGguf(config, w); // SharpLM's own keys, only for the lab's norm variants
    }

    /// <summary>transformers' activation names (hidden_act, hidden_activation, activation_function, activation) to the
    /// names of SharpLM's kernels (silu, gelu, gelu_tanh, relu); null for one SharpLM lacks. Each family says which it runs.</summary>
    internal static string? Activation(string name) => name switch
    {
        "silu" or "swish" => "silu",
        "gelu_pytorch_tanh" or "gelu_new" or "gelu_fast" or "gelu_tanh" => "gelu_tanh",
        "gelu" => "gelu",
        "relu" => "relu",
        _ => null,
    };

    /// <summary>The config.json keys BERT-style and rotary configs name alike (architectures, model_type, vocab_size,
    /// hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, max_position_embeddings, torch_dtype);
    /// an architecture's writer adds its own.</summary>
    internal static JsonObject HfSizes(ModelConfig c, string hfClass) => new()
    {
        ["architectures"] = new JsonArray(hfClass),
        ["model_type"] = c.Arch.HfModelTypes[0],
        ["vocab_size"] = c.Vocab,
        ["hidden_size"] = c.Width,
        ["intermediate_size"] = c.FfnWidth,
        ["num_hidden_layers"] = c.Layers,
        ["num_attention_heads"] = c.Heads,
        ["max_position_embeddings"] = c.Context,
        ["torch_dtype"] = "float32",
    };

    /// <summary>A config.json transformers loads (the architecture's keys, then the special token ids).</summary>
    public static JsonObject ToHfJson(ModelConfig config)
    {
        var o = config.Arch.ToHf(config);
        if (config.BosTokenId is int b) o["bos_token_id"] = b;
        if (config.EosTokenIds.Count > 0)
            o["eos_token_id"] = config.EosTokenIds.Count == 1 ? config.EosTokenIds[0] : new JsonArray([.. config.EosTokenIds.Select(e => (JsonNode)e)]);
        if (config.PadTokenId is int p) o["pad_token_id"] = p;
        NormOptions.ToHf(config, o);
        return o;
    }
}

/// <summary>Typed reads of GGUF metadata for the configuration readers, with errors that name the file and the key.</summary>
internal static class GgufMeta
{
    public static int? Int(GgufFile g, string key) => g.Contains(key) ? g.GetInt(key) : null;

    public static float? Float(GgufFile g, string key) => g.Contains(key) ? g.GetFloat(key) : null;

    public static int Required(GgufFile g, string key) => Int(g, key) ?? throw new InvalidDataException($"{g.Path}: GGUF metadata key '{key}' is missing");

    /// <summary>
    /// The hyper-parameters every GGUF architecture stores under the same keys (ARCH.embedding_length, block_count,
    /// attention.head_count and head_count_kv, attention.key_length, feed_forward_length, context_length, vocab_size),
    /// the tied head (no output.weight) and the special ids. Each family's reader adds its own keys with <c>with { }</c>.
    /// <paramref name="context"/> and <paramref name="ffn"/> replace a missing key where the family knows better
    /// (learned position rows; GPT-2's 4C).
    /// </summary>
    public static ModelConfig Sizes(GgufFile g, string arch, int? context = null, int? ffn = null)
    {
        string a = g.Architecture;
        int width = Required(g, GgufKeys.EmbeddingLength(a)), heads = Required(g, GgufKeys.HeadCount(a));
        int layers = Required(g, GgufKeys.BlockCount(a));
        return new ModelConfig
        {
            Architecture = arch,
            Vocab = Vocab(g, a),
            Width = width,
            Layers = layers,
            Heads = heads,
            KvHeads = Int(g, GgufKeys.HeadCountKv(a)) ?? heads,
            HeadSize = Int(g, GgufKeys.KeyLength(a)) ?? (heads > 0 ? width / heads : 0),
            FfnWidth = Int(g, GgufKeys.FeedForwardLength(a)) ?? ffn ?? Required(g, GgufKeys.FeedForwardLength(a)),
            Context = context ?? Required(g, GgufKeys.ContextLength(a)),
            EmbeddingWidth = width,
            LayerGroups = layers,
            TiedEmbeddings = !g.Tensors.ContainsKey("output.weight"),
            BosTokenId = Int(g, GgufKeys.BosId),
            EosTokenIds = EosIds(g),
        };
    }

    /// <summary>The rows of a learned table (position_embd.weight, token_types.weight), or null without it.</summary>
    public static int? TableRows(GgufFile g, string tensor) =>
        g.Tensors.TryGetValue(tensor, out var t) && t.Shape.Length == 2 ? checked((int)t.Shape[0]) : null;

    /// <summary>Writes the keys <see cref="Sizes"/> reads (general.architecture included; head_count_kv and key_length
    /// only where they differ from head_count and C / NH).</summary>
    public static GgufWriter WriteSizes(ModelConfig c, GgufWriter w)
    {
        string a = c.Arch.GgufName;
        w.Set(GgufKeys.Architecture, a)
         .Set(GgufKeys.ContextLength(a), (uint)c.Context)
         .Set(GgufKeys.EmbeddingLength(a), (uint)c.Width)
         .Set(GgufKeys.BlockCount(a), (uint)c.Layers)
         .Set(GgufKeys.FeedForwardLength(a), (uint)c.FfnWidth)
         .Set(GgufKeys.HeadCount(a), (uint)c.Heads)
         .Set(GgufKeys.VocabSize(a), (uint)c.Vocab);
        if (c.KvHeads != c.Heads) w.Set(GgufKeys.HeadCountKv(a), (uint)c.KvHeads);
        if (c.HeadSize != c.Width / c.Heads)
        {
            w.Set(GgufKeys.KeyLength(a), (uint)c.HeadSize);
            w.Set(GgufKeys.ValueLength(a), (uint)c.HeadSize);
        }
        return w;
    }

    /// <summary>V: ARCH.vocab_size, else the embedding's rows, else the token list's length.</summary>
    public static int Vocab(GgufFile g, string arch) =>
        Int(g, GgufKeys.VocabSize(arch))
        ?? (g.Tensors.TryGetValue("token_embd.weight", out var e) && e.Shape.Length == 2 ? checked((int)e.Shape[0]) : (int?)null)
        ?? g.GetArrayOrNull(GgufKeys.Tokens)?.Count
        ?? throw new InvalidDataException($"{g.Path}: the vocabulary size is unknown ({GgufKeys.VocabSize(arch)}, token_embd.weight and {GgufKeys.Tokens} are all missing)");

    /// <summary>End-of-generation ids: tokenizer.ggml.eos_token_id, eot_token_id (llama-3's &lt;|eot_id|&gt;) and
    /// eom_token_id (llama-3.1's &lt;|eom_id|&gt;, the end of a message that awaits a tool's output), as llama.cpp's
    /// end-of-generation set takes them.</summary>
    public static int[] EosIds(GgufFile g)
    {
        var eos = new List<int>();
        foreach (var key in (ReadOnlySpan<string>)[GgufKeys.EosId, GgufKeys.EotId, GgufKeys.EomId])
            if (Int(g, key) is int id && !eos.Contains(id)) eos.Add(id);
        return [.. eos];
    }
}
