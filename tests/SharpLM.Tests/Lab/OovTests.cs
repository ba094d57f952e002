using SharpLM.Lab;
using SharpLM.Lab.Experiments;
using SharpLM.Testing;
using SharpLM.Tests.Bert;
using SharpLM.Tokenizers;

namespace SharpLM.Tests.Lab;

/// <summary>oov: the [UNK] counts of the WordPiece column are Hugging Face tokenizers' own on the same texts, and the
/// byte-level and byte-fallback tokenizers never produce an unknown token and give every line back.</summary>
public class OovTests
{
    internal static LabOptions Options => new()
    {
        Quick = true, Threads = SharpLM.Kernels.WorkerPool.Shared.Threads, AssetsDir = TestPaths.Assets,
        MiniLm = () => Path.GetDirectoryName(MiniLm.VocabPath),
    };

    private static readonly Lazy<LabReport> Quick = new(() => LabRegistry.Run(new Oov(), Options));

    private static System.Text.Json.Nodes.JsonObject Row(string tokenizer, string text) =>
        Quick.Value.Data["results"]!.AsArray().Select(n => n!.AsObject()).Single(o => (string)o["tokenizer"]! == tokenizer && (string)o["text"]! == text);

    [Fact]
    public void WordPiece_unknown_tokens_are_those_of_hugging_face_tokenizers_on_the_same_text()
    {
        int unkId = Tokenizer.FromVocabTxt(MiniLm.VocabPath).UnkId!.Value;
        int texts = 0, withUnk = 0;
        foreach (var s in Oov.Written.Where(s => s.Lines.Length > 0))
        {
            var row = Row("MiniLM WordPiece", s.Name);
            int hfUnk = s.Lines.Sum(l => MiniLm.HfIds(l).Count(id => id == unkId));
            int hfTokens = s.Lines.Sum(l => MiniLm.HfIds(l).Length - 2);   // without [CLS] and [SEP]
            Assert.Equal(hfUnk, (int)row["unk_tokens"]!);
            Assert.Equal(hfTokens, (int)row["tokens"]!);
            Assert.Equal(hfUnk / (double)hfTokens, (double)row["unk_share"]!, 12);
            texts++;
            if (hfUnk > 0) withUnk++;
        }
        Assert.True(texts >= 8);
        Assert.InRange(withUnk, 1, texts - 1);   // some texts are out of the vocabulary, not all
    }

    [Fact]
    public void Byte_level_and_byte_fallback_tokenizers_have_no_unknown_token_and_give_every_line_back()
    {
        var rows = Quick.Value.Data["results"]!.AsArray().Select(n => n!.AsObject()).Where(o => (string)o["family"]! != "WordPiece").ToArray();
        Assert.Contains(rows, o => (string)o["family"]! == "byte-level BPE");
        Assert.Contains(rows, o => (string)o["family"]! == "SentencePiece BPE, byte fallback");
        foreach (var o in rows)
        {
            Assert.Equal(0, (int)o["unk_tokens"]!);
            Assert.Equal((int)o["lines"]!, (int)o["exact_round_trips"]!);
            Assert.Equal(0, (int)o["edit_distance"]!);
        }
        // fragments are counted: emoji outside Mistral's vocabulary fall back to bytes
        Assert.True((int)Row("Mistral-7B", "emoji")["fragment_tokens"]! > 0);
        // tokens per character are the tokenizer's own count
        var qwen = Tokenizer.FromFile(TestPaths.Asset("npm", "tokenizer-qwen3", "models", "tokenizer.json"));
        var korean = Oov.Written.Single(s => s.Name == "Korean").Lines;
        var k = Row("Qwen3", "Korean");
        Assert.Equal(korean.Sum(l => qwen.EncodeToIds(l, addSpecialTokens: false).Length), (int)k["tokens"]!);
        Assert.Equal(korean.Sum(l => l.Length), (int)k["characters"]!);
    }

    [Fact]
    public void Measure_counts_unknown_tokens_their_characters_and_the_decoding_error()
    {
        var tok = Tokenizer.FromVocabTxt(MiniLm.VocabPath);
        string line = "Hello 👨‍🚀 world";
        var enc = tok.Encode(line, addSpecialTokens: false);
        int unk = enc.Ids.Count(i => i == tok.UnkId);
        var c = Oov.Measure(tok, [line]);
        Assert.Equal(unk, c.Unk);
        Assert.True(c.Unk > 0);
        Assert.Equal(0, c.ExactLines);   // lower-cased and the emoji lost
        Assert.Equal(Oov.EditDistance(line, tok.Decode([.. enc.Ids], skipSpecialTokens: false)), c.Edits);
        Assert.Equal(3, Oov.EditDistance("kitten", "sitting"));
        Assert.Equal(5, Oov.EditDistance("", "abcde"));
        Assert.Equal(0, Oov.EditDistance("same", "same"));
    }

    [Fact]
    public void Typos_edit_only_long_words_once_and_the_same_seed_gives_the_same_text()
    {
        string line = "The September-October term jury had been charged by Fulton Superior Court Judge Durwood Pye to investigate reports";
        string a = Oov.WithTypos(line, new SharpLM.Training.TrainRandom(5), 0.5), b = Oov.WithTypos(line, new SharpLM.Training.TrainRandom(5), 0.5);
        Assert.Equal(a, b);
        Assert.NotEqual(line, a);
        var w0 = line.Split(' ');
        var w1 = a.Split(' ');
        Assert.Equal(w0.Length, w1.Length);
        for (int i = 0; i < w0.Length; i++)
        {
            if (w0[i].Length < 4 || !w0[i].All(char.IsAsciiLetter)) Assert.Equal(w0[i], w1[i]);
            else Assert.InRange(Oov.EditDistance(w0[i], w1[i]), 0, 2);   // a swap is two substitutions
            Assert.Equal(w0[i][0], w1[i][0]);
        }
        Assert.Equal(line, Oov.WithTypos(line, new SharpLM.Training.TrainRandom(5), 0));
    }
}
