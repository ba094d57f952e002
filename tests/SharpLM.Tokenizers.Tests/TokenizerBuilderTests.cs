using SharpLM.Tokenizers.PreTokenizers;

namespace SharpLM.Tokenizers.Tests;

/// <summary>The public builder of the pipelines loaders compose without a tokenizer.json (GGUF llama/gpt2, tiktoken),
/// checked against HF on the same vocabularies: scores/ranks instead of merges must give the same ids.</summary>
public class TokenizerBuilderTests
{
    private static IReadOnlyList<string> Texts()
    {
        var t = new List<string>(HfTestSupport.EdgeCases());
        var brown = HfTestSupport.Brown();
        for (int i = 0; i < brown.Count; i += 10) t.Add(brown[i]);
        t.AddRange(HfTestSupport.MixedText().Take(40));
        return t;
    }

    private static void AssertSameIds(Tokenizer built, global::Tokenizers.DotNet.Tokenizer hf, string what)
    {
        var failures = new List<string>();
        foreach (var text in Texts())
        {
            var expected = hf.Encode(text).Select(x => (int)x).ToArray();
            var actual = built.EncodeToIds(text);
            if (!expected.SequenceEqual(actual))
                failures.Add($"{HfTestSupport.Show(text)}\n  hf:    {HfTestSupport.Show(expected)}\n  built: {HfTestSupport.Show(actual)}");
            else if (built.Decode(actual) != hf.Decode(expected.Select(x => (uint)x).ToArray()))
                failures.Add($"decode differs for {HfTestSupport.Show(text)}");
            if (failures.Count > 5) break;
        }
        Assert.True(failures.Count == 0, what + ":\n" + string.Join("\n", failures));
    }

    [Fact]
    public void SentencePieceBpeFromScoresMatchesMistralMerges()
    {
        var (json, hf) = HfTestSupport.Pair("mistral");
        int n = 32000;
        var tokens = Enumerable.Range(0, n).Select(i => json.IdToToken(i)!).ToArray();
        // Scores as a SentencePiece model would hold them: a token made by merge r scores -r (GGUF files carry the
        // model's real scores; the formats tests check those against llama.cpp).
        var scores = Enumerable.Repeat(float.MinValue / 2, n).ToArray();
        using (var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(HfTestSupport.PathOf("mistral"))))
        {
            int r = 0;
            foreach (var m in doc.RootElement.GetProperty("model").GetProperty("merges").EnumerateArray())
            {
                string s = m.GetString()!;
                int id = json.TokenToId(s.Replace(" ", "", StringComparison.Ordinal))!.Value;
                scores[id] = Math.Max(scores[id], -r);
                r++;
            }
        }
        var built = TokenizerBuilder.SentencePieceBpe(new SentencePieceBpeSpec
        {
            Tokens = tokens, Scores = scores, UnkId = 0, AddedTokens = json.AddedTokens, Special = new SpecialTokenIds(Bos: 1, AddBos: true),
        });
        AssertSameIds(built, hf, "SentencePiece BPE from scores");
    }

    [Fact]
    public void TiktokenStyleRanksMatchLlama3Merges()
    {
        var (json, hf) = HfTestSupport.Pair("llama3");
        int n = 128000;
        var tokens = Enumerable.Range(0, n).Select(i => json.IdToToken(i)!).ToArray();
        var scores = Enumerable.Range(0, n).Select(i => (float)-i).ToArray();
        var built = TokenizerBuilder.ByteLevelBpe(new ByteLevelBpeSpec
        {
            Tokens = tokens, Scores = scores, Split = SplitPatterns.Llama3, AddedTokens = json.AddedTokens,
        });
        AssertSameIds(built, hf, "byte-level BPE from ranks");
        Assert.Equal("Ġhi", TokenizerBuilder.ToByteLevel(" hi"u8));
    }
}
