using System.Numerics;

namespace SharpLM.Kernels;

/// <summary>
/// Which keys each query row of a batch sees. Row i belongs to sequence slot <see cref="Slot"/>[i] and attends that
/// slot's keys <see cref="KvStart"/>[i] .. <see cref="KvEnd"/>[i]-1: a decoder row at position p sees 0..p (causal, the
/// study note's mask), an encoder row sees its whole sequence (bidirectional, padding never enters), a sliding window
/// starts later. The keys and values of slot s for the current layer are (S, KVH, HS) at <see cref="KBase"/>[s] and
/// <see cref="VBase"/>[s]: a sequence's KV cache in inference, the layer's saved K and V in training.
/// </summary>
internal unsafe struct AttentionRows
{
    public int* Slot;
    /// <summary>First visible key per row, or null for 0.</summary>
    public int* KvStart;
    public int* KvEnd;
    public nint* KBase;
    public nint* VBase;
}

/// <summary>
/// Scaled dot-product multi-head attention with grouped K/V heads (query head h reads K/V head h / (NH/KVH)), over a
/// batch of rows from any number of sequences (<see cref="AttentionRows"/>).
/// Forward: q (N,NH,HS) -> y (N,NH,HS), and lse (N,NH) = log sum_s exp(score_s) when asked (the backward pass
/// recomputes the probabilities from it instead of storing N*NH*S of them):
///   score_s = q[i,h] . k[s,g] / sqrt(HS), p = softmax(score) over the visible keys, y[i,h] = sum_s p_s v[s,g].
/// The 1/sqrt(HS) scale keeps the scores' variance near 1 whatever the head size (the study note's question 1b); a model may
/// give another <c>scale</c>, and Gemma 2 soft-caps the scores, score = cap * tanh(score / cap) (<c>softcap</c> &gt; 0,
/// forward only).
/// Backward (rows grouped by slot, as training lays them out): with D = dy[i,h] . y[i,h] and dp_s = dy[i,h] . v[s,g],
/// ds_s = p_s (dp_s - D); dq[i,h] += sum_s ds_s k[s,g] / sqrt(HS); dk[s,g] += ds_s q[i,h] / sqrt(HS); dv[s,g] += p_s dy[i,h]
/// (with the model's own <c>scale</c> in place of 1/sqrt(HS) when it gives one, as the forward pass).
/// Work items are (slot, K/V head): each owns its dk/dv rows, so the sums do not depend on the thread count.
/// </summary>
internal static unsafe class Attention
{
    /// <summary>See the type summary. Runs (head, block of rows) tasks on <paramref name="pool"/>; does not allocate.</summary>
    public static void Forward(ReadOnlySpan<float> q, Span<float> y, Span<float> lse, int n, int nHeads, int nKvHeads, int headSize,
                               in AttentionRows rows, WorkerPool pool, float scale = 0f, float softcap = 0f)
    {
        if (nKvHeads <= 0 || nHeads % nKvHeads != 0) throw new ArgumentException($"NH = {nHeads} is not a multiple of KVH = {nKvHeads}", nameof(nKvHeads));
        if (n <= 0) return;
        if (q.Length < (long)n * nHeads * headSize) throw new ArgumentException($"q holds {q.Length} floats, need N*NH*HS = {n}*{nHeads}*{headSize}", nameof(q));
        if (y.Length < (long)n * nHeads * headSize) throw new ArgumentException($"y holds {y.Length} floats, need N*NH*HS = {n}*{nHeads}*{headSize}", nameof(y));
        if (!lse.IsEmpty && lse.Length < n * nHeads) throw new ArgumentException($"lse holds {lse.Length} floats, need N*NH = {n * nHeads}", nameof(lse));
        long work = 0;
        int maxKeys = 0;
        for (int i = 0; i < n; i++)
        {
            int s0 = rows.KvStart == null ? 0 : rows.KvStart[i], e = rows.KvEnd[i];
            if (e <= s0 || s0 < 0) throw new ArgumentException($"row {i} sees keys [{s0}, {e}): it must see at least one");
            work += e - s0;
            maxKeys = Math.Max(maxKeys, e - s0);
        }
        fixed (float* pq = q, py = y, pl = lse)
        {
            int chunks = Math.Max(1, Math.Min(n, pool.Threads * 4 / Math.Max(1, nHeads) + 1));
            var job = new ForwardJob
            {
                Q = pq, Y = py, Lse = lse.IsEmpty ? null : pl, N = n, NH = nHeads, KVH = nKvHeads, HS = headSize, Rows = rows,
                Chunks = chunks, MaxKeys = maxKeys, Scale = scale > 0 ? scale : 1f / MathF.Sqrt(headSize), Softcap = softcap,
            };
            // tiny problems are not worth waking the workers
            if (work * nHeads * headSize < 32_768) for (int t = 0; t < nHeads * chunks; t++) job.Execute(t);
            else pool.Run(nHeads * chunks, job);
        }
    }

