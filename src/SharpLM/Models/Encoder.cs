using SharpLM.Kernels;
using SharpLM.Tensors;

namespace SharpLM.Models;

/// <summary>One post-norm encoder block's weights (ALBERT: the same object for every layer of a group).</summary>
internal sealed class EncoderLayerWeights
{
    public required LinearWeights Q { get; init; }   // (C, C)
    public required LinearWeights K { get; init; }
    public required LinearWeights V { get; init; }
    public required LinearWeights O { get; init; }
    public required NormWeights AttnNorm { get; init; }
    public required LinearWeights Up { get; init; }  // (F, C)
    public required LinearWeights Down { get; init; } // (C, F)
    public required NormWeights OutNorm { get; init; }
}

/// <summary>The masked-language-model head: transform (dense C->E, activation, LayerNorm) then the decoder (V, E), the
/// word embeddings unless the checkpoint holds its own, plus a bias (V).</summary>
internal sealed class MlmHeadWeights
{
    public required LinearWeights Dense { get; init; }
    public required NormWeights Norm { get; init; }
    public required LinearWeights Decoder { get; init; }
}

/// <summary>The weights of a BERT-family encoder, bound by role through the architecture table.</summary>
internal sealed class EncoderWeights
{
    public required ModelConfig Config { get; init; }
    public required WeightMatrix Word { get; init; }        // (V, E)
    public required WeightMatrix Position { get; init; }    // (P, E)
    public WeightMatrix? TokenType { get; init; }           // (T, E); null for DistilBERT
    public required NormWeights EmbeddingNorm { get; init; } // (E)
    public LinearWeights? Projection { get; init; }         // ALBERT (C, E)
    public required EncoderLayerWeights[] Layers { get; init; }   // L entries
    public MlmHeadWeights? Mlm { get; init; }
    public LinearWeights? Pooler { get; init; }             // (C, C), tanh; not used by embeddings
    public required BoundTensors Tensors { get; init; }
    /// <summary>The pinned arrays holding packed GEMM panels that <see cref="Layers"/>' matrices point into
    /// (<see cref="LinearWeights.Packed"/>): owned by the weights, so the pointers stay valid as long as the weights do.</summary>
    public List<float[]> PackedPanels { get; } = [];

    /// <summary>Packs the layers' matrices once for the packed GEMM (ALBERT's shared layers once per group), for weights
    /// that no longer change (inference); the panels are kept in <see cref="PackedPanels"/>. Packing twice does nothing.</summary>
    public void PackLayers()
    {
        var packed = new Dictionary<EncoderLayerWeights, EncoderLayerWeights>(ReferenceEqualityComparer.Instance);
        for (int l = 0; l < Layers.Length; l++)
        {
            var lw = Layers[l];
            if (!packed.TryGetValue(lw, out var p))
                packed[lw] = p = new EncoderLayerWeights
                {
                    Q = lw.Q.Packed(PackedPanels), K = lw.K.Packed(PackedPanels), V = lw.V.Packed(PackedPanels), O = lw.O.Packed(PackedPanels),
                    AttnNorm = lw.AttnNorm, Up = lw.Up.Packed(PackedPanels), Down = lw.Down.Packed(PackedPanels), OutNorm = lw.OutNorm,
                };
            Layers[l] = p;
        }
    }

    /// <summary>The Hugging Face class prefix of <paramref name="src"/>'s base-model tensors ("", "bert.", ...).</summary>
    public static string DetectPrefix(Formats.IWeightSource src, Architecture arch)
    {
        string word = arch.Tensor("token_embd").Hf;
        foreach (var p in Bert.BertArch.Prefixes)
            if (src.Tensors.ContainsKey(word.Replace("{P}", p, StringComparison.Ordinal))) return p;
        throw new InvalidDataException(
            $"{src.Path}: no word embeddings found (looked for '{word}' with {{P}} one of {string.Join(", ", Bert.BertArch.Prefixes.Select(p => $"'{p}'"))}). " +
            $"Is this a BERT-family model? First tensors: {string.Join(", ", src.Tensors.Keys.Take(8))}");
    }

