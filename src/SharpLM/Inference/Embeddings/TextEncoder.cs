using Microsoft.Extensions.AI;
using SharpLM.Models.Bert;

namespace SharpLM.Inference.Embeddings;

/// <summary>What to do with a text longer than the model's positions.</summary>
public enum OverlongInput
{
    /// <summary>Keep the first tokens (and the final [SEP]) and report a warning.</summary>
    Truncate,

    /// <summary>Throw an <see cref="ArgumentException"/> naming the text and its length.</summary>
    Error,
}

/// <summary>Options of a <see cref="TextEncoder"/>; change with <c>with</c>.</summary>
public sealed record TextEncoderOptions
{
    /// <summary>The pooling; null = what a sentence-transformers folder's 1_Pooling/config.json says, else mean.</summary>
    public EmbeddingPooling? Pooling { get; init; }

    /// <summary>L2-normalise each embedding (sentence-transformers models are used normalised).</summary>
    public bool Normalize { get; init; } = true;

    /// <summary>Maximum tokens per text including [CLS] and [SEP]; 0 = the model's max positions.</summary>
    public int MaxTokens { get; init; }

    public OverlongInput Overlong { get; init; } = OverlongInput.Truncate;

    /// <summary>Texts per forward pass; texts are sorted by length first so padding stays small.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Threads the encoder's kernels use: N = a pool of N threads of its own; 0 = the calling thread's pool (one
    /// thread per core unless the caller put another in place). The embeddings are the same bits whatever the count.</summary>
    public int Threads { get; init; }

    /// <summary>For a vocab.txt (no tokenizer.json): lower-case and strip accents before WordPiece (uncased models, e.g.
    /// all-MiniLM-L6-v2); a tokenizer_config.json with "do_lower_case": false beside it turns this off.</summary>
    public bool LowerCase { get; init; } = true;

    /// <summary>Receives warnings (e.g. truncation); null ignores them.</summary>
    public Action<string>? Warning { get; init; }
}

/// <summary>One candidate for a [MASK]: the token, its id and its probability.</summary>
public sealed record FillMaskCandidate(string Token, int Id, float Probability);

/// <summary>
/// A BERT-family text encoder: sentence embeddings (pooled, optionally normalised), cosine similarity and fill-mask.
/// Opens an .onnx file (e.g. all-MiniLM-L6-v2), a folder with model.onnx, or a Hugging Face folder
/// (config.json + model.safetensors + vocab.txt). Thread-safe for concurrent calls (each gets its own buffers; a text's
/// embedding is the same bits alone, in a batch or beside another thread's call). Disposing waits for the calls in
/// progress; later calls throw <see cref="ObjectDisposedException"/>.
/// </summary>
public sealed class TextEncoder : IDisposable
{
    private readonly LoadedEncoder _loaded;
    private readonly IEncoderTokenizer _tok;
    private readonly Kernels.WorkerPool? _pool;
    private readonly InFlightCalls _calls;

    public TextEncoderOptions Options { get; }

    /// <summary>The model's name (its file or folder name).</summary>
    public string ModelName => _loaded.Name;

    /// <summary>Length of each embedding: H, or 2H for mean+max pooling.</summary>
    public int Dimensions => Embeddings.Pooling.Dimensions(PoolingMode, _loaded.Model.Config.Width);

    /// <summary>The pooling in use (the option, or the model folder's sentence-transformers config, or mean).</summary>
    public EmbeddingPooling PoolingMode { get; }

    /// <summary>Most tokens one text may have (including [CLS] and [SEP]).</summary>
    public int MaxTokens { get; }

    internal BertModel Model => _loaded.Model;
    internal IEncoderTokenizer Tokenizer => _tok;

    private TextEncoder(LoadedEncoder loaded, IEncoderTokenizer tok, TextEncoderOptions options)
    {
        _loaded = loaded;
        _tok = tok;
        Options = options;
        int max = loaded.Model.Config.Context;
        if (options.MaxTokens < 0 || options.MaxTokens == 1) throw new ArgumentException($"MaxTokens must be 0 (the model's {max}) or at least 2, got {options.MaxTokens}", nameof(options));
        if (options.BatchSize < 1) throw new ArgumentException($"BatchSize must be at least 1, got {options.BatchSize}", nameof(options));
        MaxTokens = options.MaxTokens == 0 ? max : Math.Min(options.MaxTokens, max);
        PoolingMode = options.Pooling ?? SentenceTransformersPooling(loaded.Directory) ?? EmbeddingPooling.Mean;
        if (options.Threads < 0) throw new ArgumentException($"Threads must be 0 (the caller's pool: all cores by default) or a thread count, got {options.Threads}", nameof(options));
        _calls = new InFlightCalls($"the encoder {loaded.Name}");
        if (options.Threads > 0) _pool = new Kernels.WorkerPool(options.Threads);
    }

