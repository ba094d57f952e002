using System.Text.Json.Nodes;
using SharpLM.Lab;
using SharpLM.Lab.Experiments;
using SharpLM.Models;
using SharpLM.Training;

namespace SharpLM.Tests.Lab;

/// <summary>The quick form of positions: the permutation test behaves as the attention's algebra says it must, the
/// parameters are the tensor table's, and the probe is the trained model's own forward pass.</summary>
[Collection("TrainParallel")]
public class PositionsTests
{
    private static LabReport RunQuick(ulong seed) =>
        LabRegistry.Run(new PositionsExperiment(), new LabOptions { Quick = true, Seed = seed, Threads = SharpLM.Kernels.WorkerPool.Shared.Threads });

    private static readonly Lazy<LabReport> Quick = new(() => RunQuick(5));

    private static Dictionary<string, JsonObject> Runs() =>
        Quick.Value.Data["runs"]!.AsArray().Select(n => n!.AsObject()).ToDictionary(o => (string)o["positions"]!);

    [Fact]
    public void Only_the_position_free_model_is_permutation_equivariant()
    {
        var runs = Runs();
        Assert.Equal(["none", "sinusoidal", "sinusoidal, embedding ×√C", "learned", "RoPE"], runs.Keys);
        var none = runs["none"];
        double noneBi = (double)none["bidirectional_equivariance_error"]!;
        // bidirectional attention without positions: permuted inputs give permuted outputs, to float rounding
        Assert.InRange(noneBi, 0, 1e-5);
        // causal: one block leaves the last row blind to the order of its prefix; the mask orders the rows, so all rows
        // together are not equivariant, and through two blocks the last row sees order too
        Assert.InRange((double)none["first_block_last_row_prefix_error"]!, 0, 1e-5);
        Assert.True((double)none["causal_equivariance_error"]! > 1e-2, $"causal, no positions: {none["causal_equivariance_error"]}");
        Assert.True((double)none["causal_last_row_prefix_error"]! > 1e-3, $"causal, no positions, two blocks: {none["causal_last_row_prefix_error"]}");
        // every position encoding breaks the symmetry, by orders of magnitude more than rounding
        foreach (var k in new[] { "sinusoidal", "sinusoidal, embedding ×√C", "learned", "RoPE" })
        {
            double bi = (double)runs[k]["bidirectional_equivariance_error"]!;
            Assert.True(bi > 1000 * Math.Max(noneBi, 1e-9), $"{k}: bidirectional error {bi} against none's {noneBi}");
        }
    }

    [Fact]
    public void Parameters_are_the_tensor_tables_and_only_the_learned_table_adds_any()
    {
        var runs = Runs();
        foreach (var r in runs.Values) Assert.Equal((long)r["calc_parameters"]!, (long)r["parameters"]!);
        long none = (long)runs["none"]["parameters"]!;
        Assert.Equal(none, (long)runs["sinusoidal"]["parameters"]!);
        Assert.Equal(none, (long)runs["sinusoidal, embedding ×√C"]["parameters"]!);
        Assert.Equal(none, (long)runs["RoPE"]["parameters"]!);
        var c = LabTraining.Llama(64, 32, 2, 2, 16); // the quick form's model
        Assert.Equal(none + (long)c.Context * c.Width, (long)runs["learned"]["parameters"]!);
    }

    [Fact]
    public void Training_starts_at_chance_and_the_figures_are_in_range()
    {
        foreach (var r in Runs().Values)
        {
            var losses = r["losses"]!.AsArray().Select(l => (double)l!).ToArray();
            Assert.All(losses, l => Assert.True(double.IsFinite(l)));
            Assert.InRange(losses[0], Math.Log(63) - 0.3, Math.Log(63) + 0.3);
            Assert.InRange((double)r["held_out_accuracy"]!, 0, 1);
        }
        // ln(m!)/m and H_m/m against their sums written out for m = 3: (ln 1 + ln 2 + ln 3)/3, (1 + 1/2 + 1/3)/3
        Assert.Equal(Math.Log(6) / 3, PositionsExperiment.OrderBlindLoss(3), 12);
        Assert.Equal((1 + 0.5 + 1 / 3.0) / 3, PositionsExperiment.OrderBlindAccuracy(3), 12);
    }

    [Fact]
    public void The_probe_is_the_trained_models_forward_pass()
    {
        var cfg = LabTraining.Llama(16, 16, 2, 2, 8) with { Positions = PositionKind.Sinusoidal };
        var m = new TrainModel(cfg);
        m.Initialize(4);
        var rng = new TrainRandom(3);
        foreach (var info in m.Parameters.Infos) if (info.Shape.Length == 2) rng.FillNormal(m.Parameters.P(info), 0.2);
        int[] x = [1, 5, 3, 9, 9, 0, 15, 2];
        m.Forward(x, default, 1, 8);
        var expected = m.Logits.ToArray();
        var probe = new DecoderProbe(m, 8);
        var causal = probe.Logits(x, bidirectional: false);
        Assert.True(expected.Zip(causal).Max(p => Math.Abs(p.First - p.Second)) < 1e-5, "the probe's causal logits are not the training forward's");
        // bidirectional, the first row sees the later keys: its logits change
        var bi = probe.Logits(x, bidirectional: true);
        Assert.True(expected.Take(16).Zip(bi.Take(16)).Max(p => Math.Abs(p.First - p.Second)) > 1e-3, "the first row did not see the later keys");
    }

    [Fact]
    public void The_same_seed_and_threads_give_the_same_figures()
    {
        Assert.Equal(Quick.Value.Data.ToJsonString(), RunQuick(5).Data.ToJsonString());
        Assert.NotEqual(Quick.Value.Data.ToJsonString(), RunQuick(6).Data.ToJsonString());
    }
}
