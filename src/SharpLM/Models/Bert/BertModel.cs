using SharpLM.Formats;
using SharpLM.Kernels;
using SharpLM.Kernels.Naive;
using SharpLM.Tensors;
using SharpLM.Models;

namespace SharpLM.Models.Bert;

/// <summary>
/// A batch of token ids laid out (B, T) with padding: <see cref="Ids"/>[b*T + t]; <see cref="Mask"/> 1 for real tokens,
/// 0 for padding (padded keys get -inf before the softmax); <see cref="TypeIds"/> segment ids or null for all zeros.
/// </summary>
internal sealed record BertBatch(int Batch, int Time, int[] Ids, int[] Mask, int[]? TypeIds)
{
    /// <summary>Pads sequences of different lengths to the longest; mask marks the real tokens.</summary>
    public static BertBatch FromSequences(IReadOnlyList<int[]> seqs, IReadOnlyList<int[]>? typeIds = null, int padId = 0)
    {
        if (seqs.Count == 0) throw new ArgumentException("the batch is empty: give at least one sequence", nameof(seqs));
        int t = seqs.Max(s => s.Length);
        if (t == 0) throw new ArgumentException("every sequence in the batch is empty: each needs at least one token", nameof(seqs));
        var ids = new int[seqs.Count * t];
        var mask = new int[seqs.Count * t];
        int[]? types = typeIds is null ? null : new int[seqs.Count * t];
        for (int b = 0; b < seqs.Count; b++)
        {
            if (seqs[b].Length == 0) throw new ArgumentException($"sequence {b} is empty: each needs at least one token", nameof(seqs));
            for (int i = 0; i < t; i++)
            {
                bool real = i < seqs[b].Length;
                ids[b * t + i] = real ? seqs[b][i] : padId;
                mask[b * t + i] = real ? 1 : 0;
                if (types is not null && real) types[b * t + i] = typeIds![b][i];
            }
        }
        return new BertBatch(seqs.Count, t, ids, mask, types);
    }
}

/// <summary>
/// A BERT-family encoder (BERT, MiniLM, DistilBERT, ALBERT) on the engine kernels. Shapes: B batch, T time (padded),
/// E embedding size, H hidden, NH heads, HS head size, F intermediate, V vocab.
/// <code>
/// x = LayerNorm(word[id] + pos[t] + type[seg])            (B,T,E); ALBERT then projects E->H
/// per layer (post-LN):
///   a = softmax(Q K^T / sqrt(HS) + mask) V                 mask = -inf on padded keys
///   x = LayerNorm(x + a Wo^T + bo)
///   x = LayerNorm(x + act(x Wi^T + bi) Wd^T + bd)          act = GELU (erf) for BERT
/// </code>
/// Each sequence only attends to its own unpadded keys, so its output does not depend on the rest of the batch
/// (padded tokens are not computed at all, see <see cref="Forward"/>).
/// Matrix products, attention and norms run on the kernels' shared <see cref="WorkerPool"/>.
/// The model does not own its weight source.
/// </summary>
internal sealed class BertModel
{
    public BertConfig Config { get; }
    public BertWeights Weights { get; }

    public BertModel(BertConfig config, BertWeights weights)
    {
        Config = config;
        Weights = weights;
    }

    /// <summary>Binds a model from a weight source and a config (the source must outlive the model).</summary>
    public static BertModel Create(IWeightSource src, BertConfig cfg, bool withMlmHead = false)
    {
        cfg.Validate(src.Path);
        return new BertModel(cfg, BertWeights.Bind(src, cfg, withMlmHead));
    }

