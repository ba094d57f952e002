using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using SharpLM.Inference;
using SharpLM.Models;
using SharpLM.Models.Bert;
using SharpLM.Tokenizers;
using SharpLM.Tokenizers.Training;
using SharpLM.Training;
using SharpLM.Training.Data;
using static SharpLM.Lab.LabReport;

namespace SharpLM.Lab.Experiments;

/// <summary>
/// <c>causal-vs-bidirectional</c> (note 1 x, n, p, q): the masks the engine applies, read from the rows of a real pass
/// (<see cref="ForwardBatch"/>: each row's slot and range of visible keys) of a decoder batch of two sequences
/// (<see cref="BatchDecoder.OnPass"/>) and of a padded encoder batch (<see cref="BertModel.Pack"/>), each checked cell by
/// cell against the model's output (perturb an input token, see which rows change); then a BERT masked-LM encoder, a
/// GPT-2 causal decoder and a GPT-2 trained without the causal mask (<see cref="TrainModel.Causal"/>), trained alike on
/// Brown, compared on held-out text: a masked middle token from both sides (BERT), from the left only (BERT with the
/// right side cut off, GPT-2), and what each can generate.
/// </summary>
internal sealed class CausalVsBidirectional : LabExperiment
{
    public override string Name => "causal-vs-bidirectional";
    public override string Summary => "the padding and causal masks the engine applies, drawn and checked by perturbation; fill-mask with BERT vs next-token with GPT-2 on Brown";

    /// <summary>The lengths of the two sequences whose masks are drawn (one pass, the second shorter: padded in the encoder's batch).</summary>
    internal static readonly int[] MaskLengths = [7, 4];

    /// <summary>BERT trains for this many times GPT-2's steps (its loss has ~0.15 as many targets per step).</summary>
    internal const int EncoderStepFactor = 4;

    /// <summary>The report and what produced it: the trained models, the tokenizer, the held-out windows and the middle position scored.</summary>
    internal sealed record Outcome(LabReport Report, TrainModel Encoder, TrainModel Decoder, TrainModel Leaky, Tokenizer Tokenizer,
                                   int[][] Windows, int Middle, int MaskId, int[][] MaskSequences);

    /// <summary>Loss (mean −ln p of the target) and top-1 accuracy over the scored positions.</summary>
    internal readonly record struct Score(double Loss, double Accuracy, int Count);

    public override LabReport Run(LabContext ctx) => Execute(ctx).Report;

