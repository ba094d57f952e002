using SharpLM.Models;

namespace SharpLM.Kernels;

/// <summary>
/// Causal multi-head attention of a block of queries against a key/value cache, with grouped-query head mapping.
/// q (T,NH,HS) at absolute positions startPos..startPos+T-1; k, v (S,KVH,HS), S &gt;= startPos+T, the cache rows
/// 0..startPos+T-1 filled -> y (T,NH,HS). Query head h reads KV head h / (NH/KVH). Query t attends keys 0..startPos+t:
/// y[t,h] = softmax(q[t,h] K[0..startPos+t, g]^T / sqrt(HS)) V[0..startPos+t, g].
/// Heads run in parallel on the kernels' <see cref="WorkerPool"/>; each head owns one score row of the scratch.
/// </summary>
internal static unsafe class Attention
{
    /// <summary>Floats of scratch that <see cref="Forward(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, Span{float}, int, int, int, int, int)"/>
    /// needs for S = <paramref name="contextLength"/>: one score row per head.</summary>
    public static int ScratchLength(int nHeads, int contextLength) => nHeads * contextLength;

    /// <summary>See the type summary. <paramref name="scratch"/> holds at least <see cref="ScratchLength"/>(NH, startPos+T) floats. Does not allocate.</summary>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> y, Span<float> scratch,
                               int t, int nHeads, int nKvHeads, int headSize, int startPos) =>
        Forward(q, k, v, y, scratch, t, nHeads, nKvHeads, headSize, startPos, WorkerPool.Shared);

    /// <summary>As the other overload, on a given pool.</summary>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> y, Span<float> scratch,
                               int t, int nHeads, int nKvHeads, int headSize, int startPos, WorkerPool pool)
    {
        if (nKvHeads <= 0 || nHeads % nKvHeads != 0) throw new ArgumentException($"NH = {nHeads} is not a multiple of KVH = {nKvHeads}", nameof(nKvHeads));
        int s = startPos + t;
        if (t <= 0) return;
        if (q.Length < t * nHeads * headSize) throw new ArgumentException($"q holds {q.Length} floats, need T*NH*HS = {t}*{nHeads}*{headSize}", nameof(q));
        if (y.Length < t * nHeads * headSize) throw new ArgumentException($"y holds {y.Length} floats, need T*NH*HS = {t}*{nHeads}*{headSize}", nameof(y));
        if (k.Length < s * nKvHeads * headSize || v.Length < s * nKvHeads * headSize)
            throw new ArgumentException($"the KV cache holds {Math.Min(k.Length, v.Length)} floats, need S*KVH*HS = {s}*{nKvHeads}*{headSize}", nameof(k));
        if (scratch.Length < ScratchLength(nHeads, s)) throw new ArgumentException($"scratch holds {scratch.Length} floats, need NH*S = {nHeads}*{s}", nameof(scratch));
        fixed (float* pq = q, pk = k, pv = v, py = y, ps = scratch)
        {
            var job = new Job
            {
                Q = pq, K = pk, V = pv, Y = py, Scores = ps, T = t, NH = nHeads, KVH = nKvHeads, HS = headSize, StartPos = startPos,
                KLen = k.Length, VLen = v.Length, QLen = q.Length, YLen = y.Length, SLen = scratch.Length,
            };
            // tiny problems are not worth waking the workers
            if ((long)t * s * nHeads * headSize < 32_768) for (int h = 0; h < nHeads; h++) job.Execute(h);
            else pool.Run(nHeads, job);
        }
    }

    private struct Job : IParallelJob
    {
        public float* Q, K, V, Y, Scores;
        public int T, NH, KVH, HS, StartPos, KLen, VLen, QLen, YLen, SLen;

        /// <summary>Every query of head h.</summary>
        public readonly void Execute(int h)
        {
            int s = StartPos + T;
            var q = new ReadOnlySpan<float>(Q, QLen);
            var k = new ReadOnlySpan<float>(K, KLen);
            var v = new ReadOnlySpan<float>(V, VLen);
            var y = new Span<float>(Y, YLen);
            var scores = new Span<float>(Scores, SLen).Slice(h * s, s);
            for (int ti = 0; ti < T; ti++) Head(q, k, v, y, scores, ti, h, NH, KVH, HS, StartPos);
        }
    }

    /// <summary>One (query, head) item: scores over keys 0..startPos+ti, softmax, weighted sum of values.</summary>
    internal static void Head(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> y, Span<float> scores,
                              int ti, int h, int nHeads, int nKvHeads, int headSize, int startPos)
    {
        int g = h / (nHeads / nKvHeads), n = startPos + ti + 1, kvStride = nKvHeads * headSize;
        float scale = 1f / MathF.Sqrt(headSize);
        var qv = q.Slice((ti * nHeads + h) * headSize, headSize);
        var sc = scores[..n];
        for (int s = 0; s < n; s++) sc[s] = VecOps.Dot(qv, k.Slice(s * kvStride + g * headSize, headSize)) * scale;
        Softmax.Forward(sc);
        var yv = y.Slice((ti * nHeads + h) * headSize, headSize);
        yv.Clear();
        for (int s = 0; s < n; s++) VecOps.AddScaled(yv, v.Slice(s * kvStride + g * headSize, headSize), sc[s]);
    }
}
