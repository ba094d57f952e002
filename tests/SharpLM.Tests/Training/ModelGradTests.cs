using SharpLM.Models;
using SharpLM.Training;

namespace SharpLM.Tests.Training;

/// <summary>
/// Whole-model backward passes (the one model definition, bound over the trainer's parameters) against finite
/// differences of the loss. The model runs in f32, so the differences use a fourth-order stencil with h = 1e-2 and the
/// check allows 2e-2 of the tensor's largest gradient: f32 rounding of the loss limits the numeric side to about 1e-4 of
/// it, and a wrong backward pass is off by the size of the gradient itself. (Each kernel's backward is checked tightly
/// in double against its own oracle in Kernels/BackwardTests.)
/// </summary>
[Collection("TrainParallel")]
public class ModelGradTests
{
    /// <summary>Random inputs and targets (B*T ids below <paramref name="v"/>), shared by the gradient tests.</summary>
    internal static (int[] X, int[] Y) Batch(int b, int t, int v, ulong seed)
    {
        var r = new TrainRandom(seed);
        var x = new int[b * t]; var y = new int[b * t];
        for (int i = 0; i < x.Length; i++) { x[i] = r.Next(v); y[i] = r.Next(v); }
        return (x, y);
    }

    /// <summary>Checks every parameter tensor's analytic gradient (a sample of its elements for big ones).</summary>
    internal static void CheckAll(TrainModel m, int[] x, int[] y, int b, int t, double tol = 2e-2, float h = 1e-2f, double floor = 1e-3)
    {
        var p = m.Parameters;
        p.ZeroGrad();
        m.Forward(x, y, b, t);
        m.Backward();
        var grads = (float[])p.Grads.Clone();
        foreach (var info in p.Infos)
        {
            var vals = p.Values;
            int off = info.Offset;
            double maxDiff = 0, maxRef = floor;
            int at = -1;
            double[] num = new double[info.Length];
            int stride = Math.Max(1, info.Length / 48);
            for (int i = 0; i < info.Length; i += stride)
            {
                float keep = vals[off + i];
                double L(float d) { vals[off + i] = keep + d; return m.Forward(x, y, b, t); }
                num[i] = (-L(2 * h) + 8 * L(h) - 8 * L(-h) + L(-2 * h)) / (12 * h);
                vals[off + i] = keep;
                double diff = Math.Abs(num[i] - grads[info.Offset + i]);
                if (diff > maxDiff) { maxDiff = diff; at = i; }
                maxRef = Math.Max(maxRef, Math.Abs(num[i]));
            }
            double rel = maxDiff / maxRef;
            Assert.True(rel < tol, $"{info.Name}: relative gradient error {rel:E3} (max |diff| {maxDiff:E3} at {at}: analytic {(at >= 0 ? grads[info.Offset + at] : 0):G6} numeric {(at >= 0 ? num[at] : 0):G6}; max |grad| {maxRef:E3})");
        }
    }

    /// <summary>A trainer model of <paramref name="spec"/> with weights N(0, 0.15) (seeded), saved as a training checkpoint
    /// (a Hugging Face folder: config.json + safetensors) in a fresh temp folder: what inference must load with the same logits.</summary>
    internal static (TrainModel Model, string Dir) RandomCheckpoint(ModelConfig spec)
    {
        var m = new TrainModel(spec);
        m.Initialize(5);
        var r = new TrainRandom(8);
        foreach (var info in m.Parameters.Infos) if (info.Shape.Length == 2) r.FillNormal(m.Parameters.P(info), 0.15);
        var dir = Path.Combine(SharpLM.Testing.TestPaths.NewTempDir(), "ck");
        SharpLM.Training.Checkpoints.TrainCheckpoint.Save(dir, spec, m.Parameters, new SharpLM.Training.Optim.AdamW(m.Parameters.Count), new System.Text.Json.Nodes.JsonObject(), null);
        return (m, dir);
    }

    internal static TrainModel Scaled(ModelConfig c, ulong seed)
    {
        var m = new TrainModel(c);
        m.Initialize(3);
        return Scale(m, seed);
    }