    private struct ForwardJob : IParallelJob
    {
        public float* Q, Y, Lse;
        public int N, NH, KVH, HS, Chunks, MaxKeys;
        public float Scale, Softcap;
        public AttentionRows Rows;

        /// <summary>Head task / Chunks, rows of block task % Chunks.</summary>
        public readonly void Execute(int task)
        {
            int h = task / Chunks, c = task % Chunks;
            int r0 = (int)((long)N * c / Chunks), r1 = (int)((long)N * (c + 1) / Chunks);
            int g = h / (NH / KVH), kvStride = KVH * HS;
            float scale = Scale, cap = Softcap;
            float* sc = Scratch.Get(Scratch.Scores, MaxKeys);
            var isa = KernelIsaSelector.Current;
            for (int i = r0; i < r1; i++)
            {
                int slot = Rows.Slot[i], s0 = Rows.KvStart == null ? 0 : Rows.KvStart[i], s1 = Rows.KvEnd[i], m = s1 - s0;
                float* k = (float*)Rows.KBase[slot] + g * HS, v = (float*)Rows.VBase[slot] + g * HS;
                float* qv = Q + ((long)i * NH + h) * HS;
                for (int s = 0; s < m; s++) sc[s] = Dot.Compute(qv, k + (long)(s0 + s) * kvStride, HS, isa) * scale;
                if (cap > 0) for (int s = 0; s < m; s++) sc[s] = cap * MathF.Tanh(sc[s] / cap);
                var scores = new Span<float>(sc, m);
                Softmax.Forward(scores, out float max, out float sum);
                if (Lse != null) Lse[(long)i * NH + h] = max + MathF.Log(sum);
                var yv = new Span<float>(Y + ((long)i * NH + h) * HS, HS);
                yv.Clear();
                for (int s = 0; s < m; s++) Add.Scaled(new ReadOnlySpan<float>(v + (long)(s0 + s) * kvStride, HS), sc[s], yv);
            }
        }
    }

