using SharpLM.Lab;
using SharpLM.Lab.Experiments;
using SharpLM.Testing;

namespace SharpLM.Tests.Lab;

/// <summary>The quick forms of norms and norm-placement: their figures are computed, not typed.</summary>
[Collection("TrainParallel")]
public class NormsTests
{
    private static LabOptions Options(ulong seed) => new() { Quick = true, Seed = seed, Threads = SharpLM.Kernels.WorkerPool.Shared.Threads, AssetsDir = TestPaths.Assets };
    private static readonly Lazy<LabReport> Quick = new(() => LabRegistry.Run(new Norms(), Options(5)));
    private static readonly Lazy<LabReport> Placement = new(() => LabRegistry.Run(new NormPlacementExperiment(), Options(5)));

    [Fact]
    public void Padding_changes_only_batchnorm_and_its_statistics_shift_is_the_padding_rows_pull()
    {
        var r = Quick.Value;
        var pad = r.Data["padding"]!.AsArray().Select(n => n!.AsObject()).ToDictionary(o => (string)o["norm"]!, o => o);
        foreach (var n in new[] { "LayerNorm", "RMSNorm", "no norm" })
        {
            Assert.True((double)pad[n]["abs_change_alone"]! < 1e-4, $"{n}: alone vs in batch {(double)pad[n]["abs_change_alone"]!}");
            Assert.True((double)pad[n]["abs_change_2t"]! < 1e-4, $"{n}: padded to 2T vs in batch {(double)pad[n]["abs_change_2t"]!}");
        }
        Assert.True((double)pad["BatchNorm"]["abs_change_alone"]! > 1e-3);
        Assert.True((double)pad["BatchNorm"]["abs_change_2t"]! > 1e-3);
        // the mean over all rows moved by exactly what the padding rows' sum predicts, and by something
        var s = r.Data["batchnorm_stats"]!.AsObject();
        double measured = (double)s["mean_abs_mean_shift"]!, predicted = (double)s["mean_abs_mean_shift_predicted"]!;
        Assert.True(measured > 0);
        Assert.Equal(predicted, measured, 4);
        Assert.Equal(1 - (int)s["rows_real"]! / (double)(int)s["rows_all"]!, (double)r.Data["padding_share"]!, 12);
    }

    [Fact]
    public void Every_norm_kind_trains_at_every_batch_size_from_chance()
    {
        var runs = Quick.Value.Data["training"]!.AsArray().Select(n => n!.AsObject()).ToArray();
        Assert.Equal(4 * 2, runs.Length);
        foreach (var o in runs)
        {
            var losses = o["losses"]!.AsArray().Select(v => (double)v!).ToArray();
            Assert.All(losses, l => Assert.True(double.IsFinite(l)));
            Assert.InRange(losses[0], Math.Log(256) - 0.5, Math.Log(258) + 0.5); // about uniform over the bytes at the start
            Assert.Equal(LabTraining.Final(losses), (double)o["final_train_loss"]!, 12);
        }
        // the kernel timings are measured, one set per width
        Assert.Equal(2, Quick.Value.Timings["kernels"]!.AsObject().Count);
    }

    [Fact]
    public void Norm_placement_reports_every_run_with_alpha_and_beta_of_its_depth()
    {
        var runs = Placement.Value.Data["runs"]!.AsArray().Select(n => n!.AsObject()).ToArray();
        Assert.Equal(2 * 3 * 2, runs.Length);
        foreach (var o in runs)
        {
            int layers = (int)o["layers"]!;
            bool deep = (string)o["placement"]! == "DeepNorm";
            Assert.Equal(deep ? Math.Pow(2.0 * layers, 0.25) : 1, (double)o["alpha"]!, 5);
            Assert.Equal(deep ? Math.Pow(8.0 * layers, -0.25) : 1, (double)o["beta"]!, 12);
            var losses = o["losses"]!.AsArray().Select(v => v is null ? double.NaN : (double)v).ToArray();
            Assert.Equal(losses.Any(double.IsNaN), (bool)o["diverged"]!);
            Assert.InRange(losses[0], Math.Log(31) - 0.3, Math.Log(31) + 0.3);
        }
        // the three placements are different models: the same seed and batches, different curves
        var first = runs.Where(o => (int)o["layers"]! == 6 && (int)o["warmup"]! == 0).Select(o => o["losses"]!.ToJsonString()).ToArray();
        Assert.Equal(3, first.Distinct().Count());
    }

    [Fact]
    public void The_same_seed_and_threads_give_the_same_figures()
    {
        Assert.Equal(Quick.Value.Data.ToJsonString(), LabRegistry.Run(new Norms(), Options(5)).Data.ToJsonString());
        Assert.NotEqual(Quick.Value.Data.ToJsonString(), LabRegistry.Run(new Norms(), Options(6)).Data.ToJsonString());
        Assert.Equal(Placement.Value.Data.ToJsonString(), LabRegistry.Run(new NormPlacementExperiment(), Options(5)).Data.ToJsonString());
    }
}