    /// <summary>Larger weights than the 0.02 init so every path carries signal (matrices N(0, 0.4), vectors + N(0, 0.2)).</summary>
    internal static TrainModel Scale(TrainModel m, ulong seed)
    {
        var rng = new TrainRandom(seed);
        foreach (var info in m.Parameters.Infos)
            if (info.Shape.Length == 2) rng.FillNormal(m.Parameters.P(info), 0.4);
            else foreach (ref var v in m.Parameters.P(info)) v = (float)(v + 0.2 * rng.NextGaussian());
        return m;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Llama_gradients_match_finite_differences(bool tied)
    {
        var m = Scaled(TrainModel.NewConfig("llama", 11, 8, 2, 4, 2, 12, 6, tied: tied), 9);
        var (x, y) = Batch(2, 5, 11, 7);
        CheckAll(m, x, y, 2, 5);
    }

    [Fact]
    public void Gpt2_gradients_match_finite_differences()
    {
        var m = Scaled(TrainModel.NewConfig("gpt2", 11, 8, 2, 2, 2, 16, 6), 9);
        var (x, y) = Batch(2, 5, 11, 7);
        CheckAll(m, x, y, 2, 5);
    }
}

/// <summary>BERT masked-LM: gradients, masking statistics, a tiny run that learns.</summary>
[Collection("TrainParallel")]
public class BertMlmTests
{
    [Fact]
    public void Bert_mlm_gradients_match_finite_differences()
    {
        var m = new TrainModel(TrainModel.NewConfig("bert", 11, 8, 2, 2, 2, 12, 6, normEps: 1e-12));
        m.Initialize(3);
        var rng = new TrainRandom(9);
        foreach (var info in m.Parameters.Infos)
            if (info.Shape.Length == 2) rng.FillNormal(m.Parameters.P(info), 0.4);
            else foreach (ref var v in m.Parameters.P(info)) v = (float)(v + 0.2 * rng.NextGaussian());
        int[] x = [1, 10, 3, 4, 10, 2, 2, 10, 7, 0];
        int[] y = [-1, 5, -1, -1, 6, -1, 9, 3, -1, -1];
        ModelGradTests.CheckAll(m, x, y, 2, 5);
    }

    [Fact]
    public void Masking_chooses_15_percent_and_splits_80_10_10()
    {
        int n = 200_000, mask = 999, vocab = 500;
        var tokens = new int[n];
        for (int i = 0; i < n; i++) tokens[i] = i % vocab;
        var inputs = new int[n]; var targets = new int[n];
        int chosen = SharpLM.Training.Data.MlmMasking.Apply(tokens, inputs, targets, mask, vocab, 42, 0);
        int masked = 0, same = 0, other = 0;
        for (int i = 0; i < n; i++)
        {
            if (targets[i] < 0) { Assert.Equal(tokens[i], inputs[i]); continue; }
            Assert.Equal(tokens[i], targets[i]);
            if (inputs[i] == mask) masked++;
            else if (inputs[i] == tokens[i]) same++;
            else other++;
        }
        Assert.Equal(chosen, masked + same + other);
        Assert.InRange(chosen / (double)n, 0.145, 0.155);
        Assert.InRange(masked / (double)chosen, 0.79, 0.81);
        // "same" includes the random draws that hit the original token (1/500 of the random 10%)
        Assert.InRange(same / (double)chosen, 0.09, 0.11);
        Assert.InRange(other / (double)chosen, 0.09, 0.11);
        // deterministic for (seed, batch)
        var again = new int[n]; var t2 = new int[n];
        SharpLM.Training.Data.MlmMasking.Apply(tokens, again, t2, mask, vocab, 42, 0);
        Assert.Equal(inputs, again);
    }

    [Fact]
    public void Tiny_bert_learns_to_fill_masks()
    {
        var text = string.Concat(Enumerable.Repeat("abcdefgh", 400));
        var tok = new SharpLM.Training.Data.ByteTokenizer();
        var data = new SharpLM.Training.Data.TokenDataset(tok.Encode(text), 16, 0.1, 1);
        var spec = TrainModel.NewConfig("bert", 257, 32, 2, 4, 4, 64, 16, normEps: 1e-12);
        var t = new SharpLM.Training.Trainer(spec, new SharpLM.Training.TrainOptions { Batch = 8, Steps = 60, Lr = 3e-3, MinLr = 3e-4, Warmup = 5, EvalEvery = 0, EvalBatches = 4, Threads = 2 },
                                             data, tok, SharpLM.Testing.TestPaths.NewTempDir());
        double before = t.Evaluate();
        t.Run();
        double after = t.LastValLoss;
        Assert.True(after < before * 0.5, $"validation MLM loss {before:F3} -> {after:F3}");
    }
}
