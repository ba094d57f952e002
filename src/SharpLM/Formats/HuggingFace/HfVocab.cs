using System.Text.Json;
using SharpLM.Formats.Gguf;

namespace SharpLM.Formats.HuggingFace;

/// <summary>
/// A tokenizer.json BPE vocabulary turned into llama.cpp's GGUF tokenizer metadata:
/// <list type="bullet">
/// <item>"gpt2" (byte-level BPE, e.g. Llama 3, Qwen2): tokens as stored (Ġ-encoded), token types, merges "a b", and
/// tokenizer.ggml.pre chosen from the pre-tokenizer regex ("llama-bpe", "qwen2", "gpt-2", else "default").</item>
/// <item>"llama" (SentencePiece-style BPE with byte_fallback and ▁, e.g. Mistral, LLaMA-2): tokens, scores and types.
/// tokenizer.json has merges, not SentencePiece scores, so a token's score is minus the rank of the first merge that
/// produces it (earlier merge = higher score), which makes llama.cpp's score-driven SPM merging pick the pairs in the
/// same order as the merge list; tokens no merge produces (characters, bytes, specials) score 0.</item>
/// </list>
/// Ids missing from the vocabulary up to <c>vocabSize</c> are padded with "[PADn]" tokens of type UNUSED, as
/// convert_hf_to_gguf.py does, so the token count matches the embedding rows.
/// </summary>
internal sealed record HfVocab(
    string Model,
    string? Pre,
    string[] Tokens,
    int[] TokenTypes,
    float[]? Scores,
    string[]? Merges,
    IReadOnlyDictionary<string, int> Ids)
{
    /// <summary>Whether tokenizer.json's post-processor puts a special token before the text (TemplateProcessing
    /// starting with one); false for other post-processors, null when there is none.</summary>
    public bool? AddBos { get; init; }

    public static HfVocab Load(string tokenizerJsonPath, int? vocabSize = null)
    {
        JsonDocument doc;
        try
        {
            var bytes = File.ReadAllBytes(tokenizerJsonPath);
            if (!System.Text.Unicode.Utf8.IsValid(bytes)) throw new InvalidDataException($"{tokenizerJsonPath}: not valid UTF-8 text");
            doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{tokenizerJsonPath}: invalid JSON: {e.Message}", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            string Fail(string what) => throw new InvalidDataException($"{tokenizerJsonPath}: {what}");
            if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object) Fail("'model' is missing");
            string type = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "BPE";
            if (type != "BPE") Fail($"model.type is '{type}'; only BPE tokenizers convert to GGUF here (WordPiece/Unigram are not supported)");
            if (!model.TryGetProperty("vocab", out var vocab) || vocab.ValueKind != JsonValueKind.Object) Fail("'model.vocab' is missing or not an object");
            var ids = new Dictionary<string, int>(StringComparer.Ordinal);
            int maxId = -1;
            foreach (var p in vocab.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0 || id > 10_000_000) Fail($"model.vocab['{p.Name}'] = {p.Value.GetRawText()} is not a token id");
                ids[p.Name] = id;
                maxId = Math.Max(maxId, id);
            }
            var special = new HashSet<int>();
            var added = new HashSet<int>();
            if (root.TryGetProperty("added_tokens", out var at) && at.ValueKind == JsonValueKind.Array)
                foreach (var a in at.EnumerateArray())
                {
                    if (!a.TryGetProperty("id", out var idE) || !idE.TryGetInt32(out int id) || id < 0 || id > 10_000_000 || !a.TryGetProperty("content", out var c) || c.ValueKind != JsonValueKind.String)
                        Fail($"added_tokens entry {a.GetRawText()} needs an id and a content");
                    ids[c.GetString()!] = id;
                    maxId = Math.Max(maxId, id);
                    added.Add(id);
                    if (a.TryGetProperty("special", out var sp) && sp.ValueKind == JsonValueKind.True) special.Add(id);
                }
            var merges = new List<string>();
            if (model.TryGetProperty("merges", out var ms) && ms.ValueKind == JsonValueKind.Array)
                foreach (var m in ms.EnumerateArray())
                    merges.Add(m.ValueKind switch
                    {
                        JsonValueKind.String => m.GetString()!,
                        JsonValueKind.Array when m.GetArrayLength() == 2 => m[0].GetString() + " " + m[1].GetString(),
                        _ => Fail($"model.merges holds {m.GetRawText()}, expected \"a b\" or [\"a\", \"b\"]"),
                    });

            int n = Math.Max(maxId + 1, vocabSize ?? 0);
            var tokens = new string[n];
            foreach (var (tok, id) in ids) tokens[id] = tok;
            bool byteFallback = model.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == JsonValueKind.True;
            string? unk = model.TryGetProperty("unk_token", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString() : null;
            var types = new int[n];
            for (int i = 0; i < n; i++)
            {
                if (tokens[i] is null)
                {
                    tokens[i] = $"[PAD{i}]";
                    types[i] = (int)GgufTokenType.Unused;
                }
                else if (special.Contains(i)) types[i] = (int)(tokens[i] == unk ? GgufTokenType.Unknown : GgufTokenType.Control);
                else if (added.Contains(i)) types[i] = (int)GgufTokenType.UserDefined;
                else if (byteFallback && IsByteToken(tokens[i])) types[i] = (int)GgufTokenType.Byte;
                else types[i] = (int)(tokens[i] == unk ? GgufTokenType.Unknown : GgufTokenType.Normal);
            }

            if (byteFallback)
            {
                // SentencePiece-style: scores from merge ranks.
                var scores = new float[n];
                var seen = new bool[n];
                for (int r = 0; r < merges.Count; r++)
                {
                    int sp = merges[r].IndexOf(' ', StringComparison.Ordinal);
                    if (sp < 0) continue;
                    var merged = string.Concat(merges[r].AsSpan(0, sp), merges[r].AsSpan(sp + 1));
                    if (ids.TryGetValue(merged, out int id) && !seen[id])
                    {
                        seen[id] = true;
                        scores[id] = -r - 1;
                    }
                }
                return new HfVocab("llama", "default", tokens, types, scores, null, ids) { AddBos = AddBosFromPostProcessor(root) };
            }
            return new HfVocab("gpt2", PreFromRegex(root), tokens, types, null, [.. merges], ids) { AddBos = AddBosFromPostProcessor(root) };
        }
    }

    private static bool? AddBosFromPostProcessor(JsonElement root)
    {
        if (!root.TryGetProperty("post_processor", out var pp) || pp.ValueKind != JsonValueKind.Object) return null;
        var list = pp.TryGetProperty("processors", out var ps) && ps.ValueKind == JsonValueKind.Array ? ps.EnumerateArray().ToList() : [pp];
        foreach (var p in list)
        {
            if (!p.TryGetProperty("type", out var t) || !t.ValueEquals("TemplateProcessing")) continue;
            if (!p.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array || single.GetArrayLength() == 0) return false;
            return single[0].ValueKind == JsonValueKind.Object && single[0].TryGetProperty("SpecialToken", out _);
        }
        return false; // a post-processor without a template (e.g. ByteLevel) adds nothing
    }

    private static bool IsByteToken(string s) => s.Length == 6 && s.StartsWith("<0x", StringComparison.Ordinal) && s[5] == '>'
        && Uri.IsHexDigit(s[3]) && Uri.IsHexDigit(s[4]);

    /// <summary>llama.cpp's tokenizer.ggml.pre for a byte-level pre-tokenizer, recognized by its split regex.</summary>
    private static string PreFromRegex(JsonElement root)
    {
        var regexes = new List<string>();
        void Walk(JsonElement e)
        {
            if (e.ValueKind == JsonValueKind.Object)
            {
                if (e.TryGetProperty("pattern", out var p) && p.ValueKind == JsonValueKind.Object && p.TryGetProperty("Regex", out var r) && r.ValueKind == JsonValueKind.String)
                    regexes.Add(r.GetString()!);
                foreach (var x in e.EnumerateObject()) Walk(x.Value);
            }
            else if (e.ValueKind == JsonValueKind.Array)
                foreach (var x in e.EnumerateArray()) Walk(x);
        }
        if (root.TryGetProperty("pre_tokenizer", out var pre)) Walk(pre);
        foreach (var r in regexes)
        {
            if (r.Contains(@"\p{N}{1,3}", StringComparison.Ordinal)) return "llama-bpe";
            if (r.Contains(@"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|", StringComparison.Ordinal)) return "qwen2";
            if (r.Contains(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+", StringComparison.Ordinal)) return "gpt-2";
        }
        return regexes.Count == 0 ? "gpt-2" : "default";
    }

    /// <summary>The id of a token string, or null.</summary>
    public int? IdOf(string? token) => token is not null && Ids.TryGetValue(token, out int id) ? id : null;

    /// <summary>Writes tokenizer.ggml.model/pre/tokens/token_type and scores or merges.</summary>
    public void WriteTo(GgufWriter w)
    {
        w.Set(GgufKeys.TokenizerModel, Model);
        if (Pre is not null) w.Set(GgufKeys.TokenizerPre, Pre);
        w.Set(GgufKeys.Tokens, GgufArray.Of(Tokens));
        if (Scores is not null) w.Set(GgufKeys.Scores, GgufArray.Of(Scores));
        w.Set(GgufKeys.TokenType, GgufArray.Of(TokenTypes));
        if (Merges is not null) w.Set(GgufKeys.Merges, GgufArray.Of(Merges));
    }

}
