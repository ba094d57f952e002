using System.Runtime.CompilerServices;
using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Inference;
using SharpLM.Inference.Sampling;

namespace SharpLM.Models;

/// <summary>
/// A decoder-only language model of any architecture the engine runs (LLaMA 1/2/3, Mistral, Qwen2, TinyLlama, GPT-2),
/// loaded from a GGUF file or a Hugging Face folder (config.json + safetensors). Weights stay memory-mapped. Generate
/// text with <see cref="GenerateAsync(string, GenerationOptions?, CancellationToken)"/>, or run many sequences at once
/// with <see cref="CreateBatch"/>:
/// <code>
/// using var model = LanguageModel.Load("model.gguf");
/// await foreach (var piece in model.GenerateAsync("Once upon a time", GenerationOptions.Default with { MaxTokens = 64 }))
///     Console.Write(piece);
/// </code>
/// <para>Threads: a loaded model is safe to use from several threads at once, each with its own sequences
/// (<see cref="GenerateAsync(string, GenerationOptions?, CancellationToken)"/> makes one per call; a
/// <see cref="BatchDecoder"/> and its sequences belong to one thread at a time and throw when used by two at once). Its
/// kernels run on a pool of <see cref="ModelLoadOptions.Threads"/> threads of its own, or the caller's pool (all cores by
/// default); the results do not depend on the thread count. Disposing waits for the calls in progress to end; later
/// calls throw <see cref="ObjectDisposedException"/>.</para>
/// </summary>
public sealed class LanguageModel : IDisposable
{
    private readonly IWeightSource _source;
    private readonly Kernels.WorkerPool? _pool;
    private readonly InFlightCalls _calls;

    internal LanguageModel(IWeightSource source, DecoderWeights weights, ITokenCodec? tokenizer, ModelLoadOptions options, ModelChatTemplate? chatTemplate = null)
    {
        ChatTemplate = chatTemplate;
        _source = source;
        Weights = weights;
        Tokenizer = tokenizer;
        Options = options;
        ContextSize = ContextFor(weights.Config, options);
        Inference.KvCache.CheckType(options.KvCacheType, weights.Config.HeadSize, weights.Config.KvWidth);
        _calls = new InFlightCalls($"the model {source.Path}");
        if (options.Threads > 0) _pool = new Kernels.WorkerPool(options.Threads);
    }

    /// <summary>Kernel threads of this model's calls: its own pool's, else the calling thread's pool's.</summary>
    internal int Threads => (_pool ?? Kernels.WorkerPool.Shared).Threads;

    /// <summary>
    /// Enters a call that reads the weights: its kernels run on the model's own pool (when it has one) on this thread,
    /// and <see cref="Dispose"/> waits for it to end. Throws <see cref="ObjectDisposedException"/> after Dispose.
    /// </summary>
    internal InFlightCalls.Scope EnterCall() => _calls.Enter(_pool);

    /// <summary>Positions per sequence: the option, else the trained context up to 4096.</summary>
    internal static int ContextFor(ModelConfig config, ModelLoadOptions options)
    {
        int ctx = options.ContextSize ?? Math.Min(config.Context, 4096);
        if (ctx <= 0) throw new ArgumentOutOfRangeException(nameof(options), ctx, "ContextSize must be positive");
        return ctx;
    }

    /// <summary>The hyper-parameters read from the file.</summary>
    public ModelConfig Config => Weights.Config;

    /// <summary>Positions a generation can use (prompt + output).</summary>
    public int ContextSize { get; }

    /// <summary>Where the weights came from.</summary>
    public string Path => _source.Path;

    internal DecoderWeights Weights { get; }

    internal ITokenCodec? Tokenizer { get; }

    /// <summary>The chat template that came with the model, or null.</summary>
    internal ModelChatTemplate? ChatTemplate { get; }

    internal ModelLoadOptions Options { get; }

    /// <summary>Loads a .gguf file or a Hugging Face model folder (config.json + *.safetensors).</summary>
    public static LanguageModel Load(string path, ModelLoadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= ModelLoadOptions.Default;
        if (options.Threads < 0) throw new ArgumentOutOfRangeException(nameof(options), options.Threads, "Threads must be 0 (the caller's pool: all cores by default) or a thread count");
        if (Directory.Exists(path)) return LoadHfFolder(path, options);
        if (!File.Exists(path)) throw new FileNotFoundException($"model not found: {path} (expected a .gguf file or a Hugging Face model folder)", path);
        return LoadGguf(path, options);
    }

