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
    public static HfTokenizerConfig Load(string path)
    {
        var r = JsonReader.Load(path);
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

    public SafetensorsModel Weights { get; }

    private HfModelFolder(string path, ModelConfig config, HfGenerationConfig? gen, HfTokenizerConfig? tc, string? tokenizerJson, SafetensorsModel weights)
    {
        Path = path;
        Config = config;
        GenerationConfig = gen;
        TokenizerConfig = tc;
        TokenizerJsonPath = tokenizerJson;
        Weights = weights;
    }

    /// <summary>True when <paramref name="path"/> is a folder with a config.json.</summary>
    public static bool IsModelFolder(string path) => Directory.Exists(path) && File.Exists(System.IO.Path.Combine(path, "config.json"));

    public static HfModelFolder Open(string folder)
    {
        var full = System.IO.Path.GetFullPath(folder);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"model folder '{full}' does not exist");
        var config = ModelConfigReader.FromHfConfigFile(System.IO.Path.Combine(full, "config.json"));
        string F(string name) => System.IO.Path.Combine(full, name);
        var gen = File.Exists(F("generation_config.json")) ? HfGenerationConfig.Load(F("generation_config.json")) : null;
        var tc = File.Exists(F("tokenizer_config.json")) ? HfTokenizerConfig.Load(F("tokenizer_config.json")) : null;
        var tj = File.Exists(F("tokenizer.json")) ? F("tokenizer.json") : null;
        var weights = SafetensorsModel.Open(full);
        return new HfModelFolder(full, config, gen, tc, tj, weights);
    }

    public void Dispose() => Weights.Dispose();
}
