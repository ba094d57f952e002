using System.Globalization;
using System.Text.Json.Nodes;
using SharpLM.Kernels;
using SharpLM.Models;
using SharpLM.Training;
using SharpLM.Training.Data;
using static SharpLM.Lab.LabReport;

namespace SharpLM.Lab.Experiments;

/// <summary>
/// <c>norms</c> (note 1 e, f; 5): LayerNorm, RMSNorm, BatchNorm and no norm (<see cref="ModelConfig.Norm"/> of the one
/// <see cref="Encoder"/>) in a small BERT masked-LM encoder trained on padded batches of variable-length Brown text:
/// how padding moves BatchNorm's statistics and the real tokens' outputs, how each kind fares at batch sizes 2 to 32, and
/// the RMSNorm and LayerNorm kernels' speed.
/// </summary>
internal sealed class Norms : LabExperiment
{
    public override string Name => "norms";
    public override string Summary => "LayerNorm, RMSNorm, BatchNorm and no norm in an encoder on padded batches: padding pollution, batch size, RMSNorm vs LayerNorm speed";

    private static readonly (string Name, NormKind Kind)[] Kinds =
        [("LayerNorm", NormKind.LayerNorm), ("RMSNorm", NormKind.RmsNorm), ("BatchNorm", NormKind.BatchNorm), ("no norm", NormKind.None)];

