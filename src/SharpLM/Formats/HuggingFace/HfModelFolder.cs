using System.Text.Json;
using SharpLM.Formats.Safetensors;
using SharpLM.Models;

namespace SharpLM.Formats.HuggingFace;

/// <summary>generation_config.json: the ids and sampling defaults a checkpoint ships with (null when absent).</summary>
internal sealed record HfGenerationConfig(int? BosTokenId, IReadOnlyList<int> EosTokenIds, int? PadTokenId,
    bool? DoSample, float? Temperature, float? TopP, int? TopK, int? MaxLength, JsonElement Raw)
{
    public static HfGenerationConfig Load(string path)
    {
        var r = JsonReader.Load(path);
        return new HfGenerationConfig(r.Int("bos_token_id"), r.IntOrList("eos_token_id"), r.Int("pad_token_id"),
            r.Bool("do_sample"), r.Float("temperature"), r.Float("top_p"), r.Int("top_k"), r.Int("max_length"), r.Root);
    }
}

/// <summary>tokenizer_config.json: special token strings (a string or an AddedToken object {"content": ...}),
/// add_bos/add_eos, the Jinja chat template (a string, or the "default" of a list of named templates).</summary>
internal sealed record HfTokenizerConfig(string? BosToken, string? EosToken, string? UnkToken, string? PadToken,
    bool? AddBosToken, bool? AddEosToken, string? ChatTemplate, long? ModelMaxLength, string? TokenizerClass, JsonElement Raw)
{
    public static HfTokenizerConfig Load(string path) => Read(JsonReader.Load(path));

    /// <summary>tokenizer_config.json text; <paramref name="source"/> names it in errors.</summary>
    public static HfTokenizerConfig Parse(string json, string source) => Read(JsonReader.Parse(System.Text.Encoding.UTF8.GetBytes(json), source));

    private static HfTokenizerConfig Read(JsonReader r)
    {
        string path = r.Source;
        string? Tok(string key)
        {
            if (!r.Root.TryGetProperty(key, out var e) || e.ValueKind == JsonValueKind.Null) return null;
            if (e.ValueKind == JsonValueKind.String) return e.GetString();
            if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String) return c.GetString();
            throw new InvalidDataException($"{path}: '{key}' is {e.ValueKind}, expected a string or an object with \"content\"");
        }
        string? template = null;
        if (r.Root.TryGetProperty("chat_template", out var ct))
        {
            if (ct.ValueKind == JsonValueKind.String) template = ct.GetString();
            else if (ct.ValueKind == JsonValueKind.Array)
                foreach (var t in ct.EnumerateArray())
                    if (t.ValueKind == JsonValueKind.Object && t.TryGetProperty("name", out var n) && n.ValueEquals("default") && t.TryGetProperty("template", out var tt) && tt.ValueKind == JsonValueKind.String)
                        template = tt.GetString();
        }
        long? maxLen = r.Root.TryGetProperty("model_max_length", out var ml) && ml.ValueKind == JsonValueKind.Number && ml.TryGetDouble(out double d) && d < long.MaxValue ? (long)d : null;
        return new HfTokenizerConfig(Tok("bos_token"), Tok("eos_token"), Tok("unk_token"), Tok("pad_token"),
            r.Bool("add_bos_token"), r.Bool("add_eos_token"), template, maxLen, r.String("tokenizer_class"), r.Root);
    }
}

/// <summary>
/// A Hugging Face model folder: config.json, optional generation_config.json, tokenizer.json and
/// tokenizer_config.json, and safetensors weights (single or sharded, memory-mapped).
/// </summary>
internal sealed class HfModelFolder : IDisposable
{
    public string Path { get; }
    public ModelConfig Config { get; }
    public HfGenerationConfig? GenerationConfig { get; }
    public HfTokenizerConfig? TokenizerConfig { get; }

    /// <summary>tokenizer.json, or null when the folder has none.</summary>
    public string? TokenizerJsonPath { get; }

    /// <summary>The chat template of tokenizer_config.json with its BOS/EOS token texts, or null when there is none.</summary>
    public Models.ModelChatTemplate? LoadChatTemplate()
    {
        if (TokenizerConfig is not { ChatTemplate: { } text } tc) return null;
        return new Models.ModelChatTemplate(text, tc.BosToken, tc.EosToken, System.IO.Path.Combine(Path, "tokenizer_config.json"));
    }

    /// <summary>The safetensors weights (memory-mapped), or null for a folder that holds only configuration (calc
    /// sizes those).</summary>
    public SafetensorsModel? Weights { get; }

    public string ConfigPath => System.IO.Path.Combine(Path, "config.json");

    /// <summary>The weights, or a clear error saying the folder has none.</summary>
    public SafetensorsModel RequireWeights() => Weights
        ?? throw new FileNotFoundException($"no safetensors weights in '{Path}': expected model.safetensors or model.safetensors.index.json", System.IO.Path.Combine(Path, "model.safetensors"));

    private HfModelFolder(string path, ModelConfig config, HfGenerationConfig? gen, HfTokenizerConfig? tc, string? tokenizerJson, SafetensorsModel? weights)
    {
        Path = path;
        Config = config;
        GenerationConfig = gen;
        TokenizerConfig = tc;
        TokenizerJsonPath = tokenizerJson;
        Weights = weights;
    }

    /// <summary>True when <paramref name="path"/> is a folder with safetensors weights (an index or a .safetensors file).</summary>
    public static bool HasWeights(string path) =>
        Directory.Exists(path) && (File.Exists(System.IO.Path.Combine(path, "model.safetensors.index.json")) || Directory.EnumerateFiles(path, "*.safetensors").Any());

    /// <summary>True when <paramref name="path"/> is a folder with a config.json.</summary>
    public static bool IsModelFolder(string path) => Directory.Exists(path) && File.Exists(System.IO.Path.Combine(path, "config.json"));

    /// <summary>Opens a folder: config.json (required), generation_config.json, tokenizer_config.json and tokenizer.json
    /// when present, and the safetensors weights (single or sharded) when <paramref name="weights"/> says so — required
    /// by default, optional for a configuration-only folder, or skipped.</summary>
    public static HfModelFolder Open(string folder, FolderWeights weights = FolderWeights.Required, bool inMemory = false)
    {
        var full = System.IO.Path.GetFullPath(folder);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"model folder '{full}' does not exist");
        var configPath = System.IO.Path.Combine(full, "config.json");
        if (!File.Exists(configPath)) throw new FileNotFoundException($"'{full}' has no config.json: not a Hugging Face model folder", configPath);
        var config = ModelConfigReader.FromHfConfigFile(configPath);
        string F(string name) => System.IO.Path.Combine(full, name);
        var gen = File.Exists(F("generation_config.json")) ? HfGenerationConfig.Load(F("generation_config.json")) : null;
        var tc = File.Exists(F("tokenizer_config.json")) ? HfTokenizerConfig.Load(F("tokenizer_config.json")) : null;
        var tj = File.Exists(F("tokenizer.json")) ? F("tokenizer.json") : null;
        var st = weights == FolderWeights.Required || (weights == FolderWeights.IfPresent && HasWeights(full)) ? SafetensorsModel.Open(full, inMemory) : null;
        return new HfModelFolder(full, config, gen, tc, tj, st);
    }

    public void Dispose() => Weights?.Dispose();
}

/// <summary>Whether <see cref="HfModelFolder.Open"/> opens the folder's safetensors weights.</summary>
internal enum FolderWeights
{
    Required,
    IfPresent,
    None,
}