    /// <summary>
    /// The backward pass (see the type summary) for rows grouped by slot: slot s owns rows slotRows[s]..slotRows[s+1]-1.
    /// dq (N,NH,HS) +=; dk, dv (S,KVH,HS) of each slot at <paramref name="dkBase"/>[s], <paramref name="dvBase"/>[s] +=.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> q, ReadOnlySpan<float> y, ReadOnlySpan<float> lse, Span<float> dq,
                                int slots, ReadOnlySpan<int> slotRows, nint* dkBase, nint* dvBase,
                                int nHeads, int nKvHeads, int headSize, in AttentionRows rows, WorkerPool pool, float scale = 0f)
    {
        int n = slotRows[slots];
        if (dy.Length < (long)n * nHeads * headSize || y.Length < (long)n * nHeads * headSize || dq.Length < (long)n * nHeads * headSize || lse.Length < n * nHeads)
            throw new ArgumentException($"Attention.Backward: dy, y, dq or lse is too short for N={n}, NH={nHeads}, HS={headSize}");
        fixed (float* pdy = dy, pq = q, py = y, pl = lse, pdq = dq)
        fixed (int* psr = slotRows)
        {
            var job = new BackwardJob
            {
                DY = pdy, Q = pq, Y = py, Lse = pl, DQ = pdq, SlotRows = psr, DKBase = dkBase, DVBase = dvBase,
                NH = nHeads, KVH = nKvHeads, HS = headSize, Rows = rows, Scale = scale > 0 ? scale : 1f / MathF.Sqrt(headSize),
            };
            pool.Run(slots * nKvHeads, job);
        }
    }

    private struct BackwardJob : IParallelJob
    {
        public float* DY, Q, Y, Lse, DQ;
        public int* SlotRows;
        public nint* DKBase, DVBase;
        public int NH, KVH, HS;
        public float Scale;
        public AttentionRows Rows;

        public readonly void Execute(int task)
        {
            int slot = task / KVH, g = task % KVH, group = NH / KVH, kvStride = KVH * HS;
            float scale = Scale;
            var isa = KernelIsaSelector.Current;
            float* k = (float*)Rows.KBase[slot] + g * HS, v = (float*)Rows.VBase[slot] + g * HS;
            float* dk = (float*)DKBase[slot] + g * HS, dv = (float*)DVBase[slot] + g * HS;
            for (int i = SlotRows[slot]; i < SlotRows[slot + 1]; i++)
            {
                int s0 = Rows.KvStart == null ? 0 : Rows.KvStart[i], m = Rows.KvEnd[i] - s0;
                for (int hh = 0; hh < group; hh++)
                {
                    int h = g * group + hh;
                    long at = ((long)i * NH + h) * HS;
                    float* qv = Q + at, dyv = DY + at;
                    float l = Lse[(long)i * NH + h], dsum = Dot.Compute(dyv, Y + at, HS, isa);
                    var dqv = new Span<float>(DQ + at, HS);
                    for (int s = 0; s < m; s++)
                    {
                        long kv = (long)(s0 + s) * kvStride;
                        float ps = MathF.Exp(Dot.Compute(qv, k + kv, HS, isa) * scale - l);
                        float ds = ps * (Dot.Compute(dyv, v + kv, HS, isa) - dsum) * scale;
                        Add.Scaled(new ReadOnlySpan<float>(dyv, HS), ps, new Span<float>(dv + kv, HS));
                        if (ds == 0) continue;
                        Add.Scaled(new ReadOnlySpan<float>(k + kv, HS), ds, dqv);
                        Add.Scaled(new ReadOnlySpan<float>(qv, HS), ds, new Span<float>(dk + kv, HS));
                    }
                }
            }
        }
    }

    /// <summary>
    /// The readable oracle over the training layout: q (B,T,NH,HS), k, v (B,T,KVH,HS) -> y (B,T,NH,HS) and the
    /// probabilities att (B,NH,T,T) (masked entries 0); <c>causal</c> lets query t see keys 0..t (else all T).
    /// <c>startPos</c> shifts the queries: query t is at position startPos + t of keys k (S = startPos + T rows per
    /// sequence) — the inference form with a cache. <c>scale</c> &gt; 0 replaces 1/sqrt(HS). Generic so the gradient checks
    /// run it in double.
    /// </summary>
    public static class Naive
    {
        public static void Forward<T>(ReadOnlySpan<T> q, ReadOnlySpan<T> k, ReadOnlySpan<T> v, Span<T> att, Span<T> y,
                                      int b, int t, int nh, int kvh, int hs, bool causal, int startPos = 0, double scale = 0)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            int group = nh / kvh, s = startPos + t;
            T sc = scale > 0 ? T.CreateTruncating(scale) : T.One / T.Sqrt(T.CreateTruncating(hs));
            var row = new T[s];
            for (int bi = 0; bi < b; bi++)
                for (int h = 0; h < nh; h++)
                {
                    int g = h / group;
                    for (int ti = 0; ti < t; ti++)
                    {
                        int end = causal ? startPos + ti + 1 : s;
                        T max = T.NegativeInfinity;
                        for (int j = 0; j < end; j++)
                        {
                            T dot = T.Zero;
                            for (int i = 0; i < hs; i++) dot += q[((bi * t + ti) * nh + h) * hs + i] * k[((bi * s + j) * kvh + g) * hs + i];
                            row[j] = dot * sc;
                            if (row[j] > max) max = row[j];
                        }
                        T sum = T.Zero;
                        for (int j = 0; j < end; j++) { row[j] = T.Exp(row[j] - max); sum += row[j]; }
                        for (int j = 0; j < s; j++)
                        {
                            T pj = j < end ? row[j] / sum : T.Zero;
                            if (!att.IsEmpty) att[((bi * nh + h) * t + ti) * s + j] = pj;
                            row[j] = pj;
                        }
                        for (int i = 0; i < hs; i++)
                        {
                            T acc = T.Zero;
                            for (int j = 0; j < end; j++) acc += row[j] * v[((bi * s + j) * kvh + g) * hs + i];
                            y[((bi * t + ti) * nh + h) * hs + i] = acc;
                        }
                    }
                }
        }

        /// <summary>Gradients (+=) of <see cref="Forward{T}"/> (startPos 0) from its probabilities att.</summary>
        public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> q, ReadOnlySpan<T> k, ReadOnlySpan<T> v, ReadOnlySpan<T> att,
                                       Span<T> dq, Span<T> dk, Span<T> dv, int b, int t, int nh, int kvh, int hs, bool causal, double scale = 0)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            int group = nh / kvh;
            T sc = scale > 0 ? T.CreateTruncating(scale) : T.One / T.Sqrt(T.CreateTruncating(hs));
            var datt = new T[t];
            for (int bi = 0; bi < b; bi++)
                for (int h = 0; h < nh; h++)
                {
                    int g = h / group;
                    for (int ti = 0; ti < t; ti++)
                    {
                        int end = causal ? ti + 1 : t;
                        T dotSum = T.Zero;
                        for (int j = 0; j < end; j++)
                        {
                            T a = att[((bi * nh + h) * t + ti) * t + j], d = T.Zero;
                            for (int i = 0; i < hs; i++)
                            {
                                T dyi = dy[((bi * t + ti) * nh + h) * hs + i];
                                d += dyi * v[((bi * t + j) * kvh + g) * hs + i];
                                dv[((bi * t + j) * kvh + g) * hs + i] += a * dyi;
                            }
                            datt[j] = d;
                            dotSum += d * a;
                        }
                        for (int j = 0; j < end; j++)
                        {
                            T a = att[((bi * nh + h) * t + ti) * t + j];
                            T dpre = a * (datt[j] - dotSum) * sc;
                            for (int i = 0; i < hs; i++)
                            {
                                dq[((bi * t + ti) * nh + h) * hs + i] += dpre * k[((bi * t + j) * kvh + g) * hs + i];
                                dk[((bi * t + j) * kvh + g) * hs + i] += dpre * q[((bi * t + ti) * nh + h) * hs + i];
                            }
                        }
                    }
                }
        }
    }
}
