using SharpLM.Inference.Embeddings;
using SharpLM.Models;
using SharpLM.Tests.Bert;
using SharpLM.Training;
using SharpLM.Training.Optim;

namespace SharpLM.Tests.Training;

/// <summary>
/// The encoder's classification heads in the trainer: gradients of every parameter (head, layers, embeddings) against
/// finite differences for each pooling and for token classification; a frozen body gets no gradient and keeps its
/// weights; the pretrained MiniLM loaded into the trainer gives ONNX Runtime's hidden states under the head.
/// </summary>
[Collection("TrainParallel")]
public class EncoderHeadTests
{
    private static readonly ModelConfig Tiny = TrainModel.NewConfig("bert", 11, 8, 2, 2, 2, 12, 6, normEps: 1e-12);

    /// <summary>A tiny encoder with a head, weights larger than the 0.02 init so every path carries signal.</summary>
    private static TrainModel Scaled(EncoderHead head, ulong seed)
    {
        var m = new TrainModel(Tiny, head);
        m.Initialize(3);
        return ModelGradTests.Scale(m, seed);
    }

    private static readonly int[] X = [1, 10, 3, 4, 10, 2, 2, 10, 7, 0];

    [Theory]
    [InlineData(EmbeddingPooling.Cls)]
    [InlineData(EmbeddingPooling.Mean)]
    [InlineData(EmbeddingPooling.Max)]
    [InlineData(EmbeddingPooling.MeanMax)]
    public void Sequence_classification_gradients_match_finite_differences(EmbeddingPooling pooling)
    {
        var m = Scaled(new EncoderHead(EncoderHeadKind.SequenceClassification, 3, pooling), 9);
        Assert.Equal(new[] { 3, pooling is EmbeddingPooling.MeanMax ? 16 : 8 }, m.Parameters[EncoderHead.WeightName].Shape);
        int[] y = [2, -1, -1, -1, -1, 0, -1, -1, -1, -1];   // sequence labels on the [CLS] rows; the rest is ignored
        // max pooling is piecewise linear: the stencil's steps of 1e-2 on an embedding move some column's maximum to
        // another row (where the finite difference is not the gradient), so max takes steps of 1e-3; their f32 noise
        // (about 2e-4) is then measured against a floor of 2e-2 rather than 1e-3, for the tensors whose true gradient is
        // 0 (the key biases). The max rule itself is checked exactly in Pooling_backward_matches_finite_differences_*.
        if (pooling is EmbeddingPooling.Cls or EmbeddingPooling.Mean) ModelGradTests.CheckAll(m, X, y, 2, 5);
        else ModelGradTests.CheckAll(m, X, y, 2, 5, h: 1e-3f, floor: 2e-2);
    }

    [Theory]
    [InlineData(EmbeddingPooling.Cls)]
    [InlineData(EmbeddingPooling.Mean)]
    [InlineData(EmbeddingPooling.Max)]
    [InlineData(EmbeddingPooling.MeanMax)]
    public void Pooling_backward_matches_finite_differences_and_skips_padding(EmbeddingPooling pooling)
    {
        const int t = 5, h = 6;
        var rng = new TrainRandom(4);
        var hidden = new float[t * h];
        // every column a shuffle of well separated values, so a step of 1e-3 never moves a maximum
        for (int j = 0; j < h; j++)
        {
            var vals = Enumerable.Range(0, t).Select(i => 0.3f * i - 0.5f).OrderBy(_ => rng.NextDouble()).ToArray();
            for (int i = 0; i < t; i++) hidden[i * h + j] = vals[i];
        }
        int[] mask = [1, 1, 0, 1, 1];   // row 2 is padding: it must get no gradient, whatever it holds
        int d = Pooling.Dimensions(pooling, h);
        var r = Enumerable.Range(0, d).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        double Loss()
        {
            var p = new float[d];
            Pooling.Pool(hidden, mask, h, pooling, p);
            return p.Select((v, i) => (double)v * r[i]).Sum();
        }
        var analytic = new float[t * h];
        Pooling.Backward(r, hidden, mask, h, pooling, analytic);
        for (int i = 0; i < t * h; i++)
        {
            float keep = hidden[i];
            hidden[i] = keep + 1e-3f; double lp = Loss();
            hidden[i] = keep - 1e-3f; double lm = Loss();
            hidden[i] = keep;
            Assert.True(Math.Abs((lp - lm) / 2e-3 - analytic[i]) < 1e-3, $"{pooling}: element {i}: numeric {(lp - lm) / 2e-3}, analytic {analytic[i]}");
            if (i / h == 2) Assert.Equal(0f, analytic[i]);
        }
        Assert.Contains(analytic, g => g != 0);
    }