    public override LabReport Run(LabContext ctx)
    {
        var r = new LabReport(Name, "LayerNorm, RMSNorm, BatchNorm or no norm");
        r.Claims.Add(new("1 e (为什么transformer用Layer Norm？有什么用？)", "八股，让神经网络各层参数输入的数据分布变好，数值进入梯度敏感区间，能防止梯度消失，让模型好训练",
            "(The stock answer.) It gives the inputs of every layer a better distribution, brings the values into the range where the gradient is sensitive, prevents vanishing gradients, and makes the model easy to train."));
        r.Claims.Add(new("1 f (为什么不用BN？)", "1)NLP不定长，好多位置填0，影响其他样本非0参数的计算。\n2)Transformer的模型比较大，BS拉不大，容易变得不稳定.\n3)BN无物理意义",
            "Why not BatchNorm? 1) Text has variable length; many positions are padded with 0, which affects the computation of the other samples' non-zero values. 2) Transformers are large, the batch size cannot be made large, and BatchNorm easily becomes unstable. 3) BatchNorm has no physical meaning."));
        r.Claims.Add(new("5 (各种norm方式优缺点)", "RMSNorm是对LayerNorm的一个改进，没有做re-center操作（移除了其中的均值项），可以看作LayerNorm在均值为0时的一个特例。",
            "RMSNorm improves on LayerNorm: it does not re-centre (the mean term is removed), and can be seen as LayerNorm in the special case of zero mean."));

        string brown = ctx.Asset("brown.txt") ?? throw new FileNotFoundException("norms needs the Brown corpus (brown.txt): run scripts/fetch-test-assets.sh");
        var tok = new ByteTokenizer();
        var text = File.ReadLines(brown).Take(ctx.Quick ? 300 : 6000).ToArray();
        int heldLines = text.Length / 10;
        int[] heldOut = tok.Encode(string.Join("\n", text.Take(heldLines))), train = tok.Encode(string.Join("\n", text.Skip(heldLines)));
        int width = ctx.Quick ? 32 : 64, layers = 2, heads = 2, t = ctx.Quick ? 24 : 48, steps = ctx.Quick ? 10 : 200, warm = ctx.Quick ? 2 : 20;
        int[] batches = ctx.Quick ? [2, 8] : [2, 8, 32];
        int probeBatch = 8, evalSeqs = ctx.Quick ? 16 : 64;
        double lr = 1e-3;
        int pad = tok.VocabSize, vocab = tok.VocabSize + 2, maskId = vocab - 1; // bytes, [PAD], [MASK] (the trainer's last id)
        r.Method.Add($"**Model.** A BERT masked-LM encoder (`TrainModel`, post-norm, GELU, learned positions) of width {width}, {layers} layers, {heads} heads, " +
                     $"MLP {4 * width}, byte vocabulary ({tok.VocabSize} bytes + [PAD] + [MASK]), sequences padded to {t}. Only `ModelConfig.Norm` changes, and it " +
                     "changes every norm of the model (embeddings, both norms of each block, the MLM head) with the same weight and bias tensors: " +
                     "**LayerNorm** per token (x − mean)/σ·w + b; **RMSNorm** per token x/rms·w + b (no re-centring; the bias kept, so only the mean term differs); " +
                     "**BatchNorm** per feature over every row of the batch, padding rows included (PyTorch's BatchNorm1d on the (B·T, C) rows in training mode, " +
                     "batch statistics also when evaluating: no running averages); **no norm**: x·w + b. Attention never looks at padding keys " +
                     "(`TrainModel.Lengths`), so with a per-token norm a real token's output cannot depend on the padding; BatchNorm is the only way in. " +
                     "Each backward pass is the library's (`Kernels/BatchNorm.cs`, `Kernels/Affine.cs`, checked against finite differences).");
        r.Method.Add($"**Data.** Each sequence is a random window of the Brown corpus (its last {text.Length - heldLines} lines) of a random length " +
                     $"{t / 4}..{t} bytes, padded with [PAD] to {t} (targets −1 there); BERT's 15% masking with 80/10/10 (`MlmMasking`) on the real bytes only. " +
                     $"**Training**: {steps} AdamW steps at batch sizes {string.Join(", ", batches)} (the same steps and lr {lr.ToString(CultureInfo.InvariantCulture)}, warmup {warm}, " +
                     $"cosine decay, clip 1), the same seed for every run. **Held-out loss**: {evalSeqs} masked sequences of the first {heldLines} lines in padded batches of " +
                     "the training batch size (BatchNorm then uses those batches' statistics).");

        // --- training: every kind at every batch size
        var runs = new JsonArray();
        var models = new Dictionary<string, TrainModel>();
        var curves = new List<ChartSeries>();
        var held = new Dictionary<(string, int), double>();
        int total = Kinds.Length * batches.Length, done = 0;
        foreach (int b in batches)
            foreach (var (kname, kind) in Kinds)
            {
                var cfg = TrainModel.NewConfig("bert", vocab, width, layers, heads, heads, 4 * width, t, normEps: 1e-5) with { Norm = kind };
                var model = new TrainModel(cfg);
                model.Initialize(ctx.Seed);
                var data = ctx.Random(11);
                var lengths = new int[b];
                double from = (double)done / total;
                var losses = LabTraining.Run(model, steps, b, t, lr, warm, (s, x, y) =>
                {
                    PaddedBatch(train, data, b, t, pad, maskId, tok.VocabSize, ctx.Seed, s, lengths, x, y);
                    model.Lengths = lengths;
                }, s => ctx.Report($"{kname} batch {b}", from + (s + 1.0) / steps / total));
                done++;
                double h = HeldOut(model, heldOut, b, t, pad, maskId, tok.VocabSize, evalSeqs, ctx.Seed);
                held[(kname, b)] = h;
                var diffs = losses.Zip(losses.Skip(1), (p, q) => q - p).Where(double.IsFinite).ToArray();
                double stepRms = diffs.Length == 0 ? double.NaN : Math.Sqrt(diffs.Sum(v => v * v) / diffs.Length);
                runs.Add((JsonNode)new JsonObject
                {
                    ["norm"] = kname, ["batch"] = b, ["final_train_loss"] = J(LabTraining.Final(losses)), ["held_out_loss"] = J(h),
                    ["diverged"] = losses.Any(double.IsNaN), ["step_to_step_rms"] = J(stepRms), ["losses"] = new JsonArray([.. losses.Select(J)]),
                });
                if (b == probeBatch || (ctx.Quick && b == batches[^1])) models[kname] = model;
                if (b == batches[0]) curves.Add(new ChartSeries($"{kname} batch {b}", [.. losses.Select((l, i) => ((double)i, l))]));
            }
        r.Data["training"] = runs;
        var trows = batches.Select(b => (IReadOnlyList<string>)[b.ToString(CultureInfo.InvariantCulture), .. Kinds.Select(k => F(held[(k.Name, b)]))]).ToList();
        r.Tables.Add(new($"**Held-out masked-LM loss** after {steps} steps (chance: ln {tok.VocabSize} = {F(Math.Log(tok.VocabSize))}):", ["batch size", .. Kinds.Select(k => k.Name)], trows));

        // --- padding: the same real tokens in a padded batch and alone
        int probe = models.ContainsKey("LayerNorm") && batches.Contains(probeBatch) ? probeBatch : batches[^1];
        var prow = new List<IReadOnlyList<string>>();
        var padding = new JsonArray();
        var probeRng = ctx.Random(4321);
        var pl = new int[probe];
        var px = new int[probe * t];
        var py = new int[probe * t];
        PaddedBatch(heldOut, probeRng, probe, t, pad, maskId, tok.VocabSize, ctx.Seed + 7, 0, pl, px, py);
        double padShare = 1 - pl.Sum() / (double)(probe * t);
        foreach (var (kname, _) in Kinds)
        {
            var m = models[kname];
            m.Lengths = pl;
            double inBatch = m.Forward(px, py, probe, t);
            // each sequence alone, unpadded: the mean over the same masked tokens
            double sum = 0;
            int count = 0;
            for (int s = 0; s < probe; s++)
            {
                int len = pl[s], c = 0;
                for (int i = 0; i < len; i++) if (py[s * t + i] >= 0) c++;
                if (c == 0) continue;
                m.Lengths = null;
                sum += c * m.Forward(px.AsSpan(s * t, len), py.AsSpan(s * t, len), 1, len);
                count += c;
            }
            double alone = sum / count;
            // and the batch padded to twice its length: more padding, the same real tokens
            int t2 = 2 * t;
            var mm = RebuildLonger(m, t2);
            var x2 = new int[probe * t2];
            var y2 = new int[probe * t2];
            Array.Fill(x2, pad);
            Array.Fill(y2, -1);
            for (int s = 0; s < probe; s++)
            {
                px.AsSpan(s * t, t).CopyTo(x2.AsSpan(s * t2, t));
                py.AsSpan(s * t, t).CopyTo(y2.AsSpan(s * t2, t));
            }
            mm.Lengths = pl;
            double doubled = mm.Forward(x2, y2, probe, t2);
            padding.Add((JsonNode)new JsonObject { ["norm"] = kname, ["in_batch"] = J(inBatch), ["alone"] = J(alone), ["padded_to_2t"] = J(doubled), ["abs_change_alone"] = J(Math.Abs(alone - inBatch)), ["abs_change_2t"] = J(Math.Abs(doubled - inBatch)) });
            prow.Add([kname, F(inBatch), F(alone), F(doubled), F(Math.Abs(alone - inBatch)), F(Math.Abs(doubled - inBatch))]);
        }
        r.Data["padding_share"] = padShare;
        r.Data["padding"] = padding;
        r.Tables.Add(new($"**The same masked tokens, three ways** (the batch-{probe} models; a held-out batch of {probe} sequences, {F(100 * padShare)}% of its {t}-row slots padding): " +
                         $"in their padded batch, each sequence alone without padding, and the batch padded to {2 * t} (positions past {t} added as padding; the position table extended by copying):",
            ["norm", "in batch", "alone", $"padded to {2 * t}", "|alone − in batch|", $"|{2 * t} − in batch|"], prow));

        // --- BatchNorm's statistics: the embedding BatchNorm's input rows, with and without the padding rows
        var bn = models["BatchNorm"];
        var e0 = EmbeddingRows(bn, px, probe, t);
        int e = bn.Config.EmbeddingWidth, nReal = pl.Sum(), nAll = probe * t;
        var realRows = new float[nReal * e];
        var padRow = new float[e];
        int k = 0;
        for (int s = 0; s < probe; s++)
            for (int i = 0; i < pl[s]; i++, k++) e0.AsSpan((s * t + i) * e, e).CopyTo(realRows.AsSpan(k * e, e));
        var ones = Enumerable.Repeat(1f, e).ToArray();
        float[] mAll = new float[e], rAll = new float[e], mReal = new float[e], rReal = new float[e];
        BatchNorm.Forward(e0, ones, default, new float[nAll * e], mAll, rAll, nAll, e, 1e-5f);
        BatchNorm.Forward(realRows, ones, default, new float[nReal * e], mReal, rReal, nReal, e, 1e-5f);
        // the mean over all rows is the real rows' mean plus the padding rows' pull: Σ_pad rows / N − (N_pad / N)·mean_real
        var padSum = new double[e];
        for (int s = 0; s < probe; s++)
            for (int i = pl[s]; i < t; i++)
                for (int j = 0; j < e; j++) padSum[j] += e0[(s * t + i) * e + j];
        double shift = 0, predicted = 0, sdRatio = 0, shiftOverSd = 0;
        for (int j = 0; j < e; j++)
        {
            double d = mAll[j] - mReal[j], p = padSum[j] / nAll - (double)(nAll - nReal) / nAll * mReal[j];
            shift += Math.Abs(d);
            predicted += Math.Abs(p);
            sdRatio += rReal[j] / (double)rAll[j]; // σ_all / σ_real
            shiftOverSd += Math.Abs(d) * rReal[j];
        }
        shift /= e; predicted /= e; sdRatio /= e; shiftOverSd /= e;
        r.Data["batchnorm_stats"] = new JsonObject
        {
            ["rows_real"] = nReal, ["rows_all"] = nAll, ["mean_abs_mean_shift"] = J(shift), ["mean_abs_mean_shift_predicted"] = J(predicted),
            ["mean_shift_over_real_sd"] = J(shiftOverSd), ["mean_sd_all_over_sd_real"] = J(sdRatio),
        };
        r.Tables.Add(new("**BatchNorm's statistics with and without the padding rows** (the embedding BatchNorm of the batch above; means over the features):",
            ["rows", "mean |μ_all − μ_real|", "the same, from the padding rows' sum", "|μ_all − μ_real| / σ_real", "σ_all / σ_real"],
            [[$"{nReal} real of {nAll}", F(shift), F(predicted), F(shiftOverSd), F(sdRatio)]]));

        // --- speed: the RMSNorm and LayerNorm kernels
        int[] widths = ctx.Quick ? [256, 1024] : [256, 1024, 4096];
        int rowsN = ctx.Quick ? 16 : 64, repeats = ctx.Quick ? 5 : 31;
        var srows = new List<IReadOnlyList<string>>();
        var speed = new JsonObject();
        var speedPts = new List<(double, double)>[] { [], [] };
        foreach (int c in widths)
        {
            var rng = ctx.Random(c);
            var x = new float[rowsN * c];
            var dy = new float[rowsN * c];
            var w = new float[c];
            var bb = new float[c];
            rng.FillNormal(x, 1);
            rng.FillNormal(dy, 1);
            Array.Fill(w, 1f);
            var y = new float[rowsN * c];
            var dx = new float[rowsN * c];
            var dw = new float[c];
            var db = new float[c];
            var mean = new float[rowsN];
            var rstd = new float[rowsN];
            int inner = Math.Max(1, 200_000 / (rowsN * c));
            double Time(Action a) => LabContext.MedianSeconds(repeats, () => { for (int i = 0; i < inner; i++) a(); }) / inner;
            double rf = Time(() => RmsNorm.Forward(x, w, y, rstd, c, 1e-5f));
            double lf = Time(() => LayerNorm.Forward(x, w, bb, y, mean, rstd, c, 1e-5f));
            double rb = Time(() => RmsNorm.Backward(dy, x, w, rstd, dx, dw, rowsN, c));
            double lb = Time(() => LayerNorm.Backward(dy, x, w, mean, rstd, dx, dw, db, rowsN, c));
            speed[c.ToString(CultureInfo.InvariantCulture)] = new JsonObject { ["rows"] = rowsN, ["rms_forward_s"] = rf, ["ln_forward_s"] = lf, ["rms_backward_s"] = rb, ["ln_backward_s"] = lb };
            srows.Add([c.ToString(CultureInfo.InvariantCulture), F(rf * 1e6), F(lf * 1e6), F(lf / rf), F(rb * 1e6), F(lb * 1e6), F(lb / rb)]);
            speedPts[0].Add((c, lf / rf));
            speedPts[1].Add((c, lb / rb));
        }
        r.Timings["kernels"] = speed;
        r.Tables.Add(new($"**RMSNorm and LayerNorm kernels** (`Kernels/RmsNorm.cs`, `Kernels/LayerNorm.cs`; {rowsN} rows, median of {repeats}, {ctx.Options.Threads} thread(s) available, the kernels run on one; µs per call):",
            ["C", "RMSNorm fwd", "LayerNorm fwd", "LN/RMS fwd", "RMSNorm bwd", "LayerNorm bwd", "LN/RMS bwd"], srows));

        // --- what the numbers say
        var pad2 = padding.Select(n => n!.AsObject()).ToDictionary(o => (string)o["norm"]!, o => o);
        double Ch(string n, string key) => pad2[n][key]?.GetValue<double>() ?? double.NaN;
        double perRow = new[] { "LayerNorm", "RMSNorm", "no norm" }.Max(n => Math.Max(Ch(n, "abs_change_alone"), Ch(n, "abs_change_2t")));
        r.Findings.Add($"Padding (the note's 1 f, reason 1), measured: with LayerNorm, RMSNorm or no norm the same masked tokens have the same loss in their padded batch, alone, or under twice the padding (" +
                       (perRow == 0 ? "exactly: the change is 0 to the last bit" : $"largest change {F(perRow)}: float rounding of different matrix shapes") + $"). With BatchNorm the loss moves by {F(Ch("BatchNorm", "abs_change_alone"))} when the sequences run alone " +
                       $"and by {F(Ch("BatchNorm", "abs_change_2t"))} when the padding doubles: the padding rows are {F(100 * padShare)}% of the statistics' rows, " +
                       $"and they shift each feature's mean by {F(shiftOverSd)} of its standard deviation on average (σ_all/σ_real = {F(sdRatio)}). The note is right: with BatchNorm a token's output depends on how much padding its batch holds.");
        double Ratio(int b) => held[("BatchNorm", b)] / held[("LayerNorm", b)];
        r.Findings.Add($"Batch size (reason 2): held-out loss BatchNorm / LayerNorm = {string.Join(", ", batches.Select(b => $"{F(Ratio(b))} at batch {b}"))}. " +
                       (Ratio(batches[0]) > Ratio(batches[^1]) * 1.02
                           ? $"BatchNorm falls further behind at the smallest batch, where its statistics come from {batches[0]} sequences and are noisiest."
                           : Ratio(batches[0]) > Ratio(batches[^1])
                               ? $"The gap grows only slightly at the smallest batch ({F(Ratio(batches[0]))} against {F(Ratio(batches[^1]))}): BatchNorm trails LayerNorm at every batch size, and the note's reason 2 (instability at small batches) is weak at this size; evaluated in batches like those it trained on, its batch statistics are used as they were in training."
                               : "Here BatchNorm did not fall further behind at the smallest batch; at this size the padding, not the batch size, is what separates it."));
        var noise = runs.Select(n => n!.AsObject()).Where(o => (int)o["batch"]! == batches[0]).ToDictionary(o => (string)o["norm"]!, o => o["step_to_step_rms"]?.GetValue<double>() ?? double.NaN);
        r.Findings.Add($"Training noise at batch {batches[0]} (root mean square of the step-to-step loss change): {string.Join(", ", Kinds.Select(k => $"{k.Name} {F(noise[k.Name])}"))}.");
        string best = Kinds.Select(k => k.Name).MinBy(n => batches.Average(b => held[(n, b)]))!;
        r.Findings.Add($"Quality: averaged over the batch sizes, the lowest held-out loss was {best}'s. RMSNorm against LayerNorm: {string.Join(", ", batches.Select(b => $"{F(held[("RMSNorm", b)])} vs {F(held[("LayerNorm", b)])} at batch {b}"))} " +
                       "(the note's section 5: dropping the re-centring costs little). No norm: " + string.Join(", ", batches.Select(b => $"{F(held[("no norm", b)])} at batch {b}")) +
                       " — at two layers the residual stream stays tame without a norm; the note's 1 e (\"prevents vanishing gradients, easy to train\") is about deep stacks, which this does not test (see norm-placement).");
        var sp = speedPts;
        r.Findings.Add($"Speed: LayerNorm took {string.Join(", ", widths.Select((c, i) => $"{F(sp[0][i].Item2)}×"))} RMSNorm's time forward and {string.Join(", ", widths.Select((c, i) => $"{F(sp[1][i].Item2)}×"))} backward at C = {string.Join(", ", widths)}: " +
                       "the extra pass for the mean (and the centring) is the cost RMSNorm removes. Timings vary from run to run (they are kept under `timings` in the JSON).");
        r.Findings.Add("Reason 3, \"no physical meaning\", is not a measurable claim; what the numbers show is that BatchNorm's statistics mix tokens of different sequences (and the padding), while a per-token norm describes each token by itself.");
        if (ctx.Quick) r.Findings.Add("Quick form: a few steps only; the padding and statistics figures are exact, the training figures only check the mechanism.");

        r.Panels.Add(new ChartPanel
        {
            Title = "held-out loss by batch size", XLabel = "batch size", YLabel = "mlm loss", LogX = true,
            Series = [.. Kinds.Select(k => new ChartSeries(k.Name, [.. batches.Select(b => ((double)b, held[(k.Name, b)]))]))],
        });
        r.Panels.Add(new ChartPanel
        {
            Title = "padding changes the loss", Kind = ChartKind.Bar, Categories = ["alone", $"padded to {2 * t}"], YLabel = "|change of loss|",
            Series = [.. Kinds.Select(k => new ChartSeries(k.Name, [(0, Ch(k.Name, "abs_change_alone")), (1, Ch(k.Name, "abs_change_2t"))]))],
        });
        r.Panels.Add(new ChartPanel { Title = $"training loss, batch {batches[0]}", XLabel = "step", YLabel = "mlm loss", Series = curves });
        r.Panels.Add(new ChartPanel { Title = "layernorm time / rmsnorm time", XLabel = "C", YLabel = "ratio", LogX = true, Series = [new("forward", speedPts[0]), new("backward", speedPts[1])] });
        r.ChartWidth = 1600;
        return r;
    }

