using System.Text;
using System.Runtime.InteropServices;
using System.Text.Json;
using SharpLM.Tokenizers.Core;
using SharpLM.Tokenizers.Decoders;
using SharpLM.Tokenizers.Models.Bpe;
using SharpLM.Tokenizers.Models.Unigram;
using SharpLM.Tokenizers.Models.WordLevel;
using SharpLM.Tokenizers.Models.WordPiece;
using SharpLM.Tokenizers.Normalizers;
using SharpLM.Tokenizers.PostProcessors;
using SharpLM.Tokenizers.PreTokenizers;

namespace SharpLM.Tokenizers.Json;

/// <summary>Reads a Hugging Face tokenizer.json into the pipeline objects. Every error names the JSON path.</summary>
internal static class TokenizerJsonLoader
{
    public static Tokenizer Load(string json, string source) => Load(System.Text.Encoding.UTF8.GetBytes(json), source);

    /// <summary>Parses the UTF-8 bytes of a tokenizer.json (a file is read as bytes: no UTF-16 copy of it is made).</summary>
    public static Tokenizer Load(ReadOnlyMemory<byte> utf8, string source) => Load(utf8, source, null, out _);

    /// <summary>Loads the tokenizer.json at <paramref name="path"/>; with a <paramref name="cacheFolder"/>, a large BPE
    /// file goes through <see cref="TokenizerJsonCache"/> (its entry read when it matches the file, else made).</summary>
    public static Tokenizer LoadFile(string path, string? cacheFolder)
    {
        if (cacheFolder is null || new FileInfo(path).Length < TokenizerJsonCache.MinBytes) return Load(File.ReadAllBytes(path), path);
        var key = TokenizerJsonCache.KeyOfFile(path);
        if (TokenizerJsonCache.TryRead(cacheFolder, path, key) is { } cached) return Load(cached.RestJson, path, cached, out _);
        // A miss: the key of the bytes parsed here (the file may have changed since the lookup) goes with the entry.
        var bytes = File.ReadAllBytes(path);
        var tok = Load(bytes, path, null, out var derived);
        if (derived != null) TokenizerJsonCache.TryWrite(cacheFolder, path, TokenizerJsonCache.KeyOf(path, bytes), derived);
        return tok;
    }

