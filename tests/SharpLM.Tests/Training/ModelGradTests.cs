using SharpLM.Training.Models;

namespace SharpLM.Tests.Training;

/// <summary>Whole-model backward passes against finite differences of the loss, in double.</summary>
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