    internal static Outcome Execute(LabContext ctx)
    {
        var r = new LabReport("causal-vs-bidirectional", "causal and bidirectional attention: the masks, and what each model can do");
        r.Claims.Add(new("1 x (为什么说GPT是单向的Bert是双向的？)", "双向指的是语义上的双向，GPT模仿了语言模型屏蔽了序列后面的位置。Bert没有这样做，在self attention上都可以彼此交互，但是GPT就不行。",
            "Bidirectional means in meaning: GPT imitates a language model and masks the later positions of the sequence. BERT does not; in its self-attention every token can interact with every other, which GPT cannot."));
        r.Claims.Add(new("1 n (Bert中有哪些地方用到了mask?)", "预训练任务，selfattention计算,下游任务的decoder",
            "Where does BERT use masks? The pre-training task, the self-attention computation, and the decoder of downstream tasks."));
        r.Claims.Add(new("1 p (attention中的mask有什么用？（BERT中）)", "处理掉padding部分带来的无效信息，实际在softmax之前填上-inf就可以实现了。",
            "What is the mask in (BERT's) attention for? To remove the meaningless information the padding brings; in practice, filling in −inf before the softmax does it."));
        r.Claims.Add(new("1 q (decoder中的mask有什么用？)", "防止语言模型利用了leak未来信息",
            "What is the mask in the decoder for? To stop the language model from using leaked future information."));

        string train = ctx.Asset("brown-train.txt") ?? throw new FileNotFoundException("causal-vs-bidirectional needs the Brown corpus (brown-train.txt): run scripts/fetch-test-assets.sh");
        string held = ctx.Asset("brown-heldout.txt") ?? throw new FileNotFoundException("causal-vs-bidirectional needs brown-heldout.txt: run scripts/fetch-test-assets.sh");
        bool quick = ctx.Quick;
        int bpeLines = quick ? 300 : 3000, trainLines = quick ? 400 : 8000, heldLines = quick ? 120 : 855;
        int vocabTarget = quick ? 320 : 768;
        int width = quick ? 32 : 64, layers = 2, heads = quick ? 2 : 4, t = quick ? 16 : 64, batch = quick ? 4 : 16;
        int steps = quick ? 12 : 400, warm = quick ? 2 : 30, windowsHeld = quick ? 24 : 512;
        // BERT's loss counts only the 15% chosen positions: it gets more steps, so that it sees a comparable number of targets
        int encSteps = EncoderStepFactor * steps;
        double lr = quick ? 3e-3 : 2e-3;

        // the tokenizer: a byte-level BPE trained by SharpLM on the first lines of the training split
        ctx.Report("tokenizer", 0);
        var trainText = File.ReadLines(train).Take(trainLines).ToArray();
        var bpe = BpeTrainer.Train(trainText.Take(bpeLines), new BpeTrainerOptions { VocabSize = vocabTarget });
        var tok = Tokenizer.FromJson(bpe.ToTokenizerJson());
        int v = bpe.VocabSize, maskId = v, vocab = v + 1;
        int[] trainIds = tok.EncodeToIds(string.Join("\n", trainText), addSpecialTokens: false);
        int[] heldIds = tok.EncodeToIds(string.Join("\n", File.ReadLines(held).Take(heldLines)), addSpecialTokens: false);

        var encCfg = TrainModel.NewConfig("bert", vocab, width, layers, heads, heads, 4 * width, t, normEps: 1e-12);
        var decCfg = TrainModel.NewConfig("gpt2", vocab, width, layers, heads, heads, 4 * width, t);
        var enc = new TrainModel(encCfg);
        var dec = new TrainModel(decCfg);
        var leaky = new TrainModel(decCfg) { Causal = false };
        foreach (var m in new[] { enc, dec, leaky }) m.Initialize(ctx.Seed);

        r.Method.Add($"**Data.** A byte-level BPE of {v} tokens trained by SharpLM's `BpeTrainer` on the first {bpeLines} lines of `brown-train.txt`; " +
                     $"the models train on the first {trainLines} lines ({trainIds.Length:N0} tokens) and are scored on the first {heldLines} lines of `brown-heldout.txt` ({heldIds.Length:N0} tokens), which they never see.");
        r.Method.Add($"**Models.** Three of the same size (`TrainModel`: width {width}, {layers} layers, {heads} heads, MLP {4 * width}, {t} positions, vocabulary {v} + [MASK]): " +
                     "**BERT** (the encoder: post-norm, bidirectional, masked-LM head, BERT's 15% with 80/10/10 masking, `MlmMasking`); **GPT-2** (the decoder: pre-norm, causal, next-token loss at every position); " +
                     "and **GPT-2 without the causal mask** (`TrainModel.Causal = false`: in training every row also sees the tokens after it, the leak of note 1 q; it is scored as it would be used, causally). " +
                     $"The same initial seed, the same random windows of the training text, AdamW steps of {batch} windows, peak lr {lr.ToString(CultureInfo.InvariantCulture)}, warmup {warm}, cosine decay, clip 1: " +
                     $"{steps} steps for the two GPT-2s, {encSteps} for BERT, whose loss counts only the 15% of positions it chose ({EncoderStepFactor}× the steps is about " +
                     $"{F(100 * EncoderStepFactor * MlmMasking.ChooseRate)}% of GPT-2's predicted targets, for {EncoderStepFactor}× its compute).");

        // training
        var curves = new List<ChartSeries>();
        var runs = new JsonObject();
        (string Name, TrainModel Model)[] models = [("BERT (masked LM)", enc), ("GPT-2 (causal)", dec), ("GPT-2, no causal mask", leaky)];
        int[] modelSteps = [encSteps, steps, steps];
        double totalSteps = modelSteps.Sum(), doneSteps = 0;
        for (int mi = 0; mi < models.Length; mi++)
        {
            var (name, model) = models[mi];
            int ms = modelSteps[mi];
            var data = ctx.Random(11);
            var clean = new int[batch * t];
            double from = 0.05 + 0.75 * doneSteps / totalSteps;
            doneSteps += ms;
            var losses = LabTraining.Run(model, ms, batch, t, lr, warm, (s, x, y) =>
            {
                for (int i = 0; i < batch; i++)
                {
                    int start = data.Next(trainIds.Length - t - 1);
                    if (model.IsMlm) trainIds.AsSpan(start, t).CopyTo(clean.AsSpan(i * t, t));
                    else
                    {
                        trainIds.AsSpan(start, t).CopyTo(x.AsSpan(i * t, t));
                        trainIds.AsSpan(start + 1, t).CopyTo(y.AsSpan(i * t, t));
                    }
                }
                if (model.IsMlm) MlmMasking.Apply(clean, x, y, maskId, v, ctx.Seed, s);
            }, s => ctx.Report($"train {name}", from + 0.75 * (s + 1) / totalSteps));
            runs[name] = new JsonObject
            {
                ["parameters"] = model.Parameters.Count, ["steps"] = ms, ["final_train_loss"] = J(LabTraining.Final(losses)), ["losses"] = new JsonArray([.. losses.Select(J)]),
            };
            curves.Add(new ChartSeries(name, [.. losses.Select((l, i) => ((double)i, l))]));
        }
        r.Data["vocab"] = v;
        r.Data["train_tokens"] = trainIds.Length;
        r.Data["held_out_tokens"] = heldIds.Length;
        r.Data["training"] = runs;

        // scoring on held-out windows: the token at the middle position m
        ctx.Report("scoring", 0.8);
        int mid = t / 2;
        var windows = new int[windowsHeld][];
        for (int i = 0; i < windowsHeld; i++)
        {
            int start = (int)((long)i * (heldIds.Length - t) / windowsHeld);
            windows[i] = heldIds.AsSpan(start, t).ToArray();
        }
        var unigram = new long[vocab];
        foreach (int id in trainIds) unigram[id]++;
        int most = Array.IndexOf(unigram, unigram.Max());
        double uniLoss = windows.Average(w => -Math.Log((unigram[w[mid]] + 1.0) / (trainIds.Length + vocab)));
        double uniAcc = windows.Count(w => w[mid] == most) / (double)windows.Length;
        var both = FillMask(enc, windows, mid, maskId, batch, leftOnly: false);
        var left = FillMask(enc, windows, mid, maskId, batch, leftOnly: true);
        var next = NextToken(dec, windows, mid, batch);
        leaky.Causal = true;
        var leakyCausal = NextToken(leaky, windows, mid, batch);
        leaky.Causal = false;
        var leakySeen = NextToken(leaky, windows, mid, batch);
        var allPositions = WholeWindowLoss(dec, windows, batch);
        (string Row, string Short, string Sees, Score S)[] scores =
        [
            ("BERT, [MASK] at m", "BERT both sides", "both sides: tokens 0..m−1 and m+1..T−1", both),
            ("BERT, [MASK] at m, right side cut off", "BERT left only", "the left side only: tokens 0..m−1", left),
            ("GPT-2, predicting token m at row m−1", "GPT-2", "the left side only: tokens 0..m−1", next),
            ("GPT-2 trained without the causal mask, scored causally", "GPT-2 leak-trained", "the left side only: tokens 0..m−1", leakyCausal),
            ("GPT-2 trained without the causal mask, scored with it off", "GPT-2 leak open", "the left side and token m itself (the leak)", leakySeen),
            ("unigram (training frequencies + 1, no context)", "unigram", "nothing", new Score(uniLoss, uniAcc, windows.Length)),
        ];
        var srows = new List<IReadOnlyList<string>>();
        var jscores = new JsonArray();
        foreach (var (row, _, sees, s) in scores)
        {
            srows.Add([row, sees, F(s.Loss), F(100 * s.Accuracy) + "%"]);
            jscores.Add((JsonNode)new JsonObject { ["model"] = row, ["sees"] = sees, ["loss"] = J(s.Loss), ["accuracy"] = J(s.Accuracy), ["count"] = s.Count });
        }
        r.Data["middle"] = mid;
        r.Data["scores"] = jscores;
        r.Data["gpt2_all_positions_loss"] = J(allPositions);
        r.Method.Add($"**Scoring.** {windows.Length} windows of {t} tokens evenly spaced over the held-out text; the token scored is the middle one, m = {mid}. " +
                     "BERT gets the window with token m replaced by [MASK] (nothing else masked) and is scored at m; with the right side cut off it gets tokens 0..m with [MASK] at m. " +
                     "GPT-2 gets the window and is scored at row m−1 (its prediction of token m, which the causal mask keeps from seeing token m and after). " +
                     "Loss is the mean −ln p(token m), accuracy the share of windows whose top token is token m.");
        r.Tables.Add(new($"**Predicting the middle token of held-out windows** ({windows.Length} windows, m = {mid}; chance: ln {v} = {F(Math.Log(v))}):",
            ["model", "sees", "loss", "top-1 accuracy"], srows));

        // what each can do: fill in the middle, and generate
        ctx.Report("examples", 0.9);
        var examples = new List<IReadOnlyList<string>>();
        var jex = new JsonArray();
        var bert = BertModel.Create(enc.Parameters.ValueSource, enc.Config, withMlmHead: true);
        using (var gpt = InferenceModel(dec))
        {
            var seq = gpt.CreateState(t);
            for (int e = 0; e < Math.Min(6, windows.Length); e++)
            {
                var w = windows[e * (windows.Length / Math.Min(6, windows.Length))];
                int eb = Inference.Sampling.Sampler.ArgMax(BertFill(bert, w, mid, maskId));
                seq.Truncate(0);
                int gb = Inference.Sampling.Sampler.ArgMax(seq.Forward(w.AsSpan(0, mid), allLogits: false));
                string l = Show(tok, w.AsSpan(mid - Math.Min(8, mid), Math.Min(8, mid))), rt = Show(tok, w.AsSpan(mid + 1, Math.Min(8, t - mid - 1)));
                examples.Add([$"…{l} **[?]** {rt}…", Show(tok, [w[mid]]), Show(tok, [eb]), Show(tok, [gb])]);
                jex.Add((JsonNode)new JsonObject { ["left"] = l, ["right"] = rt, ["truth"] = w[mid], ["bert"] = eb, ["gpt2"] = gb });
            }
        }
        r.Data["examples"] = jex;
        r.Tables.Add(new("**Filling in the middle token** (a few of the windows; ⏎ is a line break):", ["context", "truth", "BERT (both sides)", "GPT-2 (left side)"], examples));

        int promptLen = Math.Min(12, t / 2), genLen = Math.Min(24, t - promptLen);
        var prompt = heldIds.AsSpan(0, promptLen).ToArray();
        var gens = new List<IReadOnlyList<string>>();
        var jgen = new JsonObject { ["prompt"] = new JsonArray([.. prompt.Select(i => (JsonNode)i)]) };
        foreach (var (name, model) in new[] { ("GPT-2 (causal)", dec), ("GPT-2, no causal mask", leaky) })
        {
            var ids = GreedyDecoder(model, prompt, genLen);
            gens.Add([name, "greedy: the argmax of its next-token prediction, appended", Show(tok, ids)]);
            jgen[name] = new JsonArray([.. ids.Select(i => (JsonNode)i)]);
        }
        var bids = GreedyEncoder(bert, prompt, genLen, maskId);
        gens.Add(["BERT", "[MASK] appended and filled in, one token at a time", Show(tok, bids)]);
        jgen["BERT"] = new JsonArray([.. bids.Select(i => (JsonNode)i)]);
        r.Data["generation"] = jgen;
        r.Tables.Add(new($"**Generating {genLen} tokens after a held-out prompt** \"{Show(tok, prompt)}\":", ["model", "how", "continuation"], gens));

        // the masks, from the rows of real passes, and the model's output under perturbation
        ctx.Report("masks", 0.95);
        int[][] maskSeqs = [.. MaskLengths.Select((len, i) => heldIds.AsSpan(heldIds.Length / 2 + 20 * i, len).ToArray())];
        var (decMask, decDep) = DecoderMasks(dec, maskSeqs);
        var (encMask, encDep) = EncoderMasks(bert, maskSeqs);
        var padding = PaddingEffect(bert, maskSeqs);
        int decAgree = Agree(decMask, decDep), encAgree = Agree(encMask, encDep);
        r.Data["decoder_mask"] = Rows(decMask);
        r.Data["decoder_dependence"] = Rows(decDep);
        r.Data["encoder_mask"] = Rows(encMask);
        r.Data["encoder_dependence"] = Rows(encDep);
        r.Data["decoder_cells_agreeing"] = decAgree;
        r.Data["encoder_cells_agreeing"] = encAgree;
        r.Data["padding"] = new JsonObject
        {
            ["alone_vs_padded_max_diff"] = J(padding.AloneDiff), ["pads_attended_max_diff"] = J(padding.AttendedDiff),
            ["pads_attended_mean_diff"] = J(padding.AttendedMean), ["hidden_mean_abs"] = J(padding.HiddenMean),
        };
        int a = MaskLengths[0], b = MaskLengths[1], tp = MaskLengths.Max();
        r.Method.Add($"**The masks.** Two held-out sequences of {a} and {b} tokens. *Decoder*: both are fed to GPT-2's inference engine in one `BatchDecoder.Decode` (one forward pass of {a + b} rows from two sequences); " +
                     "the picture is the pass's own rows (the `ForwardBatch` the decoder built, handed out by `BatchDecoder.OnPass`): row i sees key j when j is in row i's sequence slot and its position is in the row's range of visible keys " +
                     $"`[KvStart, KvEnd)`, as the attention kernel reads it (`AttentionRows`). *Encoder*: the two are a padded batch of 2 × {tp} (`BertBatch.FromSequences`, the second padded with {tp - b} pads), " +
                     "drawn in the padded layout from the rows `BertModel.Forward` runs (`BertModel.Pack`: the real tokens only, one slot per sequence, each seeing its own sequence). " +
                     "*Check*: for every input token in turn, that token alone is replaced by another id and the pass rerun; a row depends on the token when its output (logits for GPT-2, last hidden states for BERT) changes in any bit. " +
                     "The dependence must equal the mask cell for cell: an invisible key that moved a row, or a visible one that did not, would be a disagreement.");
        r.Tables.Add(new("**The masks against the models' outputs:**", ["batch", "rows × keys", "visible cells in the mask", "cells where the dependence equals the mask"],
        [
            ["GPT-2, two sequences in one pass", $"{a + b} × {a + b}", Count(decMask).ToString(CultureInfo.InvariantCulture), $"{decAgree} of {decMask.Length}"],
            [$"BERT, padded batch 2 × {tp}", $"{2 * tp} × {2 * tp}", Count(encMask).ToString(CultureInfo.InvariantCulture), $"{encAgree} of {encMask.Length}"],
        ]));
        r.Tables.Add(new("**The padding mask in numbers** (BERT's last hidden states of the shorter sequence):", ["comparison", "max |difference|"],
        [
            ["alone (a batch of one, no padding) vs in the padded batch", F(padding.AloneDiff)],
            [$"in the padded batch vs the same batch with the pads attended (no padding mask; mean |hidden| is {F(padding.HiddenMean)})", $"{F(padding.AttendedDiff)} (mean {F(padding.AttendedMean)})"],
        ]));

        // findings, from the numbers
        double leakTrain = (double)runs["GPT-2, no causal mask"]!["final_train_loss"]!, decTrain = (double)runs["GPT-2 (causal)"]!["final_train_loss"]!;
        bool allAgree = decAgree == decMask.Length && encAgree == encMask.Length;
        r.Findings.Add("The masks as the engine applies them (the picture): GPT-2's rows see their own sequence up to themselves, a triangle per sequence, and the two sequences of one pass never see each other; " +
                       "BERT's rows see their whole sequence, left and right, and no row sees a pad (1 x: the bidirectional and the unidirectional model differ only in this mask). " +
                       (allAgree
                           ? $"Perturbing each input token moved exactly the rows the mask says: {decAgree} of {decMask.Length} cells (GPT-2) and {encAgree} of {encMask.Length} (BERT) agree."
                           : $"Perturbing each input token did NOT always move the rows the mask says: {decAgree} of {decMask.Length} cells (GPT-2) and {encAgree} of {encMask.Length} (BERT) agree."));
        r.Findings.Add($"Padding (1 p): the engine does not add −inf to padded keys, it leaves the pads out of the pass (`BertModel.Pack`): a padded sequence's hidden states differ from the same sequence alone by {F(padding.AloneDiff)}, " +
                       (padding.AloneDiff == 0 ? "which is what −inf before the softmax gives (weight exactly 0). " : "where −inf before the softmax would give exactly 0. ") + $"Without the mask the pads are attended like words and the shorter sequence's hidden states move by up to {F(padding.AttendedDiff)} (mean {F(padding.AttendedMean)}, " +
                       $"against a mean |hidden| of {F(padding.HiddenMean)}): the \"invalid information\" the note says the mask removes.");
        bool bertPlateau = both.Loss > uniLoss - 0.1;
        r.Findings.Add($"Both sides against one (1 x): predicting the middle token, BERT with both sides reaches loss {F(both.Loss)} / {F(100 * both.Accuracy)}% top-1 and with its right side cut off {F(left.Loss)} / {F(100 * left.Accuracy)}%; " +
                       $"GPT-2, from the left, {F(next.Loss)} / {F(100 * next.Accuracy)}%. Unigram frequencies alone give {F(uniLoss)} / {F(100 * uniAcc)}%. " +
                       (bertPlateau
                           ? "BERT has not left the unigram plateau: it predicts the commonest tokens whatever the context, so it shows no use of either side, and the note's point cannot be read off this run. " +
                             "Learning from 15% of the positions, the masked-LM objective needs much more training than next-token prediction at this size."
                           : both.Loss < left.Loss
                               ? $"The right context is worth {F(left.Loss - both.Loss)} nats to the same BERT: cut it off and its loss rises to the left-only figure. " +
                                 (both.Loss < next.Loss ? "With both sides BERT also beats the left-to-right GPT-2, which is what bidirectional buys: a token is predicted from everything around it." :
                                  "Yet GPT-2, which learned from every position, still predicts better from the left alone than BERT from both sides at this size and training length.")
                               : "BERT did no better with both sides than with the left only: at this size and training length it makes no use of the right context."));
        r.Findings.Add($"What the decoder has for it: its loss counts every position of every window ({batch * t} predictions per batch, against about {Math.Round(MlmMasking.ChooseRate * batch * t)} for BERT's 15%), " +
                       $"it scores a whole window in one pass (mean next-token loss over all positions of the held-out windows: {F(allPositions)}), and it generates by appending its own predictions with the KV cache. " +
                       "BERT can only be made to generate by appending [MASK] and filling it in, which is BERT with its right side cut off: one full pass per token, at the left-only quality of the table.");
        r.Findings.Add($"The leak (1 q): trained without the causal mask, row t of GPT-2 sees token t+1, its own target. Its training loss ended at {F(leakTrain)} against {F(decTrain)} for the causal model" +
                       (leakTrain < 1 ? ": it learned to copy the answer. " : leakTrain < decTrain ? " (it has begun to read the answer; a model that copied it fully would reach a loss near 0). " : ". ") +
                       $"Scored as a language model is used, causally, its held-out loss is {F(leakyCausal.Loss)} against {F(next.Loss)} for the causal model ({F(100 * leakyCausal.Accuracy)}% vs {F(100 * next.Accuracy)}% top-1), " +
                       $"and with the leak left open it scores {F(leakySeen.Loss)} / {F(100 * leakySeen.Accuracy)}%: " +
                       (leakyCausal.Loss > next.Loss ? "what it gained in training came from reading the answer; as a language model, where the answer is not there to read, it is worse than the causal one." : "at this training length it has not yet fallen behind the causal model."));
        r.Findings.Add("Where BERT uses masks (1 n): the [MASK] token of the pre-training task (`MlmMasking`) and the padding mask of the attention, both measured here. " +
                       "The note's third, \"the decoder of downstream tasks\", is the causal mask of an encoder–decoder's decoder; BERT itself has none, and SharpLM has no encoder–decoder model, so it is not measured.");
        if (quick) r.Findings.Add("Quick form: tiny models and a dozen training steps; the masks and their checks are exact, the scores only check the mechanism.");

        r.Panels.Add(new ChartPanel { Title = $"GPT-2 mask: {a}+{b} rows, one pass", XLabel = "key", YLabel = "row", Kind = ChartKind.Heat, Cells = Cells(decMask) });
        r.Panels.Add(new ChartPanel { Title = $"BERT mask: padded 2x{tp}", XLabel = "key", YLabel = "row", Kind = ChartKind.Heat, Cells = Cells(encMask) });
        r.Panels.Add(new ChartPanel
        {
            Title = "middle token, held out", Kind = ChartKind.Bar, Categories = ["loss", "top-1 x10"], YLabel = "",
            Series = [.. scores.Take(4).Select(s => new ChartSeries(s.Short, [(0, s.S.Loss), (1, 10 * s.S.Accuracy)]))],
        });
        r.Panels.Add(new ChartPanel { Title = "training loss", XLabel = "step", YLabel = "loss", Series = curves });
        r.ChartWidth = 1800;
        return new Outcome(r, enc, dec, leaky, tok, windows, mid, maskId, maskSeqs);
    }

