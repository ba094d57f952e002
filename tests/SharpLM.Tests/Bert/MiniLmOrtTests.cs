using SharpLM.Formats.Onnx;
using SharpLM.Models.Bert;

namespace SharpLM.Tests.Bert;

/// <summary>all-MiniLM-L6-v2 through SharpLM vs ONNX Runtime on the same model file and the same ids.</summary>
public sealed class MiniLmOrtTests : IDisposable
{
    private readonly SharpLM.Formats.IWeightSource _src;
    private readonly BertModel _model;

    public MiniLmOrtTests()
    {
        (_src, var cfg) = OnnxBert.Open(MiniLm.OnnxPath);
        _model = BertModel.Create(_src, cfg);
    }

    public void Dispose() => _src.Dispose();

    [Fact]
    public void ConfigIsInferredFromTheGraph()
    {
        var c = _model.Config;
        Assert.Equal(("bert", 30522, 384, 6, 12, 1536, 512, 2), (c.Architecture, c.Vocab, c.Width, c.Layers, c.Heads, c.FfnWidth, c.Context, c.TokenTypes));
        Assert.Equal(1e-12f, c.NormEps);
        Assert.Equal("gelu", c.Activation);
    }

    [Theory]
    [InlineData("hello")]
    [InlineData("The quick brown fox jumps over the lazy dog.")]
    [InlineData("SharpLM runs BERT encoders in pure .NET, with no native code at all!")]
    public void SingleTextHiddenStatesMatchOnnxRuntime(string text)
    {
        var ids = MiniLm.Ids(text);
        Assert.Equal((101, 102), (ids[0], ids[^1]));   // [CLS] ... [SEP]
        var batch = BertBatch.FromSequences([ids]);
        var ours = _model.Forward(batch);
        var ort = MiniLm.OrtHidden(1, ids.Length, batch.Ids, batch.Mask, null);
        AssertClose(ort, ours, 1e-4f, text);
    }

    [Fact]
    public void PaddedBatchOfMixedLengthsMatchesOnnxRuntimeAndSingleRuns()
    {
        string[] texts = ["hi", "A much longer sentence, which forces padding of the other rows in the batch.", "Embeddings for search.", "ok then"];
        var seqs = texts.Select(MiniLm.Ids).ToArray();
        var batch = BertBatch.FromSequences(seqs);
        var ours = _model.Forward(batch);
        var ort = MiniLm.OrtHidden(batch.Batch, batch.Time, batch.Ids, batch.Mask, null);
        int h = _model.Config.Width;
        for (int b = 0; b < texts.Length; b++)
        {
            int n = seqs[b].Length;
            var o = ours.AsSpan(b * batch.Time * h, n * h).ToArray();
            AssertClose(ort.AsSpan(b * batch.Time * h, n * h).ToArray(), o, 1e-4f, texts[b]);
            // Mean-pooled, normalised sentence embeddings from the padded batch agree (cosine > 0.99999).
            float[] MeanNorm(float[] rows)
            {
                var m = new double[h];
                for (int i = 0; i < n; i++) for (int j = 0; j < h; j++) m[j] += rows[i * h + j];
                double norm = Math.Sqrt(m.Sum(x => x * x));
                return m.Select(x => (float)(x / norm)).ToArray();
            }
            var eo = MeanNorm(ort.AsSpan(b * batch.Time * h, n * h).ToArray());
            var es = MeanNorm(o);
            float cos = SharpLM.Inference.Embeddings.TextEncoder.CosineSimilarity(eo, es);
            Assert.True(cos > 0.99999f, $"{texts[b]}: cosine of mean-pooled embeddings {cos}");
            // The sentence alone gives the same rows: padding is invisible.
            var alone = _model.Forward(BertBatch.FromSequences([seqs[b]]));
            AssertClose(alone, o, 1e-5f, texts[b] + " (alone vs in batch)");
        }
    }

    /// <summary>Masks need not be trailing: a left-padded batch (positions still count from the pad) matches ORT too.</summary>
    [Fact]
    public void LeftPaddedBatchMatchesOnnxRuntime()
    {
        int[][] seqs = [MiniLm.Ids("left padding works too"), MiniLm.Ids("a longer sentence sets the padded length of this batch")];
        int t = seqs.Max(s => s.Length), h = _model.Config.Width;
        var ids = new int[2 * t];
        var mask = new int[2 * t];
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < seqs[b].Length; i++)
            {
                int at = b * t + t - seqs[b].Length + i;
                ids[at] = seqs[b][i];
                mask[at] = 1;
            }
        var ours = _model.Forward(new BertBatch(2, t, ids, mask, null));
        var ort = MiniLm.OrtHidden(2, t, ids, mask, null);
        var rows = Enumerable.Range(0, 2 * t).Where(i => mask[i] != 0).ToArray();
        AssertClose(rows.SelectMany(r => ort.AsSpan(r * h, h).ToArray()).ToArray(), rows.SelectMany(r => ours.AsSpan(r * h, h).ToArray()).ToArray(), 1e-4f, "left-padded");
    }

    internal static void AssertClose(float[] expected, float[] actual, float tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        float max = 0;
        int at = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            float d = Math.Abs(expected[i] - actual[i]);
            if (!(d <= max)) { max = d; at = i; }
        }
        Assert.True(max <= tol, $"{what}: max |diff| {max} at {at} (expected {expected[Math.Max(at, 0)]}, got {actual[Math.Max(at, 0)]}) > {tol}");
    }
}
