using SharpLM.Inference;
using SharpLM.Kernels;

namespace SharpLM.Models.Llama;

/// <summary>
/// One inference sequence of a LLaMA-family model: the KV cache plus every activation buffer, allocated once.
/// <see cref="Forward"/> evaluates up to <see cref="MaxBatch"/> tokens in one batched pass (matrix-matrix products
/// for a prompt, T = 1 when decoding) and never allocates.
/// </summary>
internal sealed class LlamaState
{
    private readonly LlamaWeights _w;
    private readonly LlamaConfig _c;
    private readonly float[] _x, _h, _q, _att, _o, _gate, _up;   // (B,C) (B,C) (B,NH*HS) (B,NH*HS) (B,C) (B,F) (B,F)
    private readonly float[] _scratch;                            // attention scores, NH*S
    private readonly int[] _positions;                            // (B)
    private readonly float[] _lastLogits;                         // (V)
    private float[]? _allLogits;                                  // (B,V), made on the first request

    public LlamaState(LlamaWeights weights, int contextSize, int maxBatch)
    {
        _w = weights;
        _c = weights.Config;
        if (contextSize <= 0) throw new ArgumentOutOfRangeException(nameof(contextSize), contextSize, "the context must hold at least one token");
        MaxBatch = Math.Clamp(maxBatch, 1, contextSize);
        int b = MaxBatch, qDim = _c.Heads * _c.HeadDim;
        Cache = new KvCache(_c.Layers, contextSize, _c.KvHeads * _c.HeadDim);
        _x = new float[b * _c.Dim];
        _h = new float[b * _c.Dim];
        _q = new float[b * qDim];
        _att = new float[b * qDim];
        _o = new float[b * _c.Dim];
        _gate = new float[b * _c.FfnDim];
        _up = new float[b * _c.FfnDim];
        _scratch = new float[Attention.ScratchLength(_c.Heads, contextSize)];
        _positions = new int[b];
        _lastLogits = new float[_c.VocabSize];
    }

    public KvCache Cache { get; }

    /// <summary>The most tokens one <see cref="Forward"/> call takes.</summary>
    public int MaxBatch { get; }

    /// <summary>Tokens evaluated so far (the position of the next one).</summary>
    public int Position => Cache.Length;

    /// <summary>
    /// Evaluates tokens (T &lt;= MaxBatch) at positions Position..Position+T-1 and appends their keys and values to the cache.
    /// Returns the logits (T,V) of every token when <paramref name="allLogits"/>, else (1,V) of the last one. The span
    /// is valid until the next call.
    /// </summary>
    public ReadOnlySpan<float> Forward(ReadOnlySpan<int> tokens, bool allLogits)
    {
        int t = tokens.Length, pos0 = Cache.Length;
        if (t == 0) throw new ArgumentException("no tokens to evaluate", nameof(tokens));
        if (t > MaxBatch) throw new ArgumentException($"{t} tokens exceed the batch size {MaxBatch}; evaluate them in chunks", nameof(tokens));
        if (pos0 + t > Cache.Capacity)
            throw new InvalidOperationException($"the context is full: {pos0} tokens are cached and {t} more do not fit in the context of {Cache.Capacity}");
        int dim = _c.Dim, nh = _c.Heads, kvh = _c.KvHeads, hs = _c.HeadDim, qDim = nh * hs, kvDim = kvh * hs, ff = _c.FfnDim;
        float eps = _c.NormEps;

        var emb = _w.Embedding;
        for (int i = 0; i < t; i++)
        {
            int id = tokens[i];
            if ((uint)id >= (uint)_c.VocabSize) throw new ArgumentOutOfRangeException(nameof(tokens), id, $"token id {id} is outside the vocabulary of {_c.VocabSize}");
            Tensors.Types.DTypes.Of(emb.Type).DequantizeRow(emb.Row(id), _x.AsSpan(i * dim, dim));
            _positions[i] = pos0 + i;
        }
        var x = _x.AsSpan(0, t * dim);
        var h = _h.AsSpan(0, t * dim);
        var q = _q.AsSpan(0, t * qDim);
        var att = _att.AsSpan(0, t * qDim);
        var o = _o.AsSpan(0, t * dim);
        var gate = _gate.AsSpan(0, t * ff);
        var up = _up.AsSpan(0, t * ff);
        var positions = _positions.AsSpan(0, t);

        for (int l = 0; l < _c.Layers; l++)
        {
            var lw = _w.Layers[l];
            var kAll = Cache.Keys(l);
            var vAll = Cache.Values(l);
            var k = kAll.Slice(pos0 * kvDim, t * kvDim);
            var v = vAll.Slice(pos0 * kvDim, t * kvDim);

            RmsNorm.Forward(x, lw.AttnNorm, h, dim, eps);
            MatMul.Forward(h, lw.Q, q, t);
            MatMul.Forward(h, lw.K, k, t);
            MatMul.Forward(h, lw.V, v, t);
            if (lw.QBias != null) AddRows(q, lw.QBias);
            if (lw.KBias != null) AddRows(k, lw.KBias);
            if (lw.VBias != null) AddRows(v, lw.VBias);
            Rope.Forward(q, t, nh, hs, positions, _w.InvFreq, _c.RopeNeox);
            Rope.Forward(k, t, kvh, hs, positions, _w.InvFreq, _c.RopeNeox);
            Attention.Forward(q, kAll[..((pos0 + t) * kvDim)], vAll[..((pos0 + t) * kvDim)], att, _scratch, t, nh, kvh, hs, pos0);
            MatMul.Forward(att, lw.O, o, t);
            VecOps.AddInPlace(x, o);

            RmsNorm.Forward(x, lw.FfnNorm, h, dim, eps);
            MatMul.Forward(h, lw.Gate, gate, t);
            MatMul.Forward(h, lw.Up, up, t);
            Activations.SwiGlu(gate, up, gate);
            MatMul.Forward(gate, lw.Down, o, t);
            VecOps.AddInPlace(x, o);
        }
        Cache.Advance(t);

        if (allLogits)
        {
            _allLogits ??= new float[(long)MaxBatch * _c.VocabSize];
            var logits = _allLogits.AsSpan(0, t * _c.VocabSize);
            RmsNorm.Forward(x, _w.OutputNorm, h, dim, eps);
            MatMul.Forward(h, _w.Output, logits, t);
            return logits;
        }
        var last = h[..dim];
        RmsNorm.Forward(x.Slice((t - 1) * dim, dim), _w.OutputNorm, last, dim, eps);
        MatMul.Forward(last, _w.Output, _lastLogits, 1);
        return _lastLogits;
    }

    /// <summary>y (T, N) += bias (N) on every row.</summary>
    private static void AddRows(Span<float> y, ReadOnlySpan<float> bias)
    {
        for (int i = 0; i < y.Length; i += bias.Length)
        {
            var row = y.Slice(i, bias.Length);
            VecOps.AddInPlace(row, bias);
        }
    }
}
