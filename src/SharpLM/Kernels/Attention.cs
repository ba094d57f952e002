using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;

namespace SharpLM.Kernels;

/// <summary>
/// Which keys each query row of a batch sees. Row i belongs to sequence slot <see cref="Slot"/>[i] and attends that
/// slot's keys <see cref="KvStart"/>[i] .. <see cref="KvEnd"/>[i]-1: a decoder row at position p sees 0..p (causal, the
/// study note's mask), an encoder row sees its whole sequence (bidirectional, padding never enters), a sliding window
/// starts later. The keys and values of slot s for the current layer are (S, KVH, HS) at <see cref="KBase"/>[s] and
/// <see cref="VBase"/>[s], stored as <see cref="KvType"/>: a sequence's KV cache in inference, the layer's saved K and V
/// in training (F32).
/// </summary>
internal unsafe struct AttentionRows
{
    public int* Slot;
    /// <summary>First visible key per row, or null for 0.</summary>
    public int* KvStart;
    public int* KvEnd;
    public nint* KBase;
    public nint* VBase;
    /// <summary>The element type of the stored keys and values (F32 by default; an F16 or Q8_0 KV cache): each position holds
    /// KVH rows of HS values of this type.</summary>
    public DType KvType;
    /// <summary>A sparse pattern on top of each row's key range (<see cref="SparsePattern"/>; dense by default), applied
    /// with the rows' positions <see cref="Pos"/> (key k of a slot is position k: training, encoders, a linear cache).</summary>
    public SparsePattern Pattern;
    /// <summary>Each row's position in its sequence (needed only by a sparse <see cref="Pattern"/>).</summary>
    public int* Pos;
}

/// <summary>
/// Sparse attention (the study note's question 1 s; Child et al. 2019's Sparse Transformer, Longformer, BigBird): which
/// keys a query at position p keeps of those its mask (causal, padding) lets it see. Key k is kept when it is the query
/// itself, within the local window |p − k| &lt; <see cref="Window"/>, on the stride ((p − k) a multiple of
/// <see cref="Stride"/>), or global (k &lt; <see cref="Global"/>: the first tokens are seen by every row, and those rows see
/// every key). Every field 0 is dense attention. A causal local window of W keeps the last W keys, as a sliding window
/// does; a bidirectional one 2W − 1 around the query.
/// </summary>
public readonly record struct SparsePattern(int Window = 0, int Stride = 0, int Global = 0)
{
    /// <summary>No pattern: every key in the row's range.</summary>
    public bool IsDense => Window <= 0 && Stride <= 0 && Global <= 0;

    /// <summary>Whether the query at position p keeps key k (k inside its range).</summary>
    public bool Sees(int p, int k) =>
        k == p || (Window > 0 && Math.Abs(p - k) < Window) || (Stride > 0 && (p - k) % Stride == 0) || k < Global || p < Global;

    /// <summary>Whether any query at positions [pMin, pMax] may keep a key in [kb, ke) (false: the block is skipped).</summary>
    public bool MaySee(int pMin, int pMax, int kb, int ke) =>
        IsDense || Stride > 0 || kb < Global || pMin < Global
        || (kb <= pMax + Math.Max(Window - 1, 0) && ke - 1 >= pMin - Math.Max(Window - 1, 0));

    /// <summary>The pattern's name as the lab and config files write it: dense, local W, strided S, global G, joined by +.</summary>
    public override string ToString()
    {
        if (IsDense) return "dense";
        var parts = new List<string>();
        if (Window > 0) parts.Add($"local {Window}");
        if (Stride > 0) parts.Add($"strided {Stride}");
        if (Global > 0) parts.Add($"global {Global}");
        return string.Join(" + ", parts);
    }
}

/// <summary>
/// The parameters of an attention pass beyond its shapes: the score scale (1/sqrt(HS) unless the model says otherwise)
/// and an optional soft cap of the scores, s -> cap * tanh(s / cap) (Gemma 2; 0 = none). One struct, so a new option
/// reaches every caller through one place.
/// </summary>
internal readonly record struct AttentionOptions(float Scale, float Softcap = 0f)
{
    /// <summary>The default scale 1/sqrt(HS), no cap.</summary>
    public static AttentionOptions For(int headSize) => new(1f / MathF.Sqrt(headSize));
}

