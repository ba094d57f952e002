using SharpLM.Kernels;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;

namespace SharpLM.Models;

/// <summary>One pre-norm block's weights.</summary>
internal sealed class DecoderLayerWeights
{
    public required NormWeights AttnNorm { get; init; }
    public required LinearWeights Q { get; init; }     // (NH*HS, C)
    public required LinearWeights K { get; init; }     // (KVH*HS, C)
    public required LinearWeights V { get; init; }     // (KVH*HS, C)
    public required LinearWeights O { get; init; }     // (C, NH*HS)
    public required NormWeights MlpNorm { get; init; }
    /// <summary>(F, C) for a gated MLP (SwiGLU, GeGLU); null for up -> activation -> down.</summary>
    public LinearWeights? Gate { get; init; }
    /// <summary>Per-head RMSNorms of q and k (HS) before RoPE (Qwen3, Gemma 3); null without.</summary>
    public NormWeights? QNorm { get; init; }
    public NormWeights? KNorm { get; init; }
    /// <summary>RMSNorms of the attention output and of the MLP output (Gemma 2 and 3); null without.</summary>
    public NormWeights? PostAttnNorm { get; init; }
    public NormWeights? PostMlpNorm { get; init; }
    /// <summary>(F, C) and (C, F); empty in a mixture-of-experts layer.</summary>
    public required LinearWeights Up { get; init; }
    public required LinearWeights Down { get; init; }
    /// <summary>The mixture of experts that replaces the MLP (Mixtral, Qwen MoE); null in a dense layer.</summary>
    public ExpertWeights? Experts { get; init; }
}

/// <summary>
/// The weights of a pre-norm decoder (the LLaMA family and GPT-2), bound by role through the architecture table from
/// any weight source: a memory-mapped GGUF or safetensors file for inference, the trainer's parameters (or their
/// gradients) for training. The same <see cref="Decoder.Forward"/> runs over either.
/// </summary>
internal sealed class DecoderWeights
{
    public required ModelConfig Config { get; init; }
    public required WeightMatrix TokenEmbedding { get; init; }   // (V, C)
    /// <summary>(P, C) positions added to the token embedding: learned (GPT-2, <see cref="PositionKind.Learned"/>) or the
    /// fixed sinusoidal table (<see cref="PositionKind.Sinusoidal"/>, over <see cref="FixedPositions"/>); null with rotary
    /// or no positions.</summary>
    public WeightMatrix? Positions { get; init; }
    /// <summary>The pinned sinusoidal table <see cref="Positions"/> points into (kept alive here); null otherwise.</summary>
    public float[]? FixedPositions { get; init; }
    public required NormWeights FinalNorm { get; init; }
    /// <summary>(V, C): the token embedding itself when tied.</summary>
    public required LinearWeights Output { get; init; }
    public required DecoderLayerWeights[] Layers { get; init; }
    /// <summary>RoPE inverse frequencies (R/2) after scaling and per-frequency factors; empty with learned positions.</summary>
    public required float[] InvFreq { get; init; }
    /// <summary>Those of the sliding-window layers (Gemma 3's local RoPE base); the same array as <see cref="InvFreq"/> otherwise.</summary>
    public required float[] InvFreqSliding { get; init; }
    /// <summary>Keeps the bound tensors (and their pinned copies) alive.</summary>
    public required BoundTensors Tensors { get; init; }

    public bool Rotary => Config.PositionEncoding == PositionKind.Rotary;

    /// <summary>Every weight-matrix byte read per decoded token (the bandwidth bound).</summary>
    public long MatrixBytes => Layers.Sum(l => new[] { l.Q.W, l.K.W, l.V.W, l.O.W, l.Up.W, l.Down.W }.Sum(m => m.RowBytes * m.Rows) + (l.Gate?.W is { } g ? g.RowBytes * g.Rows : 0)
                                              + (l.Experts?.MatrixBytes ?? 0))
                               + Output.W.RowBytes * Output.W.Rows;

    /// <summary>Refuses what the engine cannot run, naming the file and the feature.</summary>
    public static void CheckRunnable(ModelConfig c, string path)
    {
        if (c.Arch.NotRunnableReason is { } why) throw new NotSupportedException($"{path}: {why}");
        if (c.Unsupported is { } u) throw new NotSupportedException($"{path}: {u}");
        if (c.Family == ArchFamily.Bert) throw new NotSupportedException($"{path}: {c.Architecture} is an encoder; load it with TextEncoder (sharplm embed)");
        if (c.Family == ArchFamily.Llama && c.Activation is not ("silu" or "gelu_tanh" or "gelu"))
            throw new NotSupportedException($"{path}: activation '{c.Activation}' is not supported for {c.Architecture}");
    }

