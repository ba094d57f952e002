using SharpLM.Models.Bert;
using SharpLM.Testing;

namespace SharpLM.Tests.Bert;

/// <summary>BertConfig reads the real Hugging Face config.json files of the three families (tests/testdata/sizing).</summary>
public class BertConfigTests
{
    private static BertConfig Read(string name) => BertConfig.FromJsonFile(Path.Combine(TestPaths.TestData, "sizing", name + ".config.json"));

    [Fact]
    public void ReadsBertAlbertAndDistilBertConfigs()
    {
        var b = Read("bert-base-uncased");
        Assert.Equal((BertArch.Bert, 30522, 768, 768, 12, 12, 3072, 512, 2, "gelu"), (b.Arch, b.VocabSize, b.HiddenSize, b.EmbeddingSize, b.NumLayers, b.NumHeads, b.IntermediateSize, b.MaxPositions, b.TypeVocabSize, b.HiddenAct));
        var a = Read("albert-base-v2");
        Assert.Equal((BertArch.Albert, 30000, 768, 128, 12, 12, 3072, 1, "gelu_new"), (a.Arch, a.VocabSize, a.HiddenSize, a.EmbeddingSize, a.NumLayers, a.NumHeads, a.IntermediateSize, a.NumHiddenGroups, a.HiddenAct));
        var d = Read("distilbert-base-uncased");
        Assert.Equal((BertArch.DistilBert, 30522, 768, 6, 12, 3072, 0), (d.Arch, d.VocabSize, d.HiddenSize, d.NumLayers, d.NumHeads, d.IntermediateSize, d.TypeVocabSize));
    }

    [Fact]
    public void BadConfigsNameTheProblem()
    {
        var dir = TestPaths.NewTempDir();
        string Write(string json)
        {
            var p = Path.Combine(dir, Guid.NewGuid().ToString("N") + ".json");
            File.WriteAllText(p, json);
            return p;
        }
        Assert.Contains("'hidden_size' is missing", Assert.Throws<InvalidDataException>(() => BertConfig.FromJsonFile(Write("""{"model_type":"bert","vocab_size":10}"""))).Message, StringComparison.Ordinal);
        Assert.Contains("not divisible by the number of heads 5", Assert.Throws<InvalidDataException>(() => BertConfig.FromJsonFile(Write("""{"model_type":"bert","vocab_size":10,"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":5,"intermediate_size":8}"""))).Message, StringComparison.Ordinal);
        Assert.Contains("model_type 'roberta'", Assert.Throws<NotSupportedException>(() => BertConfig.FromJsonFile(Write("""{"model_type":"roberta"}"""))).Message, StringComparison.Ordinal);
        Assert.Contains("hidden_act 'swish'", Assert.Throws<InvalidDataException>(() => BertConfig.FromJsonFile(Write("""{"model_type":"bert","vocab_size":10,"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":8,"hidden_act":"swish"}"""))).Message, StringComparison.Ordinal);
    }
}
