using SharpLM.Training.Models;

namespace SharpLM.Tests.Training;

/// <summary>Whole-model backward passes against finite differences of the loss, in double.</summary>
[Collection("TrainParallel")]
public class ModelGradTests
{
    private static (int[] X, int[] Y) Batch(int b, int t, int v, ulong seed)
    {
        var r = new TrainRandom(seed);
        var x = new int[b * t]; var y = new int[b * t];
        for (int i = 0; i < x.Length; i++) { x[i] = r.Next(v); y[i] = r.Next(v); }
        return (x, y);
    }

    private static void CheckAll(ITrainModel<double> m, int b, int t, double tol = 1e-6)
    {
        var (x, y) = Batch(b, t, m.VocabSize, 7);
        var p = m.Parameters;
        p.ZeroGrad();
        m.Forward(x, y, b, t);
        m.Backward();
        var grads = (double[])p.Grads.Clone();
        foreach (var info in p.Infos)
        {
            // a view of this parameter as its own array for the checker: copy in/out around the loss
            var vals = p.P(info).ToArray();
            double Loss()
            {
                vals.CopyTo(p.P(info));
                return m.Forward(x, y, b, t);
            }
            GradCheck.Check(info.Name, vals, grads.AsSpan(info.Offset, info.Length), Loss, tol);
            vals.CopyTo(p.P(info));
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Llama_gradients_match_finite_differences(bool tied)
    {
        var m = new LlamaTrainer<double>(new LlamaTrainConfig(Vocab: 11, Dim: 8, Layers: 2, Heads: 4, KvHeads: 2, Ffn: 12, Context: 6, TiedEmbeddings: tied));
        m.Initialize(3);
        // larger weights than the 0.02 init so every path carries signal
        var rng = new TrainRandom(9);
        foreach (var info in m.Parameters.Infos) if (info.Shape.Length == 2) rng.FillNormal(m.Parameters.P(info), 0.4);
        CheckAll(m, 2, 5);
    }

    [Fact]
    public void Gpt2_gradients_match_finite_differences()
    {
        var m = new Gpt2Trainer<double>(new Gpt2TrainConfig(Vocab: 11, Dim: 8, Layers: 2, Heads: 2, Ffn: 16, Context: 6));
        m.Initialize(3);
        var rng = new TrainRandom(9);
        foreach (var info in m.Parameters.Infos) rng.FillNormal(m.Parameters.P(info), 0.4);
        CheckAll(m, 2, 5);
    }
}

/// <summary>BERT masked-LM: gradients, masking statistics, a tiny run that learns.</summary>
[Collection("TrainParallel")]
public class BertMlmTests
{
    [Fact]
    public void Bert_mlm_gradients_match_finite_differences()
    {
        var m = new BertMlmTrainer<double>(new BertMlmConfig(Vocab: 11, Dim: 8, Layers: 2, Heads: 2, Ffn: 12, Context: 6));
        m.Initialize(3);
        var rng = new TrainRandom(9);
        foreach (var info in m.Parameters.Infos) rng.FillNormal(m.Parameters.P(info), 0.4);
        foreach (var info in m.Parameters.Infos.Where(i => i.Name.EndsWith("LayerNorm.weight", StringComparison.Ordinal)))
            foreach (ref var v in m.Parameters.P(info)) v += 1;
        int b = 2, t = 5;
        int[] x = [1, 10, 3, 4, 10, 2, 2, 10, 7, 0];
        int[] y = [-1, 5, -1, -1, 6, -1, 9, 3, -1, -1];
        var p = m.Parameters;
        p.ZeroGrad();
        m.Forward(x, y, b, t);
        m.Backward();
        var grads = (double[])p.Grads.Clone();
        foreach (var info in p.Infos)
        {
            var vals = p.P(info).ToArray();
            double Loss() { vals.CopyTo(p.P(info)); return m.Forward(x, y, b, t); }
            GradCheck.Check(info.Name, vals, grads.AsSpan(info.Offset, info.Length), Loss);
            vals.CopyTo(p.P(info));
        }
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
        var spec = new ModelSpec("bert", 257, 32, 2, 4, 4, 64, 16, NormEps: 1e-12);
        var t = new SharpLM.Training.Trainer(spec, new SharpLM.Training.TrainOptions { Batch = 8, Steps = 60, Lr = 3e-3, MinLr = 3e-4, Warmup = 5, EvalEvery = 0, EvalBatches = 4, Threads = 2 },
                                             data, tok, SharpLM.Testing.TestPaths.NewTempDir());
        double before = t.Evaluate();
        t.Run();
        double after = t.LastValLoss;
        Assert.True(after < before * 0.5, $"validation MLM loss {before:F3} -> {after:F3}");
    }
}