    /// <summary>Binds the decoder's weights; <paramref name="contextSize"/> (per sequence) picks LongRoPE's long or short
    /// factors as llama.cpp does (the model's trained context by default). With <paramref name="regroup"/> (weights read
    /// into memory the model owns) the projections' Q8_0 and Q4_0 matrices are regrouped in place for the matvec
    /// (<see cref="RegroupRows"/>).</summary>
    public static DecoderWeights Bind(BoundTensors t, int? contextSize = null, bool regroup = false)
    {
        var w = Bind(t, contextSize);
        return regroup ? w.RegroupRows() : w;
    }

    private static DecoderWeights Bind(BoundTensors t, int? contextSize)
    {
        var c = t.Config;
        CheckRunnable(c, t.Path);
        NormWeights? Norm(string role, int l) => t.Has(role, l) ? NormWeights.Bind(t, role, l, c) : null;
        var layers = new DecoderLayerWeights[c.Layers];
        for (int l = 0; l < c.Layers; l++)
        {
            LinearWeights q, k, v;
            if (c.SharedQkv)
            {
                // one projection is the query, the key and the value (the backward pass adds the three gradients)
                q = k = v = LinearWeights.Bind(t, "attn_q", l);
            }
            else if (t.Has("attn_qkv", l))
            {
                var qkv = LinearWeights.Bind(t, "attn_qkv", l);
                q = qkv.Rows(0, c.QueryWidth);
                k = qkv.Rows(c.QueryWidth, c.KvWidth);
                v = qkv.Rows(c.QueryWidth + c.KvWidth, c.KvWidth);
            }
            else
            {
                q = LinearWeights.Bind(t, "attn_q", l);
                k = LinearWeights.Bind(t, "attn_k", l);
                v = LinearWeights.Bind(t, "attn_v", l);
            }
            bool moe = c.Experts > 0;
            var up = moe ? default : LinearWeights.Bind(t, "ffn_up", l);
            var gate = t.Has("ffn_gate", l) ? LinearWeights.Bind(t, "ffn_gate", l) : (LinearWeights?)null;
            if (gate is null && !moe && c.Family == ArchFamily.Llama && up.W.Rows == 2 * c.FfnWidth)
            {
                // Phi-3's fused gate_up projection: gate rows first, then up
                gate = up.Rows(0, c.FfnWidth);
                up = up.Rows(c.FfnWidth, c.FfnWidth);
            }
            layers[l] = new DecoderLayerWeights
            {
                AttnNorm = NormWeights.Bind(t, "attn_norm", l, c),
                Q = q, K = k, V = v,
                O = LinearWeights.Bind(t, "attn_output", l),
                MlpNorm = NormWeights.Bind(t, "ffn_norm", l, c),
                Gate = gate,
                Up = up,
                Down = moe ? default : LinearWeights.Bind(t, "ffn_down", l),
                Experts = moe ? ExpertWeights.Bind(t, l, c) : null,
                QNorm = Norm("attn_q_norm", l),
                KNorm = Norm("attn_k_norm", l),
                PostAttnNorm = Norm("attn_post_norm", l),
                PostMlpNorm = Norm("ffn_post_norm", l),
            };
        }
        var emb = t.Matrix("token_embd");
        float[] invFreq = [], invFreqSliding = [];
        if (c.Family == ArchFamily.Llama)
        {
            // per-frequency divisors: a GGUF's rope_freqs (LLaMA 3.1), LongRoPE's long or short set (Phi-3), else computed
            int ctx = contextSize ?? c.Context;
            string? longRope = c.RopeScaling != RopeScalingType.LongRope ? null : ctx > c.RopeOriginalContext ? "rope_factors_long" : "rope_factors_short";
            float[]? factors = t.Has("rope_freqs") ? t.Vector("rope_freqs").Span.ToArray()
                : longRope != null && t.Has(longRope) ? t.Vector(longRope).Span.ToArray()
                : c.LongRopeFactors(ctx);
            invFreq = c.InverseFrequencies(factors);
            invFreqSliding = c.RopeThetaSliding is null ? invFreq : c.InverseFrequencies(sliding: true);
        }
        float[]? sinusoid = c.PositionEncoding == PositionKind.Sinusoidal ? Sinusoid.Table(c.Context, c.Width) : null;
        return new DecoderWeights
        {
            Config = c,
            TokenEmbedding = emb,
            Positions = sinusoid is null ? t.OptionalMatrix("position_embd") : SinusoidMatrix(sinusoid, c),
            FixedPositions = sinusoid,
            FinalNorm = NormWeights.Bind(t, "output_norm", -1, c),
            Output = t.Has("output") ? LinearWeights.Bind(t, "output", -1) : new LinearWeights(emb, default),
            Layers = layers,
            InvFreq = invFreq,
            InvFreqSliding = invFreqSliding,
            Tensors = t,
        };
    }

