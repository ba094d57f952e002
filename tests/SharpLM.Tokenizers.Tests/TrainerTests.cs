using SharpLM.Testing;
using SharpLM.Tokenizers.Training;

namespace SharpLM.Tokenizers.Tests;

/// <summary>
/// The byte-level BPE trainer, checked against Hugging Face tokenizers (Rust, via Tokenizers.DotNet): the saved
/// tokenizer.json must load in HF and give the same ids as SharpLM on held-out Brown lines and edge cases.
/// </summary>
public class TrainerTests
{
    private static readonly Lazy<string[]> BrownLines = new(() => File.ReadAllLines(TestPaths.Asset("brown.txt")));

    /// <summary>Training lines: the first ~300 KB of Brown. Held-out lines: from the end of the file.</summary>
    internal static IEnumerable<string> TrainingSlice(int chars = 300_000)
    {
        long n = 0;
        foreach (var l in BrownLines.Value)
        {
            if (n > chars) yield break;
            n += l.Length + 1;
            yield return l + "\n";
        }
    }

    internal static IEnumerable<string> HeldOut(int count) => BrownLines.Value.Reverse().Where(l => l.Length > 0).Take(count);

    internal static readonly string[] EdgeCases =
    [
        "", " ", "  ", "\n", "\n\n\n", " \n \n", "\t\tx", "a  b   c    d", "Hello world", " Hello", "hello\r\nworld\r\n",
        "I'm, you're, he'll, we've, they'd, it's, DON'T, YOU'RE", "'s's", "1234567890 12 123 1234", "3.14159e-10",
        "naïve café résumé Ελληνικά Русский", "中文字符测试，标点。", "日本語のテキスト", "한국어 텍스트", "emoji 🎉🚀 👨‍👩‍👧 ok",
        "def f(x):\n    return x ** 2  # square\n", "    indented\n\tTab", "a\u00A0b\u2003c", "<s> hello </s>", "x<s>y</s>z",
        "\u0000\u0001\u001f", "ÿþ", "😀😀😀😀", "A" + new string('b', 300),
    ];

    private static readonly Lazy<(BpeTrainerResult Result, string Path)> Trained = new(() =>
    {
        var r = BpeTrainer.Train(TrainingSlice(), new BpeTrainerOptions
        {
            VocabSize = 800,
            SpecialTokens = ["<s>", "</s>"],
            Split = TrainerSplit.Llama3,
        });
        var path = Path.Combine(TestPaths.NewTempDir("trainer"), "tokenizer.json");
        r.Save(path);
        return (r, path);
    });