    /// <summary>BERT's score of token <paramref name="mid"/> of each window replaced by [MASK], with the window whole or cut after it.</summary>
    internal static Score FillMask(TrainModel enc, int[][] windows, int mid, int maskId, int batch, bool leftOnly)
    {
        int t = leftOnly ? mid + 1 : windows[0].Length;
        return Scored(enc, windows, batch, t, mid, (w, x, y) =>
        {
            w.AsSpan(0, t).CopyTo(x);
            x[mid] = maskId;
            y[mid] = w[mid];
        });
    }

    /// <summary>A decoder's score of token <paramref name="mid"/> of each window, predicted at row mid − 1.</summary>
    internal static Score NextToken(TrainModel dec, int[][] windows, int mid, int batch) =>
        Scored(dec, windows, batch, windows[0].Length, mid - 1, (w, x, y) =>
        {
            w.CopyTo(x);
            y[mid - 1] = w[mid];
        });

    /// <summary>The decoder's mean next-token loss over every position of the windows.</summary>
    private static double WholeWindowLoss(TrainModel dec, int[][] windows, int batch)
    {
        int t = windows[0].Length - 1;
        double sum = 0;
        int n = 0;
        for (int i = 0; i < windows.Length; i += batch)
        {
            int b = Math.Min(batch, windows.Length - i);
            var x = new int[b * t];
            var y = new int[b * t];
            for (int j = 0; j < b; j++)
            {
                windows[i + j].AsSpan(0, t).CopyTo(x.AsSpan(j * t));
                windows[i + j].AsSpan(1, t).CopyTo(y.AsSpan(j * t));
            }
            sum += dec.Forward(x, y, b, t) * b * t;
            n += b * t;
        }
        return sum / n;
    }