    [Fact]
    public void Token_classification_gradients_match_finite_differences()
    {
        var m = Scaled(new EncoderHead(EncoderHeadKind.TokenClassification, 4), 9);
        int[] y = [-1, 3, 0, -1, 2, -1, 1, 1, -1, 3];
        ModelGradTests.CheckAll(m, X, y, 2, 5);
    }

    [Fact]
    public void Sequence_labels_are_read_from_the_first_row_only()
    {
        var m = Scaled(new EncoderHead(EncoderHeadKind.SequenceClassification, 3, EmbeddingPooling.Mean), 5);
        double a = m.Forward(X, [2, -1, -1, -1, -1, 0, -1, -1, -1, -1], 2, 5);
        double b = m.Forward(X, [2, 1, 0, 2, 1, 0, 2, 2, 1, 0], 2, 5);
        Assert.Equal(a, b);
        // the loss is the mean cross-entropy of the two sequences' logits (B, K), computed here from the logits
        var l = m.Logits.ToArray();
        Assert.Equal(6, l.Length);
        double Ce(int s, int label) => Math.Log(Enumerable.Range(0, 3).Sum(k => Math.Exp(l[s * 3 + k]))) - l[s * 3 + label];
        Assert.Equal((Ce(0, 2) + Ce(1, 0)) / 2, a, 5);
    }

    [Fact]
    public void A_frozen_body_gets_no_gradient_and_keeps_its_weights_while_the_head_learns()
    {
        int[] y = [-1, 3, 0, -1, 2, -1, 1, 1, -1, 3];
        var thawed = Scaled(new EncoderHead(EncoderHeadKind.TokenClassification, 4), 9);
        thawed.Forward(X, y, 2, 5);
        thawed.Backward();
        var frozen = Scaled(new EncoderHead(EncoderHeadKind.TokenClassification, 4), 9);
        frozen.FreezeBody(true);
        var before = (float[])frozen.Parameters.Values.Clone();
        var opt = new AdamW(frozen.Parameters.Count, weightDecay: 0.1);
        for (int step = 0; step < 3; step++)
        {
            frozen.Parameters.ZeroGrad();
            frozen.Forward(X, y, 2, 5);
            frozen.Backward();
            foreach (var info in frozen.Parameters.Infos)
            {
                bool head = info.Role.StartsWith(EncoderHead.Role, StringComparison.Ordinal);
                Assert.Equal(head, !frozen.Parameters.IsFrozen(info));
                if (!head) Assert.True(frozen.Parameters.G(info).ToArray().All(g => g == 0), info.Name);
                else if (step == 0) Assert.Equal(thawed.Parameters.G(info).ToArray(), frozen.Parameters.G(info).ToArray()); // the head's gradient does not depend on freezing
            }
            opt.Update(frozen.Parameters, 1e-2);
        }
        foreach (var info in frozen.Parameters.Infos)
        {
            var was = before.AsSpan(info.Offset, info.Length).ToArray();
            if (frozen.Parameters.IsFrozen(info)) Assert.Equal(was, frozen.Parameters.P(info).ToArray());
            else Assert.NotEqual(was, frozen.Parameters.P(info).ToArray());
        }
        Assert.Equal(2, frozen.Parameters.Trainable.Count);
    }

