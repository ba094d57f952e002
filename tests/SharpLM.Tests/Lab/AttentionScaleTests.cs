using System.Text.Json.Nodes;
using SharpLM.Lab;
using SharpLM.Lab.Experiments;

namespace SharpLM.Tests.Lab;

/// <summary>The quick form of attention-scale: its figures behave as measured quantities must.</summary>
public class AttentionScaleTests
{
    private static readonly Lazy<LabReport> Quick = new(() => LabRegistry.Run(new AttentionScale(), new LabOptions { Quick = true, Seed = 5, Threads = SharpLM.Kernels.WorkerPool.Shared.Threads }));

    [Fact]
    public void Without_the_scale_the_softmax_saturates_as_d_k_grows_and_with_it_it_does_not()
    {
        var rows = Quick.Value.Data["softmax"]!.AsArray().Select(n => n!.AsObject()).ToArray();
        double[] Col(bool scaled, string key) => [.. rows.Where(r => (bool)r["scaled"]! == scaled).Select(r => (double)r[key]!)];
        var eu = Col(false, "entropy_over_ln_keys");
        var es = Col(true, "entropy_over_ln_keys");
        var mu = Col(false, "max_weight");
        // unscaled: entropy falls at least 5x from d_k 16 to 1024, the largest weight approaches 1
        Assert.True(eu[0] > 5 * eu[^1], $"unscaled entropy {eu[0]} -> {eu[^1]}");
        Assert.True(mu[^1] > 0.8 && mu[^1] > mu[0], $"unscaled max weight {mu[0]} -> {mu[^1]}");
        // scaled: the score std stays 1 and the entropy flat
        Assert.True(es.Max() - es.Min() < 0.1, $"scaled entropy {string.Join(", ", es)}");
        foreach (var r in rows.Where(r => (bool)r["scaled"]!)) Assert.InRange((double)r["score_std"]!, 0.85, 1.15);
        foreach (var r in rows.Where(r => !(bool)r["scaled"]!)) Assert.InRange((double)r["score_std"]! / Math.Sqrt((int)r["d_k"]!), 0.85, 1.15);
        // the softmax Jacobian (what gradients pass through) is smaller unscaled at d_k 1024
        Assert.True(Col(false, "jacobian_norm")[^1] < Col(true, "jacobian_norm")[^1] / 2);
    }

    [Fact]
    public void The_jacobian_norm_is_that_of_diag_p_minus_p_pT()
    {
        // against the matrix written out, on a few draws
        var rng = new SharpLM.Training.TrainRandom(9);
        var (_, _, jn, _) = AttentionScale.SoftmaxStats(rng, 8, 5, 1, 1.0);
        rng = new SharpLM.Training.TrainRandom(9);
        var q = new float[8]; var k = new float[40];
        rng.FillNormal(q, 1); rng.FillNormal(k, 1);
        var s = Enumerable.Range(0, 5).Select(j => Enumerable.Range(0, 8).Sum(i => (double)q[i] * k[j * 8 + i])).ToArray();
        double m = s.Max(), z = s.Sum(v => Math.Exp(v - m));
        var p = s.Select(v => Math.Exp(v - m) / z).ToArray();
        double f = 0;
        for (int i = 0; i < 5; i++) for (int j = 0; j < 5; j++) { double e = (i == j ? p[i] : 0) - p[i] * p[j]; f += e * e; }
        Assert.Equal(Math.Sqrt(f), jn, 5);
    }

    [Fact]
    public void Training_runs_start_at_chance_and_every_variant_is_reported()
    {
        var runs = Quick.Value.Data["training"]!.AsArray().Select(n => n!.AsObject()).ToArray();
        Assert.Equal(3, runs.Select(r => (string)r["variant"]!).Distinct().Count());
        foreach (var r in runs)
        {
            var losses = r["losses"]!.AsArray().Select(l => (double)l!).ToArray();
            Assert.All(losses, l => Assert.True(double.IsFinite(l)));
            Assert.InRange(losses[0], Math.Log(63) - 0.3, Math.Log(63) + 0.3);  // uniform over 63 tokens at init
        }
    }

    [Fact]
    public void The_same_seed_and_threads_give_the_same_figures()
    {
        var again = LabRegistry.Run(new AttentionScale(), new LabOptions { Quick = true, Seed = 5, Threads = SharpLM.Kernels.WorkerPool.Shared.Threads });
        Assert.Equal(Quick.Value.Data.ToJsonString(), again.Data.ToJsonString());
        var other = LabRegistry.Run(new AttentionScale(), new LabOptions { Quick = true, Seed = 6, Threads = SharpLM.Kernels.WorkerPool.Shared.Threads });
        Assert.NotEqual(Quick.Value.Data.ToJsonString(), other.Data.ToJsonString());
    }
}
