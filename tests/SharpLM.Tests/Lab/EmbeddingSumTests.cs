using SharpLM.Formats.Onnx;
using SharpLM.Inference.Embeddings;
using SharpLM.Kernels;
using SharpLM.Lab;
using SharpLM.Lab.Experiments;
using SharpLM.Tests.Bert;

namespace SharpLM.Tests.Lab;

/// <summary>embedding-sum: the encoder runs the experiment uses are ONNX Runtime's on the same input (including segment 1),
/// the sum is the concatenation through [I I I], a position-free encoder cannot see word order, and the read-back is a
/// true nearest neighbour.</summary>
public class EmbeddingSumTests
{
    private static readonly Lazy<LabReport> Quick = new(() => LabRegistry.Run(new EmbeddingSum(), OovTests.Options));

    private static double D(System.Text.Json.Nodes.JsonNode? n) => (double)n!;

    [Fact]
    public void The_sum_is_the_concatenation_through_identity_blocks_and_a_linear_map_of_it_a_sum_of_mapped_tables()
    {
        var c = Quick.Value.Data["concatenation"]!;
        Assert.True((int)c["rows"]! >= 32);
        Assert.InRange(D(c["max_abs_diff_sum_vs_identity_map_of_concatenation"]), 0, 1e-5 * D(c["max_abs_sum"]));
        Assert.InRange(D(c["max_abs_diff_linear_map_vs_sum_of_mapped_tables"]), 0, 1e-5 * D(c["max_abs_linear_map"]));
        var p = Quick.Value.Data["parts"]!;
        double shares = D(p["energy_share_word"]) + D(p["energy_share_position"]) + D(p["energy_share_type"]) + D(p["energy_share_cross_terms"]);
        Assert.Equal(1.0, shares, 4);   // |w+p+s|^2 = |w|^2 + |p|^2 + |s|^2 + 2(cross)
    }

    [Fact]
    public void The_encoder_runs_give_onnx_runtimes_hidden_states_for_segment_0_and_1()
    {
        var (src, cfg) = OnnxBert.Open(MiniLm.OnnxPath);
        using var source = src;
        var model = SharpLM.Models.Bert.BertModel.Create(src, cfg);
        int[] ids = MiniLm.Ids("the sum of three embeddings, checked against onnx runtime");
        int n = ids.Length;
        int[] pos = [.. Enumerable.Range(0, n)];
        foreach (int seg in new[] { 0, 1 })
        {
            int[] types = [.. Enumerable.Repeat(seg, n)];
            var (sum, hidden) = EmbeddingSum.Forward(model.Weights, ids, pos, types);
            var ort = MiniLm.OrtHidden(1, n, ids, [.. Enumerable.Repeat(1, n)], types);
            double max = hidden.Zip(ort, (a, b) => Math.Abs(a - b)).Max();
            Assert.True(max < 2e-4, $"segment {seg}: max |SharpLM - ORT| = {max}");
            // the summed row is word + position + type, row by row
            var row = new float[cfg.EmbeddingWidth];
            var acc = new float[cfg.EmbeddingWidth];
            for (int t = 0; t < n; t++)
            {
                Embedding.Forward(model.Weights.Word, [ids[t]], acc);
                Embedding.Forward(model.Weights.Position, [t], row);
                for (int i = 0; i < acc.Length; i++) acc[i] += row[i];
                Embedding.Forward(model.Weights.TokenType!.Value, [seg], row);
                for (int i = 0; i < acc.Length; i++) acc[i] += row[i];
                for (int i = 0; i < acc.Length; i++) Assert.Equal(acc[i], sum[t * acc.Length + i], 5);
            }
        }
    }

    [Fact]
    public void Without_positions_the_encoder_ignores_word_order_and_with_them_it_does_not()
    {
        var a = Quick.Value.Data["ablations"]!;
        Assert.True((int)a["texts"]! >= 6);
        Assert.InRange(D(a["cos_words_shuffled_without_positions"]), 0.99999, 1.00001);
        Assert.InRange(D(a["max_abs_diff_shuffled_without_positions"]), 0, 1e-4);
        Assert.True(D(a["cos_words_shuffled"]) < 0.999, $"shuffled with positions: cosine {D(a["cos_words_shuffled"])}");
        Assert.True(D(a["cos_positions_removed"]) < 0.9999);
    }

    [Fact]
    public void Nearest_is_the_largest_cosine_over_the_whole_table()
    {
        var (src, cfg) = OnnxBert.Open(MiniLm.OnnxPath);
        using var source = src;
        var w = SharpLM.Models.Bert.BertModel.Create(src, cfg).Weights;
        int e = cfg.EmbeddingWidth, rows = w.Position.Rows;
        var table = new float[rows * e];
        Embedding.Forward(w.Position, [.. Enumerable.Range(0, rows)], table, "position");
        var norms = Enumerable.Range(0, rows).Select(i => (float)Math.Sqrt(table.AsSpan(i * e, e).ToArray().Sum(v => (double)v * v))).ToArray();
        var rng = new SharpLM.Training.TrainRandom(3);
        var xs = Enumerable.Range(0, 70).Select(_ => { var v = new float[e]; rng.FillNormal(v, 0.05); return v; }).ToArray();
        // plus rows that are a table row with noise: their own row must win
        for (int i = 0; i < 5; i++) for (int j = 0; j < e; j++) xs[i][j] += table[(100 * i + 7) * e + j];
        var got = EmbeddingSum.Nearest(w.Position, norms, xs, e);
        for (int i = 0; i < xs.Length; i++)
        {
            int best = Enumerable.Range(0, rows).MaxBy(r => Pooling.Cosine(xs[i], table.AsSpan(r * e, e)));
            Assert.Equal(best, got[i]);
        }
        for (int i = 0; i < 5; i++) Assert.Equal(100 * i + 7, got[i]);
    }
}
