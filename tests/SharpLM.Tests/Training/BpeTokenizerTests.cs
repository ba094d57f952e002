using SharpLM.Testing;
using SharpLM.Tokenizers.Training;
using SharpLM.Training.Data;

namespace SharpLM.Tests.Training;

/// <summary>The tokenizer path of the default-model recipe: a BBPE trained on text, encoding it back losslessly.</summary>
public class BpeTokenizerTests
{
    [Fact]
    public void Trained_bbpe_round_trips_and_compresses_the_text()
    {
        bool longRun = Environment.GetEnvironmentVariable("SHARPLM_LONG_TESTS") == "1";
        string text = longRun ? File.ReadAllText(TestPaths.Asset("brown.txt"))
            : string.Join("\n", Enumerable.Range(0, 300).Select(i => $"The {i % 7} quick brown foxes jump over {i % 13} lazy dogs; café naïve — ok."));
        var trained = BpeTrainer.Train(text.Split('\n').Select(l => l + "\n"),
            new BpeTrainerOptions { VocabSize = longRun ? 4096 : 400, SpecialTokens = ["<|endoftext|>"] });
        var tok = new HfTextTokenizer(trained.ToTokenizerJson(), "trained");
        Assert.Equal(trained.VocabSize, tok.VocabSize);
        var ids = tok.Encode(text);
        Assert.Equal(text, tok.Decode(ids));
        Assert.Equal(System.Text.Encoding.UTF8.GetByteCount(text), tok.ByteCount(ids));
        Assert.True(ids.Length < text.Length / 2.5, $"{ids.Length} tokens for {text.Length} chars");
        Assert.All(ids, id => Assert.InRange(id, 0, tok.VocabSize - 1));
    }
}