    public static EncoderWeights Bind(BoundTensors t, bool withMlmHead)
    {
        var c = t.Config;
        if (c.Arch.NotRunnableReason is { } why) throw new NotSupportedException($"{t.Path}: {why}");
        if (c.Unsupported is { } u) throw new NotSupportedException($"{t.Path}: {u}");
        var groups = new EncoderLayerWeights[c.LayerGroups];
        for (int gi = 0; gi < groups.Length; gi++)
            groups[gi] = new EncoderLayerWeights
            {
                Q = LinearWeights.Bind(t, "attn_q", gi), K = LinearWeights.Bind(t, "attn_k", gi), V = LinearWeights.Bind(t, "attn_v", gi),
                O = LinearWeights.Bind(t, "attn_output", gi), AttnNorm = NormWeights.Bind(t, "attn_output_norm", gi, c),
                Up = LinearWeights.Bind(t, "ffn_up", gi), Down = LinearWeights.Bind(t, "ffn_down", gi),
                OutNorm = NormWeights.Bind(t, "layer_output_norm", gi, c),
            };
        int perGroup = c.Layers / c.LayerGroups;
        var layers = new EncoderLayerWeights[c.Layers];
        for (int l = 0; l < c.Layers; l++) layers[l] = groups[l / perGroup];
        var word = t.Matrix("token_embd");
        MlmHeadWeights? mlm = null;
        if (withMlmHead)
        {
            if (!t.Has("mlm_dense"))
                throw new InvalidDataException(
                    $"{t.Path}: this {c.Architecture} model has no masked-LM head ('{c.Arch.Tensor("mlm_dense").Hf}' and the rest are absent). " +
                    "It is an encoder for embeddings (e.g. a sentence-transformers model); fill-mask needs a *ForMaskedLM checkpoint such as bert-base-uncased.");
            mlm = new MlmHeadWeights
            {
                Dense = LinearWeights.Bind(t, "mlm_dense", -1),
                Norm = NormWeights.Bind(t, "mlm_norm", -1, c),
                Decoder = new LinearWeights(t.OptionalMatrix("mlm_decoder") ?? word, t.Vector("mlm_bias")),
            };
        }
        return new EncoderWeights
        {
            Config = c,
            Word = word,
            Position = t.Matrix("position_embd"),
            TokenType = t.OptionalMatrix("token_types"),
            EmbeddingNorm = NormWeights.Bind(t, "token_embd_norm", -1, c),
            Projection = t.Has("embd_proj") ? LinearWeights.Bind(t, "embd_proj", -1) : null,
            Layers = layers,
            Mlm = mlm,
            Pooler = t.Has("pooler") ? LinearWeights.Bind(t, "pooler", -1) : null,
            Tensors = t,
        };
    }
}

/// <summary>One encoder block's activations (N rows).</summary>
internal sealed class EncoderLayerBuffers
{
    public required float[] X, Q, K, V, Att, Lse, Proj, A, X1, Mean1, Rstd1, U, Act, B2, Mean2, Rstd2;
}

/// <summary>The activation buffers of an encoder pass (per layer for training, shared for inference).</summary>
internal sealed class EncoderBuffers
{
    private readonly EncoderLayerBuffers[] _layers;

    public EncoderBuffers(ModelConfig c, int capacity, bool perLayer)
    {
        Capacity = capacity;
        PerLayer = perLayer;
        int n = capacity;
        float[] A(long len) => GC.AllocateArray<float>(checked((int)Math.Max(len, 1)), pinned: true);
        int stat = NormOptions.StatLength(c, n); // per row, or per feature for BatchNorm
        EncoderLayerBuffers Make() => new()
        {
            X = A((long)n * c.Width), Q = A((long)n * c.Width), K = A((long)n * c.Width), V = A((long)n * c.Width),
            Att = A((long)n * c.Width), Lse = A((long)n * c.Heads), Proj = A((long)n * c.Width), A = A((long)n * c.Width),
            X1 = A((long)n * c.Width), Mean1 = A(stat), Rstd1 = A(stat), U = A((long)n * c.FfnWidth), Act = A((long)n * c.FfnWidth),
            B2 = A((long)n * c.Width), Mean2 = A(stat), Rstd2 = A(stat),
        };
        _layers = perLayer ? [.. Enumerable.Range(0, c.Layers).Select(_ => Make())] : [Make()];
        XOut = perLayer ? A((long)n * c.Width) : _layers[0].X;
        E0 = A((long)n * c.EmbeddingWidth);
        EOut = c.EmbeddingWidth == c.Width && !perLayer ? _layers[0].X : A((long)n * c.EmbeddingWidth);
        EMean = A(stat);
        ERstd = A(stat);
    }

    public int Capacity { get; }
    public bool PerLayer { get; }

    public EncoderLayerBuffers Layer(int l) => _layers[PerLayer ? l : 0];

