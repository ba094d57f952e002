using System.Collections.Concurrent;
using System.Text;
using SharpLM.Tokenizers.AddedTokens;
using SharpLM.Tokenizers.Core;
using SharpLM.Tokenizers.Decoders;
using SharpLM.Tokenizers.Json;
using SharpLM.Tokenizers.Models.WordPiece;
using SharpLM.Tokenizers.Normalizers;
using SharpLM.Tokenizers.PostProcessors;
using SharpLM.Tokenizers.PreTokenizers;

namespace SharpLM.Tokenizers;

/// <summary>
/// A text tokenizer with Hugging Face tokenizers semantics: normalizer -> pre-tokenizer -> model -> post-processor,
/// with added tokens cut out first, and a decoder for the way back. Immutable after load and thread-safe.
/// <code>
/// var tok = Tokenizer.FromFile("tokenizer.json");
/// int[] ids = tok.EncodeToIds("Hello world");
/// string text = tok.Decode(ids);
/// </code>
/// Loaders for other formats build the pipeline with <see cref="TokenizerBuilder"/> and register a file extension with
/// <see cref="RegisterLoader"/> so <see cref="FromFile"/> finds them.
/// </summary>
public sealed partial class Tokenizer
{
    private readonly INormalizer? _normalizer;
    private readonly IPreTokenizer? _preTokenizer;
    private readonly IModel _model;
    private readonly IPostProcessor? _postProcessor;
    private readonly IDecoder? _decoder;
    private readonly AddedVocabulary _added;
    private readonly PaddingOptions? _padding;
    private readonly TruncationOptions? _truncation;
    private readonly Dictionary<string, int> _specialTokens;