    /// <summary>
    /// These weights with the quantized matrices of every projection (and the output, and the token embedding when it is
    /// the output) of the types <see cref="RowGroups.Regroups"/> names regrouped in place in groups of eight rows (<see cref="RowGroups"/>) where the machine runs the
    /// group kernel; the memory must be the model's own (read, not mapped: a mapping is read-only). Each matrix once
    /// (Q, K and V may be one matrix), the experts of a mixture as they are. The embedding lookup, the GEMMs and the
    /// f32-activation path read grouped rows through <see cref="WeightMatrix.PlainRow"/>.
    /// </summary>
    private unsafe DecoderWeights RegroupRows()
    {
        var done = new Dictionary<nint, WeightMatrix>();
        WeightMatrix M(WeightMatrix m)
        {
            if (!RowGroups.Regroups(m.Type) || m.Rows < RowGroups.Size || m.Packed != null) return m;
            if (done.TryGetValue((nint)m.Data, out var g)) return g.Rows == m.Rows ? g : throw new InvalidOperationException("two matrices of different shapes share their first row");
            RowGroups.RegroupInPlace(m.Type, m.Data, m.Rows, m.Cols);
            return done[(nint)m.Data] = new WeightMatrix(m.Type, m.Data, m.Rows, m.Cols, grouped: true);
        }
        LinearWeights L(LinearWeights l) => new(M(l.W), l.B);
        LinearWeights? Lo(LinearWeights? l) => l is { } v ? L(v) : null;
        var layers = Layers.Select(l => new DecoderLayerWeights
        {
            AttnNorm = l.AttnNorm, Q = L(l.Q), K = L(l.K), V = L(l.V), O = L(l.O), MlpNorm = l.MlpNorm,
            Gate = Lo(l.Gate), QNorm = l.QNorm, KNorm = l.KNorm, PostAttnNorm = l.PostAttnNorm, PostMlpNorm = l.PostMlpNorm,
            Up = l.Experts is null ? L(l.Up) : l.Up, Down = l.Experts is null ? L(l.Down) : l.Down, Experts = l.Experts,
        }).ToArray();
        var output = L(Output);
        // a tied embedding is the output matrix, now grouped: its lookups read it as such
        var emb = done.TryGetValue((nint)TokenEmbedding.Data, out var e) && e.Rows == TokenEmbedding.Rows ? e : TokenEmbedding;
        return new DecoderWeights
        {
            Config = Config, TokenEmbedding = emb, Positions = Positions, FixedPositions = FixedPositions, FinalNorm = FinalNorm,
            Output = output, Layers = layers, InvFreq = InvFreq, InvFreqSliding = InvFreqSliding, Tensors = Tensors,
        };
    }

    /// <summary>A (P, C) f32 matrix over the pinned sinusoidal table, so the forward pass adds it as it adds a learned one.</summary>
    private static unsafe WeightMatrix SinusoidMatrix(float[] table, ModelConfig c) =>
        new(DType.F32, (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref table[0]), c.Context, c.Width);
}

/// <summary>One block's activations (N rows). In inference every block shares one set; in training each keeps its own
/// for the backward pass.</summary>
internal sealed class DecoderLayerBuffers
{
    public required float[] X, H, Mean, Rstd, Q, K, V, Att, Lse, Proj, X2, H2, Mean2, Rstd2, G, U, Act;
    /// <summary>Mixture of experts only: router probabilities (N, X), the chosen experts and their weights (N, k), one
    /// expert's rows (N) and their weights, its gathered inputs and its outputs (N, C).</summary>
    public required float[] Router, ChosenWeight, ExpertRowWeight, ExpertX, ExpertOut;
    public required int[] Chosen, ExpertRows;
    /// <summary>Post-norm and DeepNorm only: the sums α·x + f(x) the two norms normalise (N, C); empty for pre-norm.</summary>
    public float[] Sum1 = [], Sum2 = [];
}

