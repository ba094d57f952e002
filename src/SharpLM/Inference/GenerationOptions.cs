using SharpLM.Inference.Sampling;

namespace SharpLM.Inference;

/// <summary>How a generation runs. Change with <c>with</c>: <code>GenerationOptions.Default with { MaxTokens = 64 }</code></summary>
public sealed record GenerationOptions
{
    public static GenerationOptions Default { get; } = new();

    /// <summary>The most tokens to generate (EOS, a stop string or the end of the context end it earlier).</summary>
    public int MaxTokens { get; init; } = 256;

    /// <summary>Temperature, top-k/p, min-p, penalties, seed and stop strings.</summary>
    public SamplingOptions Sampling { get; init; } = SamplingOptions.Default;

    /// <summary>Put the model's BOS token in front of the prompt when it has one.</summary>
    public bool AddBos { get; init; } = true;

    /// <summary>Speculative decoding: a drafter (<see cref="PromptLookupDrafter"/>, <see cref="DraftModelDrafter"/>) whose
    /// guesses are checked several per forward pass. The output is the model's greedy output, unchanged, so it needs
    /// <c>Sampling = SamplingOptions.Greedy</c> (temperature 0); null (the default) decodes one token per pass.</summary>
    public IDrafter? Drafter { get; init; }

    internal void Validate()
    {
        if (MaxTokens < 0) throw new ArgumentOutOfRangeException(nameof(MaxTokens), MaxTokens, "MaxTokens must be 0 or more");
        Sampling.Validate();
        if (Drafter != null && Sampling.Temperature > 0)
            throw new ArgumentException("speculative decoding (Drafter) gives the greedy output: it needs Sampling with temperature 0", nameof(Drafter));
    }
}

/// <summary>How a model is loaded.</summary>
public sealed record ModelLoadOptions
{
    public static ModelLoadOptions Default { get; } = new();

    /// <summary>Positions the KV cache holds; null = the model's context length, capped at 4096.</summary>
    public int? ContextSize { get; init; }

    /// <summary>The most prompt tokens evaluated in one batched pass.</summary>
    public int BatchSize { get; init; } = 256;

    /// <summary>Threads the model's kernels use: N = a pool of N threads of the model's own (the caller's thread is one
    /// of them; other models are unaffected); 0 = the pool of the calling thread, which is one thread per core unless the
    /// caller put another in place. The results are the same bits whatever the count.</summary>
    public int Threads { get; init; }

    /// <summary>How the KV cache stores keys and values: F32 (exact, the default), F16 (half the memory, values rounded to
    /// the nearest half) or Q8_0 (about a quarter: blocks of 32 with an f16 scale; the head size must be a multiple of 32).
    /// Weights with 8-bit activations and the F32 KV cache are llama.cpp's defaults but for its F16 cache.</summary>
    public Tensors.DType KvCacheType { get; init; } = Tensors.DType.F32;

    /// <summary>Whether the weights are used where the OS maps the file (lazily loaded, shared through its file cache
    /// with other processes) instead of read into the process's own memory first (the default, as llama.cpp through
    /// LLamaSharp does): on the VMs this project is measured on, decode from a long-cached mapped file slowed several
    /// fold over minutes while read weights kept their speed (see MappedFile). Mapping loads faster and shares memory.</summary>
    public bool MapWeights { get; init; }
}

/// <summary>Ids to text and back, whatever tokenizer the model came with.</summary>
internal interface ITokenCodec : ITokenDecoder
{
    /// <summary>Text to ids, with the tokenizer's own special-token handling; <paramref name="addBos"/> prepends BOS when the model uses one.</summary>
    int[] Encode(string text, bool addBos);

    /// <summary>The id of a token given by its text (e.g. "&lt;|im_end|&gt;"), or null.</summary>
    int? TokenToId(string token);

    /// <summary>A decoder like <see cref="ITokenDecoder.Decode"/> that writes the text of <paramref name="tokens"/> where
    /// the vocabulary has them as special tokens (every other special token is still skipped): markup that a reader of
    /// the output needs, as a tool call's tag (llama.cpp's "preserved tokens").</summary>
    ITokenDecoder Keeping(IEnumerable<string> tokens);
}
