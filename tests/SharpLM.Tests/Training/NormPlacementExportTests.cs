using SharpLM.Models;
using SharpLM.Testing;
using SharpLM.Tests.Models;
using SharpLM.Training;
using SharpLM.Training.Checkpoints;
using SharpLM.Training.Data;

namespace SharpLM.Tests.Training;

/// <summary>A post-norm or DeepNorm decoder trained by SharpLM saves its placement (GGUF metadata, config.json) and
/// loads and generates with the training model's logits; without the key the same weights run as pre-norm.</summary>
[Collection("TrainParallel")]
public class NormPlacementExportTests
{
    private static TrainModel Build(NormPlacement placement)
    {
        var spec = TrainModel.NewConfig("llama", 256, 32, 3, 4, 2, 48, 32, tied: false) with { NormPlacement = placement };
        var m = new TrainModel(spec);
        m.Initialize(11);
        var r = new TrainRandom(3);
        foreach (var info in m.Parameters.Infos)
            if (info.Shape.Length == 2) r.FillNormal(m.Parameters.P(info), 0.15);
            else foreach (ref var v in m.Parameters.P(info)) v = (float)(1 + 0.2 * r.NextGaussian());
        return m;
    }

    private static float MaxDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        float d = 0;
        for (int i = 0; i < a.Length; i++) d = Math.Max(d, Math.Abs(a[i] - b[i]));
        return d;
    }

    [Theory]
    [InlineData(NormPlacement.Post, true)]
    [InlineData(NormPlacement.DeepNorm, true)]
    [InlineData(NormPlacement.DeepNorm, false)]
    public void A_post_norm_or_deepnorm_decoder_loads_and_generates_as_trained(NormPlacement placement, bool gguf)
    {
        var m = Build(placement);
        var dir = TestPaths.NewTempDir();
        string path;
        if (gguf)
        {
            path = Path.Combine(dir, "m.gguf");
            GgufExport.Write(path, m.Config, m.Parameters, new ByteTokenizer());
        }
        else
        {
            path = Path.Combine(dir, "ck");
            TrainCheckpoint.Save(path, m.Config, m.Parameters, new SharpLM.Training.Optim.AdamW(m.Parameters.Count), new System.Text.Json.Nodes.JsonObject(), null);
        }
        int[] ids = [.. "Post-norm, saved."u8.ToArray().Select(b => (int)b)];
        m.Forward(ids, default, 1, ids.Length);
        var ours = m.Logits.ToArray();
        using var model = LanguageModel.Load(path);
        Assert.Equal(placement, model.Config.NormPlacement);
        float d = MaxDiff(ours, LlamaParityTests.OurLogits(model, ids));
        Assert.True(d < 1e-4, $"loaded vs training forward: max |diff| {d:E3}");

        // generation (one token per pass through the KV cache) follows the training model's argmax
        var gen = LlamaParityTests.OurGreedy(model, ids, 6);
        int[] all = [.. ids, .. gen];
        m.Forward(all, default, 1, all.Length);
        var logits = m.Logits;
        for (int i = 0; i < gen.Length; i++)
        {
            var row = logits.Slice((ids.Length - 1 + i) * 256, 256);
            int best = 0;
            for (int v = 1; v < 256; v++) if (row[v] > row[best]) best = v;
            Assert.Equal(best, gen[i]);
        }

        // the same weights run as pre-norm give other logits: the placement key is what made them agree
        var pre = new TrainModel(m.Config with { NormPlacement = NormPlacement.Pre });
        m.Parameters.Values.CopyTo(pre.Parameters.Values, 0);
        pre.Forward(ids, default, 1, ids.Length);
        Assert.True(MaxDiff(ours, pre.Logits) > 1e-2);
    }

    [Fact]
    public void A_bad_placement_in_config_json_names_the_key_and_the_choices()
    {
        var o = SharpLM.Formats.ModelConfigReader.ToHfJson(TrainModel.NewConfig("llama", 16, 8, 1, 2, 2, 8, 8));
        o[NormOptions.HfPlacementKey] = "sideways";
        var e = Assert.Throws<InvalidDataException>(() => SharpLM.Formats.ModelConfigReader.FromHfJson(o.ToJsonString(), "config.json"));
        Assert.Contains("sharplm_norm_placement", e.Message);
        Assert.Contains("deepnorm", e.Message);
    }
}
