using SharpLM.Tokenizers.PreTokenizers;

namespace SharpLM.Tokenizers.Tiktoken;

/// <summary>
/// A tiktoken encoding: its split regex and its special tokens (the rank file holds only the mergeable ranks).
/// The known ones are picked by the rank file's name (gpt2 / r50k_base / p50k_base, cl100k_base, o200k_base).
/// </summary>
/// <param name="Name">The encoding's name, e.g. "cl100k_base".</param>
/// <param name="Pattern">The pre-tokenizer regex.</param>
/// <param name="SpecialTokens">Special tokens and their ids.</param>
public sealed record TiktokenEncoding(string Name, string Pattern, IReadOnlyDictionary<string, int> SpecialTokens)
{
    /// <summary>GPT-2 / r50k_base (and p50k_base): 50,257 tokens.</summary>
    public static TiktokenEncoding R50kBase { get; } = new("r50k_base", SplitPatterns.Gpt2.OtherSpellings[0],
        new Dictionary<string, int>(StringComparer.Ordinal) { ["<|endoftext|>"] = 50256 });

    /// <summary>cl100k_base (GPT-3.5, GPT-4).</summary>
    public static TiktokenEncoding Cl100kBase { get; } = new("cl100k_base", SplitPatterns.Llama3.Pattern,
        new Dictionary<string, int>(StringComparer.Ordinal)
        {
            ["<|endoftext|>"] = 100257, ["<|fim_prefix|>"] = 100258, ["<|fim_middle|>"] = 100259,
            ["<|fim_suffix|>"] = 100260, ["<|endofprompt|>"] = 100276,
        });

    /// <summary>o200k_base (GPT-4o).</summary>
    public static TiktokenEncoding O200kBase { get; } = new("o200k_base", SplitPatterns.O200k.Pattern,
        new Dictionary<string, int>(StringComparer.Ordinal) { ["<|endoftext|>"] = 199999, ["<|endofprompt|>"] = 200018 });

    /// <summary>The encoding a rank file's name implies ("cl100k_base.tiktoken" -> cl100k_base), or null.</summary>
    public static TiktokenEncoding? FromFileName(string path)
    {
        var name = Path.GetFileName(path).ToLowerInvariant();
        if (name.Contains("o200k", StringComparison.Ordinal)) return O200kBase;
        if (name.Contains("cl100k", StringComparison.Ordinal)) return Cl100kBase;
        if (name.Contains("r50k", StringComparison.Ordinal) || name.Contains("p50k", StringComparison.Ordinal) || name.Contains("gpt2", StringComparison.Ordinal) || name.Contains("gpt-2", StringComparison.Ordinal))
            return R50kBase;
        return null;
    }

    /// <summary>An encoding by name: r50k_base (or gpt2, p50k_base), cl100k_base, o200k_base.</summary>
    public static TiktokenEncoding FromName(string name) => name.ToLowerInvariant() switch
    {
        "r50k_base" or "gpt2" or "gpt-2" or "p50k_base" => R50kBase,
        "cl100k_base" or "cl100k" => Cl100kBase,
        "o200k_base" or "o200k" => O200kBase,
        _ => throw new ArgumentException($"Unknown tiktoken encoding '{name}'; expected r50k_base (gpt2), cl100k_base or o200k_base.", nameof(name)),
    };
}
