using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using SharpLM.Tokenizers;
using SharpLM.Tokenizers.PreTokenizers;

namespace SharpLM.Formats.Gguf;

/// <summary>
/// GGUF tokenizer metadata (<c>tokenizer.ggml.*</c>) in both directions, through SharpLM.Tokenizers' public API only
/// (<see cref="TokenizerBuilder"/> to read, <see cref="Tokenizer.Describe"/> to write):
/// <list type="bullet">
/// <item>"llama" (SentencePiece BPE): spaces become "▁" with one prepended (add_space_prefix, default true) to each text
/// segment, BPE that merges the adjacent pair whose merged token has the highest score (leftmost on ties), &lt;0xNN&gt;
/// byte fallback for characters not in the vocabulary; decoding reverses it.</item>
/// <item>"gpt2" (byte-level BPE): the split regex named by tokenizer.ggml.pre (the table <see cref="SplitPatterns"/>),
/// then the GPT-2 byte-to-char map and merges by rank.</item>
/// </list>
/// CONTROL, USER_DEFINED and UNKNOWN tokens are matched in the text first (as llama.cpp's special-token partition);
/// CONTROL/UNKNOWN are special. BOS (and EOS) are added when tokenizer.ggml.add_bos_token (add_eos_token) is true;
/// llama.cpp's default for a missing add_bos_token is true for "llama" and false for "gpt2" except llama-bpe.
/// Writing, a tokenizer.json's vocabulary becomes the same metadata (as convert_hf_to_gguf.py writes it): a BPE with
/// byte fallback as "llama" with scores from the merge ranks (earlier merge = higher score, so llama.cpp's score-driven
/// merging picks pairs in the merge list's order), a byte-level BPE as "gpt2" with its merges; ids missing up to the
/// model's vocabulary size are padded with "[PADn]" tokens of type UNUSED.
/// </summary>
internal static class GgufTokenizer
{
    /// <summary>Registers the .gguf loader so <see cref="Tokenizer.FromFile"/> reads GGUF files once SharpLM is loaded.</summary>
    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries", Justification = "Registers the GGUF tokenizer loader with the dependency-free SharpLM.Tokenizers (its documented hook).")]
    internal static void Register() => Tokenizer.RegisterLoader(".gguf", LoadFile);

    /// <summary>Opens <paramref name="path"/> and builds its tokenizer.</summary>
    public static Tokenizer LoadFile(string path)
    {
        using var f = GgufFile.Open(path);
        return Load(f);
    }

    public static Tokenizer Load(GgufFile f)
    {
        string model = f.GetStringOrNull(GgufKeys.TokenizerModel)
            ?? throw new InvalidDataException($"{f.Path}: no tokenizer.ggml.model metadata: this GGUF carries no tokenizer");
        var tokens = f.GetStringArray(GgufKeys.Tokens);
        int n = tokens.Length;
        int[] types = f.Contains(GgufKeys.TokenType) ? f.GetIntArray(GgufKeys.TokenType) : new int[n];
        if (types.Length != n) throw new InvalidDataException($"{f.Path}: {GgufKeys.TokenType} has {types.Length} entries, {GgufKeys.Tokens} has {n}");

        int? Id(string key)
        {
            if (!f.Contains(key)) return null;
            long id = f.GetLong(key);
            return id >= 0 && id < n ? (int)id : null; // llama.cpp treats out-of-range ids (e.g. -1 / 0xFFFFFFFF) as unset
        }
        int? bos = Id(GgufKeys.BosId), eos = Id(GgufKeys.EosId), unk = Id(GgufKeys.UnkId), pad = Id(GgufKeys.PadId);

        var added = new List<AddedToken>();
        for (int i = 0; i < n; i++)
        {
            var t = (GgufTokenType)types[i];
            if (t is GgufTokenType.Control or GgufTokenType.UserDefined or GgufTokenType.Unknown && tokens[i].Length > 0)
                added.Add(new AddedToken(tokens[i], i, Special: t != GgufTokenType.UserDefined));
        }
        bool addEos = f.GetBool(GgufKeys.AddEos, false);
        switch (model)
        {
            case "llama":
                {
                    float[] scores = f.Contains(GgufKeys.Scores) ? f.GetFloatArray(GgufKeys.Scores) : new float[n];
                    if (scores.Length != n) throw new InvalidDataException($"{f.Path}: {GgufKeys.Scores} has {scores.Length} entries, {GgufKeys.Tokens} has {n}");
                    return TokenizerBuilder.SentencePieceBpe(new SentencePieceBpeSpec
                    {
                        Tokens = tokens, Scores = scores, UnkId = unk, AddSpacePrefix = f.GetBool(GgufKeys.AddSpacePrefix, true),
                        AddedTokens = added, SourceName = f.Path,
                        Special = new SpecialTokenIds(bos, eos, pad, AddBos: f.GetBool(GgufKeys.AddBos, true), AddEos: addEos),
                    });
                }
            case "gpt2":
                {
                    var mergeLines = f.GetStringArray(GgufKeys.Merges);
                    string preName = f.GetStringOrNull(GgufKeys.TokenizerPre) ?? "default";
                    var split = SplitPatterns.ByGgufName(preName)
                        ?? throw new NotSupportedException($"{f.Path}: tokenizer.ggml.pre '{preName}' is not supported; supported: {string.Join(", ", SplitPatterns.All.SelectMany(p => p.GgufNames))}");
                    var merges = new (string, string)[mergeLines.Length];
                    for (int i = 0; i < merges.Length; i++)
                    {
                        string m = mergeLines[i];
                        int sp = m.Length > 1 ? m.IndexOf(' ', 1) : -1;
                        if (sp < 0) throw new InvalidDataException($"{f.Path}: {GgufKeys.Merges}[{i}] = '{m}' is not \"left right\"");
                        merges[i] = (m[..sp], m[(sp + 1)..]);
                    }
                    return TokenizerBuilder.ByteLevelBpe(new ByteLevelBpeSpec
                    {
                        Tokens = tokens, Merges = merges, Split = split, AddedTokens = added, SourceName = f.Path,
                        Special = new SpecialTokenIds(bos, eos, pad, AddBos: f.GetBool(GgufKeys.AddBos, split == SplitPatterns.Llama3), AddEos: addEos),
                    });
                }
            default:
                throw new NotSupportedException($"{f.Path}: tokenizer.ggml.model '{model}' is not supported; supported: llama (SentencePiece BPE), gpt2 (byte-level BPE)");
        }
    }