    [Fact]
    public void Pretrained_minilm_in_the_trainer_gives_onnx_runtimes_states_under_the_head()
    {
        var (src, cfg) = SharpLM.Formats.Onnx.OnnxBert.Open(MiniLm.OnnxPath);
        using var source = src;
        cfg = cfg with { Pooler = false };
        int[] a = MiniLm.Ids("the jury said it did find that many of the registration laws are outmoded");
        int[] b = MiniLm.Ids("she looked at the sea and laughed, then ran back to the house in the rain");
        int t = Math.Min(a.Length, b.Length);
        int[] ids = [.. a.Take(t), .. b.Take(t)];
        var ort = MiniLm.OrtHidden(2, t, ids, [.. Enumerable.Repeat(1, 2 * t)], null);
        int dim = cfg.Width;
        foreach (var head in new[] { new EncoderHead(EncoderHeadKind.TokenClassification, 5), new EncoderHead(EncoderHeadKind.SequenceClassification, 3, EmbeddingPooling.MeanMax) })
        {
            var m = new TrainModel(cfg, head);
            m.Initialize(7);
            Assert.Equal(m.Parameters.Infos.Count - 2, m.LoadPretrained(src));
            m.Forward(ids, [], 2, t);
            var logits = m.Logits.ToArray();
            var w = m.Parameters.P(m.Parameters[EncoderHead.WeightName]).ToArray();
            var bias = m.Parameters.P(m.Parameters[EncoderHead.BiasName]).ToArray();
            // expected: the head applied in double to ORT's hidden states (pooled in double for the sequence head)
            var inputs = new List<double[]>();
            if (head.Kind == EncoderHeadKind.TokenClassification)
                for (int i = 0; i < 2 * t; i++) inputs.Add([.. ort.AsSpan(i * dim, dim).ToArray().Select(v => (double)v)]);
            else
                for (int s = 0; s < 2; s++)
                {
                    var rows = Enumerable.Range(0, t).Select(i => ort.AsSpan((s * t + i) * dim, dim).ToArray()).ToArray();
                    inputs.Add([.. Enumerable.Range(0, dim).Select(j => rows.Average(r => (double)r[j])), .. Enumerable.Range(0, dim).Select(j => (double)rows.Max(r => r[j]))]);
                }
            int k = head.Labels, d = inputs[0].Length;
            double maxDiff = 0, maxRef = 0;
            for (int i = 0; i < inputs.Count; i++)
                for (int c = 0; c < k; c++)
                {
                    double e = bias[c];
                    for (int j = 0; j < d; j++) e += w[c * d + j] * inputs[i][j];
                    maxDiff = Math.Max(maxDiff, Math.Abs(e - logits[i * k + c]));
                    maxRef = Math.Max(maxRef, Math.Abs(e));
                }
            Assert.Equal(inputs.Count * k, logits.Length);
            Assert.True(maxDiff < 1e-3 * Math.Max(maxRef, 1e-2), $"{head.Kind}: max |trainer - ORT-based| = {maxDiff:E3} (largest logit {maxRef:E3})");
        }
    }

    [Fact]
    public void Loading_an_encoder_without_the_bodys_tensors_lists_them()
    {
        var donor = new TrainModel(Tiny);   // an MLM model: its body tensors are "bert.*"
        var m = new TrainModel(Tiny with { Layers = 3, LayerGroups = 3 }, new EncoderHead(EncoderHeadKind.TokenClassification, 2));
        var e = Assert.Throws<InvalidDataException>(() => m.LoadPretrained(donor.Parameters.ValueSource));
        Assert.Contains("'bert.encoder.layer.2.attention.self.query.weight' is missing", e.Message);
    }
}
