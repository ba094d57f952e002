using SharpLM.Formats;
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
/// A BERT-family encoder (BERT, MiniLM, DistilBERT, ALBERT) for inference: padded batches in, last hidden states out,
/// over the one encoder definition (<see cref="Encoder"/>). Shapes: B batch, T time (padded), C hidden, V vocab.
/// Only real tokens go through the layers: each sequence's tokens are one slot of packed rows, so padding costs nothing
/// in the matrix products and each sequence attends over its own real keys only, which is exactly the padded computation
/// with -inf added to padded keys before the softmax. Position ids are the padded positions t, as in Hugging Face's
/// BertModel. The model does not own its weight source.
/// </summary>
internal sealed class BertModel
{
    public ModelConfig Config { get; }
    public EncoderWeights Weights { get; }

    private EncoderBuffers? _buffers;

    private BertModel(EncoderWeights weights)
    {
        Config = weights.Config;
        Weights = weights;
        weights.PackLayers(); // every pass multiplies by the packed panels
    }

    /// <summary>Binds a model from a weight source and a config (the source must outlive the model). The layers' matrices
    /// are copied into packed panels, so later changes to the source's values are not seen: bind a new model then.</summary>
    public static BertModel Create(IWeightSource src, ModelConfig cfg, bool withMlmHead = false)
    {
        string prefix = EncoderWeights.DetectPrefix(src, cfg.Arch);
        // with the head, its tensors are required (the decoder may be tied to the word embeddings)
        var bound = BoundTensors.Bind(src, cfg, TensorNaming.HuggingFace, prefix, allowExtra: true,
                                      require: d => withMlmHead && d.Component == "mlm_head" && d.Role != "mlm_decoder" && src.Tensors.Keys.Any(IsHeadName));
        return new BertModel(EncoderWeights.Bind(bound, withMlmHead));

        bool IsHeadName(string n) => cfg.Arch.Tensors.Any(d => d.Component == "mlm_head" && d.Hf == n);
    }

    /// <summary>Last hidden states (B,T,C) of a padded batch; rows of padded positions (mask 0) are zeros.</summary>
    public float[] Forward(BertBatch batch)
    {
        Check(batch);
        int dim = Config.Width;
        var (fb, rowOf) = Pack(batch);
        int n = fb.Rows;
        // the activation buffers are kept for the next call (taken and returned atomically, so concurrent calls each get
        // their own): a batch of one short text should not pay for allocating and zeroing them
        var buf = Interlocked.Exchange(ref _buffers, null);
        if (buf is null || buf.Capacity < n) buf = new EncoderBuffers(Config, Math.Max(n, 64), perLayer: false);
        Encoder.Forward(Weights, fb, buf);
        var result = new float[batch.Ids.Length * dim];
        for (int i = 0; i < n; i++) buf.XOut.AsSpan(i * dim, dim).CopyTo(result.AsSpan(rowOf[i] * dim, dim));
        Interlocked.Exchange(ref _buffers, buf);
        return result;
    }

    /// <summary>
    /// The rows of the pass that <see cref="Forward"/> makes of a padded batch: the real tokens only, one slot per
    /// sequence, each row seeing every real key of its own sequence (the padding mask, as the engine applies it);
    /// <c>RowOf[i]</c> is row i's place b*T + t in the padded layout.
    /// </summary>
    internal static (ForwardBatch Batch, int[] RowOf) Pack(BertBatch batch)
    {
        int T = batch.Time;
        int n = 0;
        for (int i = 0; i < batch.Ids.Length; i++) if (batch.Mask[i] != 0) n++;
        var fb = new ForwardBatch(Math.Max(n, 1), batch.Batch);
        var rowOf = new int[n];
        for (int s = 0; s < batch.Batch; s++)
        {
            int len = 0;
            for (int t = 0; t < T; t++) if (batch.Mask[s * T + t] != 0) len++;
            for (int t = 0; t < T; t++)
            {
                if (batch.Mask[s * T + t] == 0) continue;
                rowOf[fb.Rows] = s * T + t;
                fb.Add(batch.Ids[s * T + t], t, s, 0, len, output: true, batch.TypeIds?[s * T + t] ?? 0);
            }
        }
        fb.GroupBySlot();
        return (fb, rowOf);
    }

    /// <summary>Masked-LM logits (rows, V) for the given rows (b*T + t) of the last hidden states (B,T,C).</summary>
    public float[] MlmLogits(float[] hidden, IReadOnlyList<int> rows) => Encoder.MlmLogits(Weights, hidden, rows);

    private void Check(BertBatch b)
    {
        if (b.Batch <= 0 || b.Time <= 0) throw new ArgumentException($"empty batch ({b.Batch} x {b.Time}); give at least one token");
        if (b.Time > Config.Context)
            throw new ArgumentException($"sequence length {b.Time} exceeds the model's {Config.Context} positions; truncate the input");
        int n = b.Batch * b.Time;
        if (b.Ids.Length != n || b.Mask.Length != n || (b.TypeIds is not null && b.TypeIds.Length != n))
            throw new ArgumentException($"batch arrays must hold B*T = {n} entries (ids {b.Ids.Length}, mask {b.Mask.Length}, types {b.TypeIds?.Length})");
        for (int i = 0; i < n; i++)
        {
            if ((uint)b.Ids[i] >= (uint)Config.Vocab)
                throw new ArgumentException($"token id {b.Ids[i]} at batch {i / b.Time}, position {i % b.Time} is outside the vocabulary [0, {Config.Vocab})");
            if (b.TypeIds is not null && (uint)b.TypeIds[i] >= (uint)Math.Max(Config.TokenTypes, 1))
                throw new ArgumentException($"token type id {b.TypeIds[i]} at batch {i / b.Time}, position {i % b.Time} is outside [0, {Math.Max(Config.TokenTypes, 1)})");
        }
        for (int s = 0; s < b.Batch; s++)
        {
            bool any = false;
            for (int t = 0; t < b.Time; t++) any |= b.Mask[s * b.Time + t] != 0;
            if (!any) throw new ArgumentException($"sequence {s} of the batch has no unmasked token; each needs at least one");
        }
    }
}