/// <summary>
/// Scaled dot-product multi-head attention with grouped K/V heads (query head h reads K/V head h / (NH/KVH)), over a
/// batch of rows from any number of sequences (<see cref="AttentionRows"/>).
/// Forward: q (N,NH,HS) -> y (N,NH,HS), and lse (N,NH) = log sum_s exp(score_s) when asked (the backward pass
/// recomputes the probabilities from it instead of storing N*NH*S of them):
///   score_s = q[i,h] . k[s,g] * scale (then capped when asked), p = softmax(score) over the visible keys,
///   y[i,h] = sum_s p_s v[s,g].
/// The 1/sqrt(HS) scale keeps the scores' variance near 1 whatever the head size (the study note's question 1b); a model may
/// give another scale, and Gemma 2 soft-caps the scores, score = cap * tanh(score / cap) (<see cref="AttentionOptions"/>).
/// <para>The forward is blocked (flash-style): keys are visited in blocks of <see cref="KeyBlock"/> on a grid of absolute
/// positions with an online softmax (running max m, sum l and output o, rescaled by exp(m_old - m_new) per block), so
/// no N x S score matrix exists and the working set is one block of K and V, unpacked into contiguous f32 rows (from
/// the strided cache, and from F16 or Q8_0 storage) once for all the query vectors of the task. A task takes a tile of up to 32 query
/// vectors: consecutive rows of one sequence with the same first key, times the NH/KVH query heads of one K/V group,
/// so each K and V row is loaded once for all of them. A row's arithmetic depends only on its own visible range and the
/// fixed block grid, never on the tile it shares: its output is the same alone or in any batch.</para>
/// Backward (rows grouped by slot, as training lays them out): with D = dy[i,h] . y[i,h] and dp_s = dy[i,h] . v[s,g],
/// ds_s = p_s (dp_s - D); dq[i,h] += sum_s ds_s k[s,g] * scale; dk[s,g] += ds_s q[i,h] * scale; dv[s,g] += p_s dy[i,h]
/// (scale: the model's own, or 1/sqrt(HS), as the forward pass).
/// Work items are (slot, K/V head): each owns its dk/dv rows, so the sums do not depend on the thread count.
/// </summary>
internal static unsafe class Attention
{
    /// <summary>Keys per block of the online softmax for a head size: 64 up to HS 64, fewer above, so a block of K and V
    /// (unpacked to f32) stays in L1. A multiple of 16, fixed per model, so the block grid never depends on the batch.</summary>
    public static int KeyBlock(int headSize) => headSize <= 64 ? 64 : headSize <= 128 ? 32 : 16;

    /// <summary>Query vectors (rows x heads of one group) per task, at most.</summary>
    private const int TileVectors = 32;

    /// <summary>See the type summary, with the default scale 1/sqrt(HS).</summary>
    public static void Forward(ReadOnlySpan<float> q, Span<float> y, Span<float> lse, int n, int nHeads, int nKvHeads, int headSize,
                               in AttentionRows rows, WorkerPool pool) =>
        Forward(q, y, lse, n, nHeads, nKvHeads, headSize, rows, pool, AttentionOptions.For(headSize));

    /// <summary>See the type summary. Runs (tile of rows, K/V group) tasks on <paramref name="pool"/>; does not allocate.</summary>
    public static void Forward(ReadOnlySpan<float> q, Span<float> y, Span<float> lse, int n, int nHeads, int nKvHeads, int headSize,
                               in AttentionRows rows, WorkerPool pool, in AttentionOptions options)
    {
        if (nKvHeads <= 0 || nHeads % nKvHeads != 0) throw new ArgumentException($"NH = {nHeads} is not a multiple of KVH = {nKvHeads}", nameof(nKvHeads));
        if (n <= 0) return;
        if (q.Length < (long)n * nHeads * headSize) throw new ArgumentException($"q holds {q.Length} floats, need N*NH*HS = {n}*{nHeads}*{headSize}", nameof(q));
        if (y.Length < (long)n * nHeads * headSize) throw new ArgumentException($"y holds {y.Length} floats, need N*NH*HS = {n}*{nHeads}*{headSize}", nameof(y));
        if (!lse.IsEmpty && lse.Length < n * nHeads) throw new ArgumentException($"lse holds {lse.Length} floats, need N*NH = {n * nHeads}", nameof(lse));
        int group = nHeads / nKvHeads;
        int maxRows = Math.Max(1, TileVectors / group);
        // tiles: consecutive rows of one slot with the same first key (a causal prefill chunk, an encoder text)
        int* tiles = (int*)Scratch.Get(Scratch.Tiles, n + 1);
        int nTiles = 0;
        long work = 0;
        for (int i = 0; i < n; i++)
        {
            int s0 = rows.KvStart == null ? 0 : rows.KvStart[i], e = rows.KvEnd[i];
            if (e <= s0 || s0 < 0) throw new ArgumentException($"row {i} sees keys [{s0}, {e}): it must see at least one");
            work += e - s0;
            bool start = nTiles == 0 || i - tiles[nTiles - 1] >= maxRows || rows.Slot[i] != rows.Slot[i - 1]
                         || (rows.KvStart == null ? 0 : rows.KvStart[i]) != (rows.KvStart == null ? 0 : rows.KvStart[i - 1]);
            if (start) tiles[nTiles++] = i;
        }
        tiles[nTiles] = n;
        fixed (float* pq = q, py = y, pl = lse)
        {
            var job = new ForwardJob
            {
                Q = pq, Y = py, Lse = lse.IsEmpty ? null : pl, NH = nHeads, KVH = nKvHeads, HS = headSize, Rows = rows,
                Tiles = tiles, NTiles = nTiles, Scale = options.Scale, Cap = options.Softcap,
            };
            // tiny problems are not worth waking the workers
            if (work * nHeads * headSize < 32_768) for (int t = 0; t < nTiles * nKvHeads; t++) job.Execute(t);
            else pool.Run(nTiles * nKvHeads, job);
        }
    }