    /// <summary>Kernel threads of this encoder's calls: its own pool's, else the calling thread's pool's.</summary>
    internal int Threads => (_pool ?? Kernels.WorkerPool.Shared).Threads;

    /// <summary>A call that runs the model: on the encoder's own pool when it has one; Dispose waits for it.</summary>
    private InFlightCalls.Scope EnterCall() => _calls.Enter(_pool);

    /// <summary>Opens a model; <paramref name="withMlmHead"/> also binds the masked-LM head (needed by <see cref="FillMask"/>).</summary>
    public static TextEncoder Open(string path, TextEncoderOptions? options = null, bool withMlmHead = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new TextEncoderOptions();
        var loaded = BertLoader.Open(path, withMlmHead);
        try
        {
            SharpLM.Tokenizers.Tokenizer hf;
            if (loaded.TokenizerJson is { } json)
                hf = SharpLM.Tokenizers.Tokenizer.FromFile(json);
            else if (loaded.VocabTxt is { } vocab)
                hf = SharpLM.Tokenizers.Tokenizer.FromVocabTxt(vocab, options.LowerCase && !CasedModel(Path.GetDirectoryName(vocab)!));
            else
                throw new FileNotFoundException($"{path}: no tokenizer.json or vocab.txt beside the model; the encoder needs its vocabulary");
            if (hf.VocabSize > loaded.Model.Config.Vocab)
                throw new InvalidDataException($"{hf.SourceName}: the tokenizer has {hf.VocabSize} tokens, more than the model's {loaded.Model.Config.Vocab} embeddings; wrong vocabulary for this model?");
            var tok = new SharpLmEncoderTokenizer(hf);
            return new TextEncoder(loaded, tok, options);
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The pooling a sentence-transformers folder declares in 1_Pooling/config.json (pooling_mode_cls_token,
    /// pooling_mode_mean_tokens, pooling_mode_max_tokens), or null when there is none or it is a mode not supported here.
    /// </summary>
    internal static EmbeddingPooling? SentenceTransformersPooling(string dir)
    {
        foreach (var d in new[] { dir, Path.GetDirectoryName(dir) ?? dir })
        {
            var path = Path.Combine(d, "1_Pooling", "config.json");
            if (!File.Exists(path)) continue;
            var r = Formats.HuggingFace.JsonReader.Load(path);
            bool On(string key) => r.Bool(key) == true;
            return (On("pooling_mode_cls_token"), On("pooling_mode_mean_tokens"), On("pooling_mode_max_tokens")) switch
            {
                (true, false, false) => EmbeddingPooling.Cls,
                (false, true, false) => EmbeddingPooling.Mean,
                (false, false, true) => EmbeddingPooling.Max,
                (false, true, true) => EmbeddingPooling.MeanMax,
                _ => null,
            };
        }
        return null;
    }

    /// <summary>True when tokenizer_config.json beside the vocabulary says "do_lower_case": false (cased models).</summary>
    private static bool CasedModel(string dir)
    {
        var path = Path.Combine(dir, "tokenizer_config.json");
        if (!File.Exists(path)) return false;
        return Formats.HuggingFace.JsonReader.Load(path).Bool("do_lower_case") == false;
    }

    /// <summary>Token ids ([CLS] ... [SEP]) of one text, truncated or rejected past <see cref="MaxTokens"/>.</summary>
    public int[] Tokenize(string text, int index = 0)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = _tok.Encode(text);
        if (ids.Length <= MaxTokens) return ids;
        string head = text.Length > 40 ? text[..40] + "..." : text;
        if (Options.Overlong == OverlongInput.Error)
            throw new ArgumentException($"text {index} (\"{head}\") has {ids.Length} tokens, more than the model's limit of {MaxTokens}; shorten it or allow truncation");
        Options.Warning?.Invoke($"warning: text {index} (\"{head}\") has {ids.Length} tokens; truncated to {MaxTokens}");
        var t = ids[..MaxTokens];
        t[^1] = _tok.SepId;
        return t;
    }

    public float[] Embed(string text) => Embed([text])[0];

    /// <summary>One embedding per text, in input order. A text's embedding does not depend on the others.</summary>
    public float[][] Embed(IReadOnlyList<string> texts, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (texts.Count == 0) return [];
        var seqs = new int[texts.Count][];
        for (int i = 0; i < texts.Count; i++) seqs[i] = Tokenize(texts[i] ?? throw new ArgumentException($"text {i} is null", nameof(texts)), i);
        return EmbedIds(seqs, ct);
    }

    /// <summary>One embedding per token sequence (ids of this encoder's vocabulary, [CLS] ... [SEP] included, at most
    /// <see cref="MaxTokens"/> each), in input order.</summary>
    internal float[][] EmbedIds(IReadOnlyList<int[]> seqs, CancellationToken ct = default)
    {
        if (seqs.Count == 0) return [];
        using var call = EnterCall();
        var order = Enumerable.Range(0, seqs.Count).OrderBy(i => seqs[i].Length).ToArray();
        var result = new float[seqs.Count][];
        int h = Model.Config.Width;
        for (int s = 0; s < order.Length; s += Options.BatchSize)
        {
            ct.ThrowIfCancellationRequested();
            var idx = order.AsSpan(s, Math.Min(Options.BatchSize, order.Length - s)).ToArray();
            var batch = BertBatch.FromSequences(idx.Select(i => seqs[i]).ToArray(), null, _tok.PadId);
            var hidden = Model.Forward(batch);
            for (int b = 0; b < idx.Length; b++)
            {
                var v = new float[Dimensions];
                Pooling.Pool(hidden.AsSpan(b * batch.Time * h, batch.Time * h), batch.Mask.AsSpan(b * batch.Time, batch.Time), h, PoolingMode, v);
                if (Options.Normalize) Pooling.L2Normalize(v);
                result[idx[b]] = v;
            }
        }
        return result;
    }

    /// <summary>cos(a, b) of two embeddings.</summary>
    public static float CosineSimilarity(ReadOnlySpan<float> a, ReadOnlySpan<float> b) => Pooling.Cosine(a, b);

    /// <summary>Cosine similarity of two texts' embeddings.</summary>
    public float Similarity(string a, string b)
    {
        var e = Embed([a, b]);
        return Pooling.Cosine(e[0], e[1]);
    }

    /// <summary>The <paramref name="top"/> most likely tokens for each [MASK] in the text, in text order.</summary>
    public IReadOnlyList<FillMaskCandidate[]> FillMask(string text, int top = 5)
    {
        if (Model.Weights.Mlm is null)
            throw new InvalidOperationException($"{ModelName} has no masked-LM head (open it with withMlmHead: true; sentence-embedding models such as all-MiniLM-L6-v2 have none)");
        if (top < 1) throw new ArgumentException($"top must be at least 1, got {top}", nameof(top));
        if (_tok.MaskId < 0) throw new InvalidOperationException($"{ModelName}: the vocabulary has no [MASK] token");
        var ids = Tokenize(text);
        var rows = Enumerable.Range(0, ids.Length).Where(i => ids[i] == _tok.MaskId).ToArray();
        if (rows.Length == 0) throw new ArgumentException($"the text has no {_tok.MaskToken} token: write {_tok.MaskToken} where a word should be predicted");
        var batch = BertBatch.FromSequences([ids], null, _tok.PadId);
        using var call = EnterCall();
        var hidden = Model.Forward(batch);
        var logits = Model.MlmLogits(hidden, rows);
        int v = Model.Config.Vocab;
        var result = new FillMaskCandidate[rows.Length][];
        for (int r = 0; r < rows.Length; r++)
        {
            Kernels.Softmax.Forward(logits.AsSpan(r * v, v));
            var pr = logits.AsSpan(r * v, v).ToArray();
            var best = Enumerable.Range(0, v).OrderByDescending(i => pr[i]).ThenBy(i => i).Take(Math.Min(top, v)).ToArray();
            result[r] = [.. best.Select(i => new FillMaskCandidate(_tok.IdToToken(i), i, pr[i]))];
        }
        return result;
    }

    /// <summary>This encoder as a Microsoft.Extensions.AI embedding generator (the generator does not own the encoder).</summary>
    public IEmbeddingGenerator<string, Embedding<float>> AsEmbeddingGenerator() => new SharpLMEmbeddingGenerator(this, ownsEncoder: false);

    /// <summary>Waits for the calls in progress on other threads to end, then frees the weights and stops the encoder's threads.</summary>
    public void Dispose()
    {
        if (!_calls.Dispose()) return;
        _pool?.Dispose();
        _loaded.Dispose();
    }
}
