using HfTokenizer = Tokenizers.DotNet.Tokenizer;

namespace SharpLM.Tokenizers.Tests;

/// <summary>Ids and decoded text identical to Hugging Face tokenizers on real vocabularies and varied text.</summary>
public class HfParityTests
{
    public static TheoryData<string, string> Cases()
    {
        var d = new TheoryData<string, string>();
        foreach (var tok in new[] { "llama3", "qwen3", "mistral", "minilm" })
            foreach (var corpus in new[] { "edge", "brown", "note" })
                d.Add(tok, corpus);
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void IdsAndDecodeMatchHuggingFace(string tokenizer, string corpus)
    {
        var (ours, hf) = HfTestSupport.Pair(tokenizer);
        var texts = HfTestSupport.Corpus(corpus);
        var failures = new List<string>();
        int roundTrips = 0;
        foreach (var text in texts)
        {
            var expected = hf.Encode(text).Select(x => (int)x).ToArray();
            var actual = ours.EncodeToIds(text);
            if (!expected.SequenceEqual(actual))
            {
                failures.Add($"encode {HfTestSupport.Show(text)}\n  hf:   {HfTestSupport.Show(expected)}\n  ours: {HfTestSupport.Show(actual)}");
                continue;
            }
            var full = ours.Encode(text);
            if (!full.Ids.SequenceEqual(actual)) failures.Add($"Encode vs EncodeToIds differ for {HfTestSupport.Show(text)}");
            string hfDecoded = hf.Decode(expected.Select(x => (uint)x).ToArray());
            string ourDecoded = ours.Decode(actual);
            if (hfDecoded != ourDecoded)
                failures.Add($"decode {HfTestSupport.Show(text)}\n  hf:   {HfTestSupport.Show(hfDecoded)}\n  ours: {HfTestSupport.Show(ourDecoded)}");
            if (hfDecoded == text) roundTrips++;
            if (failures.Count > 8) break;
        }
        Assert.True(failures.Count == 0, $"{tokenizer}/{corpus}: {failures.Count} mismatches of {texts.Count} texts:\n" + string.Join("\n", failures));
        // Byte-level vocabularies round-trip everything; this guards against a vacuous comparison.
        if (tokenizer is "llama3" or "qwen3") Assert.True(roundTrips >= texts.Count * 9 / 10, $"only {roundTrips}/{texts.Count} round-trips");
    }

    /// <summary>BERT's ids-only fast path is taken on ASCII text (with added tokens, mixed case, punctuation, tabs and
    /// newlines) and gives HF's ids; other text is declined and goes down the general pipeline.</summary>
    [Fact]
    public void WordPieceFastPathIsTakenOnAsciiAndMatchesHuggingFace()
    {
        var (ours, hf) = HfTestSupport.Pair("minilm");
        var fast = PreTokenizers.FastPaths.TryCreate(ours.Normalizer, ours.PreTokenizer, ours.Model, ours.AddedTokens);
        Assert.IsType<PreTokenizers.FastWordPiece>(fast);
        string[] texts =
        [
            "Hello, World! It's [MASK] time:\tdon't   stop\r\nnow.",
            "THE jury said [SEP][CLS] (quietly) -- 3.14159 + x_y = z? {a} <b> ~`|\\ @#$%^&*",
            "supercalifragilisticexpialidocious antidisestablishmentarianism " + new string('a', 120),
            string.Join(' ', HfTestSupport.Corpus("brown").Take(50)),
        ];
        foreach (var text in texts)
        {
            Assert.True(fast!.TryEncodeIds(text, out var ids), text);
            var expected = hf.Encode(text).Select(x => (int)x).ToArray();
            Assert.Equal(expected, ours.EncodeToIds(text));
            Assert.Equal(expected[1..^1], ids); // the fast path has no [CLS] ... [SEP]; the post-processor adds them
        }
        Assert.False(fast!.TryEncodeIds("café naïve 中文", out _));
    }
}
