using System.Diagnostics;
using SharpLM.Inference;
using SharpLM.Inference.ChatTemplates;
using SharpLM.Inference.Constrained;
using SharpLM.Inference.Embeddings;
using SharpLM.Models;
using SharpLM.Server.Chat;
using SharpLM.Server.Scheduling;

namespace SharpLM.Server;

/// <summary>Where the server is in its life: /health answers 503 until <see cref="Ready"/>.</summary>
public enum ServerState { Loading, Ready, Failed, Stopping }

/// <summary>
/// What the endpoints serve: the language model with its tokenizer, chat template and tool-call format, the scheduler
/// that batches its sequences, the optional embedding model, and the metrics. Loads in the background so the server
/// answers /health (loading) at once.
/// </summary>
internal sealed class ServerEngine : IDisposable
{
    /// <summary>The template used when the model brings none (llama.cpp does the same): ChatML.</summary>
    internal const string FallbackTemplate =
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    private readonly object _vocabLock = new();
    private TokenVocabulary? _vocab;
    private readonly SemaphoreSlim _embedGate = new(1, 1);

    public ServerEngine(SharpLMServerOptions options)
    {
        options.Validate();
        Options = options;
        ModelId = options.Model is null ? "" : NameOf(options.Model);
        EmbeddingModelId = options.EmbeddingModel is null ? null : NameOf(options.EmbeddingModel);
    }

    public SharpLMServerOptions Options { get; }
    public ServerMetrics Metrics { get; } = new();
    public ServerState State { get; private set; } = ServerState.Loading;
    public string? LoadError { get; private set; }
    public DateTimeOffset Created { get; } = DateTimeOffset.UtcNow;

    public LanguageModel? Model { get; private set; }
    public Scheduler? Scheduler { get; private set; }
    public ServingTemplate? Template { get; private set; }
    public bool TemplateIsFallback { get; private set; }
    public ToolCallFormat ToolFormat { get; private set; } = ToolCallFormat.Hermes;
    public int[] EndOfTurn { get; private set; } = [];

    /// <summary>Generated ids to text: the tokenizer's decode, with the tool-call format's tags written even where they
    /// are special tokens (<see cref="ToolCalls.Tags"/>), so the call reader sees them; the constraint vocabulary and
    /// logprobs use the same text.</summary>
    public ITokenDecoder? Decoder { get; private set; }
    public TextEncoder? Encoder { get; private set; }

    /// <summary>The chat model's name (its file or folder name without extension).</summary>
    public string ModelId { get; }
    public string? EmbeddingModelId { get; }

    /// <summary>Seconds the load took.</summary>
    public double LoadSeconds { get; private set; }

    private readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when loading ends: successfully, or with the load error.</summary>
    public Task Loaded => _loaded.Task;

    /// <summary>Loads the models; failures are kept in <see cref="LoadError"/> and <see cref="Loaded"/>.</summary>
    public void TryLoad()
    {
        try
        {
            Load();
            _loaded.TrySetResult();
        }
        catch (Exception e)
        {
            _loaded.TrySetException(e);
        }
    }