/// <summary>
/// Every activation buffer of a decoder forward pass for up to <see cref="Capacity"/> rows, allocated once (pinned).
/// <see cref="PerLayer"/> keeps each block's activations apart (training); otherwise one set is reused by every block and
/// the residual stream is updated in place (inference).
/// </summary>
internal sealed class DecoderBuffers
{
    private readonly DecoderLayerBuffers[] _layers;
    private float[] _logits = [];

    public DecoderBuffers(ModelConfig c, int capacity, bool perLayer)
    {
        Capacity = capacity;
        PerLayer = perLayer;
        int n = capacity;
        float[] A(long len) => GC.AllocateArray<float>(checked((int)Math.Max(len, 1)), pinned: true);
        bool moe = c.Experts > 0;
        int stat = NormOptions.StatLength(c, n); // per row, or per feature for BatchNorm
        DecoderLayerBuffers Make(float[]? x)
        {
            var xx = x ?? A((long)n * c.Width);
            return new DecoderLayerBuffers
            {
                X = xx, H = A((long)n * c.Width), Mean = A(stat), Rstd = A(stat),
                Q = A((long)n * c.QueryWidth), K = A((long)n * c.KvWidth), V = A((long)n * c.KvWidth),
                Att = A((long)n * c.QueryWidth), Lse = A((long)n * c.Heads), Proj = A((long)n * c.Width),
                X2 = perLayer ? A((long)n * c.Width) : xx, H2 = A((long)n * c.Width), Mean2 = A(stat), Rstd2 = A(stat),
                G = A((long)n * c.MaxFfnWidth), U = A((long)n * c.MaxFfnWidth), Act = A((long)n * c.MaxFfnWidth),
                Router = A((long)n * c.Experts), ChosenWeight = A((long)n * c.ExpertsPerToken), ExpertRowWeight = A(moe ? n : 0),
                ExpertX = A(moe ? (long)n * c.Width : 0), ExpertOut = A(moe ? (long)n * c.Width : 0),
                Chosen = new int[Math.Max(1, n * c.ExpertsPerToken)], ExpertRows = new int[moe ? n : 1],
                Sum1 = c.NormPlacement == NormPlacement.Pre ? [] : A((long)n * c.Width),
                Sum2 = c.NormPlacement == NormPlacement.Pre ? [] : A((long)n * c.Width),
            };
        }
        if (perLayer)
        {
            _layers = new DecoderLayerBuffers[c.Layers];
            for (int l = 0; l < c.Layers; l++) _layers[l] = Make(null);
            XOut = A((long)n * c.Width);
        }
        else
        {
            _layers = [Make(null)];
            XOut = _layers[0].X;
        }
        HOut = A((long)n * c.Width);
        MeanOut = A(stat);
        RstdOut = A(stat);
        Vocab = c.Vocab;
    }

    public int Capacity { get; }
    public bool PerLayer { get; }
    private int Vocab { get; }

    public DecoderLayerBuffers Layer(int l) => _layers[PerLayer ? l : 0];

    /// <summary>The residual stream after the last block (N, C).</summary>
    public float[] XOut { get; }

    /// <summary>The final norm of the output rows (R, C), and its statistics.</summary>
    public float[] HOut { get; }
    public float[] MeanOut { get; }
    public float[] RstdOut { get; }

    /// <summary>Logits (R, V) of the output rows, made (and grown) on demand.</summary>
    public Span<float> Logits(int rows) => LogitsMemory(rows).Span;

    public Memory<float> LogitsMemory(int rows)
    {
        long need = (long)rows * Vocab;
        if (_logits.Length < need) _logits = GC.AllocateUninitializedArray<float>(checked((int)need), pinned: true);
        return _logits.AsMemory(0, (int)need);
    }
}

/// <summary>The gradient buffers of a decoder backward pass (N rows).</summary>
internal sealed class DecoderGradBuffers
{
    public DecoderGradBuffers(ModelConfig c, int n)
    {
        float[] A(long len) => GC.AllocateArray<float>(checked((int)Math.Max(len, 1)), pinned: true);
        DRes = A((long)n * c.Width); DH = A((long)n * c.Width); DAct = A((long)n * c.FfnWidth);
        DG = A((long)n * c.FfnWidth); DU = A((long)n * c.FfnWidth); DAtt = A((long)n * c.QueryWidth);
        DQ = A((long)n * c.QueryWidth); DK = A((long)n * c.KvWidth); DV = A((long)n * c.KvWidth);
        DSum = c.NormPlacement == NormPlacement.Pre ? [] : A((long)n * c.Width);
    }