    /// <summary>
    /// Writes tokenizer.ggml.model/pre/tokens/token_type and scores or merges for <paramref name="tokenizer"/>, padded to
    /// <paramref name="vocabSize"/> ids (the tokenizer's own count when null); returns the description it wrote (for the caller's special ids). The special ids,
    /// add_bos and the chat template are the caller's: they come from files beside the tokenizer.
    /// </summary>
    public static TokenizerVocabulary Write(Tokenizer tokenizer, int? vocabSize, GgufWriter w)
    {
        var v = tokenizer.Describe();
        string source = tokenizer.SourceName ?? "the tokenizer";
        if (v.ModelType != "BPE")
            throw new NotSupportedException($"{source}: a {v.ModelType} tokenizer does not convert to GGUF here (BPE only: byte-level or SentencePiece-style)");
        if (v.Tokens.Count > vocabSize)
            throw new InvalidDataException($"{source}: {v.Tokens.Count} tokens, more than the model's vocabulary of {vocabSize}");
        int n = Math.Max(v.Tokens.Count, vocabSize ?? 0);
        var tokens = new string[n];
        var types = new int[n];
        var special = v.AddedTokens.Where(a => a.Special).Select(a => a.Id).ToHashSet();
        var added = v.AddedTokens.Select(a => a.Id).ToHashSet();
        for (int i = 0; i < n; i++)
        {
            string? t = i < v.Tokens.Count ? v.Tokens[i] : null;
            if (t is null)
            {
                tokens[i] = $"[PAD{i}]";
                types[i] = (int)GgufTokenType.Unused;
                continue;
            }
            tokens[i] = t;
            types[i] = (int)(special.Contains(i) ? t == v.UnkToken ? GgufTokenType.Unknown : GgufTokenType.Control
                : added.Contains(i) ? GgufTokenType.UserDefined
                : v.ByteFallback && IsByteToken(t) ? GgufTokenType.Byte
                : t == v.UnkToken ? GgufTokenType.Unknown : GgufTokenType.Normal);
        }
        w.Set(GgufKeys.Tokens, GgufArray.Of(tokens));
        w.Set(GgufKeys.TokenType, GgufArray.Of(types));
        if (v.ByteFallback)
        {
            // SentencePiece-style: scores as the model holds them, or from the merge ranks
            var scores = new float[n];
            if (v.Scores is { } s) for (int i = 0; i < Math.Min(n, s.Count); i++) scores[i] = s[i];
            else
            {
                var ids = new Dictionary<string, int>(StringComparer.Ordinal);
                for (int i = 0; i < v.Tokens.Count; i++) if (v.Tokens[i] is { } t) ids.TryAdd(t, i);
                var seen = new bool[n];
                for (int r = 0; r < v.Merges.Count; r++)
                    if (ids.TryGetValue(v.Merges[r].Left + v.Merges[r].Right, out int id) && !seen[id])
                    {
                        seen[id] = true;
                        scores[id] = -r - 1;
                    }
            }
            w.Set(GgufKeys.TokenizerModel, "llama");
            w.Set(GgufKeys.TokenizerPre, "default");
            w.Set(GgufKeys.Scores, GgufArray.Of(scores));
            w.Set(GgufKeys.AddSpacePrefix, true);
        }
        else
        {
            if (!v.ByteLevel) throw new NotSupportedException($"{source}: a BPE without byte fallback must be byte-level to convert to GGUF");
            w.Set(GgufKeys.TokenizerModel, "gpt2");
            w.Set(GgufKeys.TokenizerPre, v.Split?.GgufName ?? (v.SplitRegex is null ? SplitPatterns.Gpt2.GgufName : "default"));
            w.Set(GgufKeys.Merges, GgufArray.Of([.. v.Merges.Select(m => m.Left + " " + m.Right)]));
        }
        return v;
    }

    private static bool IsByteToken(string s) => s.Length == 6 && s.StartsWith("<0x", StringComparison.Ordinal) && s[5] == '>'
        && Uri.IsHexDigit(s[3]) && Uri.IsHexDigit(s[4]);
}

/// <summary>GGUF tokenizer entry point on <see cref="GgufFile"/>.</summary>
internal static class GgufFileTokenizerExtensions
{
    /// <summary>The tokenizer described by this file's tokenizer.ggml.* metadata.</summary>
    public static Tokenizer LoadTokenizer(this GgufFile f) => GgufTokenizer.Load(f);
}