    /// <summary>Summed embeddings (N, E) before their LayerNorm, the normalised ones, and its statistics.</summary>
    public float[] E0 { get; }
    public float[] EOut { get; }
    public float[] EMean { get; }
    public float[] ERstd { get; }

    /// <summary>The last hidden states (N, C).</summary>
    public float[] XOut { get; }
}

/// <summary>The MLM head's activations and gradients (R rows).</summary>
internal sealed class MlmBuffers(ModelConfig c, int n)
{
    private static float[] A(long len) => GC.AllocateArray<float>(checked((int)Math.Max(len, 1)), pinned: true);

    public float[] T { get; } = A((long)n * c.EmbeddingWidth);
    public float[] TAct { get; } = A((long)n * c.EmbeddingWidth);
    public float[] TNorm { get; } = A((long)n * c.EmbeddingWidth);
    public float[] Mean { get; } = A(NormOptions.StatLength(c, n));
    public float[] Rstd { get; } = A(NormOptions.StatLength(c, n));
    public float[] Logits { get; } = A((long)n * c.Vocab);
}

/// <summary>
/// The post-norm encoder of the BERT family, written once for inference (embeddings, fill-mask) and training (masked
/// LM); the study note's bidirectional "NLU" model:
/// <code>
/// x = LayerNorm(word[id] + pos[t] + type[seg])            (N,E); ALBERT then projects E -> C
/// per block:  x = LN(x + attention(x Wq, x Wk, x Wv) Wo)  every row sees its whole sequence, never the padding
///             x = LN(x + act(x Wi + bi) Wd + bd)           act = GELU (erf) for BERT
/// </code>
/// Sequences are packed without padding: a batch slot per sequence, rows grouped by slot, so padding costs nothing and
/// a sequence's output does not depend on the rest of the batch (the padding mask of the study note, by construction).
/// </summary>
internal static class Encoder
{
    public static void Forward(EncoderWeights w, ForwardBatch batch, EncoderBuffers buf)
    {
        var c = w.Config;
        int n = batch.Rows, dim = c.Width, e = c.EmbeddingWidth, ff = c.FfnWidth;
        if (n > buf.Capacity) throw new ArgumentException($"{n} rows exceed the buffers' {buf.Capacity}", nameof(batch));
        var e0 = buf.E0.AsSpan(0, n * e);
        Embedding.Forward(w.Word, batch.Tokens.AsSpan(0, n), e0);
        Embedding.AddRows(w.Position, batch.Positions.AsSpan(0, n), e0, "position");
        if (w.TokenType is WeightMatrix tt) Embedding.AddRows(tt, batch.TypeIds.AsSpan(0, n), e0, "token type");
        w.EmbeddingNorm.Forward(e0, buf.EOut, buf.EMean, buf.ERstd, e);
        var x0 = buf.Layer(0).X.AsSpan(0, n * dim);
        if (w.Projection is LinearWeights proj) proj.Forward(buf.EOut.AsSpan(0, n * e), x0, n);
        else if (buf.EOut != buf.Layer(0).X) buf.EOut.AsSpan(0, n * dim).CopyTo(x0);

        var kv = new ActivationKv(l => buf.Layer(l).K, l => buf.Layer(l).V, batch, dim);
        var rows = batch.AttentionRows;
        for (int l = 0; l < c.Layers; l++)
        {
            var a = buf.Layer(l);
            var lw = w.Layers[l];
            var x = a.X.AsSpan(0, n * dim);
            lw.Q.Forward(x, a.Q, n);
            lw.K.Forward(x, a.K, n);
            lw.V.Forward(x, a.V, n);
            for (int s = 0; s < batch.Slots; s++)
            {
                batch.KBase[s] = kv.Keys(l, s);
                batch.VBase[s] = kv.Values(l, s);
            }
            Attention.Forward(a.Q, a.Att, a.Lse, n, c.Heads, c.Heads, c.HeadSize, rows, WorkerPool.Shared);
            lw.O.Forward(a.Att, a.Proj, n);
            Add.Forward(x, a.Proj.AsSpan(0, n * dim), a.A.AsSpan(0, n * dim));
            lw.AttnNorm.Forward(a.A.AsSpan(0, n * dim), a.X1, a.Mean1, a.Rstd1, dim);
            var x1 = a.X1.AsSpan(0, n * dim);
            lw.Up.Forward(x1, a.U, n);
            Activation.Forward(c.Activation, a.U.AsSpan(0, n * ff), a.Act.AsSpan(0, n * ff));
            lw.Down.Forward(a.Act, a.Proj, n);
            Add.Forward(x1, a.Proj.AsSpan(0, n * dim), a.B2.AsSpan(0, n * dim));
            var next = l + 1 < c.Layers ? buf.Layer(l + 1).X : buf.XOut;
            lw.OutNorm.Forward(a.B2.AsSpan(0, n * dim), next, a.Mean2, a.Rstd2, dim);
        }
        GC.KeepAlive(batch); // rows points into its pinned arrays
    }

