using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using SharpLM.Tokenizers;
using SharpLM.Tokenizers.Core;
using SharpLM.Tokenizers.Decoders;
using SharpLM.Tokenizers.Models.Bpe;
using SharpLM.Tokenizers.Normalizers;
using SharpLM.Tokenizers.PostProcessors;
using SharpLM.Tokenizers.PreTokenizers;

namespace SharpLM.Formats.Gguf;

/// <summary>
/// Builds a SharpLM <see cref="Tokenizer"/> from GGUF tokenizer metadata, composing the same pipeline llama.cpp runs:
/// <list type="bullet">
/// <item>tokenizer.ggml.model = "llama" (SentencePiece BPE): spaces become "▁" with one prepended (add_space_prefix,
/// default true) to each text segment, BPE that merges the adjacent pair whose merged token has the highest score
/// (leftmost on ties), &lt;0xNN&gt; byte fallback for characters not in the vocabulary; decoding reverses it.</item>
/// <item>tokenizer.ggml.model = "gpt2" (byte-level BPE): the pre-tokenizer regex chosen by tokenizer.ggml.pre
/// ("llama-bpe"/"llama3" → the Llama-3 regex with ignore_merges, "qwen2" → Qwen2's single-digit regex,
/// "default"/"gpt-2" → GPT-2's), then the GPT-2 byte-to-char map and merges by rank.</item>
/// </list>
/// CONTROL, USER_DEFINED and UNKNOWN tokens are matched in the text first (as llama.cpp's special-token partition);
/// CONTROL/UNKNOWN are special. BOS (and EOS) are added when tokenizer.ggml.add_bos_token (add_eos_token) is true;
/// llama.cpp's default for a missing add_bos_token is true for "llama" and false for "gpt2" except llama-bpe.
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

        INormalizer? normalizer;
        IPreTokenizer? pre;
        IModel bpe;
        IDecoder decoder;
        bool addBos;
        switch (model)
        {
            case "llama":
                {
                    float[] scores = f.Contains(GgufKeys.Scores) ? f.GetFloatArray(GgufKeys.Scores) : new float[n];
                    if (scores.Length != n) throw new InvalidDataException($"{f.Path}: {GgufKeys.Scores} has {scores.Length} entries, {GgufKeys.Tokens} has {n}");
                    bool spacePrefix = f.GetBool(GgufKeys.AddSpacePrefix, true);
                    var replace = new ReplaceNormalizer(" ", false, "▁");
                    normalizer = spacePrefix ? new SequenceNormalizer([new PrependNormalizer("▁"), replace]) : replace;
                    pre = null;
                    bpe = Wrap(f, () => BpeModel.FromScores(tokens, scores, unk is { } u ? tokens[u] : null, byteFallback: true, fuseUnk: true));
                    IDecoder[] dec = spacePrefix
                        ? [new ReplaceDecoder("▁", false, " "), new ByteFallbackDecoder(), new FuseDecoder(), new StripDecoder(' ', 1, 0)]
                        : [new ReplaceDecoder("▁", false, " "), new ByteFallbackDecoder(), new FuseDecoder()];
                    decoder = new SequenceDecoder(dec);
                    addBos = f.GetBool(GgufKeys.AddBos, true);
                    break;
                }
            case "gpt2":
                {
                    var mergeLines = f.GetStringArray(GgufKeys.Merges);
                    string preName = f.GetStringOrNull(GgufKeys.TokenizerPre) ?? "default";
                    (string pattern, bool ignoreMerges) = preName switch
                    {
                        "llama-bpe" or "llama3" or "llama-v3" or "smaug-bpe" or "dbrx" => (FastSplit.Cl100kPattern, true),
                        "qwen2" or "deepseek-r1-qwen" => (FastSplit.QwenPattern, false),
                        "default" or "gpt-2" or "gpt2" => (FastSplit.Gpt2Pattern, false),
                        _ => throw new NotSupportedException($"{f.Path}: tokenizer.ggml.pre '{preName}' is not supported; supported: llama-bpe, qwen2, gpt-2, default"),
                    };
                    var vocab = new Dictionary<string, int>(n, StringComparer.Ordinal);
                    for (int i = 0; i < n; i++) vocab.TryAdd(tokens[i], i);
                    var merges = new (string, string)[mergeLines.Length];
                    for (int i = 0; i < merges.Length; i++)
                    {
                        string m = mergeLines[i];
                        int sp = m.Length > 1 ? m.IndexOf(' ', 1) : -1;
                        if (sp < 0) throw new InvalidDataException($"{f.Path}: {GgufKeys.Merges}[{i}] = '{m}' is not \"left right\"");
                        merges[i] = (m[..sp], m[(sp + 1)..]);
                    }
                    normalizer = null;
                    pre = new SequencePreTokenizer([new SplitPreTokenizer(pattern, true, SplitBehavior.Isolated, false), new ByteLevelPreTokenizer(false, true, false)]);
                    bpe = Wrap(f, () => BpeModel.FromMerges(vocab, merges, ignoreMerges: ignoreMerges));
                    decoder = new ByteLevelDecoder();
                    addBos = f.GetBool(GgufKeys.AddBos, preName is "llama-bpe" or "llama3" or "llama-v3");
                    break;
                }
            default:
                throw new NotSupportedException($"{f.Path}: tokenizer.ggml.model '{model}' is not supported; supported: llama (SentencePiece BPE), gpt2 (byte-level BPE)");
        }

        bool addEos = f.GetBool(GgufKeys.AddEos, false);
        IPostProcessor? post = null;
        if ((addBos && bos is not null) || (addEos && eos is not null))
        {
            var single = new List<TemplatePiece>();
            var pair = new List<TemplatePiece>();
            var specials = new Dictionary<string, TemplateSpecialToken>(StringComparer.Ordinal);
            if (addBos && bos is { } b)
            {
                specials[tokens[b]] = new TemplateSpecialToken(tokens[b], [b], [tokens[b]]);
                single.Add(new TemplatePiece(false, 0, tokens[b], 0));
            }
            single.Add(new TemplatePiece(true, 0, "", 0));
            if (addEos && eos is { } e)
            {
                specials[tokens[e]] = new TemplateSpecialToken(tokens[e], [e], [tokens[e]]);
                single.Add(new TemplatePiece(false, 0, tokens[e], 0));
            }
            pair.AddRange(single);
            pair.AddRange(single.Select(p => p with { SequenceIndex = p.IsSequence ? 1 : 0, TypeId = 1 }));
            post = new TemplateProcessor(single, pair, specials);
        }

        var tok = new Tokenizer(normalizer, pre, bpe, post, decoder, added, sourceName: f.Path);
        tok.SetSpecialIds(bos, eos, pad);
        return tok;
    }

    private static IModel Wrap(GgufFile f, Func<IModel> build)
    {
        try
        {
            return build();
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{f.Path}: {e.Message}", e);
        }
    }
}

/// <summary>GGUF tokenizer entry point on <see cref="GgufFile"/>.</summary>
internal static class GgufFileTokenizerExtensions
{
    /// <summary>The tokenizer described by this file's tokenizer.ggml.* metadata.</summary>
    public static Tokenizer LoadTokenizer(this GgufFile f) => GgufTokenizer.Load(f);
}
