using System.Text.Json;
using SharpLM.Tokenizers;

namespace SharpLM.Training.Data;

/// <summary>
/// A SharpLM.Tokenizers <see cref="Tokenizer"/> (a tokenizer.json: given with --tokenizer, or trained on the data
/// with --vocab-size) as the trainer's tokenizer. Text is encoded without special tokens; the tokenizer.json text is
/// kept for checkpoints, and its BPE vocabulary and merges for GGUF export.
/// </summary>
internal sealed class HfTextTokenizer : ITextTokenizer
{
    private readonly Tokenizer _tok;

    public HfTextTokenizer(string json, string source)
    {
        _tok = Tokenizer.FromJson(json, source);
        TokenizerJson = json;
        Source = source;
        VocabSize = Math.Max(_tok.VocabSize, MaxId(json) + 1);
    }

    public static HfTextTokenizer FromFile(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "tokenizer.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer file '{path}' not found", path);
        return new HfTextTokenizer(File.ReadAllText(path), path);
    }

    public string Source { get; }
    public int VocabSize { get; }
    public string? TokenizerJson { get; }
    public Tokenizer Tokenizer => _tok;

    public int[] Encode(string text) => _tok.EncodeToIds(text, addSpecialTokens: false);

    public string Decode(ReadOnlySpan<int> ids) => _tok.Decode(ids, skipSpecialTokens: false);

    public long ByteCount(ReadOnlySpan<int> ids) => System.Text.Encoding.UTF8.GetByteCount(Decode(ids));

    /// <summary>The largest id in model.vocab and added_tokens (VocabSize of some tokenizers excludes added tokens).</summary>
    private static int MaxId(string json)
    {
        using var d = JsonDocument.Parse(json);
        int max = -1;
        if (d.RootElement.TryGetProperty("model", out var m) && m.TryGetProperty("vocab", out var v) && v.ValueKind == JsonValueKind.Object)
            foreach (var kv in v.EnumerateObject()) if (kv.Value.ValueKind == JsonValueKind.Number) max = Math.Max(max, kv.Value.GetInt32());
        if (d.RootElement.TryGetProperty("added_tokens", out var a) && a.ValueKind == JsonValueKind.Array)
            foreach (var t in a.EnumerateArray()) if (t.TryGetProperty("id", out var id)) max = Math.Max(max, id.GetInt32());
        return max;
    }

    /// <summary>For GGUF: tokens by id, merges as "left right", and which ids are special; null unless a byte-level BPE.</summary>
    public (string[] Tokens, string[] Merges, HashSet<int> Special)? ByteLevelBpe()
    {
        using var d = JsonDocument.Parse(TokenizerJson!);
        var root = d.RootElement;
        if (!root.TryGetProperty("model", out var m) || !m.TryGetProperty("type", out var type) || type.GetString() != "BPE") return null;
        if (!TokenizerJson!.Contains("\"ByteLevel\"", StringComparison.Ordinal)) return null;
        var tokens = new string[VocabSize];
        foreach (var kv in m.GetProperty("vocab").EnumerateObject()) tokens[kv.Value.GetInt32()] = kv.Name;
        var special = new HashSet<int>();
        if (root.TryGetProperty("added_tokens", out var added))
            foreach (var t in added.EnumerateArray())
            {
                int id = t.GetProperty("id").GetInt32();
                tokens[id] = t.GetProperty("content").GetString()!;
                if (t.TryGetProperty("special", out var sp) && sp.GetBoolean()) special.Add(id);
            }
        for (int i = 0; i < tokens.Length; i++) tokens[i] ??= $"[UNUSED{i}]";
        var merges = new List<string>();
        foreach (var e in m.GetProperty("merges").EnumerateArray())
            merges.Add(e.ValueKind == JsonValueKind.Array ? e[0].GetString() + " " + e[1].GetString() : e.GetString()!);
        return (tokens, [.. merges], special);
    }
}
