using System.Text;

namespace SharpLM.Tokenizers.Tests;

/// <summary>Seeded random strings built from tricky pieces (whitespace kinds, CRLF, digits, contractions, CJK, emoji
/// with ZWJ, combining marks, astral letters, special-token strings) must give HF's ids and decoded text.</summary>
public class HfFuzzParityTests
{
    private static readonly string[] Pieces =
    [
        " ", "  ", "\t", "\n", "\r\n", "\r", "\u00A0", "\u3000", "a", "Z", "hello", "World", "'s", "'LL", "'t", "don't",
        "1", "42", "12345", "3.14", ",", ".", "!", "?", "...", "-", "_", "(", ")", "\"", "'", "#", "$", "@", "/",
        "中", "文字", "日本語", "한국", "é", "e\u0301", "\u0301", "ß", "İ", "Σ", "ﬁ", "①", "Ⅻ", "😀", "👍🏽", "👨‍👩‍👧",
        "🇫🇷", "𝐀", "𠀀", "\u200B", "\u00AD", "▁", "Ġ", "<s>", "</s>", "<unk>", "[CLS]", "[SEP]", "[MASK]",
        "<|begin_of_text|>", "<|endoftext|>", "<|im_start|>", "<think>", "\u0000", "\uFFFD", "\u0085",
    ];

    public static TheoryData<string> Names() => new() { "llama3", "qwen3", "mistral", "minilm" };

    [Theory]
    [MemberData(nameof(Names))]
    public void RandomStringsMatchHuggingFace(string name)
    {
        var (ours, hf) = HfTestSupport.Pair(name);
        var rng = new Random(1234);
        var failures = new List<string>();
        int n = HfTestSupport.LongTests ? 5000 : 400;
        for (int k = 0; k < n && failures.Count < 6; k++)
        {
            var sb = new StringBuilder();
            int parts = rng.Next(1, 12);
            for (int p = 0; p < parts; p++) sb.Append(Pieces[rng.Next(Pieces.Length)]);
            string text = sb.ToString();
            var expected = hf.Encode(text).Select(x => (int)x).ToArray();
            var actual = ours.EncodeToIds(text);
            if (!expected.SequenceEqual(actual))
            {
                failures.Add($"encode {HfTestSupport.Show(text)}\n  hf:   {HfTestSupport.Show(expected)}\n  ours: {HfTestSupport.Show(actual)}");
                continue;
            }
            if (!ours.Encode(text).Ids.SequenceEqual(actual)) failures.Add($"Encode != EncodeToIds for {HfTestSupport.Show(text)}");
            string hd = hf.Decode(expected.Select(x => (uint)x).ToArray()), od = ours.Decode(actual);
            if (hd != od) failures.Add($"decode {HfTestSupport.Show(text)}\n  hf:   {HfTestSupport.Show(hd)}\n  ours: {HfTestSupport.Show(od)}");
        }
        Assert.True(failures.Count == 0, $"{name}:\n" + string.Join("\n", failures));
    }
}

/// <summary>Decoding arbitrary id sequences (partial UTF-8 byte tokens, byte-fallback runs, special tokens, word
/// pieces in odd places) gives HF's text, U+FFFD placement included.</summary>
public class HfDecodeFuzzTests
{
    [Theory]
    [MemberData(nameof(HfFuzzParityTests.Names), MemberType = typeof(HfFuzzParityTests))]
    public void RandomIdSequencesDecodeLikeHuggingFace(string name)
    {
        var (ours, hf) = HfTestSupport.Pair(name);
        var rng = new Random(99);
        int vocab = ours.VocabSize;
        var failures = new List<string>();
        for (int k = 0; k < 500 && failures.Count < 6; k++)
        {
            int len = rng.Next(0, 16);
            var ids = new int[len];
            for (int i = 0; i < len; i++)
            {
                // Mix low ids (bytes, byte-fallback tokens, specials) with the whole range.
                ids[i] = rng.Next(4) == 0 ? rng.Next(Math.Min(300, vocab)) : rng.Next(vocab);
            }
            string hd = hf.Decode(ids.Select(x => (uint)x).ToArray());
            string od = ours.Decode(ids);
            if (hd != od) failures.Add($"{HfTestSupport.Show(ids)}\n  hf:   {HfTestSupport.Show(hd)}\n  ours: {HfTestSupport.Show(od)}");
        }
        Assert.True(failures.Count == 0, $"{name}:\n" + string.Join("\n", failures));
    }
}

/// <summary>Very long runs (one huge pre-token: the heap merge path, buffers past the stack size) match HF.</summary>
public class HfLongInputTests
{
    [Theory]
    [MemberData(nameof(HfFuzzParityTests.Names), MemberType = typeof(HfFuzzParityTests))]
    public void LongRunsMatchHuggingFace(string name)
    {
        var (ours, hf) = HfTestSupport.Pair(name);
        string[] texts =
        [
            new string('a', 20_000), string.Concat(Enumerable.Repeat("中文", 5_000)), new string(' ', 20_000),
            string.Concat(Enumerable.Repeat("😀", 5_000)), new string('\n', 10_000), new string('7', 20_000),
            string.Concat(Enumerable.Repeat("ab ", 7_000)), "x" + new string('\t', 5_000) + "y",
        ];
        foreach (var text in texts)
        {
            var expected = hf.Encode(text).Select(x => (int)x).ToArray();
            Assert.True(expected.SequenceEqual(ours.EncodeToIds(text)), $"{name}: ids differ for {HfTestSupport.Show(text)}");
            Assert.True(expected.SequenceEqual(ours.Encode(text).Ids), $"{name}: Encode differs for {HfTestSupport.Show(text)}");
        }
    }
}
