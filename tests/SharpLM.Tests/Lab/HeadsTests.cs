using System.Text.Json.Nodes;
using SharpLM.Lab;
using SharpLM.Lab.Experiments;
using SharpLM.Training;

namespace SharpLM.Tests.Lab;

/// <summary>The quick form of heads: parameters equal across head counts and two C×C matrices fewer per layer when
/// Q/K/V are shared (from the table and calc, checked against the shapes), the task's targets, and determinism.</summary>
[Collection("TrainParallel")]
public class HeadsTests
{
    private static LabReport RunQuick(ulong seed) =>
        LabRegistry.Run(new Heads(), new LabOptions { Quick = true, Seed = seed, Threads = SharpLM.Kernels.WorkerPool.Shared.Threads });

    private static readonly Lazy<LabReport> Quick = new(() => RunQuick(5));

    private static JsonObject[] Runs() => [.. Quick.Value.Data["runs"]!.AsArray().Select(n => n!.AsObject())];

    [Fact]
    public void Head_count_leaves_the_parameters_alone_and_sharing_removes_two_matrices_per_layer()
    {
        var runs = Runs();
        Assert.Equal(4, runs.Length); // 1 and 4 heads, separate and shared
        foreach (var r in runs)
        {
            Assert.Equal((long)r["calc_parameters"]!, (long)r["parameters"]!);
            Assert.Equal(32, (int)r["heads"]! * (int)r["head_size"]!); // width 32 split into heads
        }
        var separate = runs.Where(r => !(bool)r["shared_qkv"]!).Select(r => (long)r["parameters"]!).Distinct().ToArray();
        var shared = runs.Where(r => (bool)r["shared_qkv"]!).Select(r => (long)r["parameters"]!).Distinct().ToArray();
        Assert.Single(separate);
        Assert.Single(shared);
        var c = LabTraining.Llama(64, 32, 1, 1, 16); // the quick form's model: one layer
        Assert.Equal(separate[0] - 2L * c.Layers * c.Width * c.Width, shared[0]);
        // calc's attention block: 4h² (q, k, v, o; LLaMA has no biases) and 2h² shared
        foreach (var r in runs)
            Assert.Equal(((bool)r["shared_qkv"]! ? 2L : 4L) * c.Width * c.Width, (long)r["calc_attention_per_layer"]!);
    }

    [Fact]
    public void The_task_targets_are_the_two_look_backs()
    {
        var rng = new TrainRandom(1);
        int k = 8, b = 3, t = 12;
        var x = new int[b * t];
        var y = new int[b * t];
        Heads.TwoLookbacks(rng, k, b, t, x, y);
        for (int s = 0; s < b; s++)
            for (int i = 0; i < t; i++)
            {
                int at = s * t + i;
                Assert.InRange(x[at], 0, k - 1);
                if (i < Math.Max(Heads.A, Heads.B)) { Assert.Equal(-1, y[at]); continue; }
                Assert.Equal(x[at - Heads.A], y[at] / k);
                Assert.Equal(x[at - Heads.B], y[at] % k);
            }
    }

    [Fact]
    public void Training_starts_at_chance_and_a_right_pair_means_both_look_backs_right()
    {
        foreach (var r in Runs())
        {
            var losses = r["losses"]!.AsArray().Select(l => (double)l!).ToArray();
            Assert.All(losses, l => Assert.True(double.IsFinite(l)));
            Assert.InRange(losses[0], Math.Log(64) - 0.3, Math.Log(64) + 0.3);
            double pair = (double)r["accuracy_pair"]!, first = (double)r["accuracy_first"]!, second = (double)r["accuracy_second"]!;
            Assert.InRange(pair, 0, Math.Min(first, second));
            Assert.InRange(Math.Max(first, second), 0, 1);
        }
    }

    [Fact]
    public void The_same_seed_and_threads_give_the_same_figures()
    {
        Assert.Equal(Quick.Value.Data.ToJsonString(), RunQuick(5).Data.ToJsonString());
        Assert.NotEqual(Quick.Value.Data.ToJsonString(), RunQuick(6).Data.ToJsonString());
    }
}