    private struct ForwardJob : IParallelJob
    {
        public float* Q, Y, Lse;
        public int NH, KVH, HS, NTiles;
        public int* Tiles;
        public float Scale, Cap;
        public AttentionRows Rows;

        /// <summary>Task = tile * KVH + group: the tile's rows times the group's heads, over their keys block by block.</summary>
        public readonly void Execute(int task)
        {
            int tile = task / KVH, g = task % KVH, group = NH / KVH;
            int i0 = Tiles[tile], i1 = Tiles[tile + 1], nq = (i1 - i0) * group;
            int slot = Rows.Slot[i0], s0 = Rows.KvStart == null ? 0 : Rows.KvStart[i0];
            int kmax = 0;
            for (int i = i0; i < i1; i++) kmax = Math.Max(kmax, Rows.KvEnd[i]);
            var kvType = DTypes.Of(Rows.KvType);
            long headBytes = kvType.RowBytes(HS), rowBytes = KVH * headBytes;
            byte* k = (byte*)Rows.KBase[slot] + g * headBytes, v = (byte*)Rows.VBase[slot] + g * headBytes;
            var isa = KernelIsaSelector.Current;
            int bk = KeyBlock(HS);
            // per task: the block of K and V unpacked (bk x HS each); per query vector qv = (row r, head h): the block's
            // scores (bk), output o (HS), running max m and sum l
            int hsPad = (HS + 15) & ~15;
            float* kp = Scratch.Get(Scratch.Scores, 2L * bk * hsPad + (long)nq * (bk + hsPad + 2));
            float* vp = kp + (long)bk * hsPad, sc = vp + (long)bk * hsPad;
            float* o = sc + (long)nq * bk, m = o + (long)nq * hsPad, l = m + nq;
            new Span<float>(o, nq * hsPad).Clear();
            for (int j = 0; j < nq; j++) { m[j] = float.NegativeInfinity; l[j] = 0; }
            bool sparse = !Rows.Pattern.IsDense;
            int pMin = int.MaxValue, pMax = int.MinValue;
            if (sparse)
                for (int i = i0; i < i1; i++) { pMin = Math.Min(pMin, Rows.Pos[i]); pMax = Math.Max(pMax, Rows.Pos[i]); }
            for (int kb = s0 / bk * bk; kb < kmax; kb += bk)
            {
                int ks = Math.Max(kb, s0), ke = Math.Min(kb + bk, kmax);
                if (sparse && !Rows.Pattern.MaySee(pMin, pMax, ks, ke)) continue; // a block no row of the tile keeps
                Unpack(kvType, k, ks, ke, kb, kmax, rowBytes, headBytes, kp, hsPad, isa);
                Unpack(kvType, v, ks, ke, kb, kmax, rowBytes, headBytes, vp, hsPad, isa);
                // scores, -inf outside each row's visible keys
                for (int r = 0; r < i1 - i0; r++)
                {
                    int end = Math.Min(ke, Rows.KvEnd[i0 + r]);
                    for (int h = 0; h < group; h++)
                    {
                        float* srow = sc + (long)(r * group + h) * bk;
                        float* qv = Q + ((long)(i0 + r) * NH + g * group + h) * HS;
                        if (isa == KernelIsa.Avx512 && HS % 16 == 0)
                        {
                            for (int j = 0; j < bk; j += 16)
                                if (kb + j < end && kb + j + 16 > ks) Scores16(qv, kp + (long)j * hsPad, Math.Max(ks - kb - j, 0), Math.Min(end - kb - j, 16), hsPad, srow + j);
                                else Vector512.Create(float.NegativeInfinity).Store(srow + j);
                            continue;
                        }
                        if (isa == KernelIsa.Avx2 && HS % 8 == 0)
                        {
                            for (int j = 0; j < bk; j += 8)
                                if (kb + j < end && kb + j + 8 > ks) Scores8(qv, kp + (long)j * hsPad, Math.Max(ks - kb - j, 0), Math.Min(end - kb - j, 8), hsPad, srow + j);
                                else Vector256.Create(float.NegativeInfinity).Store(srow + j);
                            continue;
                        }
                        for (int j = 0; j < bk; j++)
                        {
                            int key = kb + j;
                            srow[j] = key >= ks && key < end ? Score(qv, kp + (long)j * hsPad, isa) : float.NegativeInfinity;
                        }
                    }
                    if (!sparse) continue;
                    // the pattern's holes: keys in the row's range that it does not keep
                    int p = Rows.Pos[i0 + r];
                    for (int j = Math.Max(ks, kb) - kb; j < end - kb; j++)
                        if (!Rows.Pattern.Sees(p, kb + j))
                            for (int h = 0; h < group; h++) sc[(long)(r * group + h) * bk + j] = float.NegativeInfinity;
                }
                // online softmax update per query vector: m, l, o rescaled; scores become probabilities
                for (int r = 0; r < i1 - i0; r++)
                {
                    if (Math.Min(ke, Rows.KvEnd[i0 + r]) <= ks) continue; // the row sees none of this block
                    for (int h = 0; h < group; h++)
                    {
                        int qi = r * group + h;
                        float* srow = sc + (long)qi * bk;
                        float bm = BlockMax(srow, bk, isa);
                        if (float.IsNegativeInfinity(bm)) continue; // a sparse pattern kept none of this block's keys
                        float mNew = MathF.Max(m[qi], bm);
                        float alpha = MathF.Exp(m[qi] - mNew); // 0 on the first block (m = -inf)
                        l[qi] = l[qi] * alpha + ExpSum(srow, bk, mNew, isa);
                        m[qi] = mNew;
                        Accumulate(o + (long)qi * hsPad, alpha, srow, vp, ks - kb, ke - kb, hsPad, HS, isa);
                    }
                }
            }
            for (int r = 0; r < i1 - i0; r++)
                for (int h = 0; h < group; h++)
                {
                    int qi = r * group + h, head = g * group + h;
                    float li = l[qi];
                    float* oq = o + (long)qi * hsPad, yv = Y + ((long)(i0 + r) * NH + head) * HS;
                    // a row that keeps no key (a padding row outside a sparse pattern's reach) outputs zeros
                    if (li == 0) { new Span<float>(yv, HS).Clear(); if (Lse != null) Lse[(long)(i0 + r) * NH + head] = 0; continue; }
                    for (int d = 0; d < HS; d++) yv[d] = oq[d] / li;
                    if (Lse != null) Lse[(long)(i0 + r) * NH + head] = m[qi] + MathF.Log(l[qi]);
                }
        }