    /// <summary>Post-norm and DeepNorm: the gradient of a norm's input sum α·x + f(x).</summary>
    public float[] DSum;

    public float[] DRes, DH, DAct, DG, DU, DAtt, DQ, DK, DV;
}

/// <summary>
/// The pre-norm decoder, written once for inference and training (LLaMA family and GPT-2; the study note's
/// one-directional "NLG" model). Per block:
/// <code>
/// h  = norm1(x)                                     RMSNorm (LLaMA) or LayerNorm (GPT-2)
/// q, k, v = h Wq, h Wk, h Wv (+ biases)             k, v are written to each row's sequence at its position
/// q, k = rope(q, k)                                 rotary positions (LLaMA); GPT-2 added learned positions to x
/// x2 = x + attention(q, K, V) Wo (+ bias)           causal: a row sees its sequence's keys up to its own position
/// x' = x2 + mlp(norm2(x2))                          SwiGLU: down(silu(h Wg) * h Wu); else down(act(h Wu))
/// </code>
/// then logits = norm(x) Wout for the rows asked for. <see cref="Forward"/> evaluates rows of many sequences at once
/// (each with its own KV cache and positions), so every weight is read once per pass for all of them.
/// <see cref="Backward"/> walks the same blocks in reverse from the saved activations (training).
/// </summary>
internal static partial class Decoder
{
    /// <summary>
    /// Runs the rows of <paramref name="batch"/> and returns the logits (R, V) of its output rows (valid until the
    /// next call). Keys and values go to <paramref name="kv"/>.
    /// </summary>
    public static Span<float> Forward(DecoderWeights w, ForwardBatch batch, DecoderBuffers buf, IKvStore kv)
    {
        var c = w.Config;
        int n = batch.Rows, dim = c.Width, qd = c.QueryWidth, kvd = c.KvWidth, ff = c.FfnWidth;
        if (n == 0) throw new ArgumentException("no rows to evaluate", nameof(batch));
        if (n > buf.Capacity) throw new ArgumentException($"{n} rows exceed the buffers' {buf.Capacity}", nameof(batch));
        var pool = WorkerPool.Shared;
        var tokens = batch.Tokens.AsSpan(0, n);
        var positions = batch.Positions.AsSpan(0, n);
        var x0 = buf.Layer(0).X.AsSpan(0, n * dim);
        Embedding.Forward(w.TokenEmbedding, tokens, x0);
        if (c.EmbeddingScale != 1f) Scale.InPlace(x0, c.EmbeddingScale);
        if (w.Positions is WeightMatrix pe) Embedding.AddRows(pe, positions, x0, "position");
        var rows = batch.AttentionRows;
        var attention = new AttentionOptions(c.ScoreScale, c.AttnLogitSoftcap);
        bool post = c.NormPlacement != NormPlacement.Pre;

        for (int l = 0; l < c.Layers; l++)
        {
            var a = buf.Layer(l);
            var lw = w.Layers[l];
            bool sliding = c.IsSlidingLayer(l);
            var x = a.X.AsSpan(0, n * dim);
            // post-norm and DeepNorm: the sublayer reads x itself (its norm comes after the residual add)
            if (!post) lw.AttnNorm.Forward(x, a.H, a.Mean, a.Rstd, dim);
            var h = post ? x : a.H.AsSpan(0, n * dim);
            var q = a.Q.AsSpan(0, n * qd);
            var k = a.K.AsSpan(0, n * kvd);
            var v = a.V.AsSpan(0, n * kvd);
            if (c.SharedQkv)
            {
                lw.Q.Forward(h, q, n);
                q.CopyTo(k);
                q.CopyTo(v);
            }
            else LinearWeights.ForwardShared(h, n, lw.Q, q, lw.K, k, lw.V, v);
            // per-head RMSNorm of q and k (rows of HS), in place
            lw.QNorm?.Forward(q, q, default, default, c.HeadSize);
            lw.KNorm?.Forward(k, k, default, default, c.HeadSize);
            if (w.Rotary)
            {
                var inv = sliding ? w.InvFreqSliding : w.InvFreq;
                Rope.Forward(q, n, c.Heads, c.HeadSize, positions, inv, c.RopeNeox, c.RopeDim);
                Rope.Forward(k, n, c.KvHeads, c.HeadSize, positions, inv, c.RopeNeox, c.RopeDim);
            }
            StoreKv(batch, kv, l, k, v, kvd);
            var layerRows = LayerRows(c, batch, rows, kv, l);
            Attention.Forward(q, a.Att, a.Lse, n, c.Heads, c.KvHeads, c.HeadSize, layerRows, pool, attention);
            var proj = a.Proj.AsSpan(0, n * dim);
            lw.O.Forward(a.Att, proj, n);
            lw.PostAttnNorm?.Forward(proj, proj, default, default, dim);
            var x2 = a.X2.AsSpan(0, n * dim);
            if (post) ResidualNorm(c, lw.AttnNorm, x, proj, a.Sum1, x2, a.Mean, a.Rstd);
            else Add.Forward(x, proj, x2);

            if (!post) lw.MlpNorm.Forward(x2, a.H2, a.Mean2, a.Rstd2, dim);
            var h2 = post ? x2 : a.H2.AsSpan(0, n * dim);
            var act = a.Act.AsSpan(0, n * ff);
            if (lw.Experts is ExpertWeights experts) experts.Forward(h2, proj, n, dim, a);
            else
            {
                if (lw.Gate is LinearWeights gate)
                {
                    LinearWeights.ForwardShared(h2, n, gate, a.G, lw.Up, a.U, default, default);
                    Activation.Gated(c.Activation, a.G.AsSpan(0, n * ff), a.U.AsSpan(0, n * ff), act);
                }
                else
                {
                    lw.Up.Forward(h2, a.U, n);
                    Activation.Forward(c.Activation, a.U.AsSpan(0, n * ff), act);
                }
                lw.Down.Forward(act, proj, n);
            }
            lw.PostMlpNorm?.Forward(proj, proj, default, default, dim);
            var next = l + 1 < c.Layers ? buf.Layer(l + 1).X : buf.XOut;
            if (post) ResidualNorm(c, lw.MlpNorm, x2, proj, a.Sum2, next.AsSpan(0, n * dim), a.Mean2, a.Rstd2);
            else Add.Forward(x2, proj, next.AsSpan(0, n * dim));
        }
        return Head(w, batch, buf);
    }

