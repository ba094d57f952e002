using SharpLM.Testing;
using SharpLM.Tokenizers.Tiktoken;

namespace SharpLM.Tokenizers.Tests;

/// <summary>
/// .tiktoken rank files (gpt2/r50k, cl100k_base, o200k_base) loaded by SharpLM against Microsoft.ML.Tokenizers with
/// the same files: ids exactly equal on held-out Brown lines, a mixed Chinese/English text and edge cases.
/// </summary>
public class TiktokenTests
{
    public static TheoryData<string> Encodings => new() { "gpt2", "cl100k_base", "o200k_base" };

    private static readonly Dictionary<string, Tokenizer> Loaded = new(StringComparer.Ordinal);

    private static Tokenizer Sharp(string encoding)
    {
        lock (Loaded)
        {
            if (!Loaded.TryGetValue(encoding, out var t)) Loaded[encoding] = t = Tokenizer.FromFile(TiktokenOracle.RankFile(encoding));
            return t;
        }
    }

    private static void AssertSameIds(string encoding, IEnumerable<string> texts)
    {
        var sharp = Sharp(encoding);
        var ml = TiktokenOracle.Oracle(encoding);
        int n = 0;
        foreach (var text in texts)
        {
            var expected = ml.EncodeToIds(text).ToArray();
            var actual = sharp.Encode(text, false).ToIdArray();
            var fast = sharp.EncodeToIds(text, false);
            Assert.True(actual.SequenceEqual(fast), $"{encoding}: EncodeToIds (fast path) differs from Encode on '{Clip(text)}'");
            if (!expected.SequenceEqual(actual))
            {
                int at = 0;
                while (at < Math.Min(expected.Length, actual.Length) && expected[at] == actual[at]) at++;
                Assert.Fail($"{encoding}: text #{n} '{Clip(text)}' differs at token {at}: ML.Tokenizers [{string.Join(' ', expected.Skip(at).Take(8))}] vs SharpLM [{string.Join(' ', actual.Skip(at).Take(8))}] ({expected.Length} vs {actual.Length} tokens)");
            }
            n++;
        }
        Assert.True(n > 0);
    }

    private static string Clip(string s) => s.Length <= 80 ? s : s[..80] + "...";

    [Theory]
    [MemberData(nameof(Encodings))]
    public void SameIdsAsMicrosoftMlOnHeldOutBrownLines(string encoding) =>
        AssertSameIds(encoding, TrainerTests.HeldOut(400));

    [Theory]
    [MemberData(nameof(Encodings))]
    public void SameIdsAsMicrosoftMlOnMixedText(string encoding)
    {
        var note = File.ReadAllText(TestPaths.MixedText);
        AssertSameIds(encoding, note.Split('\n').Where(l => l.Length > 0).Prepend(note));
    }

    /// <summary>Edge cases: emoji, CJK, whitespace runs, digits, code, contractions, special-token text.
    /// Letters right after an astral "other" character ("🎉a") are left out: .NET's Regex (which ML.Tokenizers
    /// uses) sees two surrogates there where tiktoken sees one code point; SharpLM follows tiktoken.</summary>
    [Theory]
    [MemberData(nameof(Encodings))]
    public void SameIdsAsMicrosoftMlOnEdgeCases(string encoding)
    {
        string[] more =
        [
            "    def f(x):\n        return {'a': [1, 2, 3]}\n\n\n", "x = 1234567 + 89.5e-3 // 0x1F", "\t\t\n \n  \r\n",
            "WE'RE HE'LL I'M You'Ve", "don't stop 'til it's done", "https://example.com/a/b?c=d&e=f", "a/b/c\n/d",
            "🎉🚀👨‍👩‍👧 done 😀", "Ünïcödé ñ ç ß Æ œ", "ひらがな カタカナ 漢字", "١٢٣ ٤٥٦", "ⅫⅣ ½ ²³", "ǅungla ǈ",
            new string(' ', 40) + "x", new string('\n', 30), new string('9', 50), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ];
        AssertSameIds(encoding, TrainerTests.EdgeCases.Concat(more).Where(t => t.Length > 0));
    }

    [Fact]
    public void PicksTheEncodingByFileName()
    {
        Assert.Same(TiktokenEncoding.Cl100kBase, TiktokenEncoding.FromFileName("/x/cl100k_base.tiktoken"));
        Assert.Same(TiktokenEncoding.O200kBase, TiktokenEncoding.FromFileName("o200k_base.tiktoken"));
        Assert.Same(TiktokenEncoding.R50kBase, TiktokenEncoding.FromFileName("gpt2.tiktoken"));
        Assert.Null(TiktokenEncoding.FromFileName("mystery.tiktoken"));
        Assert.Equal(100257, Sharp("cl100k_base").TokenToId("<|endoftext|>"));
        Assert.Equal(199999, Sharp("o200k_base").TokenToId("<|endoftext|>"));
        Assert.Equal(50256, Sharp("gpt2").TokenToId("<|endoftext|>"));
    }

    [Fact]
    public void SpecialTokensInTextAndDecodeRoundTrip()
    {
        var t = Sharp("cl100k_base");
        var ml = TiktokenOracle.Oracle("cl100k_base");
        const string text = "hello<|endoftext|> world";
        Assert.Equal(ml.EncodeToIds(text).ToArray(), t.Encode(text, false).ToIdArray());
        Assert.Contains(100257, t.Encode(text, false).Ids);
        foreach (var s in TrainerTests.EdgeCases.Where(e => e.Length > 0))
            Assert.Equal(s, t.Decode(t.Encode(s, false).Ids, false));
    }

    [Fact]
    public void AnUnknownFileNameNeedsAnExplicitEncoding()
    {
        var dir = TestPaths.NewTempDir();
        var copy = Path.Combine(dir, "mystery.tiktoken");
        File.Copy(TiktokenOracle.RankFile("cl100k_base"), copy);
        var ex = Assert.Throws<NotSupportedException>(() => Tokenizer.FromFile(copy));
        Assert.Contains("mystery.tiktoken", ex.Message, StringComparison.Ordinal);
        var t = TiktokenLoader.Load(copy, TiktokenEncoding.Cl100kBase);
        Assert.Equal(Sharp("cl100k_base").Encode("Hello world", false).ToIdArray(), t.Encode("Hello world", false).ToIdArray());
    }

    [Fact]
    public void MalformedRankFilesAreClearErrors()
    {
        var dir = TestPaths.NewTempDir();
        var bad = Path.Combine(dir, "cl100k_base.tiktoken");
        File.WriteAllText(bad, "IQ== 0\nnot-base64!! 1\n");
        var ex = Assert.ThrowsAny<InvalidDataException>(() => Tokenizer.FromFile(bad));
        Assert.Contains("line 2", ex.Message, StringComparison.Ordinal);
        File.WriteAllText(bad, "IQ== zero\n");
        ex = Assert.ThrowsAny<InvalidDataException>(() => Tokenizer.FromFile(bad));
        Assert.Contains("line 1", ex.Message, StringComparison.Ordinal);
    }
}