    /// <summary>Writes one window's inputs and targets (targets start at −1).</summary>
    private delegate void FillWindow(int[] window, Span<int> inputs, Span<int> targets);

    /// <summary>Runs the windows through <paramref name="model"/> in batches; each window has one target, at row <paramref name="row"/>.</summary>
    private static Score Scored(TrainModel model, int[][] windows, int batch, int t, int row, FillWindow fill)
    {
        double loss = 0;
        int correct = 0, v = model.VocabSize;
        for (int i = 0; i < windows.Length; i += batch)
        {
            int b = Math.Min(batch, windows.Length - i);
            var x = new int[b * t];
            var y = new int[b * t];
            Array.Fill(y, -1);
            for (int j = 0; j < b; j++) fill(windows[i + j], x.AsSpan(j * t, t), y.AsSpan(j * t, t));
            loss += model.Forward(x, y, b, t) * b;
            var logits = model.Logits;
            for (int j = 0; j < b; j++)
                if (Inference.Sampling.Sampler.ArgMax(logits.Slice((j * t + row) * v, v)) == y[j * t + row]) correct++;
        }
        return new Score(loss / windows.Length, (double)correct / windows.Length, windows.Length);
    }

    /// <summary>A <see cref="LanguageModel"/> over a trained decoder's parameters (the inference engine: KV caches, batches of sequences).</summary>
    internal static LanguageModel InferenceModel(TrainModel dec)
    {
        var src = dec.Parameters.ValueSource;
        return new LanguageModel(src, DecoderWeights.Bind(BoundTensors.Bind(src, dec.Config, TensorNaming.HuggingFace)), null, ModelLoadOptions.Default);
    }

