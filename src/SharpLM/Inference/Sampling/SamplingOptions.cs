namespace SharpLM.Inference.Sampling;

/// <summary>
/// How the next token is chosen from the logits, with llama.cpp's defaults and semantics (its common sampler chain:
/// penalties -> top-k -> top-p -> min-p -> temperature -> dist). Change with <c>with</c>:
/// <code>var o = SamplingOptions.Default with { Temperature = 0.2f, Seed = 42 };</code>
/// </summary>
public sealed record SamplingOptions
{
    /// <summary>The defaults (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalties, random seed).</summary>
    public static SamplingOptions Default { get; } = new();

    /// <summary>Always the most likely token (after penalties): temperature 0.</summary>
    public static SamplingOptions Greedy { get; } = new() { Temperature = 0f };

    /// <summary>Logits are divided by this just before sampling; 0 (or less) means greedy (argmax).</summary>
    public float Temperature { get; init; } = 0.8f;

    /// <summary>Keep only the K most likely tokens; 0 (or less) turns it off.</summary>
    public int TopK { get; init; } = 40;

    /// <summary>Keep the smallest set of most likely tokens whose probability reaches P; 1 turns it off.</summary>
    public float TopP { get; init; } = 0.95f;

    /// <summary>Drop tokens whose probability is below MinP times the most likely one's; 0 turns it off.</summary>
    public float MinP { get; init; } = 0.05f;

    /// <summary>Logits of tokens seen in the last <see cref="RepeatLastN"/> are divided by this when positive and
    /// multiplied by it when negative; 1 turns it off.</summary>
    public float RepeatPenalty { get; init; } = 1.0f;

    /// <summary>How many of the most recent tokens the penalties look at; 0 turns penalties off, -1 means all.</summary>
    public int RepeatLastN { get; init; } = 64;

    /// <summary>OpenAI's presence penalty: subtracted once from the logit of every token seen in the window.</summary>
    public float PresencePenalty { get; init; }

    /// <summary>OpenAI's frequency penalty: subtracted from a token's logit once per time it was seen in the window.</summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>The seed of the sampler's own PRNG (xoshiro256**); null picks a random one. The same seed, options
    /// and logits give the same tokens on every platform and .NET version.</summary>
    public ulong? Seed { get; init; }

    /// <summary>Generation stops when the decoded text ends with any of these (the stop string is not returned).</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first value out of range.</summary>
    public void Validate()
    {
        if (float.IsNaN(Temperature) || float.IsInfinity(Temperature))
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "Temperature must be a finite number (0 = greedy).");
        if (float.IsNaN(TopP) || TopP < 0f || TopP > 1f)
            throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "TopP must be in [0, 1] (1 = off).");
        if (float.IsNaN(MinP) || MinP < 0f || MinP > 1f)
            throw new ArgumentOutOfRangeException(nameof(MinP), MinP, "MinP must be in [0, 1] (0 = off).");
        if (float.IsNaN(RepeatPenalty) || float.IsInfinity(RepeatPenalty) || RepeatPenalty <= 0f)
            throw new ArgumentOutOfRangeException(nameof(RepeatPenalty), RepeatPenalty, "RepeatPenalty must be a positive finite number (1 = off).");
        if (RepeatLastN < -1)
            throw new ArgumentOutOfRangeException(nameof(RepeatLastN), RepeatLastN, "RepeatLastN must be -1 (all), 0 (off) or a positive count.");
        if (!float.IsFinite(PresencePenalty))
            throw new ArgumentOutOfRangeException(nameof(PresencePenalty), PresencePenalty, "PresencePenalty must be finite.");
        if (!float.IsFinite(FrequencyPenalty))
            throw new ArgumentOutOfRangeException(nameof(FrequencyPenalty), FrequencyPenalty, "FrequencyPenalty must be finite.");
        ArgumentNullException.ThrowIfNull(StopStrings);
    }

    /// <summary>True when no penalty changes any logit.</summary>
    internal bool PenaltiesOff =>
        RepeatLastN == 0 || (RepeatPenalty == 1f && PresencePenalty == 0f && FrequencyPenalty == 0f);
}