    /// <summary>Masked-LM logits (R, V) of rows <paramref name="rows"/> of the last hidden states.</summary>
    public static float[] MlmLogits(EncoderWeights w, ReadOnlySpan<float> hidden, IReadOnlyList<int> rows, MlmBuffers? mb = null)
    {
        var m = w.Mlm ?? throw new InvalidOperationException("this model was loaded without its masked-LM head");
        var c = w.Config;
        int dim = c.Width, r = rows.Count;
        var sel = new float[Math.Max(1, r * dim)];
        for (int i = 0; i < r; i++) hidden.Slice(rows[i] * dim, dim).CopyTo(sel.AsSpan(i * dim, dim));
        mb ??= new MlmBuffers(c, r);
        Head(w, m, sel, r, mb);
        return mb.Logits.AsSpan(0, r * c.Vocab).ToArray();
    }

    private static void Head(EncoderWeights w, MlmHeadWeights m, ReadOnlySpan<float> x, int r, MlmBuffers mb)
    {
        var c = w.Config;
        int e = c.EmbeddingWidth;
        m.Dense.Forward(x, mb.T, r);
        Activation.Forward(c.Activation, mb.T.AsSpan(0, r * e), mb.TAct.AsSpan(0, r * e));
        m.Norm.Forward(mb.TAct.AsSpan(0, r * e), mb.TNorm, mb.Mean, mb.Rstd, e);
        m.Decoder.Forward(mb.TNorm, mb.Logits, r);
    }

    /// <summary>Training: the MLM logits (N, V) of every row of the last <see cref="Forward"/>.</summary>
    public static Span<float> MlmForward(EncoderWeights w, ForwardBatch batch, EncoderBuffers buf, MlmBuffers mb)
    {
        Head(w, w.Mlm!, buf.XOut.AsSpan(0, batch.Rows * w.Config.Width), batch.Rows, mb);
        return mb.Logits.AsSpan(0, batch.Rows * w.Config.Vocab);
    }

    /// <summary>The gradient buffers of an encoder backward pass (N rows).</summary>
    internal sealed class Grads(ModelConfig c, int n)
    {
        private static float[] A(long len) => GC.AllocateArray<float>(checked((int)Math.Max(len, 1)), pinned: true);

        public float[] DX { get; } = A((long)n * c.Width);
        public float[] DTmp { get; } = A((long)n * c.Width);
        public float[] DAtt { get; } = A((long)n * c.Width);
        public float[] DQ { get; } = A((long)n * c.Width);
        public float[] DK { get; } = A((long)n * c.Width);
        public float[] DV { get; } = A((long)n * c.Width);
        public float[] DAct { get; } = A((long)n * c.FfnWidth);
        public float[] DU { get; } = A((long)n * c.FfnWidth);
        public float[] DE { get; } = A((long)n * c.EmbeddingWidth);
        public float[] DE2 { get; } = A((long)n * c.EmbeddingWidth);
    }

    /// <summary>Training: gradients (+=, into <paramref name="g"/>) of the MLM loss from dlogits (N, V).</summary>
    public static unsafe void Backward(EncoderWeights w, EncoderWeights g, ForwardBatch batch, EncoderBuffers buf, MlmBuffers mb, Grads d, ReadOnlySpan<float> dlogits)
    {
        var c = w.Config;
        int n = batch.Rows, dim = c.Width, e = c.EmbeddingWidth;
        var m = w.Mlm!;
        var mg = g.Mlm!;
        // head: logits = LN(act(x Wd + b)) Wdec^T + bias
        var de = d.DE.AsSpan(0, n * e);
        var de2 = d.DE2.AsSpan(0, n * e);
        de.Clear();
        m.Decoder.Backward(mg.Decoder, dlogits, mb.TNorm, de, n);
        de2.Clear();
        m.Norm.Backward(mg.Norm, de, mb.TAct, mb.Mean, mb.Rstd, de2, n, e);
        de.Clear();
        Activation.Backward(c.Activation, de2, mb.T, de);
        var dx = d.DX.AsSpan(0, n * dim);
        dx.Clear();
        m.Dense.Backward(mg.Dense, de, buf.XOut, dx, n);
        BackwardBody(w, g, batch, buf, d);
    }

