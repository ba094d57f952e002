namespace SharpLM.Tokenizers;

/// <summary>Which side padding (or truncation) applies to.</summary>
public enum PaddingDirection
{
    Right,
    Left,
}

/// <summary>How <see cref="Tokenizer.EncodeBatch"/> pads: to the longest encoding of the batch
/// (<see cref="Length"/> null) or to a fixed length; rounded up to a multiple of <see cref="PadToMultipleOf"/>.
/// Null fields take the tokenizer.json "padding" section's values, then the tokenizer's pad token, then id 0.</summary>
public sealed record PaddingOptions
{
    public int? Length { get; init; }
    public PaddingDirection Direction { get; init; } = PaddingDirection.Right;
    public int? PadId { get; init; }
    public string? PadToken { get; init; }
    public int PadTypeId { get; init; }
    public int? PadToMultipleOf { get; init; }
}

/// <summary>How truncation picks tokens to drop in a pair.</summary>
public enum TruncationStrategy
{
    /// <summary>Drop one token at a time from the longer sequence.</summary>
    LongestFirst,
    OnlyFirst,
    OnlySecond,
}

/// <summary>Truncation to <see cref="MaxLength"/> tokens including the special tokens the post-processor adds;
/// the cut part goes to <see cref="Encoding.Overflowing"/> (with <see cref="Stride"/> tokens of overlap).</summary>
public sealed record TruncationOptions
{
    public required int MaxLength { get; init; }
    public TruncationStrategy Strategy { get; init; } = TruncationStrategy.LongestFirst;
    public PaddingDirection Direction { get; init; } = PaddingDirection.Right;
    public int Stride { get; init; }
}

/// <summary>A token of the tokenizer.json "added_tokens" section (special tokens and user-added ones).</summary>
public sealed record AddedToken(string Content, int Id, bool Special, bool Normalized = false, bool LStrip = false,
    bool RStrip = false, bool SingleWord = false);