    /// <summary>Final norm and output projection of the output rows.</summary>
    private static Span<float> Head(DecoderWeights w, ForwardBatch batch, DecoderBuffers buf)
    {
        int dim = w.Config.Width, n = batch.Rows;
        int r = batch.AllOutputs ? n : batch.OutputCount;
        if (r == 0) return [];
        ReadOnlySpan<float> src = buf.XOut.AsSpan(0, n * dim);
        var hout = buf.HOut.AsSpan(0, r * dim);
        if (!batch.AllOutputs)
        {
            // gather the output rows, then normalise them in place
            for (int i = 0; i < r; i++) src.Slice(batch.OutputRows[i] * dim, dim).CopyTo(hout.Slice(i * dim, dim));
            src = hout;
        }
        w.FinalNorm.Forward(src, hout, buf.MeanOut, buf.RstdOut, dim);
        var logits = buf.Logits(r);
        w.Output.Forward(hout, logits, r);
        if (w.Config.FinalLogitSoftcap > 0) SoftCap.Forward(logits, w.Config.FinalLogitSoftcap);
        return logits;
    }

    /// <summary>The keys each row attends in layer <paramref name="l"/>, as forward and backward both need them: the batch's
    /// rows or a sliding layer's window (over <paramref name="kv"/>'s rolling cache; null: the layer's activations), in
    /// the store's element type, with the model's sparse pattern.</summary>
    private static AttentionRows LayerRows(ModelConfig c, ForwardBatch batch, AttentionRows rows, IKvStore? kv, int l)
    {
        var r = c.IsSlidingLayer(l) ? batch.SlidingRows(c.SlidingWindow!.Value, kv, l) : rows;
        r.KvType = kv?.KvType ?? DType.F32;
        r.Pattern = c.Sparse;
        return r;
    }