        /// <summary>Rows [ks, ke) of one K/V head (rowBytes apart) to contiguous f32 rows (ld apart) at dst + (key - kb) * ld,
        /// prefetching the rows a block ahead (the cache is read once per pass: this is where decode meets DRAM).</summary>
        private readonly void Unpack(TypeTraits type, byte* src, int ks, int ke, int kb, int kmax, long rowBytes, long headBytes, float* dst, int ld, KernelIsa isa)
        {
            for (int key = ks; key < ke; key++)
            {
                int ahead = key + 32;
                if (ahead < kmax && isa != KernelIsa.Scalar)
                {
                    byte* pf = src + ahead * rowBytes;
                    for (long b = 0; b < headBytes; b += 64) Sse.Prefetch0(pf + b);
                }
                byte* row = src + key * rowBytes;
                float* d = dst + (long)(key - kb) * ld;
                if (type.Type == DType.F32 && isa == KernelIsa.Avx512 && HS % 16 == 0)
                    for (int i = 0; i < HS; i += 16) Vector512.Load((float*)row + i).Store(d + i);
                else type.DequantizeRow(row, d, HS, isa);
            }
        }

        private readonly float Score(float* qv, float* key, KernelIsa isa)
        {
            float s = Dot.Compute(qv, key, HS, isa) * Scale;
            return Cap > 0 ? Cap * VecMath.Tanh(s / Cap) : s;
        }

