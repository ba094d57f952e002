using SharpLM.Inference;
using SharpLM.Lab;
using SharpLM.Lab.Experiments;
using SharpLM.Models.Bert;
using SharpLM.Testing;
using SharpLM.Tests.Training;
using SharpLM.Training;

namespace SharpLM.Tests.Lab;

/// <summary>causal-vs-bidirectional: the drawn masks are the causal and padding masks and are what the models' outputs
/// depend on (checked here again by perturbing keys through the inference engine); the scores are those the inference
/// paths give for the same windows; a decoder trained without the causal mask sees the future and has the right gradients.</summary>
[Collection("TrainParallel")]
public class CausalVsBidirectionalTests
{
    private static LabOptions Options(ulong seed = 1) => new() { Quick = true, Seed = seed, Threads = SharpLM.Kernels.WorkerPool.Shared.Threads, AssetsDir = TestPaths.Assets };

    private static readonly Lazy<CausalVsBidirectional.Outcome> Quick = new(() =>
    {
        var e = new CausalVsBidirectional();
        return CausalVsBidirectional.Execute(new LabContext(e, Options()));
    });

    private static string[] Rows(string key) => [.. Quick.Value.Report.Data[key]!.AsArray().Select(n => (string)n!)];

    [Fact]
    public void The_drawn_masks_are_causal_per_sequence_and_bidirectional_without_padding_and_equal_the_dependence()
    {
        int[] lens = CausalVsBidirectional.MaskLengths;
        // decoder: the packed rows of one pass; row (s, p) sees (s, q) for q <= p and nothing of the other sequence
        var rows = lens.SelectMany((len, s) => Enumerable.Range(0, len).Select(p => (s, p))).ToArray();
        string[] wantDec = [.. rows.Select(r => new string([.. rows.Select(k => k.s == r.s && k.p <= r.p ? '1' : '0')]))];
        Assert.Equal(wantDec, Rows("decoder_mask"));
        // encoder: the padded layout B x T; a real row sees every real token of its sequence, pads see and are seen by nothing
        int t = lens.Max();
        var grid = Enumerable.Range(0, lens.Length * t).Select(i => (s: i / t, p: i % t)).ToArray();
        bool Real((int s, int p) x) => x.p < lens[x.s];
        string[] wantEnc = [.. grid.Select(r => new string([.. grid.Select(k => Real(r) && Real(k) && k.s == r.s ? '1' : '0')]))];
        Assert.Equal(wantEnc, Rows("encoder_mask"));
        // the models' outputs moved exactly where the masks say
        Assert.Equal(Rows("decoder_mask"), Rows("decoder_dependence"));
        Assert.Equal(Rows("encoder_mask"), Rows("encoder_dependence"));
        Assert.Equal(rows.Length * rows.Length, (int)Quick.Value.Report.Data["decoder_cells_agreeing"]!);
        Assert.Equal(grid.Length * grid.Length, (int)Quick.Value.Report.Data["encoder_cells_agreeing"]!);
        // padding: a sequence alone and padded give the same hidden states; attending to the pads changes them
        var pad = Quick.Value.Report.Data["padding"]!;
        Assert.Equal(0.0, (double)pad["alone_vs_padded_max_diff"]!);
        Assert.True((double)pad["pads_attended_max_diff"]! > 0);
    }

    [Fact]
    public void Perturbing_a_hidden_key_leaves_the_row_alone_and_a_visible_one_moves_it()
    {
        var o = Quick.Value;
        int[] a = o.MaskSequences[0], b = o.MaskSequences[1];
        int v = o.Decoder.VocabSize;
        // decoder: both sequences in one pass of the inference engine
        using (var lm = CausalVsBidirectional.InferenceModel(o.Decoder))
        {
            using var bd = lm.CreateBatch(a.Length + b.Length, 2);
            (float[] A, float[] B) Run(int[] x, int[] y)
            {
                var sa = bd.AddSequence(16);
                var sb = bd.AddSequence(16);
                bd.Decode([new SequenceInput(sa, x, AllLogits: true), new SequenceInput(sb, y, AllLogits: true)]);
                var r = (sa.AllLogits.ToArray(), sb.AllLogits.ToArray());
                bd.Drop(sa);
                bd.Drop(sb);
                return r;
            }
            var (baseA, baseB) = Run(a, b);
            var late = (int[])a.Clone();
            late[^1] = (late[^1] + 1) % (v - 1);   // a's last token: a key no earlier row of a, and no row of b, sees
            var (la, lb) = Run(late, b);
            Assert.Equal(baseB, lb);
            Assert.Equal(baseA.AsSpan(0, (a.Length - 1) * v).ToArray(), la.AsSpan(0, (a.Length - 1) * v).ToArray());
            Assert.NotEqual(baseA.AsSpan((a.Length - 1) * v).ToArray(), la.AsSpan((a.Length - 1) * v).ToArray());
            var early = (int[])a.Clone();
            early[0] = (early[0] + 1) % (v - 1);   // a's first token: every row of a sees it
            var (ea, eb) = Run(early, b);
            Assert.Equal(baseB, eb);
            for (int p = 0; p < a.Length; p++) Assert.NotEqual(baseA.AsSpan(p * v, v).ToArray(), ea.AsSpan(p * v, v).ToArray());
        }
        // encoder: a padded batch; a pad is seen by no row, b's first token by every row of b and none of a
        var bert = BertModel.Create(o.Encoder.Parameters.ValueSource, o.Encoder.Config, withMlmHead: true);
        var batch = BertBatch.FromSequences([a, b]);
        int t = batch.Time, dim = bert.Config.Width;
        var h = bert.Forward(batch);
        var padIds = (int[])batch.Ids.Clone();
        padIds[t + t - 1] = 5;                     // the last pad of b
        Assert.Equal(h, bert.Forward(batch with { Ids = padIds }));
        var firstIds = (int[])batch.Ids.Clone();
        firstIds[t] = (firstIds[t] + 1) % (v - 1); // b's first token
        var h2 = bert.Forward(batch with { Ids = firstIds });
        Assert.Equal(h.AsSpan(0, t * dim).ToArray(), h2.AsSpan(0, t * dim).ToArray());
        for (int p = 0; p < b.Length; p++) Assert.NotEqual(h.AsSpan((t + p) * dim, dim).ToArray(), h2.AsSpan((t + p) * dim, dim).ToArray());
    }

