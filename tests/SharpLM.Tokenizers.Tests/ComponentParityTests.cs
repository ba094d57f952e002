using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLM.Testing;

namespace SharpLM.Tokenizers.Tests;

/// <summary>Each pipeline component against HF tokenizers: small tokenizer.json files that use the component,
/// loaded by both sides, on the edge-case texts (plus a Brown sample).</summary>
public class ComponentParityTests
{
    // A small byte-level BPE: the 256 byte chars plus the tokens made by LLaMA-3's first 3000 merges.
    private static readonly Lazy<(JsonObject Vocab, JsonArray Merges)> s_miniByteLevel = new(() =>
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(HfTestSupport.PathOf("llama3")));
        var model = doc.RootElement.GetProperty("model");
        var vocab = new JsonObject();
        int next = 0;
        var have = new HashSet<string>();
        void Add(string t)
        {
            if (have.Add(t)) vocab[t] = next++;
        }
        for (int b = 0; b < 256; b++) Add(((char)ByteChar(b)).ToString());
        var merges = new JsonArray();
        foreach (var m in model.GetProperty("merges").EnumerateArray().Take(3000))
        {
            string s = m.GetString()!;
            int sp = s.IndexOf(' ');
            string a = s[..sp], c = s[(sp + 1)..];
            if (!have.Contains(a) || !have.Contains(c)) continue;
            Add(a + c);
            merges.Add(s);
        }
        return (vocab, merges);
    });

    private static int ByteChar(int b)
    {
        if (b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF) return b;
        int n = 0;
        for (int x = 0; x < b; x++) if (!(x is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF)) n++;
        return 256 + n;
    }

    private static JsonObject MiniByteLevelJson()
    {
        var (vocab, merges) = s_miniByteLevel.Value;
        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false,
                ["vocab"] = vocab.DeepClone(), ["merges"] = merges.DeepClone(),
            },
        };
    }

    private static readonly Lazy<JsonObject> s_mistral = new(() => (JsonObject)JsonNode.Parse(File.ReadAllText(HfTestSupport.PathOf("mistral")))!);
    private static readonly Lazy<JsonObject> s_bert = new(() => (JsonObject)JsonNode.Parse(File.ReadAllText(HfTestSupport.PathOf("minilm")))!);

    private static JsonNode? J(string json) => JsonNode.Parse(json);

    private static JsonObject Added(string content, int id, bool special = false, bool normalized = true, bool lstrip = false,
        bool rstrip = false, bool singleWord = false) => new()
    {
        ["id"] = id, ["content"] = content, ["single_word"] = singleWord, ["lstrip"] = lstrip, ["rstrip"] = rstrip,
        ["normalized"] = normalized, ["special"] = special,
    };

    public static TheoryData<string> Variants() => new(VariantNames);

    private static readonly string[] VariantNames =
    [
        "gpt2-bytelevel", "bytelevel-no-prefix-no-regex", "bytelevel-roberta-post", "bytelevel-template-post",
        "bytelevel-nfkc-lowercase", "bytelevel-nfd-stripaccents", "bytelevel-split-behaviors", "bytelevel-split-invert",
        "bytelevel-added-flags", "bytelevel-digits-punct", "bytelevel-replace-regex",
        "mistral-metaspace-always", "mistral-metaspace-first", "mistral-metaspace-nosplit", "unigram-bytefallback",
        "bert-whitespace-nfkc", "bert-strip-accents-cased", "wordlevel-whitespacesplit", "bert-processing-pair-post",
        "bpe-suffix-prefix",
    ];

    private static JsonObject Variant(string name)
    {
        switch (name)
        {
            case "gpt2-bytelevel":
                return MiniByteLevelJson();
            case "bytelevel-no-prefix-no-regex":
            {
                var j = MiniByteLevelJson();
                j["pre_tokenizer"] = J("""{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":false,"use_regex":false}""");
                return j;
            }
            case "bytelevel-roberta-post":
            {
                var j = MiniByteLevelJson();
                ((JsonArray)j["added_tokens"]!).Add(Added("<s>", 3100, special: true, normalized: false));
                ((JsonArray)j["added_tokens"]!).Add(Added("</s>", 3101, special: true, normalized: false));
                j["post_processor"] = J("""{"type":"RobertaProcessing","sep":["</s>",3101],"cls":["<s>",3100],"trim_offsets":true,"add_prefix_space":true}""");
                return j;
            }
            case "bytelevel-template-post":
            {
                var j = MiniByteLevelJson();
                ((JsonArray)j["added_tokens"]!).Add(Added("<|begin_of_text|>", 3100, special: true, normalized: false));
                j["post_processor"] = J("""{"type":"Sequence","processors":[{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true},{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<|begin_of_text|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"pair":[{"SpecialToken":{"id":"<|begin_of_text|>","type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"<|begin_of_text|>","type_id":1}},{"Sequence":{"id":"B","type_id":1}}],"special_tokens":{"<|begin_of_text|>":{"id":"<|begin_of_text|>","ids":[3100],"tokens":["<|begin_of_text|>"]}}}]}""");
                return j;
            }
            case "bytelevel-nfkc-lowercase":
            {
                var j = MiniByteLevelJson();
                j["normalizer"] = J("""{"type":"Sequence","normalizers":[{"type":"NFKC"},{"type":"Lowercase"},{"type":"Strip","strip_left":true,"strip_right":true}]}""");
                return j;
            }
            case "bytelevel-nfd-stripaccents":
            {
                var j = MiniByteLevelJson();
                j["normalizer"] = J("""{"type":"Sequence","normalizers":[{"type":"NFD"},{"type":"StripAccents"},{"type":"NFC"},{"type":"Prepend","prepend":"> "}]}""");
                return j;
            }
            case "bytelevel-split-behaviors":
            {
                var j = MiniByteLevelJson();
                j["pre_tokenizer"] = J("""{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"String":","},"behavior":"MergedWithPrevious","invert":false},{"type":"Split","pattern":{"Regex":"\\s+"},"behavior":"MergedWithNext","invert":false},{"type":"Split","pattern":{"Regex":"[0-9]+"},"behavior":"Contiguous","invert":false},{"type":"Split","pattern":{"String":"e"},"behavior":"Removed","invert":false},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]}""");
                return j;
            }
            case "bytelevel-split-invert":
            {
                var j = MiniByteLevelJson();
                j["pre_tokenizer"] = J("""{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\p{L}+"},"behavior":"Removed","invert":true},{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":false}]}""");
                return j;
            }
            case "bytelevel-added-flags":
            {
                var j = MiniByteLevelJson();
                var a = (JsonArray)j["added_tokens"]!;
                a.Add(Added("<mask>", 3100, special: true, normalized: false, lstrip: true));
                a.Add(Added("[SEP]", 3101, special: true, normalized: false, rstrip: true));
                a.Add(Added("hello", 3102, special: false, normalized: true, singleWord: true));
                a.Add(Added("<s>", 3103, special: true, normalized: false, lstrip: true, rstrip: true));
                a.Add(Added("world", 3104, special: false, normalized: false));
                a.Add(Added("<|begin_of_text|>", 3105, special: true, normalized: false));
                a.Add(Added("<|begin", 3106, special: false, normalized: false));
                j["normalizer"] = J("""{"type":"Lowercase"}""");
                return j;
            }
            case "bytelevel-digits-punct":
            {
                var j = MiniByteLevelJson();
                j["pre_tokenizer"] = J("""{"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},{"type":"Digits","individual_digits":true},{"type":"Punctuation","behavior":"Isolated"},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]}""");
                return j;
            }
            case "bytelevel-replace-regex":
            {
                var j = MiniByteLevelJson();
                j["normalizer"] = J("""{"type":"Sequence","normalizers":[{"type":"Replace","pattern":{"Regex":"[0-9]+"},"content":"#"},{"type":"Replace","pattern":{"String":"  "},"content":" "}]}""");
                j["decoder"] = J("""{"type":"Sequence","decoders":[{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},{"type":"Replace","pattern":{"String":"#"},"content":"<num>"}]}""");
                return j;
            }
            case "mistral-metaspace-always" or "mistral-metaspace-first" or "mistral-metaspace-nosplit":
            {
                var j = (JsonObject)s_mistral.Value.DeepClone();
                string scheme = name.EndsWith("first", StringComparison.Ordinal) ? "first" : "always";
                string split = name.EndsWith("nosplit", StringComparison.Ordinal) ? "false" : "true";
                j["normalizer"] = null;
                j["pre_tokenizer"] = J($$"""{"type":"Metaspace","replacement":"▁","prepend_scheme":"{{scheme}}","split":{{split}},"add_prefix_space":true}""");
                j["decoder"] = J($$"""{"type":"Sequence","decoders":[{"type":"ByteFallback"},{"type":"Metaspace","replacement":"▁","prepend_scheme":"{{scheme}}","split":{{split}},"add_prefix_space":true}]}""");
                return j;
            }
            case "unigram-bytefallback":
            {
                var m = (JsonObject)s_mistral.Value["model"]!;
                var pieces = new JsonArray();
                var vocab = ((JsonObject)m["vocab"]!).OrderBy(p => (int)p.Value!).ToList();
                foreach (var (piece, id) in vocab)
                {
                    int i = (int)id!;
                    double score = i < 259 ? 0.0 : Math.Round(-Math.Log(i + 1) - 0.01 * piece.Length, 4);
                    pieces.Add(new JsonArray(piece, score));
                }
                var j = (JsonObject)s_mistral.Value.DeepClone();
                j["normalizer"] = null;
                j["pre_tokenizer"] = J("""{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true,"add_prefix_space":true}""");
                j["decoder"] = J("""{"type":"Sequence","decoders":[{"type":"ByteFallback"},{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true,"add_prefix_space":true}]}""");
                j["model"] = new JsonObject { ["type"] = "Unigram", ["unk_id"] = 0, ["vocab"] = pieces, ["byte_fallback"] = true };
                return j;
            }
            case "bert-whitespace-nfkc":
            {
                var j = (JsonObject)s_bert.Value.DeepClone();
                j["normalizer"] = J("""{"type":"Sequence","normalizers":[{"type":"NFKC"},{"type":"Lowercase"}]}""");
                j["pre_tokenizer"] = J("""{"type":"Whitespace"}""");
                return j;
            }
            case "bert-strip-accents-cased":
            {
                var j = (JsonObject)s_bert.Value.DeepClone();
                j["normalizer"] = J("""{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":false,"strip_accents":true,"lowercase":false}""");
                ((JsonObject)j["model"]!)["max_input_chars_per_word"] = 12;
                return j;
            }
            case "wordlevel-whitespacesplit":
            {
                var j = (JsonObject)s_bert.Value.DeepClone();
                var m = (JsonObject)j["model"]!;
                j["model"] = new JsonObject { ["type"] = "WordLevel", ["vocab"] = m["vocab"]!.DeepClone(), ["unk_token"] = "[UNK]" };
                j["pre_tokenizer"] = J("""{"type":"WhitespaceSplit"}""");
                j["normalizer"] = J("""{"type":"Lowercase"}""");
                j["decoder"] = null;
                return j;
            }
            case "bert-processing-pair-post":
            {
                var j = (JsonObject)s_bert.Value.DeepClone();
                j["post_processor"] = J("""{"type":"BertProcessing","sep":["[SEP]",102],"cls":["[CLS]",101]}""");
                j["decoder"] = J("""{"type":"WordPiece","prefix":"##","cleanup":false}""");
                return j;
            }
            case "bpe-suffix-prefix":
            {
                // A WordPiece-like BPE: continuing_subword_prefix "##" and end_of_word_suffix "</w>" with merges over them.
                var vocab = new JsonObject();
                int id = 0;
                foreach (var t in new[] { "[UNK]", "t", "h", "e", "##h", "##e", "##t", "e</w>", "##e</w>", "##t</w>", "th", "the</w>", "a", "##a", "##n", "##d</w>", "an", "and</w>" })
                    vocab[t] = id++;
                var j = MiniByteLevelJson();
                j["pre_tokenizer"] = J("""{"type":"Whitespace"}""");
                j["decoder"] = J("""{"type":"BPEDecoder","suffix":"</w>"}""");
                j["model"] = new JsonObject
                {
                    ["type"] = "BPE", ["unk_token"] = "[UNK]", ["continuing_subword_prefix"] = "##", ["end_of_word_suffix"] = "</w>",
                    ["fuse_unk"] = true, ["byte_fallback"] = false, ["vocab"] = vocab,
                    ["merges"] = new JsonArray("t ##h", "th ##e</w>", "a ##n", "an ##d</w>"),
                };
                return j;
            }
        }
        throw new ArgumentException(name);
    }

    private static IReadOnlyList<string> Texts()
    {
        var texts = new List<string>(HfTestSupport.EdgeCases());
        var brown = HfTestSupport.Brown();
        for (int i = 0; i < brown.Count; i += 20) texts.Add(brown[i]);
        texts.AddRange(["the and then", "hello world hello", "x <mask> y", "a [SEP]  b", " <s> ", "helloworld", "<|begin_of_text|>", "<|begin"]);
        return texts;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void ComponentMatchesHuggingFace(string variant)
    {
        var json = Variant(variant).ToJsonString();
        var (ours, hf) = HfTestSupport.FromJson(json);
        var failures = new List<string>();
        var texts = Texts();
        foreach (var text in texts)
        {
            var expected = hf.Encode(text).Select(x => (int)x).ToArray();
            var actual = ours.EncodeToIds(text);
            if (!expected.SequenceEqual(actual))
            {
                failures.Add($"encode {HfTestSupport.Show(text)}\n  hf:   {HfTestSupport.Show(expected)}\n  ours: {HfTestSupport.Show(actual)}");
                if (failures.Count > 6) break;
                continue;
            }
            var withOffsets = ours.Encode(text);
            if (!withOffsets.Ids.SequenceEqual(actual)) failures.Add($"Encode != EncodeToIds for {HfTestSupport.Show(text)}");
            string hd = hf.Decode(expected.Select(x => (uint)x).ToArray());
            string od = ours.Decode(actual);
            if (hd != od) failures.Add($"decode {HfTestSupport.Show(text)}\n  hf:   {HfTestSupport.Show(hd)}\n  ours: {HfTestSupport.Show(od)}");
            if (failures.Count > 6) break;
        }
        Assert.True(failures.Count == 0, $"{variant}: {failures.Count} mismatches of {texts.Count}:\n" + string.Join("\n", failures));
    }
}