    /// <summary>Composes a tokenizer from pipeline parts (for loaders: tiktoken, GGUF, vocab.txt ...).</summary>
    internal Tokenizer(INormalizer? normalizer, IPreTokenizer? preTokenizer, IModel model, IPostProcessor? postProcessor,
        IDecoder? decoder, IEnumerable<AddedToken>? addedTokens, PaddingOptions? padding = null, TruncationOptions? truncation = null,
        string? sourceName = null)
    {
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _postProcessor = postProcessor;
        _decoder = decoder;
        _padding = padding;
        _truncation = truncation;
        SourceName = sourceName;
        _added = new AddedVocabulary(addedTokens ?? [], model, normalizer);
        _specialTokens = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var t in _added.Tokens) if (t.Special) _specialTokens[t.Content] = t.Id;
        int count = model.VocabSize;
        foreach (var t in _added.Tokens) if (model.IdToToken(t.Id) == null) count++;
        VocabSize = count;
        UnkId = model.UnkToken is { } unk ? TokenToId(unk) : null;
        PadId = padding?.PadId ?? FirstKnown(SpecialTokenConventions.Pad);
        BosId = TemplateFirstSpecial() ?? FirstKnown(SpecialTokenConventions.Bos);
        EosId = FirstKnown(SpecialTokenConventions.Eos);
    }

    internal INormalizer? Normalizer => _normalizer;
    internal IPreTokenizer? PreTokenizer => _preTokenizer;
    internal IModel Model => _model;
    internal IPostProcessor? PostProcessor => _postProcessor;
    internal IDecoder? Decoder => _decoder;
    internal AddedVocabulary AddedVocabulary => _added;

    /// <summary>Where it was loaded from (a path), if known.</summary>
    public string? SourceName { get; }

    /// <summary>Size of the vocabulary including added tokens (number of distinct ids).</summary>
    public int VocabSize { get; }

    /// <summary>Added tokens marked special (e.g. "&lt;|begin_of_text|&gt;", "[CLS]"), by content.</summary>
    public IReadOnlyDictionary<string, int> SpecialTokens => _specialTokens;

    /// <summary>All tokens of the "added_tokens" section, in id order.</summary>
    public IReadOnlyList<AddedToken> AddedTokens => _added.Tokens;

    public int? BosId { get; private set; }
    public int? EosId { get; private set; }
    public int? PadId { get; private set; }
    public int? UnkId { get; }

    /// <summary>Overrides BOS/EOS/PAD ids (e.g. from tokenizer_config.json or GGUF metadata).</summary>
    internal void SetSpecialIds(int? bos, int? eos, int? pad)
    {
        if (bos != null) BosId = bos;
        if (eos != null) EosId = eos;
        if (pad != null) PadId = pad;
    }

    private int? FirstKnown(IReadOnlyList<string> names)
    {
        foreach (var n in names) if (TokenToId(n) is int id) return id;
        return null;
    }

    private int? TemplateFirstSpecial()
    {
        if (_postProcessor is TemplateProcessor t && t.Single.Count > 0 && !t.Single[0].IsSequence)
            return t.SpecialTokens[t.Single[0].SpecialId].Ids.FirstOrDefault();
        if (_postProcessor is BertProcessor b) return b.Cls.Id;
        return null;
    }

    // ---------------------------------------------------------------- loading

    private static readonly ConcurrentDictionary<string, Func<string, Tokenizer>> s_loaders = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Registers a loader for files with <paramref name="extension"/> (".tiktoken", ".gguf"), so
    /// <see cref="FromFile"/> reads them. The SharpLM engine registers its GGUF vocabulary loader this way.</summary>
    public static void RegisterLoader(string extension, Func<string, Tokenizer> loader)
    {
        ArgumentException.ThrowIfNullOrEmpty(extension);
        ArgumentNullException.ThrowIfNull(loader);
        s_loaders[extension] = loader;
    }

    /// <summary>Loads a tokenizer.json, a folder holding one (or a vocab.txt), a BERT vocab.txt (lowercasing), or a
    /// format registered by another loader (.tiktoken, .gguf).</summary>
    public static Tokenizer FromFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            string json = Path.Combine(path, "tokenizer.json");
            if (File.Exists(json)) return FromFile(json);
            string vocab = Path.Combine(path, "vocab.txt");
            if (File.Exists(vocab)) return FromFile(vocab);
            throw new FileNotFoundException($"The folder {path} holds neither tokenizer.json nor vocab.txt.", json);
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"Tokenizer file {path} not found.", path);
        string ext = Path.GetExtension(path);
        if (ext.Equals(".json", StringComparison.OrdinalIgnoreCase))
        {
            var tok = TokenizerJsonLoader.LoadFile(path, TokenizerJsonCache.Disabled ? null : TokenizerJsonCache.Folder);
            tok.ApplyTokenizerConfig(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "tokenizer_config.json"));
            return tok;
        }
        if (ext.Equals(".txt", StringComparison.OrdinalIgnoreCase)) return FromVocabTxt(path);
        if (s_loaders.TryGetValue(ext, out var loader)) return loader(path);
        if (IsGguf(path) && s_loaders.TryGetValue(".gguf", out var gguf)) return gguf(path);
        if (ext.Equals(".tiktoken", StringComparison.OrdinalIgnoreCase) || ext.Equals(".gguf", StringComparison.OrdinalIgnoreCase) || IsGguf(path))
            throw new NotSupportedException($"{path}: {(ext.Length > 0 ? ext : "GGUF")} tokenizers need their loader: GGUF files are read by the SharpLM engine (reference the SharpLM package; it registers itself with Tokenizer.RegisterLoader).");
        throw new NotSupportedException($"{path}: unknown tokenizer format '{ext}'; expected tokenizer.json, vocab.txt, .tiktoken or .gguf.");
    }

    private static bool IsGguf(string path)
    {
        try
        {
            using var f = File.OpenRead(path);
            Span<byte> magic = stackalloc byte[4];
            return f.Read(magic) == 4 && magic.SequenceEqual("GGUF"u8);
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Parses the text of a tokenizer.json; errors name <paramref name="sourceName"/> and the JSON path.</summary>
    public static Tokenizer FromJson(string json, string? sourceName = null)
    {
        ArgumentNullException.ThrowIfNull(json);
        return TokenizerJsonLoader.Load(json, sourceName ?? "tokenizer.json");
    }

    /// <summary>A BERT WordPiece tokenizer from a vocab.txt (one token per line): BertNormalizer (lowercase unless
    /// told), BertPreTokenizer, WordPiece ("##", [UNK]), [CLS] $A [SEP] ($B [SEP]), WordPiece decoder.</summary>
    public static Tokenizer FromVocabTxt(string path, bool lowercase = true)
    {
        using var reader = new StreamReader(path, System.Text.Encoding.UTF8);
        return FromVocabTxt(reader, lowercase, path);
    }

    internal static Tokenizer FromVocabTxt(TextReader reader, bool lowercase, string sourceName)
    {
        var vocab = WordPieceModel.ReadVocabTxt(reader);
        foreach (var required in new[] { "[UNK]", "[CLS]", "[SEP]" })
            if (!vocab.ContainsKey(required))
                throw new InvalidDataException($"{sourceName}: the BERT vocabulary has no '{required}' token; expected [UNK], [CLS] and [SEP] lines.");
        var model = new WordPieceModel(vocab, "[UNK]", "##", 100);
        var added = new List<AddedToken>();
        foreach (var s in new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" })
            if (vocab.TryGetValue(s, out int id)) added.Add(new AddedToken(s, id, Special: true));
        var post = new BertProcessor(("[SEP]", vocab["[SEP]"]), ("[CLS]", vocab["[CLS]"]));
        return new Tokenizer(new BertNormalizer(true, true, null, lowercase), new BertPreTokenizer(), model, post,
            new WordPieceDecoder("##", true), added, null, null, sourceName);
    }

    private void ApplyTokenizerConfig(string configPath)
    {
        if (!File.Exists(configPath)) return;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(configPath));
            int? Id(string name)
            {
                if (!doc.RootElement.TryGetProperty(name, out var v)) return null;
                string? s = v.ValueKind switch
                {
                    System.Text.Json.JsonValueKind.String => v.GetString(),
                    System.Text.Json.JsonValueKind.Object when v.TryGetProperty("content", out var c) => c.GetString(),
                    _ => null,
                };
                return s == null ? null : TokenToId(s);
            }
            SetSpecialIds(Id("bos_token"), Id("eos_token"), Id("pad_token"));
        }
        catch (System.Text.Json.JsonException)
        {
            // tokenizer_config.json is optional metadata; a broken one does not stop the tokenizer from working.
        }
    }

    // ---------------------------------------------------------------- vocabulary

    /// <summary>The id of a token (added tokens first, then the model's vocabulary), or null.</summary>
    public int? TokenToId(string token) => _added.TokenToId(token) ?? _model.TokenToId(token);

    /// <summary>The token string of an id, or null when the id is unknown.</summary>
    public string? IdToToken(int id) => _added.IdToToken(id) ?? _model.IdToToken(id);

    // ---------------------------------------------------------------- encoding

    /// <summary>Tokenizes <paramref name="text"/>; with <paramref name="addSpecialTokens"/> the post-processor adds
    /// BOS/[CLS]/[SEP] etc. Truncation and padding from the tokenizer.json apply.</summary>
    public Encoding Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var e = EncodeSequence(text, 0, true);
        return PostProcess(e, null, addSpecialTokens, _truncation, _padding, singlePad: true);
    }

    /// <summary>Tokenizes a sentence pair (BERT: [CLS] A [SEP] B [SEP], type ids 0 then 1).</summary>
    public Encoding Encode(string text, string pair, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(pair);
        var a = EncodeSequence(text, 0, true);
        var b = EncodeSequence(pair, 1, true);
        return PostProcess(a, b, addSpecialTokens, _truncation, _padding, singlePad: true);
    }

    /// <summary>The ids only (no offsets tracked): the fast path.</summary>
    public int[] EncodeToIds(ReadOnlySpan<char> text, bool addSpecialTokens = true)
    {
        if (_truncation == null && _padding == null)
        {
            var ids = t_ids ??= new List<int>(256);
            ids.Clear();
            EncodeIdsNoPost(text, ids);
            if (ids.Capacity > 1 << 20) t_ids = null; // do not keep a huge buffer per thread
            if (_postProcessor is null or ByteLevelProcessor || !addSpecialTokens) return [.. ids]; // without specials a post-processor leaves the ids as they are
            int n = ids.Count;
            if (SingleFrame() is [var before, var after])
            {
                var framed = new int[before.Length + n + after.Length];
                before.CopyTo(framed, 0);
                ids.CopyTo(framed, before.Length);
                after.CopyTo(framed, before.Length + n);
                return framed;
            }
            var strings = new string[n];
            Array.Fill(strings, "");
            var bare = new Encoding([.. ids], strings, new (int, int)[n], new int[n], new int[n], Filled(n, 1), new int[n]);
            return _postProcessor.Process(bare, null, addSpecialTokens).ToIdArray();
        }
        var e = EncodeSequence(text.ToString(), 0, false);
        return PostProcess(e, null, addSpecialTokens, _truncation, _padding, singlePad: true).ToIdArray();
    }

    [ThreadStatic] private static List<int>? t_ids;

    /// <summary>The ids the post-processor puts before and after a single sequence with special tokens ([CLS] … [SEP],
    /// &lt;s&gt; … &lt;/s&gt;), found once by processing a one-token probe sequence, so that the ids path frames the ids
    /// without building an <see cref="Encoding"/>; empty when the probe does not come out exactly once.</summary>
    private int[][] SingleFrame()
    {
        if (_singleFrame is { } known) return known;
        const int probe = -1; // never a token id: marks where the sequence lands
        var bare = new Encoding([probe], [""], [(0, 0)], [0], [0], [1], [0]);
        var ids = _postProcessor!.Process(bare, null, true).ToIdArray();
        int at = Array.IndexOf(ids, probe);
        int[][] frame = at >= 0 && Array.LastIndexOf(ids, probe) == at ? [ids[..at], ids[(at + 1)..]] : [];
        _singleFrame = frame;
        return frame;
    }

    private int[][]? _singleFrame;


    private static int[] Filled(int n, int value)
    {
        var a = new int[n];
        Array.Fill(a, value);
        return a;
    }

    /// <summary>The ids only, as a string overload.</summary>
    public int[] EncodeToIds(string text, bool addSpecialTokens = true) => EncodeToIds(text.AsSpan(), addSpecialTokens);

    /// <summary>Encodes many texts (in parallel), then truncates and pads them: to the longest of the batch, or to
    /// <see cref="PaddingOptions.Length"/>. Options default to the tokenizer.json "padding"/"truncation" sections.</summary>
    public IReadOnlyList<Encoding> EncodeBatch(IReadOnlyList<string> texts, bool addSpecialTokens = true, PaddingOptions? padding = null,
        TruncationOptions? truncation = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        padding ??= _padding;
        truncation ??= _truncation;
        var result = new Encoding[texts.Count];
        void One(int i)
        {
            var e = EncodeSequence(texts[i] ?? throw new ArgumentException($"texts[{i}] is null.", nameof(texts)), 0, true);
            result[i] = PostProcess(e, null, addSpecialTokens, truncation, null, singlePad: false);
        }
        if (texts.Count >= 8 && Environment.ProcessorCount > 1) Parallel.For(0, texts.Count, One);
        else for (int i = 0; i < texts.Count; i++) One(i);
        if (padding != null) PadBatch(result, padding);
        return result;
    }

    private void PadBatch(IReadOnlyList<Encoding> encodings, PaddingOptions p)
    {
        int length = p.Length ?? (encodings.Count == 0 ? 0 : encodings.Max(e => e.Count));
        if (p.PadToMultipleOf is int m && m > 0 && length % m != 0) length += m - length % m;
        int padId = p.PadId ?? (p.PadToken != null ? TokenToId(p.PadToken) : null) ?? PadId ?? 0;
        string padToken = p.PadToken ?? IdToToken(padId) ?? "[PAD]";
        foreach (var e in encodings) e.Pad(length, padId, p.PadTypeId, padToken, p.Direction);
    }

    private Encoding PostProcess(Encoding a, Encoding? b, bool addSpecialTokens, TruncationOptions? truncation, PaddingOptions? padding, bool singlePad)
    {
        if (truncation != null)
        {
            int added = addSpecialTokens && _postProcessor != null ? _postProcessor.AddedTokens(b != null) : 0;
            int max = truncation.MaxLength - added;
            if (max < 0) max = 0;
            Truncate(a, b, truncation with { MaxLength = max });
        }
        Encoding result;
        if (_postProcessor != null) result = _postProcessor.Process(a, b, addSpecialTokens);
        else result = DefaultProcessor.Merge(a, b);
        if (padding != null && singlePad && padding.Length != null) PadBatch([result], padding);
        return result;
    }

    private static void Truncate(Encoding a, Encoding? b, TruncationOptions t)
    {
        int max = t.MaxLength;
        if (b == null)
        {
            if (t.Strategy == TruncationStrategy.OnlySecond) return;
            TruncateOne(a, max, t.Stride, t.Direction);
            return;
        }
        int total = a.Count + b.Count;
        if (total <= max) return;
        switch (t.Strategy)
        {
            case TruncationStrategy.LongestFirst:
            {
                int n1 = a.Count, n2 = b.Count;
                bool swap = false;
                if (n1 > n2) { swap = true; (n1, n2) = (n2, n1); }
                n2 = n1 > max ? n1 : Math.Max(n1, max - n1);
                if (n1 + n2 > max) { n1 = max / 2; n2 = n1 + max % 2; }
                if (swap) (n1, n2) = (n2, n1);
                TruncateOne(a, n1, t.Stride, t.Direction);
                TruncateOne(b, n2, t.Stride, t.Direction);
                break;
            }
            case TruncationStrategy.OnlyFirst:
                if (a.Count > total - max) TruncateOne(a, a.Count - (total - max), t.Stride, t.Direction);
                break;
            case TruncationStrategy.OnlySecond:
                if (b.Count > total - max) TruncateOne(b, b.Count - (total - max), t.Stride, t.Direction);
                break;
        }
    }

    /// <summary>HF Encoding::truncate: keeps max tokens, the rest in overflowing chunks overlapping by stride.</summary>
    private static void TruncateOne(Encoding e, int max, int stride, PaddingDirection direction)
    {
        int n = e.Count;
        if (max >= n) return;
        var full = e.Slice(0, n);
        if (max == 0)
        {
            Replace(e, Encoding.Empty());
            e.Overflowing = [full];
            return;
        }
        if (stride >= max) throw new ArgumentException($"Truncation stride {stride} must be less than the max length {max} (after the special tokens).");
        int offset = max - stride;
        var ranges = new List<(int, int)>();
        if (direction == PaddingDirection.Right)
        {
            for (int start = 0; start < n; start += offset)
            {
                int stop = Math.Min(start + max, n);
                ranges.Add((start, stop));
                if (stop == n) break;
            }
        }
        else
        {
            for (int stop = n; stop > 0; stop -= offset)
            {
                int start = Math.Max(0, stop - max);
                ranges.Add((start, stop));
                if (start == 0) break;
            }
        }
        var first = full.Slice(ranges[0].Item1, ranges[0].Item2);
        var overflow = new List<Encoding>();
        for (int i = 1; i < ranges.Count; i++) overflow.Add(full.Slice(ranges[i].Item1, ranges[i].Item2));
        Replace(e, first);
        e.Overflowing = overflow;
    }

    private static void Replace(Encoding target, Encoding src)
    {
        target.Ids = src.Ids; target.Tokens = src.Tokens; target.Offsets = src.Offsets; target.TypeIds = src.TypeIds;
        target.SpecialTokensMask = src.SpecialTokensMask; target.AttentionMask = src.AttentionMask; target.SequenceIds = src.SequenceIds;
    }

    [ThreadStatic] private static TokenSink? t_sink;

    /// <summary>Lone surrogates become U+FFFD (same length, so offsets are unchanged): what a UTF-8 encoder writes.</summary>
    internal static string Sanitize(string text)
    {
        int i = 0;
        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (!char.IsSurrogate(c)) continue;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            break;
        }
        if (i >= text.Length) return text;
        var chars = text.ToCharArray();
        for (int k = 0; k < chars.Length; k++)
        {
            char c = chars[k];
            if (!char.IsSurrogate(c)) continue;
            if (char.IsHighSurrogate(c) && k + 1 < chars.Length && char.IsLowSurrogate(chars[k + 1])) { k++; continue; }
            chars[k] = '\uFFFD';
        }
        return new string(chars);
    }

    /// <summary>Added tokens, normalizer, pre-tokenizer and model over one sequence (HF encode_single_sequence).</summary>
    internal Encoding EncodeSequence(string text, int typeId, bool trackOffsets)
    {
        text = Sanitize(text);
        var pts = new PreTokenizedString();
        pts.Splits.Add(new Split(NormalizedString.FromOriginal(text, 0, text.Length, trackOffsets)));
        if (!_added.IsEmpty) _added.ExtractAndNormalize(pts, _normalizer);
        else if (_normalizer != null) pts.Normalize(_normalizer, static (n, s) => n.Normalize(s));
        _preTokenizer?.PreTokenize(pts);
        var ids = new List<int>(text.Length / 3 + 4);
        var toks = new List<string>(text.Length / 3 + 4);
        var offs = new List<(int, int)>(text.Length / 3 + 4);
        var sink = t_sink ??= new TokenSink();
        foreach (var split in pts.Splits)
        {
            var n = split.Norm;
            if (split.TokenId >= 0)
            {
                ids.Add(split.TokenId);
                toks.Add(n.Text);
                offs.Add(trackOffsets ? n.OriginalSpan(0, n.Length) : (0, 0));
                continue;
            }
            sink.Clear();
            _model.Tokenize(n.Text, sink);
            for (int i = 0; i < sink.Count; i++)
            {
                int id = sink.Ids[i];
                ids.Add(id);
                toks.Add(_model.IdToToken(id) ?? "");
                offs.Add(trackOffsets ? n.OriginalSpan(sink.Starts[i], sink.Ends[i]) : (0, 0));
            }
        }
        int count = ids.Count;
        var types = new int[count];
        if (typeId != 0) Array.Fill(types, typeId);
        var ones = new int[count];
        Array.Fill(ones, 1);
        var seq = new int[count];
        if (typeId != 0) Array.Fill(seq, typeId);
        return new Encoding([.. ids], [.. toks], [.. offs], types, new int[count], ones, seq);
    }

    // The one ids-only fast path for this pipeline, if any (PreTokenizers/FastPaths.cs: byte-level BPE, SentencePiece
    // BPE); lazy so loading stays cheap. Each checks its normalizer's form itself.
    private Lazy<IFastIdsEncoder?> FastExtra => _fastLazy ??= new Lazy<IFastIdsEncoder?>(() => FastPaths.TryCreate(_normalizer, _preTokenizer, _model, _added.Tokens));
    private Lazy<IFastIdsEncoder?>? _fastLazy;

    /// <summary>Ids of one sequence (no post-processing, no offsets) through the fastest path that applies.</summary>
    private void EncodeIdsNoPost(ReadOnlySpan<char> text, List<int> ids)
    {
        // The tok-extra fast paths check the normalizer's form themselves (string.IsNormalized is a no-op under
        // InvariantGlobalization, so they use UnicodeNormalization).
        if (FastExtra.Value is { } f && f.TryEncodeIds(text, out var fastIds))
        {
            ids.AddRange(fastIds);
            return;
        }
        ids.Clear();
        ids.AddRange(EncodeSequence(text.ToString(), 0, false).IdsArray);
    }

    // ---------------------------------------------------------------- decoding

    /// <summary>Ids back to text through the decoder (HF decode): unknown ids are skipped, special added tokens too
    /// when <paramref name="skipSpecialTokens"/>; without a decoder the tokens are joined with spaces.</summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true)
    {
        var tokens = new List<string>(ids.Length);
        foreach (int id in ids)
        {
            string? t = _added.IdToToken(id) ?? _model.IdToToken(id);
            if (t == null) continue;
            if (skipSpecialTokens && _added.IsSpecial(t)) continue;
            tokens.Add(t);
        }
        if (_decoder == null) return string.Join(' ', tokens);
        _decoder.DecodeChain(tokens);
        return string.Concat(tokens);
    }

    /// <summary>Ids back to text (array overload).</summary>
    public string Decode(int[] ids, bool skipSpecialTokens = true) => Decode(ids.AsSpan(), skipSpecialTokens);

    /// <summary>Ids back to text (list overload).</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true) => Decode(ids.ToArray().AsSpan(), skipSpecialTokens);
}
