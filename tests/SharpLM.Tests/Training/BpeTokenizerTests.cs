using SharpLM.Testing;
using SharpLM.Tokenizers.Training;
using SharpLM.Training.Data;

namespace SharpLM.Tests.Training;

public class BpeTokenizerTests
{
    /// <summary>Timing probe for the Brown recipe (long): BBPE training and encoding of the whole corpus.</summary>
    [Fact]
    public void Brown_bbpe_train_and_encode_timing()
    {
        if (Environment.GetEnvironmentVariable("SHARPLM_LONG_TESTS") != "1") return;
        var text = File.ReadAllText(TestPaths.Asset("brown.txt"));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var trained = BpeTrainer.Train(text.Split('\n').Select(l => l + "\n"), new BpeTrainerOptions { VocabSize = 4096, SpecialTokens = ["<|endoftext|>"] });
        var t1 = sw.Elapsed;
        var tok = new HfTextTokenizer(trained.ToTokenizerJson(), "brown");
        var ids = tok.Encode(text);
        var t2 = sw.Elapsed - t1;
        Assert.Fail($"train {t1.TotalSeconds:F1}s, encode {t2.TotalSeconds:F1}s, {ids.Length} tokens, {text.Length} chars");
    }
}