    /// <summary>BERT's masked-LM logits (V) at position <paramref name="mid"/> of <paramref name="w"/> with it replaced by [MASK].</summary>
    internal static float[] BertFill(BertModel bert, int[] w, int mid, int maskId)
    {
        var x = (int[])w.Clone();
        x[mid] = maskId;
        var hidden = bert.Forward(BertBatch.FromSequences([x]));
        return bert.MlmLogits(hidden, [mid]);
    }

    private static int[] GreedyDecoder(TrainModel model, int[] prompt, int count)
    {
        using var lm = InferenceModel(model);
        var seq = lm.CreateState(prompt.Length + count);
        var outIds = new int[count];
        int next = Inference.Sampling.Sampler.ArgMax(seq.Forward(prompt, allLogits: false));
        for (int i = 0; i < count; i++)
        {
            outIds[i] = next;
            if (i + 1 < count) next = Inference.Sampling.Sampler.ArgMax(seq.Forward([next], allLogits: false));
        }
        return outIds;
    }

    private static int[] GreedyEncoder(BertModel bert, int[] prompt, int count, int maskId)
    {
        var ids = new List<int>(prompt);
        var outIds = new int[count];
        for (int i = 0; i < count; i++)
        {
            int[] x = [.. ids, maskId];
            outIds[i] = Inference.Sampling.Sampler.ArgMax(BertFill(bert, x, x.Length - 1, maskId));
            ids.Add(outIds[i]);
        }
        return outIds;
    }