    /// <summary>B windows of random lengths t/4..t from <paramref name="tokens"/>, padded to t, masked as BERT on the real tokens.</summary>
    internal static void PaddedBatch(int[] tokens, TrainRandom rng, int b, int t, int pad, int maskId, int randomVocab, ulong seed, int index,
                                     int[] lengths, Span<int> x, Span<int> y)
    {
        var clean = new int[b * t];
        for (int i = 0; i < b; i++)
        {
            int len = t / 4 + rng.Next(t - t / 4 + 1);
            lengths[i] = len;
            int start = rng.Next(tokens.Length - t);
            tokens.AsSpan(start, len).CopyTo(clean.AsSpan(i * t, len));
        }
        MlmMasking.Apply(clean, x, y, maskId, randomVocab, seed, index);
        for (int i = 0; i < b; i++)
            for (int j = lengths[i]; j < t; j++) { x[i * t + j] = pad; y[i * t + j] = -1; }
    }

    /// <summary>The masked-LM loss of <paramref name="count"/> padded held-out sequences, in batches of <paramref name="b"/>.</summary>
    private static double HeldOut(TrainModel m, int[] tokens, int b, int t, int pad, int maskId, int randomVocab, int count, ulong seed)
    {
        var rng = new TrainRandom(seed + 99);
        var len = new int[b];
        var x = new int[b * t];
        var y = new int[b * t];
        double sum = 0;
        int batches = Math.Max(1, count / b);
        for (int i = 0; i < batches; i++)
        {
            PaddedBatch(tokens, rng, b, t, pad, maskId, randomVocab, seed + 1, i, len, x, y);
            m.Lengths = len;
            sum += m.Forward(x, y, b, t);
        }
        m.Lengths = null;
        return sum / batches;
    }

