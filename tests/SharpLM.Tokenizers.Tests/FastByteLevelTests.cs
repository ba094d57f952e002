using SharpLM.Testing;
using SharpLM.Tokenizers.PreTokenizers;

namespace SharpLM.Tokenizers.Tests;

/// <summary>
/// The ids-only fast path (EncodeToIds on byte-level BPE tokenizer.json files) against HF tokenizers (Rust) and
/// against SharpLM's general pipeline (Encode), on Brown, the study note and edge cases.
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
        var note = File.ReadAllText(TestPaths.StudyNote);
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
        // Qwen's NFC normalizer: decomposed text must not take the fast path. (Its ids are not compared with HF
        // here: with InvariantGlobalization=true, as this repository builds, .NET's string.Normalize is a no-op for
        // non-ASCII text, so the NFC normalizer itself cannot match HF on such input; that belongs to tok-core.)
        var qwen = Tokenizer.FromFile(Json("tokenizer-qwen3"));
        const string text = "Cafe\u0301 vs Café";
        Assert.Equal(qwen.Encode(text, false).ToIdArray(), qwen.EncodeToIds(text, false));
    }

    [Fact]
    public void OtherPipelinesDoNotTakeTheFastPath()
    {
        var mistral = Tokenizer.FromFile(Json("tokenizer-llama2"));
        Assert.Null(FastByteLevel.TryCreate(mistral.Normalizer, mistral.PreTokenizer, mistral.Model, mistral.AddedTokens));
    }
}