    /// <summary>
    /// GPT-2's mask and dependence for the sequences fed together in one pass: mask[i, j] when the pass's row i sees key
    /// row j (same slot, position in [KvStart, KvEnd)); dep[i, j] when replacing input token j changes row i's logits.
    /// </summary>
    internal static (bool[,] Mask, bool[,] Dependence) DecoderMasks(TrainModel dec, int[][] seqs)
    {
        using var lm = InferenceModel(dec);
        int n = seqs.Sum(s => s.Length), v = dec.VocabSize;
        using var bd = lm.CreateBatch(n, seqs.Length);
        bool[,]? mask = null;
        int passes = 0;
        bd.OnPass = fb =>
        {
            passes++;
            mask = MaskOf(fb, (slot, key) => RowOf(fb, slot, key));
        };
        float[][] Pass(int[][] inputs)
        {
            var ss = inputs.Select(_ => bd.AddSequence(n)).ToArray();
            bd.Decode([.. ss.Select((s, i) => new SequenceInput(s, inputs[i], AllLogits: true))]);
            var logits = ss.Select(s => s.AllLogits.ToArray()).ToArray();
            foreach (var s in ss) bd.Drop(s);
            var rows = new float[n][];
            int r = 0;
            for (int i = 0; i < inputs.Length; i++)
                for (int p = 0; p < inputs[i].Length; p++) rows[r++] = logits[i].AsSpan(p * v, v).ToArray();
            return rows;
        }
        var baseline = Pass(seqs);
        if (passes != 1 || mask is not { } m || m.GetLength(0) != n) throw new InvalidOperationException($"the {n} tokens took {passes} passes, not one");
        bd.OnPass = null;
        var dep = new bool[n, n];
        int j = 0;
        for (int si = 0; si < seqs.Length; si++)
            for (int p = 0; p < seqs[si].Length; p++, j++)
            {
                var changed = seqs.Select(s => (int[])s.Clone()).ToArray();
                changed[si][p] = Other(changed[si][p]);
                var rows = Pass(changed);
                for (int i = 0; i < n; i++) dep[i, j] = !rows[i].AsSpan().SequenceEqual(baseline[i]);
            }
        return (m, dep);
    }

