using System.Text;
using SharpLM.Tokenizers.Core;
using SharpLM.Tokenizers.Decoders;
using SharpLM.Tokenizers.Models.Bpe;
using SharpLM.Tokenizers.Normalizers;
using SharpLM.Tokenizers.PostProcessors;
using SharpLM.Tokenizers.PreTokenizers;

namespace SharpLM.Tokenizers;

/// <summary>The special ids of a built tokenizer and whether its post-processor adds BOS / EOS around a sequence.</summary>
public sealed record SpecialTokenIds(int? Bos = null, int? Eos = null, int? Pad = null, bool AddBos = false, bool AddEos = false);

/// <summary>
/// A byte-level BPE vocabulary (GPT-2, LLaMA-3, Qwen; GGUF "gpt2"): tokens by id written in GPT-2's byte-to-char
/// alphabet, and either ordered merges or, tiktoken-style, scores (-rank) that order the merges.
/// </summary>
public sealed record ByteLevelBpeSpec
{
    public required IReadOnlyList<string> Tokens { get; init; }

    /// <summary>Ordered merges ("left", "right"); null to merge by <see cref="Scores"/>.</summary>
    public IReadOnlyList<(string Left, string Right)>? Merges { get; init; }

    /// <summary>Per-token scores (higher merges first), used when <see cref="Merges"/> is null (tiktoken ranks as -rank).</summary>
    public IReadOnlyList<float>? Scores { get; init; }

    /// <summary>The split regex (a known one from <see cref="SplitPatterns"/>).</summary>
    public SplitPattern Split { get; init; } = SplitPatterns.Gpt2;

    /// <summary>Overrides <see cref="SplitPattern.IgnoreMerges"/>.</summary>
    public bool? IgnoreMerges { get; init; }

    /// <summary>Tokens matched in the raw text before splitting (special and user-defined ones).</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; init; } = [];

    public SpecialTokenIds Special { get; init; } = new();

    /// <summary>Names the source in errors (a file path).</summary>
    public string? SourceName { get; init; }
}

/// <summary>
/// A SentencePiece-style BPE vocabulary (LLaMA-1/2, Mistral; GGUF "llama"): tokens by id with "▁" for spaces, scores
/// (the pair whose merged token has the highest score merges first) and &lt;0xNN&gt; byte fallback.
/// </summary>
public sealed record SentencePieceBpeSpec
{
    public required IReadOnlyList<string> Tokens { get; init; }
    public required IReadOnlyList<float> Scores { get; init; }
    public int? UnkId { get; init; }
    public bool ByteFallback { get; init; } = true;

    /// <summary>Prepend "▁" to the text (SentencePiece's add_dummy_prefix, GGUF add_space_prefix).</summary>
    public bool AddSpacePrefix { get; init; } = true;

    public IReadOnlyList<AddedToken> AddedTokens { get; init; } = [];
    public SpecialTokenIds Special { get; init; } = new();
    public string? SourceName { get; init; }
}

/// <summary>
/// Builds tokenizers from vocabularies that come without a tokenizer.json (GGUF files, tiktoken rank files): the public
/// way other libraries (SharpLM's GGUF loader) compose the same pipelines HF tokenizers runs. Errors in the vocabulary
/// (a merge of unknown tokens, scores that do not match the tokens) name <c>SourceName</c>.
/// </summary>
public static class TokenizerBuilder
{
    /// <summary>Split(pattern, Isolated) + ByteLevel(no regex) + BPE + ByteLevel decoder (+ a BOS/EOS template).</summary>
    public static Tokenizer ByteLevelBpe(ByteLevelBpeSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        bool ignore = spec.IgnoreMerges ?? spec.Split.IgnoreMerges;
        var model = Wrap(spec.SourceName, () =>
        {
            if (spec.Merges is { } merges)
            {
                var vocab = new Dictionary<string, int>(spec.Tokens.Count, StringComparer.Ordinal);
                for (int i = 0; i < spec.Tokens.Count; i++) vocab.TryAdd(spec.Tokens[i], i);
                return BpeModel.FromMerges(vocab, merges, ignoreMerges: ignore);
            }
            var scores = spec.Scores ?? throw new ArgumentException("a byte-level BPE needs merges or scores", nameof(spec));
            return BpeModel.FromScores(spec.Tokens, scores, byteFallback: false, fuseUnk: false, ignoreMerges: ignore);
        });
        var pre = new SequencePreTokenizer([new SplitPreTokenizer(spec.Split.Pattern, true, SplitBehavior.Isolated, false),
            new ByteLevelPreTokenizer(false, true, false)]);
        IPostProcessor post = (IPostProcessor?)Template(spec.Tokens, spec.Special) ?? new ByteLevelProcessor(false, false);
        var tok = new Tokenizer(null, pre, model, post, new ByteLevelDecoder(), spec.AddedTokens, null, null, spec.SourceName);
        tok.SetSpecialIds(spec.Special.Bos, spec.Special.Eos, spec.Special.Pad);
        return tok;
    }

