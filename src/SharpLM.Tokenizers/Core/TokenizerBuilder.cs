using System.Text;
using SharpLM.Tokenizers.Decoders;
using SharpLM.Tokenizers.Models.Bpe;
using SharpLM.Tokenizers.Normalizers;
using SharpLM.Tokenizers.PostProcessors;
using SharpLM.Tokenizers.PreTokenizers;

namespace SharpLM.Tokenizers.Core;

/// <summary>
/// Ready-made pipelines for loaders that have a vocabulary but no tokenizer.json (tiktoken, GGUF):
/// <list type="bullet">
/// <item><see cref="ByteLevelBpe"/>: GPT-2 / tiktoken / GGUF "gpt2": Split(pattern, Isolated) + ByteLevel(no regex) +
/// BPE + ByteLevel decoder (+ an optional BOS template). Vocab strings are byte-level chars
/// (<see cref="ToByteLevel"/> turns raw token bytes into them).</item>
/// <item><see cref="SentencePieceBpe"/>: LLaMA-1/2 / Mistral GGUF "llama": Prepend("▁") + Replace(" ", "▁") +
/// BPE with byte_fallback (<see cref="BpeModel.FromScores"/>) + Replace/ByteFallback/Fuse/Strip decoder (+ BOS).</item>
/// </list>
/// A tiktoken rank file is <c>BpeModel.FromScores(tokens, scores: -rank, byteFallback: false, fuseUnk: false)</c>:
/// merging the adjacent pair whose result has the lowest rank is exactly tiktoken's algorithm.
/// </summary>
internal static class TokenizerBuilder
{
    /// <summary>The LLaMA-3 / GPT-4 (cl100k) pre-tokenizer regex.</summary>
    public const string Cl100kPattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>The GPT-2 pre-tokenizer regex.</summary>
    public const string Gpt2Pattern = ByteLevelPreTokenizer.Gpt2Pattern;

    /// <summary>Raw token bytes as a byte-level vocabulary string (each byte one char, GPT-2's table).</summary>
    public static string ToByteLevel(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        foreach (byte b in bytes) sb.Append(ByteLevelTables.ByteToChar[b]);
        return sb.ToString();
    }

    public static Tokenizer ByteLevelBpe(BpeModel model, string pattern, IEnumerable<AddedToken> addedTokens,
        (string Token, int Id)? bos = null, string? sourceName = null)
    {
        var pre = new SequencePreTokenizer([new SplitPreTokenizer(pattern, true, SplitBehavior.Isolated, false),
            new ByteLevelPreTokenizer(false, true, false)]);
        IPostProcessor post = bos is { } b ? BosTemplate(b) : new ByteLevelProcessor(false, false);
        return new Tokenizer(null, pre, model, post, new ByteLevelDecoder(), addedTokens, null, null, sourceName);
    }

    public static Tokenizer SentencePieceBpe(BpeModel model, IEnumerable<AddedToken> addedTokens, (string Token, int Id)? bos,
        string? sourceName = null)
    {
        var normalizer = new SequenceNormalizer([new PrependNormalizer("\u2581"), new ReplaceNormalizer(" ", false, "\u2581")]);
        var decoder = new SequenceDecoder([new ReplaceDecoder("\u2581", false, " "), new ByteFallbackDecoder(), new FuseDecoder(),
            new StripDecoder(' ', 1, 0)]);
        IPostProcessor? post = bos is { } b ? BosTemplate(b) : null;
        return new Tokenizer(normalizer, null, model, post, decoder, addedTokens, null, null, sourceName);
    }

    /// <summary>A template that puts one BOS token before the sequence (and before the pair's second part).</summary>
    public static TemplateProcessor BosTemplate((string Token, int Id) bos)
    {
        var specials = new Dictionary<string, TemplateSpecialToken> { [bos.Token] = new(bos.Token, [bos.Id], [bos.Token]) };
        return new TemplateProcessor([new(false, 0, bos.Token, 0), new(true, 0, "", 0)],
            [new(false, 0, bos.Token, 0), new(true, 0, "", 0), new(false, 0, bos.Token, 1), new(true, 1, "", 1)], specials);
    }
}
