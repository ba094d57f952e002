using SharpLM.Testing;
using SharpLM.Tokenizers.PreTokenizers;

namespace SharpLM.Tokenizers.Tests;

/// <summary>
/// The ids-only fast path (EncodeToIds on byte-level BPE tokenizer.json files) against HF tokenizers (Rust) and
/// against SharpLM's general pipeline (Encode), on Brown, a mixed Chinese/English text and edge cases.
/// </summary>
public class FastByteLevelTests
{
    public static TheoryData<string> Files => new() { "tokenizer-llama3", "tokenizer-qwen3" };

    private static string Json(string name) => TestPaths.Asset("npm", name, "models", "tokenizer.json");

    [Theory]
    [MemberData(nameof(Files))]
    public void TheFastPathIsUsedAndGivesHfIds(string name)
    {
        var sharp = Tokenizer.FromFile(Json(name));
        Assert.NotNull(FastByteLevel.TryCreate(sharp.Normalizer, sharp.PreTokenizer, sharp.Model, sharp.AddedTokens));
        using var hf = new global::Tokenizers.DotNet.Tokenizer(Json(name));
        var brown = File.ReadAllLines(TestPaths.Asset("brown.txt"));
        var note = File.ReadAllText(TestPaths.MixedText);
        var texts = brown.Take(300).Append(string.Join("\n", brown.Skip(5000).Take(200))).Append(note)
            .Concat(note.Split('\n')).Concat(TrainerTests.EdgeCases)
            .Append("<|begin_of_text|>Hi<|end_of_text|><|im_start|>user\nhello<|im_end|>\n<|endoftext|>")
            .Append("x🎉a \U0001D400\U0001D400b");
        int n = 0;
        foreach (var t in texts)
        {
            var expected = hf.Encode(t).Select(u => (int)u).ToArray();
            var fast = sharp.EncodeToIds(t, false);
            var general = sharp.Encode(t, false).ToIdArray();
            Assert.True(expected.SequenceEqual(fast), $"{name} text #{n} '{(t.Length > 60 ? t[..60] : t)}': HF [{string.Join(' ', expected.Take(30))}] vs fast [{string.Join(' ', fast.Take(30))}]");
            Assert.True(general.SequenceEqual(fast), $"{name} text #{n}: general pipeline differs from the fast path");
            n++;
        }
    }

    [Fact]
    public void TextNotInTheNormalizersFormTakesTheGeneralPipeline()
    {
        // Qwen's NFC normalizer: decomposed text must not take the fast path.
        var qwen = Tokenizer.FromFile(Json("tokenizer-qwen3"));
        using var hf = new global::Tokenizers.DotNet.Tokenizer(Json("tokenizer-qwen3"));
        foreach (var text in new[] { "Cafe\u0301 vs Café", "한국어 \u1100\u1161\u11A8", "Å Å" })
        {
            Assert.Equal(hf.Encode(text).Select(u => (int)u).ToArray(), qwen.EncodeToIds(text, false));
            Assert.Equal(qwen.Encode(text, false).ToIdArray(), qwen.EncodeToIds(text, false));
        }
    }

    [Fact]
    public void SentencePieceBpeFastPathGivesHfIds()
    {
        var mistral = Tokenizer.FromFile(Json("tokenizer-llama2"));
        Assert.IsType<FastSentencePiece>(FastPaths.TryCreate(mistral.Normalizer, mistral.PreTokenizer, mistral.Model, mistral.AddedTokens));
        using var hf = new global::Tokenizers.DotNet.Tokenizer(Json("tokenizer-llama2"));
        var brown = File.ReadAllLines(TestPaths.Asset("brown.txt"));
        var note = File.ReadAllText(TestPaths.MixedText);
        var texts = brown.Skip(100).Take(150).Append(note).Concat(note.Split('\n').Take(100)).Concat(TrainerTests.EdgeCases)
            .Append("  two  spaces   three    four\t\ttabs  ").Append("x<s>y</s> <unk> z").Append("🎉 \U0001D400 ÿ");
        int n = 0;
        foreach (var t in texts)
        {
            var withBos = hf.Encode(t).Select(u => (int)u).ToArray();
            Assert.Equal(1, withBos[0]); // the template's <s>
            var expected = withBos[1..];
            var fast = mistral.EncodeToIds(t, false);
            Assert.True(expected.SequenceEqual(fast), $"text #{n} '{(t.Length > 60 ? t[..60] : t)}': HF [{string.Join(' ', expected.Take(30))}] vs fast [{string.Join(' ', fast.Take(30))}]");
            Assert.True(mistral.Encode(t, false).ToIdArray().SequenceEqual(fast), $"text #{n}: general pipeline differs from the fast path");
            n++;
        }
    }

    [Fact]
    public void OtherPipelinesDoNotTakeTheFastPath()
    {
        const string json = """{"version":"1.0","added_tokens":[],"normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,"model":{"type":"WordLevel","vocab":{"a":0,"b":1,"[UNK]":2},"unk_token":"[UNK]"}}""";
        var t = Tokenizer.FromJson(json);
        Assert.Null(FastPaths.TryCreate(t.Normalizer, t.PreTokenizer, t.Model, t.AddedTokens));
        Assert.Equal([0, 1, 2], t.EncodeToIds("a b c"));
    }
}
