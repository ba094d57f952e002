namespace SharpLM.Tokenizers.PreTokenizers;

/// <summary>
/// A known pre-tokenizer split regex: its name, the pattern as tokenizer.json files and tiktoken write it (and the
/// other spellings of the same split), the <c>tokenizer.ggml.pre</c> names llama.cpp gives it in GGUF files, and whether
/// its BPE skips the merges for words that are whole vocabulary entries (HF's <c>ignore_merges</c>, LLaMA-3).
/// </summary>
public sealed record SplitPattern(string Name, string Pattern, IReadOnlyList<string> GgufNames, bool IgnoreMerges, IReadOnlyList<string> OtherSpellings)
{
    /// <summary>The name written to GGUF (<c>tokenizer.ggml.pre</c>).</summary>
    public string GgufName => GgufNames[0];

    /// <summary>The scanner that gives exactly this regex's matches.</summary>
    internal FastSplitKind Kind { get; init; }

    public override string ToString() => Name;
}

/// <summary>
/// The one table of split regexes: every component that names, recognizes or writes a pre-tokenizer pattern (the
/// hand-written scanners, the BPE trainer, tiktoken, the GGUF tokenizer loader and the GGUF converter) reads it here.
/// </summary>
public static class SplitPatterns
{
    // The pattern strings as constants, for the source-generated regexes of the trainer (AOT-friendly).
    internal const string Gpt2Text = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    internal const string Llama3Text = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>GPT-2 (r50k, p50k): <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>.</summary>
    public static SplitPattern Gpt2 { get; } = new("gpt2", Gpt2Text,
        ["gpt-2", "gpt2", "default"], IgnoreMerges: false,
        [@"'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"]) { Kind = FastSplitKind.Gpt2 };

    /// <summary>cl100k_base as LLaMA-3 writes it: case-insensitive contractions, letter runs with one leading
    /// non-letter, digits in groups of at most 3, newline runs.</summary>
    public static SplitPattern Llama3 { get; } = new("llama3", Llama3Text,
        ["llama-bpe", "llama3", "llama-v3", "smaug-bpe", "dbrx"], IgnoreMerges: true, []) { Kind = FastSplitKind.Cl100k };

    /// <summary>The cl100k form with single digits (<c>\p{N}</c>): Qwen2, Qwen2.5, Qwen3.</summary>
    public static SplitPattern Qwen2 { get; } = new("qwen2",
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ["qwen2", "deepseek-r1-qwen"], IgnoreMerges: false, []) { Kind = FastSplitKind.Qwen };

    /// <summary>o200k_base (GPT-4o): case-aware letter runs with contraction suffixes, <c>[\r\n/]*</c> after punctuation.</summary>
    public static SplitPattern O200k { get; } = new("o200k",
        @"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|" +
        @"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|" +
        @"\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        ["gpt-4o"], IgnoreMerges: false, []) { Kind = FastSplitKind.O200k };

    public static IReadOnlyList<SplitPattern> All { get; } = [Gpt2, Llama3, Qwen2, O200k];

    /// <summary>The known split whose pattern (or another spelling of it) is exactly <paramref name="pattern"/>, or null.</summary>
    public static SplitPattern? ByPattern(string? pattern)
    {
        if (pattern is null) return null;
        foreach (var p in All)
            if (p.Pattern == pattern || p.OtherSpellings.Contains(pattern)) return p;
        return null;
    }

    /// <summary>The split llama.cpp means by a <c>tokenizer.ggml.pre</c> name, or null.</summary>
    public static SplitPattern? ByGgufName(string name) => All.FirstOrDefault(p => p.GgufNames.Contains(name));
}