    /// <summary>The load itself. <paramref name="cached"/>: the vocabulary and merges already resolved (the JSON then
    /// has neither); <paramref name="derived"/>: what a cache entry keeps, when the model is a BPE read from the JSON.</summary>
    private static Tokenizer Load(ReadOnlyMemory<byte> utf8, string source, TokenizerJsonCache.Parts? cached, out TokenizerJsonCache.Parts? derived)
    {
        derived = null;
        if (utf8.Span.StartsWith("\uFEFF"u8)) utf8 = utf8[3..];
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine}): {e.Message}", e);
        }
        using (doc)
        {
            var root = new JsonNode(doc.RootElement, "", source).ExpectObject();
            var model = ReadModel(root.Required("model"), cached);
            var normalizer = ReadNormalizer(root.Get("normalizer"));
            var pre = ReadPreTokenizer(root.Get("pre_tokenizer"));
            var post = ReadPostProcessor(root.Get("post_processor"));
            var decoder = ReadDecoder(root.Get("decoder"));
            var added = new List<AddedToken>();
            var at = root.Get("added_tokens");
            if (!at.IsNull)
            {
                foreach (var t in at.Array())
                {
                    t.ExpectObject();
                    added.Add(new AddedToken(t.RequiredString("content"), t.Required("id").TokenId(), t.Bool("special", false),
                        t.Bool("normalized", !t.Bool("special", false)), t.Bool("lstrip", false), t.Bool("rstrip", false),
                        t.Bool("single_word", false)));
                }
            }
            var padding = ReadPadding(root.Get("padding"));
            var truncation = ReadTruncation(root.Get("truncation"));
            var tokenizer = new Tokenizer(normalizer, pre, model, post, decoder, added, padding, truncation, source);
            if (cached is null && model is BpeModel { MergeIdArray: { } merges } bpe && root.Get("model").Get("type").Kind == JsonValueKind.String)
                derived = new TokenizerJsonCache.Parts(TokenizerJsonCache.RestOf(doc.RootElement), bpe.Vocab, merges);
            return tokenizer;
        }
    }

    private const string NormalizerTypes = "BertNormalizer, Strip, StripAccents, NFC, NFD, NFKC, NFKD, Lowercase, Replace, Prepend, Sequence";

    internal static INormalizer? ReadNormalizer(JsonNode n)
    {
        if (n.IsNull) return null;
        string type = n.Type();
        switch (type)
        {
            case "Sequence":
                return new SequenceNormalizer(n.Required("normalizers").Array().Select(ReadNormalizer).OfType<INormalizer>().ToArray());
            case "NFC": return new UnicodeNormalizer(NormalizationForm.FormC);
            case "NFD": return new UnicodeNormalizer(NormalizationForm.FormD);
            case "NFKC": return new UnicodeNormalizer(NormalizationForm.FormKC);
            case "NFKD": return new UnicodeNormalizer(NormalizationForm.FormKD);
            case "Lowercase": return new LowercaseNormalizer();
            case "Strip": return new StripNormalizer(n.Bool("strip_left", true), n.Bool("strip_right", true));
            case "StripAccents": return new StripAccentsNormalizer();
            case "Prepend": return new PrependNormalizer(n.RequiredString("prepend"));
            case "Replace":
            {
                var (pattern, isRegex) = ReadPattern(n.Required("pattern"));
                return new ReplaceNormalizer(pattern, isRegex, n.RequiredString("content"));
            }
            case "BertNormalizer":
                return new BertNormalizer(n.Bool("clean_text", true), n.Bool("handle_chinese_chars", true), n.OptBool("strip_accents"),
                    n.Bool("lowercase", true));
            default:
                n.UnknownType(type, NormalizerTypes);
                return null;
        }
    }

    private static (string Pattern, bool IsRegex) ReadPattern(JsonNode p)
    {
        if (p.Kind == JsonValueKind.String) return (p.String(), false);
        p.ExpectObject();
        if (p.Has("String")) return (p.RequiredString("String"), false);
        if (p.Has("Regex"))
        {
            string r = p.RequiredString("Regex");
            // A known split (LLaMA-3, Qwen, GPT-2, o200k) runs on its hand-written scanner: no Regex is built for it here.
            try { if (SplitPatterns.ByPattern(r) is null) RegexCache.Validate(r); }
            catch (ArgumentException e) { p.Get("Regex").Fail($"the regex '{r}' is not supported: {e.Message}"); }
            return (r, true);
        }
        p.Fail("expected {\"String\": ...} or {\"Regex\": ...}.");
        return default;
    }

    private const string PreTokenizerTypes = "ByteLevel, Split, Metaspace, Whitespace, WhitespaceSplit, BertPreTokenizer, Digits, Punctuation, Delimiter, Sequence";

    internal static IPreTokenizer? ReadPreTokenizer(JsonNode n)
    {
        if (n.IsNull) return null;
        string type = n.Type();
        switch (type)
        {
            case "Sequence":
                return new SequencePreTokenizer(n.Required("pretokenizers").Array().Select(ReadPreTokenizer).OfType<IPreTokenizer>().ToArray());
            case "ByteLevel":
                return new ByteLevelPreTokenizer(n.Bool("add_prefix_space", true), n.Bool("trim_offsets", true), n.Bool("use_regex", true));
            case "Split":
            {
                var (pattern, isRegex) = ReadPattern(n.Required("pattern"));
                return new SplitPreTokenizer(pattern, isRegex, ReadBehavior(n.Required("behavior")), n.Bool("invert", false));
            }
            case "Metaspace":
                return new MetaspacePreTokenizer(ReadChar(n.Required("replacement")), ReadPrependScheme(n), n.Bool("split", true));
            case "Whitespace": return new WhitespacePreTokenizer();
            case "WhitespaceSplit": return new WhitespaceSplitPreTokenizer();
            case "BertPreTokenizer": return new BertPreTokenizer();
            case "Digits": return new DigitsPreTokenizer(n.Bool("individual_digits", false));
            case "Punctuation":
                return new PunctuationPreTokenizer(n.Has("behavior") ? ReadBehavior(n.Get("behavior")) : SplitBehavior.Isolated);
            case "Delimiter":
                return new SplitPreTokenizer(ReadChar(n.Required("delimiter")).ToString(), false, SplitBehavior.Removed, false);
            default:
                n.UnknownType(type, PreTokenizerTypes);
                return null;
        }
    }

    private static char ReadChar(JsonNode n)
    {
        string s = n.String();
        if (s.Length != 1) n.Fail($"expected a single char, found '{s}'.");
        return s[0];
    }

    private static MetaspacePrependScheme ReadPrependScheme(JsonNode n)
    {
        var scheme = MetaspacePrependScheme.Always;
        var ps = n.Get("prepend_scheme");
        if (!ps.IsNull)
        {
            scheme = ps.String() switch
            {
                "always" => MetaspacePrependScheme.Always,
                "first" => MetaspacePrependScheme.First,
                "never" => MetaspacePrependScheme.Never,
                var s => Fail<MetaspacePrependScheme>(ps, $"unknown prepend_scheme '{s}'; expected always, first or never."),
            };
        }
        if (n.OptBool("add_prefix_space") == false)
        {
            if (!ps.IsNull && scheme != MetaspacePrependScheme.Never) n.Fail("add_prefix_space does not match declared prepend_scheme.");
            scheme = MetaspacePrependScheme.Never;
        }
        return scheme;
    }

    private static T Fail<T>(JsonNode n, string message)
    {
        n.Fail(message);
        return default!;
    }

    private static SplitBehavior ReadBehavior(JsonNode n) => n.String() switch
    {
        "Removed" => SplitBehavior.Removed,
        "Isolated" => SplitBehavior.Isolated,
        "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
        "MergedWithNext" => SplitBehavior.MergedWithNext,
        "Contiguous" => SplitBehavior.Contiguous,
        var s => Fail<SplitBehavior>(n, $"unknown behavior '{s}'; expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous."),
    };

    private static Dictionary<string, int> ReadVocabObject(JsonNode v)
    {
        v.ExpectObject();
        var d = new Dictionary<string, int>(v.Element.GetPropertyCount(), StringComparer.Ordinal);
        foreach (var (name, value) in v.Properties()) d[name] = value.TokenId();
        return d;
    }

    /// <summary>A BPE vocabulary object into a <see cref="VocabTable"/>: each token's raw UTF-8 is decoded straight into
    /// the table (no string per token; an escaped name is unescaped first).</summary>
    private static VocabTable ReadVocabTable(JsonNode v)
    {
        v.ExpectObject();
        int count = v.Element.GetPropertyCount();
        var table = new VocabTable(count, (int)Math.Min(count * 8L, 1 << 28));
        Span<char> buf = stackalloc char[256];
        foreach (var p in v.Element.EnumerateObject())
        {
            var raw = JsonMarshal.GetRawUtf8PropertyName(p);
            scoped ReadOnlySpan<char> name;
            if (raw.Length <= buf.Length && !raw.Contains((byte)'\\'))
            {
                int n = System.Text.Encoding.UTF8.GetChars(raw, buf);
                name = buf[..n];
            }
            else name = p.Name;
            var value = p.Value;
            int id = value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int i) && (uint)i < TokenIds.Limit ? i
                : v.Member(p).TokenId(); // not a usable id: the error names the token
            table.Add(name, id);
        }
        return table;
    }

    /// <summary>The merges ("a b" strings or [a, b] pairs) as vocabulary ids (left, right, merged), in rank order. The
    /// UTF-8 of each merge is decoded into a stack buffer and looked up as spans: no string per merge (llama3 has
    /// 280,000 of them), and the merged token is looked up here, while its parts are at hand.</summary>
    private static (int, int, int)[] ReadMergeIds(JsonNode mn, VocabTable lookup, string? continuingSubwordPrefix)
    {
        var result = new (int, int, int)[mn.ArrayLength()];
        Span<char> buf = stackalloc char[256];
        Span<char> buf2 = stackalloc char[256];
        int rank = 0, guess = -1;
        foreach (var e in mn.Element.EnumerateArray())
        {
            scoped ReadOnlySpan<char> a, b;
            if (e.ValueKind == JsonValueKind.String)
            {
                var text = Chars(e, buf);
                int sp = text.IndexOf(' ');
                if (sp < 0) mn.Item(e, rank).Fail($"a merge must be two tokens separated by a space, found '{text}'.");
                a = text[..sp];
                b = text[(sp + 1)..];
            }
            else
            {
                var m = mn.Item(e, rank);
                if (m.ArrayLength() != 2) m.Fail($"a merge must be a pair [a, b], found {e.GetArrayLength()} items.");
                if (e[0].ValueKind != JsonValueKind.String) m.Item(e[0], 0).String();
                if (e[1].ValueKind != JsonValueKind.String) m.Item(e[1], 1).String();
                a = Chars(e[0], buf);
                b = Chars(e[1], buf2);
            }
            try
            {
                result[rank] = BpeModel.MergeIds(lookup, rank, a, b, continuingSubwordPrefix, ref guess);
            }
            catch (InvalidDataException ex)
            {
                mn.Item(e, rank).Fail(ex.Message);
            }
            rank++;
        }
        return result;
    }

    /// <summary>The characters of a JSON string: its raw UTF-8 decoded into <paramref name="buffer"/> when it has no
    /// escapes and fits, else the unescaped string.</summary>
    private static ReadOnlySpan<char> Chars(JsonElement s, Span<char> buffer)
    {
        var raw = JsonMarshal.GetRawUtf8Value(s)[1..^1];   // without the quotes
        if (raw.Length > buffer.Length || raw.Contains((byte)'\\')) return s.GetString();
        int n = System.Text.Encoding.UTF8.GetChars(raw, buffer);
        return buffer[..n];
    }

    private const string ModelTypes = "BPE, WordPiece, WordLevel, Unigram";

    internal static IModel ReadModel(JsonNode n, TokenizerJsonCache.Parts? cached = null)
    {
        n.ExpectObject();
        string type;
        if (n.Has("type")) type = n.Type();
        else if (n.Has("merges")) type = "BPE";
        else if (n.Get("vocab").Kind == JsonValueKind.Array) type = "Unigram";
        else if (n.Has("max_input_chars_per_word")) type = "WordPiece";
        else type = "WordLevel";
        switch (type)
        {
            case "BPE":
            {
                string? prefix = n.OptString("continuing_subword_prefix");
                VocabTable vocab;
                (int, int, int)[] merges;
                if (cached != null) (vocab, merges) = (cached.Vocab, cached.Merges);
                else
                {
                    vocab = ReadVocabTable(n.Required("vocab"));
                    var mn = n.Get("merges");
                    merges = mn.IsNull ? [] : ReadMergeIds(mn, vocab, prefix);
                }
                try
                {
                    return BpeModel.FromMergeIds(vocab, merges, n.OptString("unk_token"), prefix,
                        n.OptString("end_of_word_suffix"), n.Bool("fuse_unk", false), n.Bool("byte_fallback", false), n.Bool("ignore_merges", false));
                }
                catch (InvalidDataException e)
                {
                    n.Fail(e.Message);
                    throw;
                }
            }
            case "WordPiece":
                return new WordPieceModel(ReadVocabObject(n.Required("vocab")), n.OptString("unk_token") ?? "[UNK]",
                    n.OptString("continuing_subword_prefix") ?? "##", n.Int("max_input_chars_per_word", 100));
            case "WordLevel":
                return new WordLevelModel(ReadVocabObject(n.Required("vocab")), n.OptString("unk_token") ?? "<unk>");
            case "Unigram":
            {
                var list = new List<(string, double)>();
                foreach (var e in n.Required("vocab").Array())
                {
                    var parts = e.Array().ToArray();
                    if (parts.Length != 2) e.Fail($"expected [piece, score], found {parts.Length} items.");
                    list.Add((parts[0].String(), parts[1].Double()));
                }
                int? unk = n.OptInt("unk_id");
                if (unk is int u && (u < 0 || u >= list.Count)) n.Get("unk_id").Fail($"unk_id {u} is outside the vocabulary (0..{list.Count - 1}).");
                return new UnigramModel(list, unk, n.Bool("byte_fallback", false));
            }
            default:
                n.UnknownType(type, ModelTypes);
                return null!;
        }
    }

    private const string ProcessorTypes = "TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence";

    internal static IPostProcessor? ReadPostProcessor(JsonNode n)
    {
        if (n.IsNull) return null;
        string type = n.Type();
        switch (type)
        {
            case "TemplateProcessing":
            {
                var specials = new Dictionary<string, TemplateSpecialToken>(StringComparer.Ordinal);
                var st = n.Get("special_tokens");
                if (!st.IsNull)
                {
                    foreach (var (name, v) in st.Properties())
                    {
                        var ids = v.Required("ids").Array().Select(x => x.TokenId()).ToArray();
                        var toks = v.Required("tokens").Array().Select(x => x.String()).ToArray();
                        if (ids.Length != toks.Length) v.Fail($"{ids.Length} ids but {toks.Length} tokens; expected the same number.");
                        specials[name] = new TemplateSpecialToken(v.Get("id").IsNull ? name : v.RequiredString("id"), ids, toks);
                    }
                }
                var single = ReadTemplate(n.Required("single"), specials);
                var pair = n.Has("pair") ? ReadTemplate(n.Get("pair"), specials) : single;
                return new TemplateProcessor(single, pair, specials);
            }
            case "BertProcessing":
                return new BertProcessor(ReadTokenPair(n.Required("sep")), ReadTokenPair(n.Required("cls")));
            case "RobertaProcessing":
                return new RobertaProcessor(ReadTokenPair(n.Required("sep")), ReadTokenPair(n.Required("cls")), n.Bool("trim_offsets", true),
                    n.Bool("add_prefix_space", true));
            case "ByteLevel":
                return new ByteLevelProcessor(n.Bool("trim_offsets", true), n.Bool("add_prefix_space", true));
            case "Sequence":
                return new SequenceProcessor(n.Required("processors").Array().Select(ReadPostProcessor).OfType<IPostProcessor>().ToArray());
            default:
                n.UnknownType(type, ProcessorTypes);
                return null;
        }
    }

    private static (string, int) ReadTokenPair(JsonNode n)
    {
        var parts = n.Array().ToArray();
        if (parts.Length != 2) n.Fail($"expected [token, id], found {parts.Length} items.");
        return (parts[0].String(), parts[1].TokenId());
    }

    private static TemplatePiece[] ReadTemplate(JsonNode n, Dictionary<string, TemplateSpecialToken> specials)
    {
        var pieces = new List<TemplatePiece>();
        foreach (var p in n.Array())
        {
            if (p.Kind == JsonValueKind.String)
            {
                // The string form "$A", "$B:1", "[CLS]", "[SEP]:1".
                string s = p.String();
                int typeId = 0;
                int colon = s.LastIndexOf(':');
                if (colon > 0 && int.TryParse(s.AsSpan(colon + 1), out int t)) { typeId = t; s = s[..colon]; }
                if (s is "$A" or "$") pieces.Add(new(true, 0, "", typeId));
                else if (s == "$B") pieces.Add(new(true, 1, "", typeId));
                else if (s.StartsWith('$') && int.TryParse(s.AsSpan(1), out int tt)) pieces.Add(new(true, 0, "", tt));
                else
                {
                    if (!specials.ContainsKey(s)) p.Fail($"the special token '{s}' is not in special_tokens.");
                    pieces.Add(new(false, 0, s, typeId));
                }
                continue;
            }
            p.ExpectObject();
            if (p.Has("Sequence"))
            {
                var q = p.Get("Sequence");
                string id = q.RequiredString("id");
                if (id is not ("A" or "B")) q.Get("id").Fail($"expected \"A\" or \"B\", found '{id}'.");
                pieces.Add(new(true, id == "A" ? 0 : 1, "", q.Int("type_id", 0)));
            }
            else if (p.Has("SpecialToken"))
            {
                var q = p.Get("SpecialToken");
                string id = q.RequiredString("id");
                if (!specials.ContainsKey(id)) q.Get("id").Fail($"the special token '{id}' is not in special_tokens.");
                pieces.Add(new(false, 0, id, q.Int("type_id", 0)));
            }
            else p.Fail("expected {\"Sequence\": ...} or {\"SpecialToken\": ...}.");
        }
        return [.. pieces];
    }

    private const string DecoderTypes = "ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, WordPiece, BPEDecoder, CTC, Sequence";

    internal static IDecoder? ReadDecoder(JsonNode n)
    {
        if (n.IsNull) return null;
        string type = n.Type();
        switch (type)
        {
            case "Sequence":
                return new SequenceDecoder(n.Required("decoders").Array().Select(ReadDecoder).OfType<IDecoder>().ToArray());
            case "ByteLevel": return new ByteLevelDecoder();
            case "Metaspace": return new MetaspaceDecoder(ReadChar(n.Required("replacement")), ReadPrependScheme(n));
            case "ByteFallback": return new ByteFallbackDecoder();
            case "Fuse": return new FuseDecoder();
            case "Strip": return new StripDecoder(ReadChar(n.Required("content")), n.Int("start", 0), n.Int("stop", 0));
            case "Replace":
            {
                var (pattern, isRegex) = ReadPattern(n.Required("pattern"));
                return new ReplaceDecoder(pattern, isRegex, n.RequiredString("content"));
            }
            case "WordPiece": return new WordPieceDecoder(n.OptString("prefix") ?? "##", n.Bool("cleanup", true));
            case "BPEDecoder": return new BpeDecoder(n.OptString("suffix") ?? "</w>");
            case "CTC": return new CtcDecoder(n.OptString("pad_token") ?? "<pad>", n.OptString("word_delimiter_token") ?? "|", n.Bool("cleanup", true));
            default:
                n.UnknownType(type, DecoderTypes);
                return null;
        }
    }

    private static PaddingDirection ReadDirection(JsonNode n) => n.IsNull ? PaddingDirection.Right : n.String() switch
    {
        "Right" => PaddingDirection.Right,
        "Left" => PaddingDirection.Left,
        var s => Fail<PaddingDirection>(n, $"unknown direction '{s}'; expected Right or Left."),
    };

    private static PaddingOptions? ReadPadding(JsonNode n)
    {
        if (n.IsNull) return null;
        n.ExpectObject();
        int? length = null;
        var st = n.Get("strategy");
        if (st.Kind == JsonValueKind.Object) length = st.Required("Fixed").Int();
        else if (!st.IsNull && st.String() != "BatchLongest") st.Fail($"expected \"BatchLongest\" or {{\"Fixed\": n}}, found '{st.String()}'.");
        return new PaddingOptions
        {
            Length = length,
            Direction = ReadDirection(n.Get("direction")),
            PadId = n.OptInt("pad_id"),
            PadToken = n.OptString("pad_token"),
            PadTypeId = n.Int("pad_type_id", 0),
            PadToMultipleOf = n.OptInt("pad_to_multiple_of"),
        };
    }

    private static TruncationOptions? ReadTruncation(JsonNode n)
    {
        if (n.IsNull) return null;
        n.ExpectObject();
        var strategy = n.Get("strategy");
        return new TruncationOptions
        {
            MaxLength = n.Required("max_length").Int(),
            Stride = n.Int("stride", 0),
            Direction = ReadDirection(n.Get("direction")),
            Strategy = strategy.IsNull ? TruncationStrategy.LongestFirst : strategy.String() switch
            {
                "LongestFirst" => TruncationStrategy.LongestFirst,
                "OnlyFirst" => TruncationStrategy.OnlyFirst,
                "OnlySecond" => TruncationStrategy.OnlySecond,
                var s => Fail<TruncationStrategy>(strategy, $"unknown strategy '{s}'; expected LongestFirst, OnlyFirst or OnlySecond."),
            },
        };
    }
}