    internal static LanguageModel LoadGguf(string path, ModelLoadOptions options)
    {
        var file = GgufFile.Open(path, inMemory: !options.MapWeights);
        try
        {
            var cfg = ModelConfigReader.FromGguf(file);
            DecoderWeights.CheckRunnable(cfg, path);
            var weights = DecoderWeights.Bind(BoundTensors.Bind(file, cfg, TensorNaming.Gguf), ContextFor(cfg, options), regroup: !options.MapWeights);
            return new LanguageModel(file, weights, ModelTokenizers.FromGguf(file), options, ModelTokenizers.ChatTemplateFromGguf(file));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    internal static LanguageModel LoadHfFolder(string folder, ModelLoadOptions options)
    {
        var hf = Formats.HuggingFace.HfModelFolder.Open(folder, inMemory: !options.MapWeights);
        try
        {
            // generation ends at config.json's eos_token_id and at generation_config.json's (transformers generates with
            // the latter; Llama 3.1 lists <|eom_id|> there, some models only there)
            var cfg = hf.Config with { EosTokenIds = [.. hf.Config.EosTokenIds.Union(hf.GenerationConfig?.EosTokenIds ?? [])] };
            DecoderWeights.CheckRunnable(cfg, hf.ConfigPath);
            var weights = DecoderWeights.Bind(BoundTensors.Bind(hf.RequireWeights(), cfg, TensorNaming.HuggingFace), ContextFor(cfg, options));
            var tokenizer = hf.TokenizerJsonPath is { } tj ? ModelTokenizers.FromTokenizer(Tokenizers.Tokenizer.FromFile(tj)) : null;
            return new LanguageModel(hf.RequireWeights(), weights, tokenizer, options, hf.LoadChatTemplate());
        }
        catch
        {
            hf.Dispose();
            throw;
        }
    }

    /// <summary>
    /// An engine that evaluates many sequences in one forward pass (each with its own KV cache): up to
    /// <paramref name="maxBatchTokens"/> rows per pass (the load options' batch size by default) from up to
    /// <paramref name="maxSequencesPerPass"/> sequences.
    /// </summary>
    public BatchDecoder CreateBatch(int? maxBatchTokens = null, int maxSequencesPerPass = 64) =>
        new(this, maxBatchTokens ?? Options.BatchSize, maxSequencesPerPass);

    /// <summary>A fresh single sequence (its own decoder, KV cache and buffers).</summary>
    internal Sequence CreateState(int? contextSize = null) =>
        CreateBatch(Math.Min(Options.BatchSize, contextSize ?? ContextSize), 1).AddSequence(contextSize ?? ContextSize);

    /// <summary>Text to token ids with the model's tokenizer.</summary>
    public int[] Tokenize(string text, bool addBos = true) => RequireTokenizer().Encode(text, addBos);

    /// <summary>Token ids to text with the model's tokenizer.</summary>
    public string Detokenize(IReadOnlyList<int> ids) => RequireTokenizer().Decode(ids as int[] ?? [.. ids]);

    internal ITokenCodec RequireTokenizer() => Tokenizer
        ?? throw new InvalidOperationException($"{Path} has no tokenizer (no tokenizer.ggml.* metadata or tokenizer.json); give token ids instead of text");

    /// <summary>Streams the generated text for <paramref name="prompt"/>, piece by piece, as the tokens are produced.</summary>
    public IAsyncEnumerable<string> GenerateAsync(string prompt, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        options ??= GenerationOptions.Default;
        options.Validate();
        var ids = RequireTokenizer().Encode(prompt, options.AddBos);
        return GenerateAsync(ids, options, cancellationToken);
    }

    /// <summary>Streams the generated text for a prompt given as token ids.</summary>
    public IAsyncEnumerable<string> GenerateAsync(IReadOnlyList<int> promptIds, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(promptIds);
        options ??= GenerationOptions.Default;
        options.Validate();
        var codec = RequireTokenizer();
        var state = CreateState();
        var gen = new Generator(state, new Sampler(options.Sampling, Config.Vocab), Config.EosTokenIds, options.Drafter);
        var ids = gen.Generate(promptIds, options.MaxTokens, null, cancellationToken); // validates the length now
        return Stream(ids, new TextStreamer(codec, promptIds.Count > 0 ? promptIds[^1] : null, options.Sampling.StopStrings), cancellationToken);
    }

    private static async IAsyncEnumerable<string> Stream(IEnumerable<int> ids, TextStreamer streamer, [EnumeratorCancellation] CancellationToken ct)
    {
        await Task.Yield();
        foreach (var id in ids)
        {
            var piece = streamer.Push(id);
            if (piece.Length > 0) yield return piece;
            if (streamer.Stopped) yield break;
            ct.ThrowIfCancellationRequested();
        }
        var rest = streamer.Flush();
        if (rest.Length > 0) yield return rest;
    }

    /// <summary>Waits for the calls in progress on other threads to end, then unmaps the weights and stops the model's threads.</summary>
    public void Dispose()
    {
        if (!_calls.Dispose()) return;
        _pool?.Dispose();
        _source.Dispose();
    }
}
