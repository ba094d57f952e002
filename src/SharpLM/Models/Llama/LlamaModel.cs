using System.Runtime.CompilerServices;
using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Inference;
using SharpLM.Inference.Sampling;

namespace SharpLM.Models.Llama;

/// <summary>
/// A LLaMA-family decoder (LLaMA 1/2/3, Mistral, Qwen2, TinyLlama) loaded from a GGUF file or a Hugging Face folder
/// (config.json + safetensors). Weights stay memory-mapped. Generate text with <see cref="GenerateAsync"/>:
/// <code>
/// using var model = LlamaModel.Load("model.gguf");
/// await foreach (var piece in model.GenerateAsync("Once upon a time", GenerationOptions.Default with { MaxTokens = 64 }))
///     Console.Write(piece);
/// </code>
/// </summary>
public sealed class LlamaModel : IDisposable
{
    private readonly IWeightSource _source;

    internal LlamaModel(IWeightSource source, LlamaWeights weights, ITokenCodec? tokenizer, ModelLoadOptions options, ModelChatTemplate? chatTemplate = null)
    {
        ChatTemplate = chatTemplate;
        _source = source;
        Weights = weights;
        Tokenizer = tokenizer;
        Options = options;
        int ctx = options.ContextSize ?? Math.Min(weights.Config.ContextLength, 4096);
        if (ctx <= 0) throw new ArgumentOutOfRangeException(nameof(options), ctx, "ContextSize must be positive");
        ContextSize = ctx;
    }

    /// <summary>The hyper-parameters read from the file.</summary>
    public LlamaConfig Config => Weights.Config;

    /// <summary>Positions a generation can use (prompt + output).</summary>
    public int ContextSize { get; }

    /// <summary>Where the weights came from.</summary>
    public string Path => _source.Path;

    internal LlamaWeights Weights { get; }

    internal ITokenCodec? Tokenizer { get; }

    /// <summary>The chat template that came with the model, or null.</summary>
    internal ModelChatTemplate? ChatTemplate { get; }

    internal ModelLoadOptions Options { get; }

    /// <summary>Loads a .gguf file or a Hugging Face model folder (config.json + *.safetensors).</summary>
    public static LlamaModel Load(string path, ModelLoadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= ModelLoadOptions.Default;
        if (options.Threads > 0) Kernels.WorkerPool.SetSharedThreads(options.Threads);
        if (Directory.Exists(path)) return LoadHfFolder(path, options);
        if (!File.Exists(path)) throw new FileNotFoundException($"model not found: {path} (expected a .gguf file or a Hugging Face model folder)", path);
        return LoadGguf(path, options);
    }

    internal static LlamaModel LoadGguf(string path, ModelLoadOptions options)
    {
        var file = GgufFile.Open(path);
        try
        {
            var md = file.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value.Value, StringComparer.Ordinal);
            int? vocab = file.Tensors.TryGetValue(LlamaTensorNames.Gguf.Embedding, out var emb) && emb.Shape.Length == 2 ? (int)emb.Shape[0]
                : file.GetArrayOrNull("tokenizer.ggml.tokens")?.Count;
            var cfg = LlamaConfig.FromGguf(md, path, vocab);
            var weights = LlamaWeights.Bind(file, cfg, LlamaTensorNames.Gguf);
            return new LlamaModel(file, weights, ModelTokenizers.FromGguf(file), options, ModelTokenizers.ChatTemplateFromGguf(file));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    internal static LlamaModel LoadHfFolder(string folder, ModelLoadOptions options)
    {
        var configPath = System.IO.Path.Combine(folder, "config.json");
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{folder} has no config.json: not a Hugging Face model folder", configPath);
        var cfg = LlamaConfig.FromHfJson(File.ReadAllText(configPath), configPath);
        var source = ModelTokenizers.OpenSafetensors(folder);
        try
        {
            var weights = LlamaWeights.Bind(source, cfg, LlamaTensorNames.HuggingFace);
            return new LlamaModel(source, weights, ModelTokenizers.FromHfFolder(folder, cfg), options, ModelTokenizers.ChatTemplateFromHfFolder(folder));
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>A fresh sequence (KV cache and buffers) for this model.</summary>
    internal LlamaState CreateState(int? contextSize = null) => new(Weights, contextSize ?? ContextSize, Options.BatchSize);

    /// <summary>Text to token ids with the model's tokenizer.</summary>
    public IReadOnlyList<int> Tokenize(string text, bool addBos = true) => RequireTokenizer().Encode(text, addBos);

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
        var gen = new Generator(state, new Sampler(options.Sampling, Config.VocabSize), Config.EosTokenIds);
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

    public void Dispose() => _source.Dispose();
}
