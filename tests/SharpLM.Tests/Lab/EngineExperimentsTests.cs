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
    public void Dense_attention_reads_L_squared_keys()
    {
        var c = Run(new Complexity());
        foreach (var p in c.Data["points"]!.AsArray())
        {
            long l = L(p!["L"]!), d = L(p["d"]!), h = L(p["heads"]!);
            Assert.Equal(l * l * h, L(p["qk_products"]!));
            Assert.Equal(2 * l * l * h * d, L(p["multiply_adds"]!));
        }
    }

    [Fact]
    public void Sparse_patterns_keep_the_pairs_their_definitions_say_and_train()
    {
        var s = LabRegistry.Run(new SparseAttention(), new LabOptions { Quick = true, Threads = SharpLM.Kernels.WorkerPool.Shared.Threads, AssetsDir = SharpLM.Testing.TestPaths.Assets });
        var speed = s.Data["speed"]!;
        long w = L(speed["window"]), st = L(speed["stride"]), g = L(speed["global"]), h = L(speed["heads"]);
        foreach (var p in speed["kept_pairs"]!.AsArray())
        {
            long l = L(p!["L"]!);
            long local = 0, strided = 0, global = 0;
            for (long i = 0; i < l; i++)
                for (long k = 0; k < l; k++)
                {
                    bool near = Math.Abs(i - k) < w;
                    if (near) local++;
                    if (near || (i - k) % st == 0) strided++;
                    if (near || k < g || i < g) global++;
                }
            Assert.Equal(l * l * h, L(p["dense"]));
            Assert.Equal(local * h, L(p["local"]));
            Assert.Equal(strided * h, L(p["local_strided"]));
            Assert.Equal(global * h, L(p["local_global"]));
            Assert.True(L(p["local"]) < L(p["dense"]));
        }
        var runs = s.Data["quality"]!.AsArray();
        Assert.Equal(["dense", "local", "local_strided", "local_global"], runs.Select(r => (string)r!["pattern"]!));
        foreach (var r in runs)
        {
            Assert.True(double.IsFinite((double)r!["brown_heldout_loss"]!) && double.IsFinite((double)r["copy_final_loss"]!));
            Assert.Equal(L(r["window"]) > 0 || L(r["stride"]) > 0 || L(r["global"]) > 0, (string)r["pattern"]! != "dense");
        }
        // the same initial weights and batches: a pattern changes the loss, so the models differ only by it
        Assert.NotEqual((double)runs[0]!["brown_heldout_loss"]!, (double)runs[1]!["brown_heldout_loss"]!);
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