        /// <summary>Scores of 16 unpacked keys (rows kr + j*ld; lanes [a, b) visible, -inf elsewhere) for one query
        /// vector: per key a vector of partial products (HS/16 FMAs), then the 16 vectors reduced to their 16 sums in one
        /// register (a fixed tree, so a key's score depends only on its own products). HS a multiple of 16.</summary>
        private readonly void Scores16(float* qv, float* kr, int a, int b, int ld, float* dst)
        {
            var p0 = KeyDot(qv, kr, 0, a, b, ld); var p1 = KeyDot(qv, kr, 1, a, b, ld);
            var p2 = KeyDot(qv, kr, 2, a, b, ld); var p3 = KeyDot(qv, kr, 3, a, b, ld);
            var p4 = KeyDot(qv, kr, 4, a, b, ld); var p5 = KeyDot(qv, kr, 5, a, b, ld);
            var p6 = KeyDot(qv, kr, 6, a, b, ld); var p7 = KeyDot(qv, kr, 7, a, b, ld);
            var p8 = KeyDot(qv, kr, 8, a, b, ld); var p9 = KeyDot(qv, kr, 9, a, b, ld);
            var p10 = KeyDot(qv, kr, 10, a, b, ld); var p11 = KeyDot(qv, kr, 11, a, b, ld);
            var p12 = KeyDot(qv, kr, 12, a, b, ld); var p13 = KeyDot(qv, kr, 13, a, b, ld);
            var p14 = KeyDot(qv, kr, 14, a, b, ld); var p15 = KeyDot(qv, kr, 15, a, b, ld);
            var sums = ReduceSum16(p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, p13, p14, p15) * Vector512.Create(Scale);
            if (Cap > 0) sums = Vector512.Create(Cap) * VecMath.Tanh(sums / Vector512.Create(Cap));
            var lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            var visible = Vector512.GreaterThanOrEqual(lane, Vector512.Create(a)) & Vector512.LessThan(lane, Vector512.Create(b));
            Vector512.ConditionalSelect(visible.AsSingle(), sums, Vector512.Create(float.NegativeInfinity)).Store(dst);
        }

        /// <summary>AVX2: scores of 8 unpacked keys (lanes [a, b) visible, -inf elsewhere) for one query vector: per key a
        /// vector of partial products (HS/8 FMAs), then the 8 vectors reduced to their 8 sums in one register (a fixed
        /// tree of horizontal adds, so a key's score depends only on its own products). HS a multiple of 8.</summary>
        private readonly void Scores8(float* qv, float* kr, int a, int b, int ld, float* dst)
        {
            var p0 = KeyDot8(qv, kr, 0, a, b, ld); var p1 = KeyDot8(qv, kr, 1, a, b, ld);
            var p2 = KeyDot8(qv, kr, 2, a, b, ld); var p3 = KeyDot8(qv, kr, 3, a, b, ld);
            var p4 = KeyDot8(qv, kr, 4, a, b, ld); var p5 = KeyDot8(qv, kr, 5, a, b, ld);
            var p6 = KeyDot8(qv, kr, 6, a, b, ld); var p7 = KeyDot8(qv, kr, 7, a, b, ld);
            // lane j of u0 (j < 4): sum of the low halves of pj, lane 4+j: of the high halves; u1 likewise for p4..p7
            var u0 = Avx.HorizontalAdd(Avx.HorizontalAdd(p0, p1), Avx.HorizontalAdd(p2, p3));
            var u1 = Avx.HorizontalAdd(Avx.HorizontalAdd(p4, p5), Avx.HorizontalAdd(p6, p7));
            var sums = (Avx.Permute2x128(u0, u1, 0x20) + Avx.Permute2x128(u0, u1, 0x31)) * Vector256.Create(Scale);
            if (Cap > 0) sums = Vector256.Create(Cap) * VecMath.Tanh(sums / Vector256.Create(Cap));
            var lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
            var visible = Vector256.GreaterThanOrEqual(lane, Vector256.Create(a)) & Vector256.LessThan(lane, Vector256.Create(b));
            Vector256.ConditionalSelect(visible.AsSingle(), sums, Vector256.Create(float.NegativeInfinity)).Store(dst);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private readonly Vector256<float> KeyDot8(float* qv, float* kr, int j, int a, int b, int ld)
        {
            if (j < a || j >= b) return default;
            kr += (long)j * ld;
            var acc = Vector256.Load(qv) * Vector256.Load(kr);
            for (int d = 8; d < HS; d += 8) acc = Fma.MultiplyAdd(Vector256.Load(qv + d), Vector256.Load(kr + d), acc);
            return acc;
        }

        /// <summary>The products of q and key j of the group, summed over HS/16 vectors (zero for a key outside [a, b)).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private readonly Vector512<float> KeyDot(float* qv, float* kr, int j, int a, int b, int ld)
        {
            if (j < a || j >= b) return default;
            kr += (long)j * ld;
            var acc = Vector512.Load(qv) * Vector512.Load(kr);
            for (int d = 16; d < HS; d += 16) acc = Avx512F.FusedMultiplyAdd(Vector512.Load(qv + d), Vector512.Load(kr + d), acc);
            return acc;
        }
    }

