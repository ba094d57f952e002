namespace SharpLM.Tokenizers.Training;

/// <summary>Which regex splits the text into words before byte-level BPE training.</summary>
public enum TrainerSplit
{
    /// <summary>GPT-2: <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>.</summary>
    Gpt2,

    /// <summary>LLaMA-3 / cl100k: case-insensitive contractions, digits in groups of at most 3, newline runs.</summary>
    Llama3,
}

/// <summary>
/// Options of <see cref="BpeTrainer"/>. Change them with <c>with</c>:
/// <code>new BpeTrainerOptions { VocabSize = 1000, SpecialTokens = ["&lt;s&gt;", "&lt;/s&gt;"] }</code>.
/// </summary>
public sealed record BpeTrainerOptions
{
    /// <summary>Final vocabulary size, counting the special tokens and the 256 byte tokens.</summary>
    public int VocabSize { get; init; } = 8000;

    /// <summary>Special tokens; they get the first ids (0, 1, ...) and become added_tokens in tokenizer.json.</summary>
    public IReadOnlyList<string> SpecialTokens { get; init; } = [];

    /// <summary>Pre-tokenization split.</summary>
    public TrainerSplit Split { get; init; } = TrainerSplit.Gpt2;

    /// <summary>A pair is merged only if it occurs at least this many times (weighted by word frequency).</summary>
    public int MinFrequency { get; init; } = 2;

    /// <summary>
    /// When set (must be one of <see cref="SpecialTokens"/>), the saved tokenizer.json has a TemplateProcessing
    /// post-processor that puts this token before every sequence, as LLaMA-3's does with &lt;|begin_of_text|&gt;.
    /// </summary>
    public string? BosToken { get; init; }
}

/// <summary>Progress of a training run, reported to an <see cref="IProgress{T}"/>.</summary>
/// <param name="Stage">"count" while words are counted (Done = characters read so far), "merge" while merging.</param>
/// <param name="Done">Units done.</param>
/// <param name="Total">Units in all (0 when unknown).</param>
public readonly record struct BpeTrainerProgress(string Stage, long Done, long Total);