    /// <summary>Prepend("▁") + Replace(" ", "▁") + BPE by scores with byte fallback + Replace/ByteFallback/Fuse/Strip decoder.</summary>
    public static Tokenizer SentencePieceBpe(SentencePieceBpeSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        string? unk = spec.UnkId is int u && u >= 0 && u < spec.Tokens.Count ? spec.Tokens[u] : null;
        var model = Wrap(spec.SourceName, () => BpeModel.FromScores(spec.Tokens, spec.Scores, unk, spec.ByteFallback, fuseUnk: true));
        var replace = new ReplaceNormalizer(" ", false, "\u2581");
        INormalizer normalizer = spec.AddSpacePrefix ? new SequenceNormalizer([new PrependNormalizer("\u2581"), replace]) : replace;
        IDecoder[] dec = spec.AddSpacePrefix
            ? [new ReplaceDecoder("\u2581", false, " "), new ByteFallbackDecoder(), new FuseDecoder(), new StripDecoder(' ', 1, 0)]
            : [new ReplaceDecoder("\u2581", false, " "), new ByteFallbackDecoder(), new FuseDecoder()];
        var tok = new Tokenizer(normalizer, null, model, Template(spec.Tokens, spec.Special), new SequenceDecoder(dec), spec.AddedTokens, null, null, spec.SourceName);
        tok.SetSpecialIds(spec.Special.Bos, spec.Special.Eos, spec.Special.Pad);
        return tok;
    }

    /// <summary>Raw token bytes as a byte-level vocabulary string (each byte one char, GPT-2's table).</summary>
    public static string ToByteLevel(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        foreach (byte b in bytes) sb.Append(ByteLevelTables.ByteToChar[b]);
        return sb.ToString();
    }

    /// <summary>A template that puts BOS before (and EOS after) each sequence, when asked and the ids exist.</summary>
    private static TemplateProcessor? Template(IReadOnlyList<string> tokens, SpecialTokenIds s)
    {
        bool bos = s.AddBos && s.Bos is int b && b >= 0 && b < tokens.Count;
        bool eos = s.AddEos && s.Eos is int e && e >= 0 && e < tokens.Count;
        if (!bos && !eos) return null;
        var single = new List<TemplatePiece>();
        var specials = new Dictionary<string, TemplateSpecialToken>(StringComparer.Ordinal);
        if (bos)
        {
            string t = tokens[s.Bos!.Value];
            specials[t] = new TemplateSpecialToken(t, [s.Bos.Value], [t]);
            single.Add(new TemplatePiece(false, 0, t, 0));
        }
        single.Add(new TemplatePiece(true, 0, "", 0));
        if (eos)
        {
            string t = tokens[s.Eos!.Value];
            specials[t] = new TemplateSpecialToken(t, [s.Eos.Value], [t]);
            single.Add(new TemplatePiece(false, 0, t, 0));
        }
        var pair = new List<TemplatePiece>(single);
        pair.AddRange(single.Select(p => p with { SequenceIndex = p.IsSequence ? 1 : 0, TypeId = 1 }));
        return new TemplateProcessor(single, pair, specials);
    }

    private static BpeModel Wrap(string? source, Func<BpeModel> build)
    {
        try
        {
            return build();
        }
        catch (InvalidDataException e) when (source is not null)
        {
            throw new InvalidDataException($"{source}: {e.Message}", e);
        }
        catch (ArgumentException e) when (source is not null)
        {
            throw new InvalidDataException($"{source}: {e.Message}", e);
        }
    }
}
