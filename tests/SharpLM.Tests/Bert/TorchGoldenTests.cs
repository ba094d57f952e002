using SharpLM.Models.Bert;
using SharpLM.Testing;

namespace SharpLM.Tests.Bert;

/// <summary>
/// Tiny random-weight BERT-MLM, ALBERT and DistilBERT models against an independent PyTorch forward
/// (tools/bert_golden.py, fixtures in tests/testdata/bert): last hidden states and masked-LM logits within 1e-4.
/// </summary>
public class TorchGoldenTests
{
    private const string Magic = "sharplm-bert-golden";
    private const string Version = "1";

    internal static string Dir(string name) => Path.Combine(TestPaths.TestData, "bert", name);

    internal static TestSafetensors Golden(string name)
    {
        var g = new TestSafetensors(Path.Combine(Dir(name), "golden.safetensors"));
        var hint = "regenerate with: /usr/bin/python3 tools/bert_golden.py";
        Assert.True(g.Metadata.GetValueOrDefault("magic") == Magic, $"{g.Path}: magic '{g.Metadata.GetValueOrDefault("magic")}' is not '{Magic}'; {hint}");
        Assert.True(g.Metadata.GetValueOrDefault("version") == Version, $"{g.Path}: golden version '{g.Metadata.GetValueOrDefault("version")}', the test expects '{Version}'; {hint}");
        return g;
    }

    [Theory]
    [InlineData("bert_mlm", "bert")]
    [InlineData("albert_mlm", "albert")]
    [InlineData("distilbert_mlm", "distilbert")]
    public void HiddenStatesAndMlmLogitsMatchPyTorch(string name, string arch)
    {
        using var golden = Golden(name);
        using var src = new TestSafetensors(Path.Combine(Dir(name), "model.safetensors"));
        var cfg = SharpLM.Formats.ModelConfigReader.FromHfConfigFile(Path.Combine(Dir(name), "config.json"));
        Assert.Equal(arch, cfg.Architecture);
        var model = BertModel.Create(src, cfg, withMlmHead: true);
        var shape = golden.Tensors["input_ids"].Shape;
        int b = (int)shape[0], t = (int)shape[1], h = cfg.Width, v = cfg.Vocab;
        var mask = golden.Ints("attention_mask");
        var batch = new BertBatch(b, t, golden.Ints("input_ids"), mask, cfg.TokenTypes > 0 ? golden.Ints("token_type_ids") : null);
        var hidden = model.Forward(batch);
        var rows = Enumerable.Range(0, b * t).Where(i => mask[i] != 0).ToArray();
        var expHidden = golden.Floats("hidden");
        var expLogits = golden.Floats("logits");
        var logits = model.MlmLogits(hidden, rows);
        float[] Pick(float[] all, int width) => rows.SelectMany(r => all.AsSpan(r * width, width).ToArray()).ToArray();
        MiniLmOrtTests.AssertClose(Pick(expHidden, h), Pick(hidden, h), 1e-4f, name + " hidden");
        MiniLmOrtTests.AssertClose(Pick(expLogits, v), logits, 1e-4f, name + " logits");
    }

    [Fact]
    public void AlbertSharesOneLayerObjectAcrossAllLayers()
    {
        using var src = new TestSafetensors(Path.Combine(Dir("albert_mlm"), "model.safetensors"));
        var cfg = SharpLM.Formats.ModelConfigReader.FromHfConfigFile(Path.Combine(Dir("albert_mlm"), "config.json"));
        var model = BertModel.Create(src, cfg);
        Assert.Equal(3, model.Weights.Layers.Length);
        Assert.All(model.Weights.Layers, l => Assert.Same(model.Weights.Layers[0], l));
        Assert.NotNull(model.Weights.Projection);
        Assert.Equal((16, 32), (cfg.EmbeddingWidth, cfg.Width));
    }
}