    /// <summary>
    /// Last hidden states (B,T,H) of a padded batch; rows of padded positions (mask 0) are zeros.
    /// <para>
    /// Only real tokens go through the layers: they are packed into N = sum(mask) rows, so padding costs nothing in the
    /// matrix products, and each sequence's queries attend over its own real keys only. That is exactly the padded
    /// computation with -inf added to padded keys before the softmax (exp(-inf) = 0), without computing the padded rows.
    /// Position ids are the padded positions t, as in Hugging Face's BertModel.
    /// </para>
    /// </summary>
    public float[] Forward(BertBatch batch)
    {
        var c = Config;
        Check(batch);
        int h = c.HiddenSize, e = c.EmbeddingSize, f = c.IntermediateSize, T = batch.Time;
        var rows = new List<int>(batch.Ids.Length);
        var starts = new int[batch.Batch + 1];
        for (int s = 0; s < batch.Batch; s++)
        {
            starts[s] = rows.Count;
            for (int t = 0; t < T; t++)
                if (batch.Mask[s * T + t] != 0) rows.Add(s * T + t);
        }
        starts[batch.Batch] = rows.Count;
        int n = rows.Count;

        var emb = new float[n * e];
        Embed(batch, rows, emb);
        float[] x;
        if (Weights.Projection is WeightMatrix proj)
        {
            x = new float[n * h];
            MatMul.Forward(emb, proj, x, n);
            AddBias(x, Weights.ProjectionB!);
        }
        else x = emb;

        var q = new float[n * h];
        var k = new float[n * h];
        var v = new float[n * h];
        var ctx = new float[n * h];
        var tmp = new float[n * h];
        var x1 = new float[n * h];
        var up = new float[n * f];
        foreach (var l in Weights.Layers)
        {
            MatMul.Forward(x, l.Wq, q, n);
            AddBias(q, l.Bq);
            MatMul.Forward(x, l.Wk, k, n);
            AddBias(k, l.Bk);
            MatMul.Forward(x, l.Wv, v, n);
            AddBias(v, l.Bv);
            Attention(q, k, v, starts, ctx);
            MatMul.Forward(ctx, l.Wo, tmp, n);
            AddBiasResidual(tmp, l.Bo, x);
            LayerNorm.Forward(tmp, l.Ln1W, l.Ln1B, x1, h, c.LayerNormEps);
            MatMul.Forward(x1, l.Wi, up, n);
            AddBias(up, l.Bi);
            Activate(up);
            MatMul.Forward(up, l.Wd, tmp, n);
            AddBiasResidual(tmp, l.Bd, x1);
            LayerNorm.Forward(tmp, l.Ln2W, l.Ln2B, x, h, c.LayerNormEps);
        }
        var result = new float[batch.Ids.Length * h];
        for (int i = 0; i < n; i++) x.AsSpan(i * h, h).CopyTo(result.AsSpan(rows[i] * h, h));
        return result;
    }

    /// <summary>
    /// Masked-LM logits (rows, V) for the given rows (b*T + t) of the last hidden states (B,T,H).
    /// Only the asked rows are projected onto the vocabulary.
    /// </summary>
    public float[] MlmLogits(float[] hidden, IReadOnlyList<int> rows)
    {
        var m = Weights.Mlm ?? throw new InvalidOperationException("this model was loaded without its masked-LM head (cls.predictions / predictions / vocab_transform)");
        int h = Config.HiddenSize, e = Config.EmbeddingSize, vsz = Config.VocabSize, r = rows.Count;
        var sel = new float[r * h];
        for (int i = 0; i < r; i++) hidden.AsSpan(rows[i] * h, h).CopyTo(sel.AsSpan(i * h, h));
        var t = new float[r * e];
        MatMul.Forward(sel, m.Dense, t, r);
        AddBias(t, m.DenseB);
        Activate(t);
        var tn = new float[r * e];
        LayerNorm.Forward(t, m.LnW, m.LnB, tn, e, Config.LayerNormEps);
        var logits = new float[r * vsz];
        MatMul.Forward(tn, m.Decoder, logits, r);
        AddBias(logits, m.DecoderB);
        return logits;
    }

    private void Check(BertBatch b)
    {
        if (b.Batch <= 0 || b.Time <= 0) throw new ArgumentException($"empty batch ({b.Batch} x {b.Time}); give at least one token");
        if (b.Time > Config.MaxPositions)
            throw new ArgumentException($"sequence length {b.Time} exceeds the model's {Config.MaxPositions} positions; truncate the input");
        int n = b.Batch * b.Time;
        if (b.Ids.Length != n || b.Mask.Length != n || (b.TypeIds is not null && b.TypeIds.Length != n))
            throw new ArgumentException($"batch arrays must hold B*T = {n} entries (ids {b.Ids.Length}, mask {b.Mask.Length}, types {b.TypeIds?.Length})");
        for (int i = 0; i < n; i++)
        {
            if ((uint)b.Ids[i] >= (uint)Config.VocabSize)
                throw new ArgumentException($"token id {b.Ids[i]} at batch {i / b.Time}, position {i % b.Time} is outside the vocabulary [0, {Config.VocabSize})");
            if (b.TypeIds is not null && (uint)b.TypeIds[i] >= (uint)Math.Max(Config.TypeVocabSize, 1))
                throw new ArgumentException($"token type id {b.TypeIds[i]} at batch {i / b.Time}, position {i % b.Time} is outside [0, {Math.Max(Config.TypeVocabSize, 1)})");
        }
        for (int s = 0; s < b.Batch; s++)
        {
            bool any = false;
            for (int t = 0; t < b.Time; t++) any |= b.Mask[s * b.Time + t] != 0;
            if (!any) throw new ArgumentException($"sequence {s} of the batch has no unmasked token; each needs at least one");
        }
    }