    /// <summary>The horizontal sums of 16 vectors as one vector (lane j = sum of pj): pairwise unpack-and-add within the
    /// 128-bit lanes, then across them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ReduceSum16(Vector512<float> p0, Vector512<float> p1, Vector512<float> p2, Vector512<float> p3,
        Vector512<float> p4, Vector512<float> p5, Vector512<float> p6, Vector512<float> p7, Vector512<float> p8, Vector512<float> p9,
        Vector512<float> p10, Vector512<float> p11, Vector512<float> p12, Vector512<float> p13, Vector512<float> p14, Vector512<float> p15)
    {
        // stage 1: per 128-bit lane [a0+a2, b0+b2, a1+a3, b1+b3] for the pairs (0,1), (2,3), ...
        var a01 = Avx512F.UnpackLow(p0, p1) + Avx512F.UnpackHigh(p0, p1);
        var a23 = Avx512F.UnpackLow(p2, p3) + Avx512F.UnpackHigh(p2, p3);
        var a45 = Avx512F.UnpackLow(p4, p5) + Avx512F.UnpackHigh(p4, p5);
        var a67 = Avx512F.UnpackLow(p6, p7) + Avx512F.UnpackHigh(p6, p7);
        var a89 = Avx512F.UnpackLow(p8, p9) + Avx512F.UnpackHigh(p8, p9);
        var aab = Avx512F.UnpackLow(p10, p11) + Avx512F.UnpackHigh(p10, p11);
        var acd = Avx512F.UnpackLow(p12, p13) + Avx512F.UnpackHigh(p12, p13);
        var aef = Avx512F.UnpackLow(p14, p15) + Avx512F.UnpackHigh(p14, p15);
        // stage 2: per 128-bit lane the lane sums of four vectors [s0, s1, s2, s3]
        var b0 = Avx512F.UnpackLow(a01.AsDouble(), a23.AsDouble()).AsSingle() + Avx512F.UnpackHigh(a01.AsDouble(), a23.AsDouble()).AsSingle();
        var b1 = Avx512F.UnpackLow(a45.AsDouble(), a67.AsDouble()).AsSingle() + Avx512F.UnpackHigh(a45.AsDouble(), a67.AsDouble()).AsSingle();
        var b2 = Avx512F.UnpackLow(a89.AsDouble(), aab.AsDouble()).AsSingle() + Avx512F.UnpackHigh(a89.AsDouble(), aab.AsDouble()).AsSingle();
        var b3 = Avx512F.UnpackLow(acd.AsDouble(), aef.AsDouble()).AsSingle() + Avx512F.UnpackHigh(acd.AsDouble(), aef.AsDouble()).AsSingle();
        // stage 3: add the four 128-bit lanes of each b into lane b of the result
        var c0 = Avx512F.Shuffle4x128(b0, b1, 0x88) + Avx512F.Shuffle4x128(b0, b1, 0xDD);
        var c1 = Avx512F.Shuffle4x128(b2, b3, 0x88) + Avx512F.Shuffle4x128(b2, b3, 0xDD);
        return Avx512F.Shuffle4x128(c0, c1, 0x88) + Avx512F.Shuffle4x128(c0, c1, 0xDD);
    }

    /// <summary>Max of a block of n scores (n a multiple of 16; 16-lane vectors whatever the variant, so the result never
    /// depends on where the visible keys sit).</summary>
    private static float BlockMax(float* s, int n, KernelIsa isa)
    {
        if (isa == KernelIsa.Avx512)
        {
            var c = Vector512.Load(s);
            for (int j = 16; j < n; j += 16) c = Vector512.Max(c, Vector512.Load(s + j));
            var d = Vector256.Max(c.GetLower(), c.GetUpper());
            var e = Vector128.Max(d.GetLower(), d.GetUpper());
            return MathF.Max(MathF.Max(e[0], e[1]), MathF.Max(e[2], e[3]));
        }
        if (isa == KernelIsa.Avx2)
        {
            var c = Vector256.Load(s);
            for (int j = 8; j < n; j += 8) c = Vector256.Max(c, Vector256.Load(s + j));
            var e = Vector128.Max(c.GetLower(), c.GetUpper());
            return MathF.Max(MathF.Max(e[0], e[1]), MathF.Max(e[2], e[3]));
        }
        float m = float.NegativeInfinity;
        for (int j = 0; j < n; j++) m = MathF.Max(m, s[j]);
        return m;
    }