    [Fact]
    public void TrainsToTheRequestedSizeWithSpecialsFirstAndBytesNext()
    {
        var r = Trained.Value.Result;
        Assert.Equal(800, r.VocabSize);
        Assert.Equal(800 - 2 - 256, r.Merges.Count);
        Assert.Equal("<s>", r.Tokens[0]);
        Assert.Equal("</s>", r.Tokens[1]);
        Assert.Equal("Ġ", r.Tokens[2 + ' ']);
        Assert.Equal("A", r.Tokens[2 + 'A']);
        // Every merge's result is a later token and both parts exist earlier.
        var index = r.Tokens.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i);
        for (int m = 0; m < r.Merges.Count; m++)
        {
            var (a, b) = r.Merges[m];
            Assert.True(index[a] < 258 + m + 1 && index[b] < 258 + m + 1, $"merge {m} ({a} {b}) uses a later token");
            Assert.True(index.ContainsKey(a + b), $"merge {m} result {a + b} missing");
        }
        // The most frequent pair in English text with a space prefix comes first.
        Assert.Contains(r.Merges.Take(5), m => m.Left == "Ġ" && m.Right == "t" || m.Left == "h" && m.Right == "e" || m.Left == "Ġ" && m.Right == "a");
    }

    [Fact]
    public void TrainingIsDeterministic()
    {
        var opts = new BpeTrainerOptions { VocabSize = 400, Split = TrainerSplit.Gpt2 };
        var a = BpeTrainer.Train(TrainingSlice(60_000), opts);
        var b = BpeTrainer.Train(TrainingSlice(60_000).ToArray(), opts);
        Assert.Equal(a.ToTokenizerJson(), b.ToTokenizerJson());
    }

    [Fact]
    public void HuggingFaceLoadsTheSavedJsonAndRoundTrips()
    {
        using var hf = new global::Tokenizers.DotNet.Tokenizer(Trained.Value.Path);
        foreach (var line in HeldOut(50).Concat(EdgeCases.Where(e => e.Length > 0 && !e.Contains('\0'))))
        {
            var ids = hf.Encode(line);
            // HF's Decode skips special tokens.
            Assert.Equal(line.Replace("</s>", "", StringComparison.Ordinal).Replace("<s>", "", StringComparison.Ordinal), hf.Decode(ids));
        }
    }

    private static void AssertSameIdsAsHf(string path, IEnumerable<string> texts)
    {
        using var hf = new global::Tokenizers.DotNet.Tokenizer(path);
        var sharp = Tokenizer.FromFile(path);
        int n = 0;
        foreach (var text in texts)
        {
            var expected = hf.Encode(text).Select(u => (int)u).ToArray();
            var actual = sharp.Encode(text).ToIdArray();
            Assert.True(expected.SequenceEqual(actual),
                $"text #{n} '{text}': HF [{string.Join(' ', expected)}] vs SharpLM [{string.Join(' ', actual)}]");
            n++;
        }
    }

    [Fact]
    public void SameIdsInHuggingFaceAndSharpLmOnHeldOutLinesAndEdgeCases() =>
        AssertSameIdsAsHf(Trained.Value.Path, HeldOut(200).Concat(EdgeCases));

    [Fact]
    public void Gpt2SplitWithBosTemplateGivesTheSameIdsInBoth()
    {
        var r = BpeTrainer.Train(TrainingSlice(150_000), new BpeTrainerOptions
        {
            VocabSize = 600,
            SpecialTokens = ["<|endoftext|>", "<|begin|>"],
            BosToken = "<|begin|>",
            Split = TrainerSplit.Gpt2,
        });
        var path = Path.Combine(TestPaths.NewTempDir(), "tokenizer.json");
        r.Save(path);
        AssertSameIdsAsHf(path, HeldOut(100).Concat(EdgeCases).Append("a<|endoftext|>b"));
        Assert.Equal(1, Tokenizer.FromFile(path).Encode("hello").Ids[0]);
    }

    /// <summary>Long form (SHARPLM_LONG_TESTS=1): all of Brown but the held-out tail, 8,000 tokens.</summary>
    [LongFact]
    public void LongRunOnAllOfBrownGivesTheSameIdsInBoth()
    {
        var lines = BrownLines.Value;
        var r = BpeTrainer.Train(lines.Take(lines.Length - 500).Select(l => l + "\n"), new BpeTrainerOptions
        {
            VocabSize = 8000,
            SpecialTokens = ["<s>", "</s>"],
            BosToken = "<s>",
            Split = TrainerSplit.Llama3,
        });
        Assert.Equal(8000, r.VocabSize);
        var path = Path.Combine(TestPaths.NewTempDir(), "tokenizer.json");
        r.Save(path);
        AssertSameIdsAsHf(path, HeldOut(500).Concat(EdgeCases));
    }

    [Fact]
    public void RejectsBadOptions()
    {
        Assert.Throws<ArgumentException>(() => BpeTrainer.Train(["abc"], new BpeTrainerOptions { VocabSize = 100 }));
        Assert.Throws<ArgumentException>(() => BpeTrainer.Train(["abc"], new BpeTrainerOptions { VocabSize = 300, SpecialTokens = ["<s>", "<s>"] }));
        Assert.Throws<ArgumentException>(() => BpeTrainer.Train(["abc"], new BpeTrainerOptions { VocabSize = 300, BosToken = "<s>" }));
    }

    [Fact]
    public void ReportsProgressAndStopsWhenPairsRunOut()
    {
        var seen = new List<BpeTrainerProgress>();
        var r = BpeTrainer.Train(["abab abab"], new BpeTrainerOptions { VocabSize = 1000, MinFrequency = 1 }, new SyncProgress(seen.Add));
        Assert.True(r.VocabSize < 1000);
        Assert.Contains(seen, p => p.Stage == "merge");
        Assert.Contains("abab", r.Tokens);
        Assert.Contains("Ġabab", r.Tokens);
    }

    private sealed class SyncProgress(Action<BpeTrainerProgress> a) : IProgress<BpeTrainerProgress>
    {
        public void Report(BpeTrainerProgress value) => a(value);
    }
}