    /// <summary>Writes each row's k and v at its position in its sequence's store (nothing to copy when the store is the
    /// activations themselves), and points the batch's attention rows at this layer's stores.</summary>
    private static unsafe void StoreKv(ForwardBatch batch, IKvStore kv, int layer, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int kvd)
    {
        for (int s = 0; s < batch.Slots; s++)
        {
            batch.KBase[s] = kv.Keys(layer, s);
            batch.VBase[s] = kv.Values(layer, s);
        }
        if (kv.IsActivations) return;
        var type = Tensors.Types.DTypes.Of(kv.KvType);
        long rowBytes = type.RowBytes(kvd);
        for (int i = 0; i < batch.Rows; i++)
        {
            int s = batch.Slot[i], p = batch.Positions[i], ring = kv.Ring(layer, s);
            // a rolling window of R rows is stored twice (rows p % R and p % R + R), so any R consecutive positions are
            // contiguous and attention reads them as it reads a linear cache
            int at = ring > 0 ? p % ring : p;
            for (int copy = 0; copy < (ring > 0 ? 2 : 1); copy++, at += ring)
            {
                var kDst = new Span<byte>((byte*)batch.KBase[s] + at * rowBytes, (int)rowBytes);
                var vDst = new Span<byte>((byte*)batch.VBase[s] + at * rowBytes, (int)rowBytes);
                if (type.Type == DType.F32)
                {
                    System.Runtime.InteropServices.MemoryMarshal.AsBytes(k.Slice(i * kvd, kvd)).CopyTo(kDst);
                    System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.Slice(i * kvd, kvd)).CopyTo(vDst);
                    continue;
                }
                // an F16 or Q8_0 cache rounds each position's row (heads never straddle a block)
                type.QuantizeRow(k.Slice(i * kvd, kvd), kDst);
                type.QuantizeRow(v.Slice(i * kvd, kvd), vDst);
            }
        }
    }

    /// <summary>The inference-only features of <paramref name="c"/> (those <see cref="Backward"/> does not differentiate),
    /// or null when it can be trained.</summary>
    public static string? NoBackward(ModelConfig c)
    {
        var missing = new List<string>();
        if (c.QkNorm) missing.Add("q/k norms");
        if (c.PostNorms) missing.Add("post-norms");
        if (c.AttnLogitSoftcap > 0 || c.FinalLogitSoftcap > 0) missing.Add("soft caps");
        if (c.Family == ArchFamily.Llama && c.Activation != "silu") missing.Add($"the {c.Activation} gate");
        if (c.Experts > 0) missing.Add("mixtures of experts");
        return missing.Count == 0 ? null : string.Join(", ", missing);
    }

    /// <summary>
    /// The backward pass of the last <see cref="Forward"/> over <paramref name="batch"/> (rows grouped by slot, all of
    /// them outputs, per-layer buffers, an activation KV store): from dlogits (N, V) it adds every parameter's gradient
    /// into <paramref name="g"/> (the same model bound over the gradient memory).
    /// </summary>
    public static unsafe void Backward(DecoderWeights w, DecoderWeights g, ForwardBatch batch, DecoderBuffers buf, DecoderGradBuffers d,
                                       ReadOnlySpan<float> dlogits)
    {
        if (!buf.PerLayer || !batch.AllOutputs) throw new InvalidOperationException("the backward pass needs per-layer buffers and every row as an output");
        var c = w.Config;
        if (NoBackward(c) is { } missing) throw new NotSupportedException($"training {c.Architecture} is not supported: the backward pass of {missing} is not written");
        int n = batch.Rows, dim = c.Width, qd = c.QueryWidth, kvd = c.KvWidth, ff = c.FfnWidth;
        var pool = WorkerPool.Shared;
        var positions = batch.Positions.AsSpan(0, n);
        var dres = d.DRes.AsSpan(0, n * dim);
        var dh = d.DH.AsSpan(0, n * dim);
        bool post = c.NormPlacement != NormPlacement.Pre;
        var ds = post ? d.DSum.AsSpan(0, n * dim) : default;

        // head: logits = hout Wout; hout = norm(xout)
        dh.Clear();
        w.Output.Backward(g.Output, dlogits, buf.HOut, dh, n);
        dres.Clear();
        w.FinalNorm.Backward(g.FinalNorm, dh, buf.XOut, buf.MeanOut, buf.RstdOut, dres, n, dim);

        var rows = batch.AttentionRows;
        nint* dkBase = stackalloc nint[batch.Slots];
        nint* dvBase = stackalloc nint[batch.Slots];
        fixed (float* pdk = d.DK, pdv = d.DV)
            for (int s = 0; s < batch.Slots; s++)
            {
                dkBase[s] = (nint)(pdk + (long)batch.SlotRows[s] * kvd);
                dvBase[s] = (nint)(pdv + (long)batch.SlotRows[s] * kvd);
            }
        for (int l = c.Layers - 1; l >= 0; l--)
        {
            var a = buf.Layer(l);
            var lw = w.Layers[l];
            var lg = g.Layers[l];
            // the sublayers' inputs: the normalised rows (pre-norm), the residual stream itself (post-norm, DeepNorm)
            var hIn = post ? a.X : a.H;
            var h2In = post ? a.X2 : a.H2;
            // x' = x2 + down(act): dres is d x'  (post-norm: x' = norm2(α·x2 + down(act)), dres becomes α·d sum)
            if (post) ResidualNormBackward(c, lw.MlpNorm, lg.MlpNorm, dres, a.Sum2, a.Mean2, a.Rstd2, ds);
            var dact = d.DAct.AsSpan(0, n * ff);
            dact.Clear();
            lw.Down.Backward(lg.Down, post ? ds : dres, a.Act, dact, n);
            dh.Clear();
            if (lw.Gate is LinearWeights gate)
            {
                var dgate = d.DG.AsSpan(0, n * ff);
                var dup = d.DU.AsSpan(0, n * ff);
                dgate.Clear();
                dup.Clear();
                SwiGlu.Backward(dact, a.G, a.U, dgate, dup);
                gate.Backward(lg.Gate!.Value, dgate, h2In, dh, n);
                lw.Up.Backward(lg.Up, dup, h2In, dh, n);
            }
            else
            {
                var dup = d.DU.AsSpan(0, n * ff);
                dup.Clear();
                Activation.Backward(c.Activation, dact, a.U, dup);
                lw.Up.Backward(lg.Up, dup, h2In, dh, n);
            }
            if (post) Add.InPlace(dh, dres); // the MLP saw x2 itself
            else lw.MlpNorm.Backward(lg.MlpNorm, dh, a.X2, a.Mean2, a.Rstd2, dres, n, dim); // dres = d x2

            // x2 = x + attention Wo  (post-norm: x2 = norm1(α·x + attention Wo))
            if (post) ResidualNormBackward(c, lw.AttnNorm, lg.AttnNorm, dres, a.Sum1, a.Mean, a.Rstd, ds);
            var datt = d.DAtt.AsSpan(0, n * qd);
            datt.Clear();
            lw.O.Backward(lg.O, post ? ds : dres, a.Att, datt, n);
            var dq = d.DQ.AsSpan(0, n * qd);
            var dk = d.DK.AsSpan(0, n * kvd);
            var dv = d.DV.AsSpan(0, n * kvd);
            dq.Clear();
            dk.Clear();
            dv.Clear();
            for (int s = 0; s < batch.Slots; s++)
            {
                fixed (float* pk = a.K, pv = a.V)
                {
                    batch.KBase[s] = (nint)(pk + (long)batch.SlotRows[s] * kvd);
                    batch.VBase[s] = (nint)(pv + (long)batch.SlotRows[s] * kvd);
                }
            }
            var layerRows = LayerRows(c, batch, rows, null, l); // the rows the forward pass attended
            Attention.Backward(datt, a.Q, a.Att, a.Lse, dq, batch.Slots, batch.SlotRows, dkBase, dvBase, c.Heads, c.KvHeads, c.HeadSize, layerRows, pool, c.ScoreScale);
            if (w.Rotary)
            {
                var inv = c.IsSlidingLayer(l) ? w.InvFreqSliding : w.InvFreq;
                Rope.Backward(dq, n, c.Heads, c.HeadSize, positions, inv, c.RopeNeox, c.RopeDim);
                Rope.Backward(dk, n, c.KvHeads, c.HeadSize, positions, inv, c.RopeNeox, c.RopeDim);
            }
            dh.Clear();
            if (c.SharedQkv)
            {
                // q = k = v = h Wq: d Wq and dh take the sum of the three gradients
                Add.InPlace(dk, dq);
                Add.InPlace(dv, dq);
                lw.Q.Backward(lg.Q, dq, hIn, dh, n);
            }
            else
            {
                lw.Q.Backward(lg.Q, dq, hIn, dh, n);
                lw.K.Backward(lg.K, dk, hIn, dh, n);
                lw.V.Backward(lg.V, dv, hIn, dh, n);
            }
            if (post) Add.InPlace(dh, dres); // attention saw x itself
            else lw.AttnNorm.Backward(lg.AttnNorm, dh, a.X, a.Mean, a.Rstd, dres, n, dim); // dres = d x
        }
        if (c.PositionEncoding == PositionKind.Learned && g.Positions is WeightMatrix dpe) Embedding.Backward(dres, positions, dpe.Span, dim);
        // x0 = scale * embedding[token] (+ positions): the token rows take scale * dx0
        if (c.EmbeddingScale != 1f) Scale.InPlace(dres, c.EmbeddingScale);
        Embedding.Backward(dres, batch.Tokens.AsSpan(0, n), g.TokenEmbedding.Span, dim);
    }
}
