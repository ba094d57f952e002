using SharpLM.Lab;
using SharpLM.Lab.Experiments;

namespace SharpLM.Tests.Lab;

/// <summary>The quick forms of kv-cache, complexity and sparse-attention: their exact counts and checks (never their times).</summary>
public class EngineExperimentsTests
{
    private static LabReport Run(LabExperiment e) => LabRegistry.Run(e, new LabOptions { Quick = true, Threads = SharpLM.Kernels.WorkerPool.Shared.Threads });

    /// <summary>A JSON number as long, whatever CLR type the report stored it as.</summary>
    private static long L(System.Text.Json.Nodes.JsonNode? n) => long.Parse(n!.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void The_kv_cache_gives_the_recomputed_logits_and_reads_n_keys_instead_of_n_n_plus_1_over_2()
    {
        var r = Run(new KvCacheExperiment());
        using var model = SharpLM.Models.LanguageModel.Load(Parameters.FindDefaultModel()!);
        var cfg = model.Config;
        Assert.InRange((double)r.Data["max_logit_diff"]!, 0, 1e-4);
        foreach (var p in r.Data["lengths"]!.AsArray())
        {
            long n = L(p!["n"]!);
            Assert.Equal(n * cfg.Heads * cfg.Layers, L(p["key_reads_cached"]!));
            Assert.Equal(n * (n + 1) / 2 * cfg.Heads * cfg.Layers, L(p["key_reads_recomputed"]!));
        }
        Assert.Equal(r.Data["lengths"]!.AsArray().Count, r.Timings["lengths"]!.AsArray().Count);
    }

    [Fact]
    public void Dense_attention_reads_L_squared_keys_and_a_window_L_times_w()
    {
        var c = Run(new Complexity());
        foreach (var p in c.Data["points"]!.AsArray())
        {
            long l = L(p!["L"]!), d = L(p["d"]!), h = L(p["heads"]!);
            Assert.Equal(l * l * h, L(p["qk_products"]!));
            Assert.Equal(2 * l * l * h * d, L(p["multiply_adds"]!));
        }
        var s = Run(new SparseAttention());
        foreach (var p in s.Data["points"]!.AsArray())
        {
            long l = L(p!["L"]!), w = L(p["window"]!);
            long want = 0;
            for (long i = 0; i < l; i++) want += Math.Min(l, i + w / 2) - Math.Max(0, i - w / 2);
            Assert.Equal(want * 4, L(p["local_products"]!));
            Assert.Equal(l * l * 4, L(p["dense_products"]!));
            Assert.True(L(p["local_products"]!) <= l * w * 4);
        }
    }

    [Fact]
    public void The_polynomial_fit_recovers_a_known_polynomial()
    {
        var pts = Enumerable.Range(1, 8).Select(x => ((double)x, 2.0 + 3.0 * x + 0.5 * x * x)).ToList();
        var c = KvCacheExperiment.Fit(pts, 2);
        Assert.Equal(2.0, c[0], 6);
        Assert.Equal(3.0, c[1], 6);
        Assert.Equal(0.5, c[2], 6);
    }
}

/// <summary>The quick form of warmup: every run starts from the same weights and batch, and the schedules differ only in warmup.</summary>
public class WarmupTests
{
    [Fact]
    public void Runs_share_their_start_and_report_every_rate_with_and_without_warmup()
    {
        var r = LabRegistry.Run(new Warmup(), new LabOptions { Quick = true, Threads = SharpLM.Kernels.WorkerPool.Shared.Threads });
        var runs = r.Data["runs"]!.AsArray().Select(n => n!.AsObject()).ToArray();
        var first = runs.Select(x => (double)x["losses"]![0]!).Distinct().ToArray();
        Assert.Single(first);                                       // same initial weights, same first batch: the same first loss
        Assert.InRange(first[0], Math.Log(63) - 0.3, Math.Log(63) + 0.3);
        foreach (var lr in runs.Select(x => (double)x["lr"]!).Distinct())
            Assert.Equal([0, 4], runs.Where(x => (double)x["lr"]! == lr).Select(x => (int)x["warmup"]!).Order());
        // a run's figures are its own curve's
        foreach (var x in runs.Where(x => !(bool)x["diverged"]!))
        {
            var l = x["losses"]!.AsArray().Select(v => (double)v!).ToArray();
            Assert.Equal(LabTraining.Final(l), (double)x["final_loss"]!, 12);
        }
    }
}