    /// <summary>Packed rows (index b*T + t) -> (N,E): LayerNorm(word[id] + position[t] + type[seg]).</summary>
    private void Embed(BertBatch b, List<int> rows, float[] dst)
    {
        int e = Config.EmbeddingSize;
        var w = Weights;
        var row = new float[e];
        var sum = new float[e];
        for (int r = 0; r < rows.Count; r++)
        {
            int i = rows[r], t = i % b.Time;
            Dequant(w.Word, b.Ids[i], sum);
            Dequant(w.Position, t, row);
            VecOps.AddInPlace(sum, row);
            if (w.TokenType is WeightMatrix tt)
            {
                Dequant(tt, b.TypeIds?[i] ?? 0, row);
                VecOps.AddInPlace(sum, row);
            }
            LayerNorm.Forward(sum, w.EmbLnW, w.EmbLnB, dst.AsSpan(r * e, e), e, Config.LayerNormEps);
        }
    }

    private static unsafe void Dequant(in WeightMatrix m, int r, Span<float> dst)
    {
        if (m.Type == DType.F32) new ReadOnlySpan<float>(m.Data + r * m.RowBytes, m.Cols).CopyTo(dst);
        else Tensors.Types.DTypes.Of(m.Type).DequantizeRow(m.Row(r), dst);
    }

    /// <summary>q,k,v (N,H) packed -> ctx (N,H); sequence s owns rows starts[s]..starts[s+1]-1; one (sequence, head) per pool task.</summary>
    private unsafe void Attention(float[] q, float[] k, float[] v, int[] starts, float[] ctx)
    {
        fixed (float* pq = q, pk = k, pv = v, pc = ctx)
        fixed (int* ps = starts)
        {
            var job = new AttentionJob
            {
                Q = pq, K = pk, V = pv, Ctx = pc, Starts = ps, NH = Config.NumHeads, HS = Config.HeadSize,
                H = Config.HiddenSize, Scale = 1f / MathF.Sqrt(Config.HeadSize),
            };
            WorkerPool.Shared.Run((starts.Length - 1) * Config.NumHeads, job);
        }
    }

    /// <summary>
    /// Bidirectional attention of one sequence and head over its n real tokens: for each query i,
    /// scores_j = q_i.k_j / sqrt(HS), softmax over j, ctx_i = sum_j p_j v_j. Head hd lives at columns hd*HS.
    /// </summary>
    private unsafe struct AttentionJob : IParallelJob
    {
        public float* Q, K, V, Ctx;
        public int* Starts;
        public int NH, HS, H;
        public float Scale;

        public readonly void Execute(int task)
        {
            int s = task / NH, hd = task % NH, first = Starts[s], n = Starts[s + 1] - first;
            if (n == 0) return;
            var scores = new Span<float>(Scratch.Get(Scratch.Row, n), n);
            for (int i = 0; i < n; i++)
            {
                var qi = new ReadOnlySpan<float>(Q + (long)(first + i) * H + hd * HS, HS);
                for (int j = 0; j < n; j++)
                    scores[j] = VecOps.Dot(qi, new ReadOnlySpan<float>(K + (long)(first + j) * H + hd * HS, HS)) * Scale;
                Softmax.Forward(scores);
                var o = new Span<float>(Ctx + (long)(first + i) * H + hd * HS, HS);
                o.Clear();
                for (int j = 0; j < n; j++)
                    VecOps.AddScaled(o, new ReadOnlySpan<float>(V + (long)(first + j) * H + hd * HS, HS), scores[j]);
            }
        }
    }

    private void Activate(Span<float> x)
    {
        switch (Config.HiddenAct)
        {
            case "gelu": Activations.Gelu(x); break;
            case "relu":
                for (int i = 0; i < x.Length; i++) x[i] = Math.Max(x[i], 0);
                break;
            default: Activations.GeluTanh(x); break;
        }
    }

    private static void AddBias(Span<float> x, ReadOnlySpan<float> bias)
    {
        int c = bias.Length;
        for (int r = 0; r < x.Length / c; r++) VecOps.AddInPlace(x.Slice(r * c, c), bias);
    }

    private static void AddBiasResidual(Span<float> x, ReadOnlySpan<float> bias, ReadOnlySpan<float> residual)
    {
        int c = bias.Length;
        for (int r = 0; r < x.Length / c; r++)
        {
            var row = x.Slice(r * c, c);
            VecOps.AddInPlace(row, bias);
            VecOps.AddInPlace(row, residual.Slice(r * c, c));
        }
    }
}