    /// <summary>s[j] = exp(s[j] - max) for the whole block of n (masked -inf -> 0); returns their sum.</summary>
    private static float ExpSum(float* s, int n, float max, KernelIsa isa)
    {
        if (isa == KernelIsa.Avx512)
        {
            var mx = Vector512.Create(max);
            Vector512<float> acc = default;
            for (int j = 0; j < n; j += 16)
            {
                var e = Vector512.Exp(Vector512.Load(s + j) - mx);
                e.Store(s + j);
                acc += e;
            }
            return Horizontal.Sum(acc);
        }
        if (isa == KernelIsa.Avx2)
        {
            var mx = Vector256.Create(max);
            Vector256<float> acc = default;
            for (int j = 0; j < n; j += 8)
            {
                var e = Vector256.Exp(Vector256.Load(s + j) - mx);
                e.Store(s + j);
                acc += e;
            }
            return Horizontal.Sum(acc);
        }
        float sum = 0;
        for (int j = 0; j < n; j++) { s[j] = MathF.Exp(s[j] - max); sum += s[j]; }
        return sum;
    }

    /// <summary>o (HS) = o * alpha + sum_j p[j] v[j] over the block's keys [j0, j1) (v unpacked, rows ld apart; keys other
    /// rows of the tile see but this one does not have p = 0 and add exactly nothing).</summary>
    private static void Accumulate(float* o, float alpha, float* p, float* v, int j0, int j1, int ld, int hs, KernelIsa isa)
    {
        int d = 0;
        if (isa == KernelIsa.Avx512)
        {
            var va = Vector512.Create(alpha);
            for (; d + 64 <= hs; d += 64)
            {
                // keys j0, j0+2, ... into a, the others into b (two FMA chains per vector: the loop is not latency-bound)
                var a0 = Vector512.Load(o + d) * va; var a1 = Vector512.Load(o + d + 16) * va;
                var a2 = Vector512.Load(o + d + 32) * va; var a3 = Vector512.Load(o + d + 48) * va;
                Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
                int j = j0;
                for (; j + 2 <= j1; j += 2)
                {
                    float* vr = v + (long)j * ld + d;
                    var pj = Vector512.Create(p[j]);
                    a0 = Avx512F.FusedMultiplyAdd(pj, Vector512.Load(vr), a0); a1 = Avx512F.FusedMultiplyAdd(pj, Vector512.Load(vr + 16), a1);
                    a2 = Avx512F.FusedMultiplyAdd(pj, Vector512.Load(vr + 32), a2); a3 = Avx512F.FusedMultiplyAdd(pj, Vector512.Load(vr + 48), a3);
                    vr += ld;
                    pj = Vector512.Create(p[j + 1]);
                    b0 = Avx512F.FusedMultiplyAdd(pj, Vector512.Load(vr), b0); b1 = Avx512F.FusedMultiplyAdd(pj, Vector512.Load(vr + 16), b1);
                    b2 = Avx512F.FusedMultiplyAdd(pj, Vector512.Load(vr + 32), b2); b3 = Avx512F.FusedMultiplyAdd(pj, Vector512.Load(vr + 48), b3);
                }
                if (j < j1)
                {
                    float* vr = v + (long)j * ld + d;
                    var pj = Vector512.Create(p[j]);
                    a0 = Avx512F.FusedMultiplyAdd(pj, Vector512.Load(vr), a0); a1 = Avx512F.FusedMultiplyAdd(pj, Vector512.Load(vr + 16), a1);
                    a2 = Avx512F.FusedMultiplyAdd(pj, Vector512.Load(vr + 32), a2); a3 = Avx512F.FusedMultiplyAdd(pj, Vector512.Load(vr + 48), a3);
                }
                (a0 + b0).Store(o + d); (a1 + b1).Store(o + d + 16); (a2 + b2).Store(o + d + 32); (a3 + b3).Store(o + d + 48);
            }
            for (; d + 16 <= hs; d += 16)
            {
                var a0 = Vector512.Load(o + d) * va;
                for (int j = j0; j < j1; j++) a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(p[j]), Vector512.Load(v + (long)j * ld + d), a0);
                a0.Store(o + d);
            }
        }
        else if (isa == KernelIsa.Avx2)
        {
            var va = Vector256.Create(alpha);
            // four output vectors at once: four independent FMA chains (each output's chain is the same as one at a time)
            for (; d + 32 <= hs; d += 32)
            {
                var a0 = Vector256.Load(o + d) * va;
                var a1 = Vector256.Load(o + d + 8) * va;
                var a2 = Vector256.Load(o + d + 16) * va;
                var a3 = Vector256.Load(o + d + 24) * va;
                for (int j = j0; j < j1; j++)
                {
                    var pj = Vector256.Create(p[j]);
                    float* vj = v + (long)j * ld + d;
                    a0 = Fma.MultiplyAdd(pj, Vector256.Load(vj), a0);
                    a1 = Fma.MultiplyAdd(pj, Vector256.Load(vj + 8), a1);
                    a2 = Fma.MultiplyAdd(pj, Vector256.Load(vj + 16), a2);
                    a3 = Fma.MultiplyAdd(pj, Vector256.Load(vj + 24), a3);
                }
                a0.Store(o + d); a1.Store(o + d + 8); a2.Store(o + d + 16); a3.Store(o + d + 24);
            }
            for (; d + 8 <= hs; d += 8)
            {
                var a0 = Vector256.Load(o + d) * va;
                for (int j = j0; j < j1; j++) a0 = Fma.MultiplyAdd(Vector256.Create(p[j]), Vector256.Load(v + (long)j * ld + d), a0);
                a0.Store(o + d);
            }
        }
        for (; d < hs; d++)
        {
            float a = o[d] * alpha;
            for (int j = j0; j < j1; j++) a = MathF.FusedMultiplyAdd(p[j], v[(long)j * ld + d], a);
            o[d] = a;
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
        if (rows.KvType != DType.F32) throw new NotSupportedException($"the attention backward needs F32 keys and values, not {rows.KvType}");
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
            bool sparse = !Rows.Pattern.IsDense;
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
                        if (sparse && !Rows.Pattern.Sees(Rows.Pos[i], s0 + s)) continue; // a hole of the sparse pattern: probability 0
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
    /// probabilities att (B,NH,T,T) (masked entries 0); <c>causal</c> lets query t see keys 0..t (else all T);
    /// <c>pattern</c> drops the keys a sparse pattern does not keep (its holes get probability 0, so
    /// <see cref="Backward{T}"/> needs no pattern).
    /// <c>startPos</c> shifts the queries: query t is at position startPos + t of keys k (S = startPos + T rows per
    /// sequence) — the inference form with a cache. A sliding window of W is the causal <c>pattern</c> with
    /// <see cref="SparsePattern.Window"/> = W (the last W keys of each query); <c>softcap</c> &gt; 0 caps the scores (cap * tanh(s / cap)); <c>scale</c> &gt; 0 replaces 1/sqrt(HS).
    /// Generic so the gradient checks
    /// run it in double.
    /// </summary>
    public static class Naive
    {
        public static void Forward<T>(ReadOnlySpan<T> q, ReadOnlySpan<T> k, ReadOnlySpan<T> v, Span<T> att, Span<T> y,
                                      int b, int t, int nh, int kvh, int hs, bool causal, int startPos = 0, double softcap = 0, double scale = 0,
                                      SparsePattern pattern = default)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            int group = nh / kvh, s = startPos + t;
            T sc = scale > 0 ? T.CreateTruncating(scale) : T.One / T.Sqrt(T.CreateTruncating(hs));
            T cap = T.CreateTruncating(softcap);
            var row = new T[s];
            for (int bi = 0; bi < b; bi++)
                for (int h = 0; h < nh; h++)
                {
                    int g = h / group;
                    for (int ti = 0; ti < t; ti++)
                    {
                        int end = causal ? startPos + ti + 1 : s;
                        int first = 0;
                        T max = T.NegativeInfinity;
                        for (int j = first; j < end; j++)
                        {
                            row[j] = T.NegativeInfinity;
                            if (!pattern.IsDense && !pattern.Sees(startPos + ti, j)) continue;
                            T dot = T.Zero;
                            for (int i = 0; i < hs; i++) dot += q[((bi * t + ti) * nh + h) * hs + i] * k[((bi * s + j) * kvh + g) * hs + i];
                            row[j] = dot * sc;
                            if (cap > T.Zero) row[j] = cap * T.Tanh(row[j] / cap);
                            if (row[j] > max) max = row[j];
                        }
                        T sum = T.Zero;
                        for (int j = first; j < end; j++) { row[j] = T.Exp(row[j] - max); sum += row[j]; }
                        for (int j = 0; j < s; j++)
                        {
                            T pj = j >= first && j < end ? row[j] / sum : T.Zero;
                            if (!att.IsEmpty) att[((bi * nh + h) * t + ti) * s + j] = pj;
                            row[j] = pj;
                        }
                        for (int i = 0; i < hs; i++)
                        {
                            T acc = T.Zero;
                            for (int j = first; j < end; j++) acc += row[j] * v[((bi * s + j) * kvh + g) * hs + i];
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