    /// <summary>
    /// BERT's mask and dependence for the padded batch of the sequences, in the padded layout (B·T rows and keys): the
    /// mask from the packed rows <see cref="BertModel.Forward"/> runs; dep[i, j] when replacing token j (pads included)
    /// changes row i's last hidden state.
    /// </summary>
    internal static (bool[,] Mask, bool[,] Dependence) EncoderMasks(BertModel bert, int[][] seqs)
    {
        var batch = BertBatch.FromSequences(seqs);
        int n = batch.Batch * batch.Time, dim = bert.Config.Width;
        var (fb, rowOf) = BertModel.Pack(batch);
        var mask = MaskOf(fb, (slot, key) => fb.SlotRows[slot] + key, rowOf, n);
        var baseline = bert.Forward(batch);
        var dep = new bool[n, n];
        for (int j = 0; j < n; j++)
        {
            var ids = (int[])batch.Ids.Clone();
            ids[j] = Other(ids[j]);
            var h = bert.Forward(batch with { Ids = ids });
            for (int i = 0; i < n; i++) dep[i, j] = !h.AsSpan(i * dim, dim).SequenceEqual(baseline.AsSpan(i * dim, dim));
        }
        return (mask, dep);
    }

    /// <summary>The shorter sequence's hidden states: alone vs padded (max |diff|), padded vs pads attended (max and mean |diff|), and their mean |value|.</summary>
    internal static (double AloneDiff, double AttendedDiff, double AttendedMean, double HiddenMean) PaddingEffect(BertModel bert, int[][] seqs)
    {
        var batch = BertBatch.FromSequences(seqs);
        int dim = bert.Config.Width, T = batch.Time, s = Array.FindIndex(seqs, q => q.Length < T), len = seqs[s].Length;
        var padded = bert.Forward(batch);
        var alone = bert.Forward(BertBatch.FromSequences([seqs[s]]));
        var attended = bert.Forward(batch with { Mask = [.. Enumerable.Repeat(1, batch.Ids.Length)] });
        double aloneDiff = 0, attMax = 0, attSum = 0, hSum = 0;
        for (int i = 0; i < len * dim; i++)
        {
            float h = padded[s * T * dim + i];
            aloneDiff = Math.Max(aloneDiff, Math.Abs(h - alone[i]));
            double d = Math.Abs(h - attended[s * T * dim + i]);
            attMax = Math.Max(attMax, d);
            attSum += d;
            hSum += Math.Abs(h);
        }
        return (aloneDiff, attMax, attSum / (len * dim), hSum / (len * dim));
    }

