using SharpLM.Lab;
using SharpLM.Lab.Experiments;
using SharpLM.Sizing;
using SharpLM.Testing;
using SharpLM.Tests.Training;
using SharpLM.Training;

namespace SharpLM.Tests.Lab;

/// <summary>albert-sharing: the shared-layer encoder the trainer builds (LayerGroups = 1) has the right gradients, is a
/// separate-layer encoder whose layers hold the same weights, and the report's counts are the models' own.</summary>
[Collection("TrainParallel")]
public class AlbertSharingTests
{
    private static TrainModel Scaled(SharpLM.Models.ModelConfig c, ulong seed) => ModelGradTests.Scaled(c, seed);

    [Fact]
    public void Shared_layer_bert_gradients_match_finite_differences()
    {
        var cfg = TrainModel.NewConfig("bert", 11, 8, 3, 2, 2, 12, 6, normEps: 1e-12) with { LayerGroups = 1 };
        var m = Scaled(cfg, 9);
        Assert.DoesNotContain(m.Parameters.Infos, i => i.Name.Contains(".layer.1.", StringComparison.Ordinal));
        int[] x = [1, 10, 3, 4, 10, 2, 2, 10, 7, 0];
        int[] y = [-1, 5, -1, -1, 6, -1, 9, 3, -1, -1];
        ModelGradTests.CheckAll(m, x, y, 2, 5);
    }

    [Fact]
    public void A_shared_layer_encoder_is_a_separate_one_whose_layers_hold_the_same_weights()
    {
        var separateCfg = TrainModel.NewConfig("bert", 11, 8, 3, 2, 2, 12, 6, normEps: 1e-12);
        var shared = Scaled(separateCfg with { LayerGroups = 1 }, 4);
        var separate = new TrainModel(separateCfg);
        foreach (var info in separate.Parameters.Infos)
        {
            string from = System.Text.RegularExpressions.Regex.Replace(info.Name, @"\.layer\.\d+\.", ".layer.0.");
            var src = shared.Parameters.Infos.Single(i => i.Name == from);
            shared.Parameters.P(src).CopyTo(separate.Parameters.P(info));
        }
        int[] x = [1, 10, 3, 4, 10, 2, 2, 10, 7, 0];
        shared.Forward(x, [], 2, 5);
        var a = shared.Logits.ToArray();
        separate.Forward(x, [], 2, 5);
        Assert.Equal(a, separate.Logits.ToArray());
        // and with different layers the output changes: the separate model really runs three layers
        separate.Parameters.P(separate.Parameters.Infos.First(i => i.Name.Contains(".layer.2.", StringComparison.Ordinal) && i.Shape.Length == 2))[0] += 1f;
        separate.Forward(x, [], 2, 5);
        Assert.NotEqual(a, separate.Logits.ToArray());
    }

    [Fact]
    public void The_report_counts_are_the_models_own()
    {
        var r = LabRegistry.Run(new AlbertSharing(), new LabOptions { Quick = true, Threads = SharpLM.Kernels.WorkerPool.Shared.Threads, AssetsDir = TestPaths.Assets });
        var runs = r.Data["runs"]!.AsArray().Select(n => n!.AsObject()).ToArray();
        Assert.Equal(3, runs.Length);
        foreach (var o in runs) Assert.Equal((long)o["calc_parameters"]! + (long)o["mlm_head_parameters"]!, (long)o["parameters"]!);
        long sep = (long)runs[0]["parameters"]!, shared = (long)runs[1]["parameters"]!, one = (long)runs[2]["parameters"]!;
        int layers = (int)runs[0]["layers"]!;
        Assert.Equal(1, (int)runs[1]["layer_groups"]!);
        Assert.Equal(shared, one);
        var cfg = TrainModel.NewConfig("bert", 257, 32, layers, 2, 2, 128, 16, normEps: 1e-12);
        Assert.Equal(sep - shared, (layers - 1) * new ParameterCount(cfg).PerLayer);
        Assert.Equal(32L * 32 + 32 + 64 + 257, (long)runs[0]["mlm_head_parameters"]!);   // dense + bias, LayerNorm, decoder bias
        // the same compute for shared and separate, 1/L of the layers' for one layer
        Assert.Equal((long)runs[0]["weight_macs_per_token"]!, (long)runs[1]["weight_macs_per_token"]!);
        Assert.Equal(AlbertSharing.WeightMacsPerToken(cfg), (long)runs[0]["weight_macs_per_token"]!);
        foreach (var o in runs)
        {
            var losses = o["losses"]!.AsArray().Select(v => (double)v!).ToArray();
            Assert.All(losses, l => Assert.True(double.IsFinite(l)));
            Assert.Equal(LabTraining.Final(losses), (double)o["final_train_loss"]!, 12);
        }
    }
}