    /// <summary>Loads the models (blocking); the state becomes Ready or Failed.</summary>
    public void Load()
    {
        var sw = Stopwatch.StartNew();
        try
        {
            var o = Options;
            if (o.Model is { } path)
            {
                var model = LanguageModel.Load(path, new ModelLoadOptions { ContextSize = o.ContextSize, Threads = o.Threads, BatchSize = o.BatchSize, MapWeights = o.MapWeights });
                Model = model;
                if (o.ChatTemplateFile is { } file)
                {
                    var text = File.ReadAllText(file);
                    var t = text.TrimStart().StartsWith('{') && text.Contains("\"chat_template\"", StringComparison.Ordinal)
                        ? ChatTemplate.FromTokenizerConfig(text) : ChatTemplate.Parse(text);
                    Template = new ServingTemplate(t, t.BosToken ?? model.ChatTemplate?.BosToken, t.EosToken ?? model.ChatTemplate?.EosToken);
                }
                else if (model.ChatTemplate is { } mt) Template = new ServingTemplate(mt.Template, mt.BosToken, mt.EosToken);
                else
                {
                    Template = new ServingTemplate(ChatTemplate.Parse(FallbackTemplate), null, null);
                    TemplateIsFallback = true;
                }
                ToolFormat = ToolCalls.FormatOf(Template.Template.Source);
                if (model.Tokenizer is null) throw new InvalidOperationException($"{path} has no tokenizer (no tokenizer.ggml.* metadata or tokenizer.json); the server needs one");
                EndOfTurn = ChatSession.EndOfTurnIds(model, Template.EosToken);
                Decoder = model.Tokenizer.Keeping(ToolCalls.Tags(ToolFormat));
                Scheduler = new Scheduler(model, o.Parallel, model.ContextSize, o.BatchSize, o.MaxQueue, o.PrefixCache, Metrics, () => Vocabulary);
            }
            if (o.EmbeddingModel is { } emb) Encoder = TextEncoder.Open(emb, new TextEncoderOptions { Overlong = OverlongInput.Truncate, Threads = o.Threads });
            LoadSeconds = sw.Elapsed.TotalSeconds;
            State = ServerState.Ready;
        }
        catch (Exception e)
        {
            LoadError = e.Message;
            State = ServerState.Failed;
            throw;
        }
    }

    /// <summary>Token texts for constrained decoding and logprobs (built on first use).</summary>
    public TokenVocabulary Vocabulary
    {
        get
        {
            if (_vocab != null) return _vocab;
            lock (_vocabLock)
            {
                if (_vocab != null) return _vocab;
                var model = Model ?? throw new InvalidOperationException("no language model is loaded");
                var codec = model.RequireTokenizer();
                var ctx = codec.Encode("a", addBos: false);
                int contextId = ctx.Length > 0 ? ctx[^1] : 0;
                var eos = new HashSet<int>(EndOfTurn);
                _vocab = TokenVocabulary.Build(Decoder!, model.Config.Vocab, contextId, eos);
                return _vocab;
            }
        }
    }

    /// <summary>Whether <paramref name="name"/> names the chat model: its id, its file name, an alias, with or without
    /// an Ollama ":latest" tag (case-insensitive).</summary>
    public bool IsChatModel(string name) => Model is not null && Matches(name, ModelId, Options.Model!, Options.ModelAliases);

    public bool IsEmbeddingModel(string name) => Options.EmbeddingModel is { } e && Matches(name, EmbeddingModelId!, e, []);

    private static bool Matches(string name, string id, string path, IReadOnlyList<string> aliases)
    {
        var n = name.Trim();
        if (n.EndsWith(":latest", StringComparison.OrdinalIgnoreCase)) n = n[..^7];
        var file = Path.GetFileName(path.TrimEnd('/', '\\'));
        return string.Equals(n, id, StringComparison.OrdinalIgnoreCase) || string.Equals(n, file, StringComparison.OrdinalIgnoreCase)
            || string.Equals(n, path, StringComparison.Ordinal) || aliases.Any(a => string.Equals(n, a, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>A model's id: the file or folder name without its extension.</summary>
    internal static string NameOf(string path)
    {
        var p = path.TrimEnd('/', '\\');
        if (string.Equals(p, "minilm", StringComparison.OrdinalIgnoreCase)) return "minilm";
        var name = Path.GetFileName(p);
        return Directory.Exists(p) ? name : Path.GetFileNameWithoutExtension(name);
    }

    /// <summary>Embeds token sequences or texts on the encoder, one call at a time (the kernels' pool is shared).</summary>
    public async Task<float[][]> EmbedAsync(Func<TextEncoder, float[][]> work, CancellationToken ct)
    {
        var enc = Encoder ?? throw new InvalidOperationException("no embedding model is loaded");
        await _embedGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await Task.Run(() => work(enc), ct).ConfigureAwait(false);
        }
        finally
        {
            _embedGate.Release();
        }
    }

    public void Dispose()
    {
        State = ServerState.Stopping;
        Scheduler?.Dispose();
        Model?.Dispose();
        Encoder?.Dispose();
        _embedGate.Dispose();
    }
}
