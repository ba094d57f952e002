using SharpLM.Training;
using SharpLM.Training.Optim;

namespace SharpLM.Tests.Training;

/// <summary>
/// The float32 models against plain-PyTorch models with the same weights and batch (tests/testdata/training,
/// made by tools/train_golden.py): logits and loss within 1e-5, every gradient within 1e-4 relative, and the
/// losses of 10 AdamW steps (warmup + cosine, weight decay on matrices, clipping) within 1e-4.
/// </summary>
[Collection("TrainParallel")]
public class TorchGoldenTests
{
    private static TrainModel Build(GoldenFile g)
    {
        var c = g.Config;
        string arch = g.Header.GetProperty("arch").GetString()!;
        return new TrainModel(TrainModel.NewConfig(arch, c.GetProperty("vocab").GetInt32(), c.GetProperty("dim").GetInt32(),
            c.GetProperty("layers").GetInt32(), c.GetProperty("heads").GetInt32(),
            arch == "llama" ? c.GetProperty("kv_heads").GetInt32() : c.GetProperty("heads").GetInt32(),
            c.GetProperty("ffn").GetInt32(), c.GetProperty("context").GetInt32(),
            tied: arch != "llama" || c.GetProperty("tied").GetBoolean(),
            ropeTheta: arch == "llama" ? c.GetProperty("rope_theta").GetDouble() : 10000, normEps: c.GetProperty("norm_eps").GetDouble())
            with
            {
                // the lab's variants (tools/train_golden.py writes these keys only for them)
                NormPlacement = c.TryGetProperty("norm_placement", out var np) ? np.GetString() switch
                {
                    "post" => SharpLM.Models.NormPlacement.Post, "deepnorm" => SharpLM.Models.NormPlacement.DeepNorm, _ => SharpLM.Models.NormPlacement.Pre,
                } : SharpLM.Models.NormPlacement.Pre,
                Sparse = c.TryGetProperty("sparse", out var sp) ? new SharpLM.Kernels.SparsePattern(sp[0].GetInt32(), sp[1].GetInt32(), sp[2].GetInt32()) : default,
                SlidingWindow = c.TryGetProperty("sliding_window", out var sw) ? sw.GetInt32() : null,
            });
    }

    private static void LoadParams(TrainModel m, GoldenFile g)
    {
        var ours = m.Parameters.Infos.Select(i => i.Name).Order(StringComparer.Ordinal).ToArray();
        var theirs = g.Tensors.Keys.Where(k => k.StartsWith("param:", StringComparison.Ordinal)).Select(k => k[6..]).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(theirs, ours);
        foreach (var info in m.Parameters.Infos)
        {
            var (shape, data) = g.Tensors["param:" + info.Name];
            Assert.Equal(shape, info.Shape);
            data.CopyTo(m.Parameters.P(info));
        }
    }

    private static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b, out double maxRef)
    {
        double d = 0; maxRef = 0;
        for (int i = 0; i < a.Length; i++) { d = Math.Max(d, Math.Abs(a[i] - b[i])); maxRef = Math.Max(maxRef, Math.Abs(b[i])); }
        return d;
    }

    [Theory]
    [InlineData("llama.golden")]
    [InlineData("gpt2.golden")]
    [InlineData("llama-post.golden")]
    [InlineData("llama-deepnorm.golden")]
    [InlineData("llama-sparse.golden")]
    [InlineData("llama-sliding.golden")]
    public void Logits_loss_and_gradients_match_pytorch(string file)
    {
        var g = GoldenFile.Load(file);
        var m = Build(g);
        LoadParams(m, g);
        int b = g.Int("B"), t = g.Int("T");
        double loss = m.Forward(g.Ints("inputs"), g.Ints("targets"), b, t);
        double dl = MaxAbsDiff(m.Logits, g.Tensors["logits"].Data, out _);
        Assert.True(dl < 1e-5, $"logits: max |diff| {dl:E3} vs torch (tolerance 1e-5)");
        double refLoss = g.Header.GetProperty("loss").GetDouble();
        Assert.True(Math.Abs(loss - refLoss) < 1e-5, $"loss {loss:G9} vs torch {refLoss:G9}");
        m.Parameters.ZeroGrad();
        m.Backward();
        var failures = new List<string>();
        double worst = 0;
        foreach (var info in m.Parameters.Infos)
        {
            double d = MaxAbsDiff(m.Parameters.G(info), g.Tensors["grad:" + info.Name].Data, out double mr);
            double rel = d / Math.Max(mr, 1e-6);
            worst = Math.Max(worst, rel);
            if (rel > 1e-4) failures.Add($"{info.Name}: relative {rel:E3} (max |diff| {d:E3}, max |grad| {mr:E3})");
        }
        Assert.True(failures.Count == 0, "gradients differ from torch beyond 1e-4 relative:\n" + string.Join("\n", failures));
        Assert.True(worst < 1e-4, $"worst relative gradient error {worst:E3}");
    }

    [Theory]
    [InlineData("llama.golden", 1)]
    [InlineData("gpt2.golden", 1)]
    [InlineData("llama.golden", 2)]
    public void Ten_adamw_steps_match_pytorch(string file, int threads)
    {
        var g = GoldenFile.Load(file);
        var m = Build(g);
        LoadParams(m, g);
        var o = g.Header.GetProperty("optimizer");
        var sched = new LrSchedule(o.GetProperty("lr").GetDouble(), o.GetProperty("min_lr").GetDouble(), o.GetProperty("warmup").GetInt32(), o.GetProperty("steps").GetInt32());
        var adam = new AdamW(m.Parameters.Count, o.GetProperty("weight_decay").GetDouble(), o.GetProperty("beta1").GetDouble(), o.GetProperty("beta2").GetDouble(), o.GetProperty("eps").GetDouble());
        double clip = o.GetProperty("grad_clip").GetDouble();
        int b = g.Int("B"), t = g.Int("T");
        var x = g.Ints("inputs"); var y = g.Ints("targets");
        var expected = g.Doubles("step_losses");
        var norms = g.Doubles("grad_norms");
        using var pool = new SharpLM.Kernels.WorkerPool(threads);
        using var scope = pool.Use();
        var log = new List<string>();
        for (int s = 0; s < expected.Length; s++)
        {
            m.Parameters.ZeroGrad();
            double loss = m.Forward(x, y, b, t);
            m.Backward();
            double norm = GradClip.Clip(m.Parameters, clip);
            adam.Update(m.Parameters, sched.At(s));
            log.Add($"step {s}: loss {loss:G9} vs torch {expected[s]:G9} (diff {Math.Abs(loss - expected[s]):E2}), grad norm {norm:G9} vs {norms[s]:G9}");
            Assert.True(Math.Abs(loss - expected[s]) < 1e-4, string.Join("\n", log));
            Assert.True(Math.Abs(norm - norms[s]) < 1e-3 * Math.Max(1, norms[s]), $"step {s}: grad norm {norm:G9} vs torch {norms[s]:G9}");
        }
        double final = m.Forward(x, y, b, t);
        double refFinal = g.Header.GetProperty("final_loss").GetDouble();
        Assert.True(Math.Abs(final - refFinal) < 1e-4, $"after 10 steps: loss {final:G9} vs torch {refFinal:G9}");
    }
}
