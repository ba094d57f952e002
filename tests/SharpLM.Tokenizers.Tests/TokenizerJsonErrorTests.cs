using System.Text.Json.Nodes;

namespace SharpLM.Tokenizers.Tests;

/// <summary>Malformed tokenizer.json files fail with an InvalidDataException naming the JSON path, never a crash.</summary>
public class TokenizerJsonErrorTests
{
    private const string Valid = """
    {
      "version": "1.0",
      "added_tokens": [{"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
      "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Lowercase"}]},
      "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Digits", "individual_digits": true}]},
      "post_processor": null,
      "decoder": {"type": "Fuse"},
      "model": {"type": "BPE", "unk_token": "<unk>", "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3}, "merges": ["a b"]}
    }
    """;

    private static string Mutate(Action<JsonObject> change)
    {
        var j = (JsonObject)JsonNode.Parse(Valid)!;
        change(j);
        return j.ToJsonString();
    }

    [Fact]
    public void TheValidFileLoads()
    {
        var t = Tokenizer.FromJson(Valid);
        Assert.Equal([3, 1, 0], t.EncodeToIds("AB a x"));
    }

    public static TheoryData<string, string> Broken() => new()
    {
        { Valid[..(Valid.Length / 2)], "not valid JSON" },
        { Valid[..10], "not valid JSON" },
        { "", "not valid JSON" },
        { "[1, 2]", "(root): expected an object" },
        { Mutate(j => j.Remove("model")), "(root): missing field 'model'" },
        { Mutate(j => j["pre_tokenizer"]!["pretokenizers"]![1]!["type"] = "Foo"), "pre_tokenizer.pretokenizers[1].type: unknown type 'Foo'" },
        { Mutate(j => j["normalizer"]!["normalizers"]![0] = new JsonObject { ["type"] = "Bar" }), "normalizer.normalizers[0].type: unknown type 'Bar'" },
        { Mutate(j => j["decoder"]!["type"] = "Baz"), "decoder.type: unknown type 'Baz'" },
        { Mutate(j => j["post_processor"] = new JsonObject { ["type"] = "Qux" }), "post_processor.type: unknown type 'Qux'" },
        { Mutate(j => j["model"]!["type"] = "Quux"), "model.type: unknown type 'Quux'" },
        { Mutate(j => j["model"]!["merges"]![0] = 5), "model.merges[0]: expected an array, found a number" },
        { Mutate(j => j["model"]!["merges"]![0] = "ab"), "model.merges[0]: a merge must be two tokens" },
        { Mutate(j => j["model"]!["merges"]![0] = "a c"), "token 'c' is not in the vocabulary" },
        { Mutate(j => ((JsonObject)j["model"]!["vocab"]!).Remove("ab")), "model.merges[0]: merge 0 ('a b'): the merged token 'ab' is not in the vocabulary" },
        { Mutate(j => j["model"]!["vocab"]!["a"] = "one"), "model.vocab.a: expected an integer, found a string" },
        { Mutate(j => j["model"]!["vocab"]!["a"] = 2147483647), "model.vocab.a: token id 2147483647 is past the limit" },
        { Mutate(j => j["model"]!["vocab"]!["a"] = -2), "model.vocab.a: token id -2 is negative" },
        { Mutate(j => j["model"]!["vocab"] = new JsonArray()), "model.vocab: expected an object" },
        { Mutate(j => ((JsonObject)j["added_tokens"]![0]!).Remove("content")), "added_tokens[0]: missing field 'content'" },
        { Mutate(j => j["added_tokens"]![0]!["special"] = "yes"), "added_tokens[0].special: expected true or false" },
        { Mutate(j => j["pre_tokenizer"]!["pretokenizers"]![0] = new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = "(" }, ["behavior"] = "Isolated" }), "pre_tokenizer.pretokenizers[0].pattern.Regex: the regex '(' is not supported" },
        { Mutate(j => j["pre_tokenizer"]!["pretokenizers"]![0] = new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["String"] = "x" }, ["behavior"] = "Sideways" }), "pre_tokenizer.pretokenizers[0].behavior: unknown behavior 'Sideways'" },
        { Mutate(j => j["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "ab" }), "pre_tokenizer.replacement: expected a single char" },
        { Mutate(j => j["post_processor"] = JsonNode.Parse("""{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"[CLS]","type_id":0}}],"special_tokens":{}}""")), "post_processor.single[0].SpecialToken.id: the special token '[CLS]' is not in special_tokens" },
        { Mutate(j => j["padding"] = JsonNode.Parse("""{"strategy":{"Fixed":"x"}}""")), "padding.strategy.Fixed: expected an integer" },
        { Mutate(j => j["model"] = JsonNode.Parse("""{"type":"Unigram","unk_id":7,"vocab":[["a",-1.0]]}""")), "model.unk_id: unk_id 7 is outside the vocabulary" },
        { Mutate(j => j["model"] = JsonNode.Parse("""{"type":"Unigram","vocab":[["a"]]}""")), "model.vocab[0]: expected [piece, score]" },
    };

    [Theory]
    [MemberData(nameof(Broken))]
    public void BrokenFileThrowsWithItsJsonPath(string json, string expectedMessagePart)
    {
        var e = Assert.Throws<InvalidDataException>(() => Tokenizer.FromJson(json, "broken.json"));
        Assert.Contains(expectedMessagePart, e.Message, StringComparison.Ordinal);
        Assert.StartsWith("broken.json", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryTruncationOfAValidFileFailsCleanly()
    {
        for (int n = 0; n < Valid.Length - 1; n += 7)
        {
            string cut = Valid[..n];
            try
            {
                Tokenizer.FromJson(cut);
            }
            catch (InvalidDataException)
            {
                continue;
            }
            Assert.Fail($"a file cut at {n} chars loaded");
        }
    }
}