    /// <summary>A copy of <paramref name="m"/> with a context of <paramref name="t2"/> positions (rows past the old context copy its last row).</summary>
    private static TrainModel RebuildLonger(TrainModel m, int t2)
    {
        var copy = new TrainModel(m.Config with { Context = t2 });
        foreach (var info in copy.Parameters.Infos)
        {
            var src = m.Parameters.P(m.Parameters[info.Name]);
            var dst = copy.Parameters.P(info);
            if (src.Length == dst.Length) { src.CopyTo(dst); continue; }
            int cols = info.Shape[^1], oldRows = src.Length / cols;
            for (int row = 0; row < dst.Length / cols; row++) src.Slice(Math.Min(row, oldRows - 1) * cols, cols).CopyTo(dst.Slice(row * cols, cols));
        }
        return copy;
    }

    /// <summary>The encoder's summed embeddings (N, E) before its first norm: word[id] + position[t] + type[0].</summary>
    private static float[] EmbeddingRows(TrainModel m, int[] x, int b, int t)
    {
        var p = m.Parameters;
        ParamInfo Role(string role) => p.Infos.First(i => i.Role == role);
        Span<float> word = p.P(Role("token_embd")), pos = p.P(Role("position_embd")), type = p.P(Role("token_types"));
        int e = m.Config.EmbeddingWidth;
        var rows = new float[b * t * e];
        for (int s = 0; s < b; s++)
            for (int i = 0; i < t; i++)
                for (int j = 0; j < e; j++)
                    rows[(s * t + i) * e + j] = word[x[s * t + i] * e + j] + pos[i * e + j] + type[j];
        return rows;
    }
}