    [Fact]
    public void The_scores_are_those_of_the_inference_paths_on_the_same_windows()
    {
        var o = Quick.Value;
        var scores = o.Report.Data["scores"]!.AsArray().Select(n => n!.AsObject()).ToArray();
        int m = o.Middle;
        var bert = BertModel.Create(o.Encoder.Parameters.ValueSource, o.Encoder.Config, withMlmHead: true);
        (double Loss, double Acc) Of(IEnumerable<(float[] Logits, int Target)> preds)
        {
            var list = preds.ToList();
            double loss = 0;
            int right = 0;
            foreach (var (logits, target) in list)
            {
                double max = logits.Max(), z = logits.Sum(x => Math.Exp(x - max));
                loss += -(logits[target] - max - Math.Log(z));
                if (logits[target] == max) right++;
            }
            return (loss / list.Count, (double)right / list.Count);
        }
        // BERT through BertModel (the padded-batch inference path) and its MLM head
        var both = Of(o.Windows.Select(w => (CausalVsBidirectional.BertFill(bert, w, m, o.MaskId), w[m])));
        var left = Of(o.Windows.Select(w => (CausalVsBidirectional.BertFill(bert, w[..(m + 1)], m, o.MaskId), w[m])));
        // GPT-2 through the inference engine: the first m tokens, the next token's logits
        (double, double) gpt;
        using (var lm = CausalVsBidirectional.InferenceModel(o.Decoder))
        {
            var seq = lm.CreateState(o.Windows[0].Length);
            gpt = Of(o.Windows.Select(w =>
            {
                seq.Truncate(0);
                return (seq.Forward(w.AsSpan(0, m), allLogits: false).ToArray(), w[m]);
            }).ToList());
        }
        int n = o.Windows.Length;
        foreach (var (i, want) in new[] { (0, both), (1, left), (2, gpt) })
        {
            Assert.InRange(Math.Abs(want.Item1 - (double)scores[i]["loss"]!), 0, 1e-3);
            Assert.InRange(Math.Abs(want.Item2 - (double)scores[i]["accuracy"]!) * n, 0, 1.01); // an arg-max tie may fall either way
            Assert.Equal(n, (int)scores[i]["count"]!);
        }
        // the unigram row is the training frequencies': its accuracy is the share of windows whose middle token is the commonest
        Assert.InRange((double)scores[^1]["accuracy"]!, 0, 1);
    }

    [Fact]
    public void A_decoder_without_the_causal_mask_sees_later_tokens_and_its_gradients_match_finite_differences()
    {
        var cfg = TrainModel.NewConfig("gpt2", 11, 8, 2, 2, 2, 16, 6);
        var m = ModelGradTests.Scaled(cfg, 9);
        int[] x = [1, 4, 3, 7, 2, 9, 0, 5, 8, 6];
        int[] y = [4, 3, 7, 2, 9, 0, 5, 8, 6, 1];
        float[] Row0(TrainModel model, int[] input) { model.Forward(input, [], 2, 5); return model.Logits[..11].ToArray(); }
        var later = (int[])x.Clone();
        later[3] = 10;
        Assert.Equal(Row0(m, x), Row0(m, later));          // causal: row 0 does not see token 3
        m.Causal = false;
        Assert.NotEqual(Row0(m, x), Row0(m, later));       // without the mask it does
        ModelGradTests.CheckAll(m, x, y, 2, 5);
    }

    [Fact]
    public void The_same_seed_and_threads_give_the_same_figures()
    {
        var first = Quick.Value.Report;
        var again = LabRegistry.Run(new CausalVsBidirectional(), Options());
        Assert.Equal(first.Data.ToJsonString(), again.Data.ToJsonString());
        var other = LabRegistry.Run(new CausalVsBidirectional(), Options(2));
        Assert.NotEqual(first.Data.ToJsonString(), other.Data.ToJsonString());
    }
}
