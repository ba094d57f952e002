namespace SharpLM.Server;

/// <summary>
/// What a SharpLM server serves and its limits. Change with <c>with</c>:
/// <code>var o = new SharpLMServerOptions { Model = "qwen2.5-0.5b-instruct-q8_0.gguf" } with { Parallel = 8 };</code>
/// </summary>
public sealed record SharpLMServerOptions
{
    /// <summary>The language model: a .gguf file or a Hugging Face folder (config.json + *.safetensors). Null serves
    /// only the embedding model.</summary>
    public string? Model { get; init; }

    /// <summary>A BERT-family embedding model (.onnx, a folder) for /v1/embeddings and /api/embed; null: none.</summary>
    public string? EmbeddingModel { get; init; }

    /// <summary>Names the chat model also answers to (the file name without extension always works).</summary>
    public IReadOnlyList<string> ModelAliases { get; init; } = [];

    /// <summary>Sequences decoded together in one forward pass (slots); each holds its own KV cache of
    /// <see cref="ContextSize"/> positions.</summary>
    public int Parallel { get; init; } = 4;

    /// <summary>Positions per sequence (prompt + output); null = the model's context length, at most 4096.</summary>
    public int? ContextSize { get; init; }

    /// <summary>Rows per forward pass: decode tokens of every active sequence plus a chunk of prompt, so long prompts
    /// are prefilled in pieces between decode steps.</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Use the weights where the OS maps the model file instead of reading them into memory first
    /// (<see cref="SharpLM.Inference.ModelLoadOptions.MapWeights"/>).</summary>
    public bool MapWeights { get; init; }

    /// <summary>Kernel threads; 0 = all cores.</summary>
    public int Threads { get; init; }

    /// <summary>Requests that may wait for a free slot; more are refused with 429 and Retry-After.</summary>
    public int MaxQueue { get; init; } = 64;

    /// <summary>A Bearer key every endpoint but /health and the chat page requires; null: open.</summary>
    public string? ApiKey { get; init; }

    /// <summary>Origins allowed by CORS ("*" for any); empty: CORS off.</summary>
    public IReadOnlyList<string> CorsOrigins { get; init; } = [];

    /// <summary>A Jinja chat template file replacing the model's (or the ChatML fallback when it has none).</summary>
    public string? ChatTemplateFile { get; init; }

    /// <summary>Open connections at most; Kestrel closes the ones beyond at once (slow or idle clients cannot take the
    /// process's sockets and memory without bound). Each connection also gets Kestrel's header timeout and minimum body
    /// rate, so a client that dribbles its request (slowloris) is dropped.</summary>
    public int MaxConnections { get; init; } = 1024;

    /// <summary>Largest request body in bytes (413 beyond).</summary>
    public long MaxRequestBodyBytes { get; init; } = 8 * 1024 * 1024;

    /// <summary>A request running longer is cancelled (its slot freed); null: no limit.</summary>
    public TimeSpan? RequestTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Reuse the KV cache of a slot whose last conversation shares the new prompt's beginning.</summary>
    public bool PrefixCache { get; init; } = true;

    /// <summary>Serve the web chat page at /.</summary>
    public bool WebPage { get; init; } = true;

    internal void Validate()
    {
        if (Model is null && EmbeddingModel is null) throw new ArgumentException("give a model (Model) or an embedding model (EmbeddingModel) to serve");
        if (Parallel is < 1 or > 256) throw new ArgumentOutOfRangeException(nameof(Parallel), Parallel, "Parallel must be 1..256");
        if (ContextSize is < 2) throw new ArgumentOutOfRangeException(nameof(ContextSize), ContextSize, "ContextSize must be at least 2");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be at least 1");
        if (MaxQueue < 0) throw new ArgumentOutOfRangeException(nameof(MaxQueue), MaxQueue, "MaxQueue must be 0 or more");
        if (Threads < 0) throw new ArgumentOutOfRangeException(nameof(Threads), Threads, "Threads must be 0 (all cores) or more");
        if (MaxConnections < 1) throw new ArgumentOutOfRangeException(nameof(MaxConnections), MaxConnections, "MaxConnections must be at least 1");
        if (MaxRequestBodyBytes < 1024) throw new ArgumentOutOfRangeException(nameof(MaxRequestBodyBytes), MaxRequestBodyBytes, "MaxRequestBodyBytes must be at least 1024");
        if (ApiKey is { Length: 0 }) throw new ArgumentException("ApiKey is empty: give a key or null", nameof(ApiKey));
    }
}