    /// <summary>
    /// The visibility matrix of a pass's rows: row i sees key k of its slot for KvStart[i] ≤ k &lt; KvEnd[i] (the
    /// attention kernel's reading of <see cref="ForwardBatch.AttentionRows"/>); <paramref name="keyRow"/> maps (slot, key)
    /// to the row that wrote that key, <paramref name="layout"/> rows to places in a grid of <paramref name="size"/>
    /// (identity when null).
    /// </summary>
    internal static bool[,] MaskOf(ForwardBatch fb, Func<int, int, int> keyRow, int[]? layout = null, int? size = null)
    {
        int n = size ?? fb.Rows;
        var m = new bool[n, n];
        for (int i = 0; i < fb.Rows; i++)
            for (int k = fb.KvStart[i]; k < fb.KvEnd[i]; k++)
            {
                int j = keyRow(fb.Slot[i], k);
                m[layout?[i] ?? i, layout?[j] ?? j] = true;
            }
        return m;
    }

    /// <summary>The row of a decoder pass that holds key <paramref name="key"/> (its position) of <paramref name="slot"/>.</summary>
    private static int RowOf(ForwardBatch fb, int slot, int key)
    {
        for (int i = 0; i < fb.Rows; i++) if (fb.Slot[i] == slot && fb.Positions[i] == key) return i;
        throw new InvalidOperationException($"no row of the pass holds position {key} of slot {slot}");
    }

    /// <summary>Another ordinary token (never [MASK], the last id).</summary>
    private static int Other(int id) => id == 0 ? 1 : id - 1;

    private static int Agree(bool[,] a, bool[,] b)
    {
        int n = 0;
        for (int i = 0; i < a.GetLength(0); i++) for (int j = 0; j < a.GetLength(1); j++) if (a[i, j] == b[i, j]) n++;
        return n;
    }

    private static int Count(bool[,] a)
    {
        int n = 0;
        foreach (bool x in a) if (x) n++;
        return n;
    }

    private static JsonArray Rows(bool[,] a) =>
        [.. Enumerable.Range(0, a.GetLength(0)).Select(i => (JsonNode)new string([.. Enumerable.Range(0, a.GetLength(1)).Select(j => a[i, j] ? '1' : '0')]))];

    private static double[,] Cells(bool[,] a)
    {
        var c = new double[a.GetLength(0), a.GetLength(1)];
        for (int i = 0; i < a.GetLength(0); i++) for (int j = 0; j < a.GetLength(1); j++) c[i, j] = a[i, j] ? 1 : 0;
        return c;
    }

    private static string Show(Tokenizer tok, ReadOnlySpan<int> ids)
    {
        var sb = new StringBuilder(tok.Decode(ids, skipSpecialTokens: false));
        sb.Replace("\n", "⏎");
        return sb.ToString();
    }
}