    /// <summary>Training: gradients (+=, into <paramref name="g"/>) of the layers and the embeddings, from the gradient
    /// of the last hidden states (N, C) in <c>d.DX</c> (written there by a head: the MLM head, or a classifier of
    /// <see cref="EncoderHeads"/>). <c>d.DX</c> is overwritten.</summary>
    public static unsafe void BackwardBody(EncoderWeights w, EncoderWeights g, ForwardBatch batch, EncoderBuffers buf, Grads d)
    {
        var c = w.Config;
        int n = batch.Rows, dim = c.Width, e = c.EmbeddingWidth, ff = c.FfnWidth;
        var de = d.DE.AsSpan(0, n * e);
        var de2 = d.DE2.AsSpan(0, n * e);
        var dx = d.DX.AsSpan(0, n * dim);
        var rows = batch.AttentionRows;
        nint* dkBase = stackalloc nint[batch.Slots];
        nint* dvBase = stackalloc nint[batch.Slots];
        fixed (float* pdk = d.DK, pdv = d.DV)
            for (int s = 0; s < batch.Slots; s++)
            {
                dkBase[s] = (nint)(pdk + (long)batch.SlotRows[s] * dim);
                dvBase[s] = (nint)(pdv + (long)batch.SlotRows[s] * dim);
            }
        var dtmp = d.DTmp.AsSpan(0, n * dim);
        for (int l = c.Layers - 1; l >= 0; l--)
        {
            var a = buf.Layer(l);
            var lw = w.Layers[l];
            var lg = g.Layers[l];
            // dx: gradient of this block's output LN2(b2)
            dtmp.Clear();
            lw.OutNorm.Backward(lg.OutNorm, dx, a.B2, a.Mean2, a.Rstd2, dtmp, n, dim);  // d b2 (= d x1 residual part)
            var dact = d.DAct.AsSpan(0, n * ff);
            dact.Clear();
            lw.Down.Backward(lg.Down, dtmp, a.Act, dact, n);
            var du = d.DU.AsSpan(0, n * ff);
            du.Clear();
            Activation.Backward(c.Activation, dact, a.U, du);
            lw.Up.Backward(lg.Up, du, a.X1, dtmp, n);                                   // dtmp = d x1
            dx.Clear();
            lw.AttnNorm.Backward(lg.AttnNorm, dtmp, a.A, a.Mean1, a.Rstd1, dx, n, dim);  // dx = d a = d x (residual) + d o
            var datt = d.DAtt.AsSpan(0, n * dim);
            datt.Clear();
            lw.O.Backward(lg.O, dx, a.Att, datt, n);
            var dq = d.DQ.AsSpan(0, n * dim);
            dq.Clear();
            d.DK.AsSpan(0, n * dim).Clear();
            d.DV.AsSpan(0, n * dim).Clear();
            for (int s = 0; s < batch.Slots; s++)
                fixed (float* pk = a.K, pv = a.V)
                {
                    batch.KBase[s] = (nint)(pk + (long)batch.SlotRows[s] * dim);
                    batch.VBase[s] = (nint)(pv + (long)batch.SlotRows[s] * dim);
                }
            Attention.Backward(datt, a.Q, a.Att, a.Lse, dq, batch.Slots, batch.SlotRows, dkBase, dvBase, c.Heads, c.Heads, c.HeadSize, rows, WorkerPool.Shared);
            lw.Q.Backward(lg.Q, dq, a.X, dx, n);
            lw.K.Backward(lg.K, d.DK, a.X, dx, n);
            lw.V.Backward(lg.V, d.DV, a.X, dx, n);
        }
        // embeddings
        de.Clear();
        if (w.Projection is LinearWeights proj) proj.Backward(g.Projection!.Value, dx, buf.EOut, de, n);
        else dx.CopyTo(de);
        de2.Clear();
        w.EmbeddingNorm.Backward(g.EmbeddingNorm, de, buf.E0, buf.EMean, buf.ERstd, de2, n, e);
        if (g.TokenType is WeightMatrix dtt) Embedding.Backward(de2, batch.TypeIds.AsSpan(0, n), dtt.Span, e);
        Embedding.Backward(de2, batch.Positions.AsSpan(0, n), g.Position.Span, e);
        Embedding.Backward(de2, batch.Tokens.AsSpan(0, n), g.Word.Span, e);
    }
}
