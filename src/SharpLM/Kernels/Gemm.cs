using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Tensors;

namespace SharpLM.Kernels;

/// <summary>
/// The compute-bound matmul (prefill, T rows at once): y (T,OC) = x (T,C) W^T for W of any dtype.
/// x is packed once per call, transposed into tiles of NT rows ([k][NT], zero padded). Each task owns a range of W rows,
/// taken in chunks of up to 8 panels of MR rows; per K block of <see cref="KC"/> it dequantizes (or copies) the chunk's
/// rows into thread-local f32 panels, then for each block of <see cref="TB"/> tokens (kept in L2) passes each panel (in
/// L1) over the block's x tiles with a register-tiled outer-product micro-kernel: MR broadcasts of W times NT x lanes
/// (AVX-512: 8 x 32 = 16 zmm accumulators; AVX2: 6 x 16 = 12 ymm). Each K block's sums go to a transposed accumulator
/// (the first block stores, later ones add), written to y with 16x16 register transposes when the chunk is done.
/// f32 FMA accumulation; every output sums its K blocks in order and each block's products in k order, so a row's
/// result never depends on the other rows of the call (batch invariance).
/// <para>Packed weights (<see cref="Pack"/>, made once at load where weights never change, e.g. the encoder's): W is
/// stored as panels of <see cref="PackNr"/> output columns, [k][16] floats each, and <see cref="ForwardPacked(float*, in WeightMatrix, float*, float*, int, WorkerPool, KernelIsa)"/> runs for
/// every T (1 included: no matvec switch). x rows are read in place and broadcast, the panel's 16 columns sit in two
/// ymm lanes: blocks of up to 6 rows x 16 columns (12 ymm accumulators), the T rows split evenly into blocks of 4..6
/// (so no row is padded and no FMA chain is shorter than the FMA latency needs where T allows), and y's rows are written
/// directly (bias added in the store). Threads split the panels (output columns). Every output is one FMA chain over k
/// in order from 0, then + bias, whatever the block, T or thread count: a row's bits never depend on its batch.</para>
/// </summary>
internal static unsafe class Gemm
{
    public const int KC = 256; // a multiple of every block size (256 for k-quants)

    /// <summary>Tokens per block of packed x kept in L2 (TB x KC floats; a multiple of 32).</summary>
    public const int TB = 256;

    /// <summary>Panels per chunk of W rows (their accumulator is 8*MR x T floats).</summary>
    private const int ChunkPanels = 8;

    public static int Mr(KernelIsa isa) => isa == KernelIsa.Avx512 ? 8 : 6;

    public static int Nt(KernelIsa isa) => isa == KernelIsa.Avx512 ? 32 : 16;

    /// <summary>x (T,C), W (OC,C) -> y (T,OC). isa must be Avx512 or Avx2.</summary>
    public static void Forward(float* x, in WeightMatrix w, float* y, int t, KernelIsa isa, WorkerPool pool)
    {
        int nt = Nt(isa), mr = Mr(isa);
        // tiles of NT tokens; T is padded to 16 only, so the last AVX-512 tile may be 16 wide (a narrower kernel) rather
        // than wasting up to 31 zero tokens
        int tpad = (t + 15) / 16 * 16;
        int c = w.Cols;
        float* bp = Scratch.Get(Scratch.PackedX, (long)tpad * c);
        var pack = new PackJob { X = x, Bp = bp, T = t, Tpad = tpad, C = c, Nt = nt, Isa = isa };
        pool.Run((tpad + nt - 1) / nt, pack);

        long rowBytes = w.RowBytes;
        int tasks = WorkSplit.Tasks(w.Rows, rowBytes * 4 + (long)t * c / 8, pool.Threads, mr);
        var job = new GemmJob
        {
            W = w.Data, RowBytes = rowBytes, Type = w.Type, Rows = w.Rows, Cols = c, T = t, Tpad = tpad,
            Bp = bp, Y = y, Tasks = tasks, Isa = isa, Mr = mr, Nt = nt, GroupedRows = w.GroupedRows,
        };
        pool.Run(tasks, job);
    }

    private struct PackJob : IParallelJob
    {
        public float* X, Bp;
        public int T, Tpad, C, Nt;
        public KernelIsa Isa;

        /// <summary>Tile of nt = min(Nt, Tpad - t0) tokens: for each K block, dst[k*nt + j] = x[t0+j, k0+k] (0 past T).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Execute(int tile)
        {
            int t0 = tile * Nt, nt = Math.Min(Nt, Tpad - t0);
            for (int k0 = 0; k0 < C; k0 += KC)
            {
                int kc = Math.Min(KC, C - k0);
                float* dst = Bp + (long)k0 * Tpad + (long)t0 * kc;
                for (int j0 = 0; j0 < nt; j0 += 16)
                {
                    int k = 0;
                    if (Isa == KernelIsa.Avx512 && t0 + j0 + 16 <= T)
                        for (; k + 16 <= kc; k += 16) Transpose16(X + (long)(t0 + j0) * C + k0 + k, C, dst + (long)k * nt + j0, nt);
                    for (int j = j0; j < Math.Min(nt, j0 + 16); j++)
                    {
                        int tj = t0 + j;
                        float* src = X + (long)tj * C + k0;
                        if (tj < T) for (int kk = k; kk < kc; kk++) dst[kk * nt + j] = src[kk];
                        else for (int kk = k; kk < kc; kk++) dst[kk * nt + j] = 0;
                    }
                }
            }
        }
    }

    private struct GemmJob : IParallelJob
    {
        public byte* W;
        public long RowBytes;
        public DType Type;
        public int Rows, Cols, T, Tpad, Tasks, Mr, Nt, GroupedRows;
        public float* Bp, Y;
        public KernelIsa Isa;

        public readonly void Execute(int task)
        {
            var (r0, r1) = WorkSplit.Range(task, Tasks, Rows, Mr);
            for (int o0 = r0; o0 < r1; o0 += ChunkPanels * Mr) Chunk(o0, Math.Min(r1, o0 + ChunkPanels * Mr), r1);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private readonly void Chunk(int o0, int o1, int limit)
        {
            int nPanels = (o1 - o0 + Mr - 1) / Mr;
            float* acc = Scratch.Get(Scratch.Accum, (long)nPanels * Mr * Tpad);
            float* panels = Scratch.Get(Scratch.Panel, (long)nPanels * Mr * KC);
            var traits = Tensors.Types.DTypes.Of(Type);
            byte* plain = GroupedRows > 0 ? Tensors.Types.RowGroups.RowBuffer(RowBytes) : null;
            // F32 rows are read in place when few tokens share each panel (copying them would cost as much as using them);
            // with many tokens the copy is amortized and the 1 KB-strided panel never aliases in L1 like 8 rows 4*C apart
            bool direct = Type == DType.F32 && Tpad <= 64;
            for (int k0 = 0; k0 < Cols; k0 += KC)
            {
                int kc = Math.Min(KC, Cols - k0);
                bool first = k0 == 0;
                long kOffset = DTypeInfo.RowBytes(Type, k0);
                // every panel of the chunk for this K block, dequantized (or copied), except F32 panels read in place; a
                // last partial panel is padded with zero rows
                for (int i = 0; i < nPanels * Mr; i++)
                {
                    if (direct && o0 + i - i % Mr + Mr <= o1) continue;
                    float* dst = panels + (long)i * KC;
                    // (a grouped row, on the f32-activation path of a loaded model's regrouped matrices, copied out first)
                    if (o0 + i < o1) traits.DequantizeRow(Tensors.Types.RowGroups.PlainRow(Type, W, RowBytes, GroupedRows, Cols, o0 + i, plain) + kOffset, dst, kc, Isa);
                    else new Span<float>(dst, kc).Clear();
                }
                // the weight bytes the next step copies (this chunk's next K block, or the next chunk's first), fetched
                // a few rows per micro-kernel call while this block computes: with few tokens the copy from L3/DRAM
                // would otherwise stall as long as the arithmetic takes
                bool last = k0 + KC >= Cols;
                int pfRow0 = last ? o1 : o0, pfRows = last ? Math.Min(limit, o1 + ChunkPanels * Mr) - o1 : o1 - o0;
                long pfOffset = last ? 0 : DTypeInfo.RowBytes(Type, k0 + KC), pfBytes = DTypeInfo.RowBytes(Type, Math.Min(KC, Cols - (last ? 0 : k0 + KC)));
                int calls = nPanels * ((Tpad + Nt - 1) / Nt), perCall = (pfRows + calls - 1) / Math.Max(1, calls), pfNext = 0;
                // a block of x tiles (TB tokens x kc) stays in L2 while each panel (in L1) passes over its tiles
                for (int tb = 0; tb < Tpad; tb += TB)
                {
                    int te = Math.Min(Tpad, tb + TB);
                    for (int p = 0; p < nPanels; p++)
                    {
                        float* wp = panels + (long)p * Mr * KC;
                        int ldw = KC;
                        if (direct && o0 + (p + 1) * Mr <= o1)
                        {
                            wp = (float*)(W + (o0 + p * Mr) * RowBytes) + k0;
                            ldw = Cols;
                        }
                        for (int tt = tb; tt < te; tt += Nt)
                        {
                            for (int r = 0; r < perCall && pfNext < pfRows; r++, pfNext++)
                            {
                                byte* row = W + (pfRow0 + pfNext) * RowBytes + pfOffset;
                                for (long bb = 0; bb < pfBytes; bb += 64) Sse.Prefetch1(row + bb);
                            }
                            float* b = Bp + (long)k0 * Tpad + (long)tt * kc;
                            float* accP = acc + (long)p * Mr * Tpad + tt;
                            if (Isa != KernelIsa.Avx512) Micro6x16(wp, ldw, b, kc, accP, Tpad, first);
                            else if (tt + 32 <= Tpad) Micro8x32(wp, ldw, b, kc, accP, Tpad, first);
                            else Micro8x16(wp, ldw, b, kc, accP, Tpad, first);
                        }
                    }
                }
            }
            // acc (o, Tpad) -> y (T, OC): 16x16 register transposes, the edges one by one
            int n = o1 - o0, o = 0;
            if (Isa == KernelIsa.Avx512)
                for (; o + 16 <= n; o += 16)
                {
                    int t0 = 0;
                    for (; t0 + 16 <= T; t0 += 16) Transpose16(acc + (long)o * Tpad + t0, Tpad, Y + (long)t0 * Rows + o0 + o, Rows);
                    for (int oo = o; oo < o + 16; oo++)
                        for (int ti = t0; ti < T; ti++) Y[(long)ti * Rows + o0 + oo] = acc[(long)oo * Tpad + ti];
                }
            for (int t0 = 0; t0 < T; t0 += 16)
            {
                int t1 = Math.Min(T, t0 + 16);
                for (int oo = o; oo < n; oo++)
                    for (int ti = t0; ti < t1; ti++) Y[(long)ti * Rows + o0 + oo] = acc[(long)oo * Tpad + ti];
            }
        }
    }

    /// <summary>Output columns per packed panel.</summary>
    public const int PackNr = 16;

    /// <summary>Whether <paramref name="type"/> can be packed: float weights that take f32 activations (the quantized
    /// types multiply 8-bit activations, <see cref="MatMul"/>, and keep their own path).</summary>
    public static bool CanPack(DType type) => !Tensors.Types.DTypes.Of(type).HasDotQ8;

    /// <summary>
    /// W (OC,C) of a float dtype -> ceil(OC/16) panels of C x 16 f32: panel p holds W[16p + j, k] at [k*16 + j] (columns
    /// past OC zero), 64-byte aligned at <paramref name="data"/> inside the returned pinned array (keep it alive).
    /// </summary>
    public static float[] Pack(in WeightMatrix w, out float* data)
    {
        if (!CanPack(w.Type)) throw new NotSupportedException($"{w.Type} weights are not packed (they take 8-bit activations)");
        int oc = w.Rows, c = w.Cols, panels = (oc + PackNr - 1) / PackNr;
        long n = (long)panels * PackNr * c;
        var buf = GC.AllocateArray<float>(checked((int)(n + 16)), pinned: true);
        float* p = (float*)Unsafe.AsPointer(ref buf[0]);
        p += (64 - (nint)p % 64) % 64 / 4;
        var row = new float[c];
        var traits = Tensors.Types.DTypes.Of(w.Type);
        for (int o = 0; o < oc; o++)
        {
            traits.DequantizeRowNaive(w.Row(o), row);
            float* panel = p + (long)(o / PackNr) * PackNr * c + o % PackNr;
            for (int k = 0; k < c; k++) panel[(long)k * PackNr] = row[k];
        }
        data = p;
        return buf;
    }

    /// <summary>x (T,C), packed W (OC,C), bias (OC) or null -> y (T,OC) = x W^T + bias. isa must be Avx2 or Avx512: AVX-512
    /// takes two panels per micro-kernel call (6 rows x 32 columns in 512-bit registers), AVX2 one (6 x 16); every output
    /// is the same FMA chain either way, so the bits do not depend on the variant.</summary>
    public static void ForwardPacked(float* x, in WeightMatrix w, float* bias, float* y, int t, WorkerPool pool, KernelIsa isa) =>
        ForwardPacked(x, w, bias, y, t, pool, wide: isa == KernelIsa.Avx512);

    /// <summary><see cref="ForwardPacked(float*, in WeightMatrix, float*, float*, int, WorkerPool, KernelIsa)"/> with the
    /// variant chosen: tests run the wide one on machines without AVX-512 too (its 512-bit vectors are then emulated).</summary>
    internal static void ForwardPacked(float* x, in WeightMatrix w, float* bias, float* y, int t, WorkerPool pool, bool wide)
    {
        int c = w.Cols, oc = w.Rows, panels = (oc + PackNr - 1) / PackNr;
        int units = wide ? (panels + 1) / 2 : panels; // tasks split whole pairs of panels on the wide variant
        var job = new PackedJob
        {
            X = x, P = w.Packed, Bias = bias, Y = y, T = t, C = c, Oc = oc, Panels = panels, Wide = wide, Units = units,
            Tasks = WorkSplit.Tasks(units, (long)c * PackNr * 4 * (panels / units) + (long)t * PackNr * 4, pool.Threads),
        };
        pool.Run(job.Tasks, job);
    }

    private struct PackedJob : IParallelJob
    {
        public float* X, P, Bias, Y;
        public int T, C, Oc, Panels, Tasks, Units;
        public bool Wide;

        public readonly void Execute(int task)
        {
            var (u0, u1) = WorkSplit.Range(task, Tasks, Units);
            int p0 = Wide ? 2 * u0 : u0, p1 = Wide ? Math.Min(Panels, 2 * u1) : u1;
            float* edge = stackalloc float[6 * PackNr];
            // chunks of rows whose x (and y) stay in L2 while every panel of the task passes over them
            // (at least 60, so a sentence's rows pass every panel once: re-reading W from L3 costs more than x from L2)
            int chunk = Math.Max(60, 96 * 384 / Math.Max(C, 1) / 6 * 6);
            for (int t0 = 0; t0 < T; t0 += chunk)
                Rows(t0, Math.Min(T, t0 + chunk), p0, p1, edge);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private readonly void Rows(int t0, int t1, int p0, int p1, float* edge)
        {
            int blocks = (t1 - t0 + 5) / 6; // blocks of 4..6 rows (fewer only when there are fewer)
            for (int p = p0; p < p1;)
            {
                float* panel = P + (long)p * PackNr * C;
                int n0 = p * PackNr, nw = Math.Min(PackNr, Oc - n0);
                bool pair = Wide && p + 1 < p1 && n0 + 2 * PackNr <= Oc; // two full panels: the wide micro-kernel
                int step = pair ? 2 : 1;
                for (int b = 0, r = t0; b < blocks; b++)
                {
                    int rows = t0 + (int)((long)(t1 - t0) * (b + 1) / blocks) - r;
                    float* xb = X + (long)r * C;
                    // the first block fetches the next panel(s) into L2 as it goes (the weights of a pass stream from DRAM)
                    float* pf = b == 0 && p + step < Panels ? panel + step * PackNr * C : null;
                    if (pair) BlockWide(rows, xb, C, panel, C, Y + (long)r * Oc + n0, Oc, Bias == null ? null : Bias + n0, pf);
                    else if (nw == PackNr) Block(rows, xb, C, panel, C, Y + (long)r * Oc + n0, Oc, Bias == null ? null : Bias + n0, pf);
                    else
                    {
                        // the last, partial panel: a full 16-column block into scratch, then its columns (bias added the same way)
                        Block(rows, xb, C, panel, C, edge, PackNr, null, pf);
                        for (int i = 0; i < rows; i++)
                            for (int j = 0; j < nw; j++)
                            {
                                float v = edge[i * PackNr + j];
                                Y[(long)(r + i) * Oc + n0 + j] = Bias == null ? v : v + Bias[n0 + j];
                            }
                    }
                    r += rows;
                }
                p += step;
            }
        }

        private static void BlockWide(int rows, float* x, int ldx, float* w, int kc, float* y, int ldy, float* bias, float* pf) =>
            Block<Width512, Vector512<float>>(rows, x, ldx, w, (long)kc * PackNr, kc, y, ldy, bias, pf);

        private static void Block(int rows, float* x, int ldx, float* w, int kc, float* y, int ldy, float* bias, float* pf) =>
            Block<Width256, Vector256<float>>(rows, x, ldx, w, 8, kc, y, ldy, bias, pf);

        private static void Block<TW, TV>(int rows, float* x, int ldx, float* w, long second, int kc, float* y, int ldy, float* bias, float* pf)
            where TW : struct, IVectorWidth<TV> where TV : struct
        {
            switch (rows)
            {
                case 6: Micro<N6, TW, TV>(x, ldx, w, second, kc, y, ldy, bias, pf); break;
                case 5: Micro<N5, TW, TV>(x, ldx, w, second, kc, y, ldy, bias, pf); break;
                case 4: Micro<N4, TW, TV>(x, ldx, w, second, kc, y, ldy, bias, pf); break;
                case 3: Micro<N3, TW, TV>(x, ldx, w, second, kc, y, ldy, bias, pf); break;
                case 2: Micro<N2, TW, TV>(x, ldx, w, second, kc, y, ldy, bias, pf); break;
                default: Micro<N1, TW, TV>(x, ldx, w, second, kc, y, ldy, bias, pf); break;
            }
        }
    }


    /// <summary>y[i*ldy + j] = sum_k x[i*ldx + k] * W[k][j] (+ bias[j]) for i &lt; R.N and the 2 x Lanes columns j whose
    /// halves are w (the first Lanes) and w + second: one FMA chain per output in k order (the same for every R and every
    /// width, so a row's bits depend neither on its block nor on the variant). Panels are [k][16], so w advances 16 per k.</summary>
    /// <remarks>pf, when not null: the 64 bytes of the next panel at the same k fetched into L2 each step (and of the one
    /// after it on the wide variant, which covers two panels).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Micro<R, TW, TV>(float* x, int ldx, float* w, long second, int kc, float* y, int ldy, float* bias, float* pf)
        where R : struct, ICount where TW : struct, IVectorWidth<TV> where TV : struct
    {
        TV c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        TV c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* x0 = x, x1 = x + ldx, x2 = x + 2 * ldx, x3 = x + 3 * ldx, x4 = x + 4 * ldx, x5 = x + 5 * ldx;
        bool two = TW.Lanes == 16;
        for (int k = 0; k < kc; k++, w += PackNr)
        {
            if (pf != null) { Sse.Prefetch1(pf + k * PackNr); if (two) Sse.Prefetch1(pf + second + k * PackNr); }
            var b0 = TW.Load(w);
            var b1 = TW.Load(w + second);
            var a = TW.Broadcast(x0[k]); c00 = TW.MultiplyAdd(a, b0, c00); c01 = TW.MultiplyAdd(a, b1, c01);
            if (R.N > 1) { a = TW.Broadcast(x1[k]); c10 = TW.MultiplyAdd(a, b0, c10); c11 = TW.MultiplyAdd(a, b1, c11); }
            if (R.N > 2) { a = TW.Broadcast(x2[k]); c20 = TW.MultiplyAdd(a, b0, c20); c21 = TW.MultiplyAdd(a, b1, c21); }
            if (R.N > 3) { a = TW.Broadcast(x3[k]); c30 = TW.MultiplyAdd(a, b0, c30); c31 = TW.MultiplyAdd(a, b1, c31); }
            if (R.N > 4) { a = TW.Broadcast(x4[k]); c40 = TW.MultiplyAdd(a, b0, c40); c41 = TW.MultiplyAdd(a, b1, c41); }
            if (R.N > 5) { a = TW.Broadcast(x5[k]); c50 = TW.MultiplyAdd(a, b0, c50); c51 = TW.MultiplyAdd(a, b1, c51); }
        }
        int h = TW.Lanes;
        if (bias != null)
        {
            var bl = TW.Load(bias);
            var bh = TW.Load(bias + h);
            c00 = TW.Add(c00, bl); c01 = TW.Add(c01, bh);
            if (R.N > 1) { c10 = TW.Add(c10, bl); c11 = TW.Add(c11, bh); }
            if (R.N > 2) { c20 = TW.Add(c20, bl); c21 = TW.Add(c21, bh); }
            if (R.N > 3) { c30 = TW.Add(c30, bl); c31 = TW.Add(c31, bh); }
            if (R.N > 4) { c40 = TW.Add(c40, bl); c41 = TW.Add(c41, bh); }
            if (R.N > 5) { c50 = TW.Add(c50, bl); c51 = TW.Add(c51, bh); }
        }
        TW.Store(c00, y); TW.Store(c01, y + h);
        if (R.N > 1) { TW.Store(c10, y + ldy); TW.Store(c11, y + ldy + h); }
        if (R.N > 2) { TW.Store(c20, y + 2 * ldy); TW.Store(c21, y + 2 * ldy + h); }
        if (R.N > 3) { TW.Store(c30, y + 3 * ldy); TW.Store(c31, y + 3 * ldy + h); }
        if (R.N > 4) { TW.Store(c40, y + 4 * ldy); TW.Store(c41, y + 4 * ldy + h); }
        if (R.N > 5) { TW.Store(c50, y + 5 * ldy); TW.Store(c51, y + 5 * ldy + h); }
    }

    /// <summary>dst[j*ds + i] = src[i*ss + j] for i, j &lt; 16 (AVX-512: unpacks and 128-bit lane shuffles in registers).</summary>
    internal static void Transpose16(float* src, long ss, float* dst, long ds)
    {
        var r0 = Vector512.Load(src); var r1 = Vector512.Load(src + ss); var r2 = Vector512.Load(src + 2 * ss); var r3 = Vector512.Load(src + 3 * ss);
        var r4 = Vector512.Load(src + 4 * ss); var r5 = Vector512.Load(src + 5 * ss); var r6 = Vector512.Load(src + 6 * ss); var r7 = Vector512.Load(src + 7 * ss);
        var r8 = Vector512.Load(src + 8 * ss); var r9 = Vector512.Load(src + 9 * ss); var r10 = Vector512.Load(src + 10 * ss); var r11 = Vector512.Load(src + 11 * ss);
        var r12 = Vector512.Load(src + 12 * ss); var r13 = Vector512.Load(src + 13 * ss); var r14 = Vector512.Load(src + 14 * ss); var r15 = Vector512.Load(src + 15 * ss);
        // per 128-bit lane: [a0 b0 a1 b1], [a2 b2 a3 b3]
        var t0 = Avx512F.UnpackLow(r0, r1); var t1 = Avx512F.UnpackHigh(r0, r1);
        var t2 = Avx512F.UnpackLow(r2, r3); var t3 = Avx512F.UnpackHigh(r2, r3);
        var t4 = Avx512F.UnpackLow(r4, r5); var t5 = Avx512F.UnpackHigh(r4, r5);
        var t6 = Avx512F.UnpackLow(r6, r7); var t7 = Avx512F.UnpackHigh(r6, r7);
        var t8 = Avx512F.UnpackLow(r8, r9); var t9 = Avx512F.UnpackHigh(r8, r9);
        var t10 = Avx512F.UnpackLow(r10, r11); var t11 = Avx512F.UnpackHigh(r10, r11);
        var t12 = Avx512F.UnpackLow(r12, r13); var t13 = Avx512F.UnpackHigh(r12, r13);
        var t14 = Avx512F.UnpackLow(r14, r15); var t15 = Avx512F.UnpackHigh(r14, r15);
        // per lane: [a0 b0 c0 d0], [a1 b1 c1 d1], [a2 b2 c2 d2], [a3 b3 c3 d3] (rows 0-3; likewise 4-7, 8-11, 12-15)
        var u0 = Avx512F.UnpackLow(t0.AsDouble(), t2.AsDouble()).AsSingle(); var u1 = Avx512F.UnpackHigh(t0.AsDouble(), t2.AsDouble()).AsSingle();
        var u2 = Avx512F.UnpackLow(t1.AsDouble(), t3.AsDouble()).AsSingle(); var u3 = Avx512F.UnpackHigh(t1.AsDouble(), t3.AsDouble()).AsSingle();
        var u4 = Avx512F.UnpackLow(t4.AsDouble(), t6.AsDouble()).AsSingle(); var u5 = Avx512F.UnpackHigh(t4.AsDouble(), t6.AsDouble()).AsSingle();
        var u6 = Avx512F.UnpackLow(t5.AsDouble(), t7.AsDouble()).AsSingle(); var u7 = Avx512F.UnpackHigh(t5.AsDouble(), t7.AsDouble()).AsSingle();
        var u8 = Avx512F.UnpackLow(t8.AsDouble(), t10.AsDouble()).AsSingle(); var u9 = Avx512F.UnpackHigh(t8.AsDouble(), t10.AsDouble()).AsSingle();
        var u10 = Avx512F.UnpackLow(t9.AsDouble(), t11.AsDouble()).AsSingle(); var u11 = Avx512F.UnpackHigh(t9.AsDouble(), t11.AsDouble()).AsSingle();
        var u12 = Avx512F.UnpackLow(t12.AsDouble(), t14.AsDouble()).AsSingle(); var u13 = Avx512F.UnpackHigh(t12.AsDouble(), t14.AsDouble()).AsSingle();
        var u14 = Avx512F.UnpackLow(t13.AsDouble(), t15.AsDouble()).AsSingle(); var u15 = Avx512F.UnpackHigh(t13.AsDouble(), t15.AsDouble()).AsSingle();
        // column c of rows 0-3 sits in lane c/4 of u(c%4); gather the lanes: columns c, c+8 and c+4, c+12
        Columns(u0, u4, u8, u12, dst, ds, 0);
        Columns(u1, u5, u9, u13, dst, ds, 1);
        Columns(u2, u6, u10, u14, dst, ds, 2);
        Columns(u3, u7, u11, u15, dst, ds, 3);

        static void Columns(Vector512<float> a, Vector512<float> e, Vector512<float> i, Vector512<float> m, float* dst, long ds, int c)
        {
            var v0 = Avx512F.Shuffle4x128(a, e, 0x88); // lanes a0 a2 e0 e2
            var v1 = Avx512F.Shuffle4x128(a, e, 0xDD); // lanes a1 a3 e1 e3
            var w0 = Avx512F.Shuffle4x128(i, m, 0x88);
            var w1 = Avx512F.Shuffle4x128(i, m, 0xDD);
            Avx512F.Shuffle4x128(v0, w0, 0x88).Store(dst + c * ds);
            Avx512F.Shuffle4x128(v0, w0, 0xDD).Store(dst + (c + 8) * ds);
            Avx512F.Shuffle4x128(v1, w1, 0x88).Store(dst + (c + 4) * ds);
            Avx512F.Shuffle4x128(v1, w1, 0xDD).Store(dst + (c + 12) * ds);
        }
    }

    /// <summary>acc[i*ldc + j] (+)= sum_k w[i*ldw + k] * b[k*32 + j] for i &lt; 8, j &lt; 32 (stores when <paramref name="first"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Micro8x32(float* w, int ldw, float* b, int kc, float* acc, int ldc, bool first)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        float* w0 = w, w1 = w + ldw, w2 = w + 2 * ldw, w3 = w + 3 * ldw, w4 = w + 4 * ldw, w5 = w + 5 * ldw, w6 = w + 6 * ldw, w7 = w + 7 * ldw;
        for (int k = 0; k < kc; k++, b += 32)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var a = Vector512.Create(w0[k]); c00 = Avx512F.FusedMultiplyAdd(a, b0, c00); c01 = Avx512F.FusedMultiplyAdd(a, b1, c01);
            a = Vector512.Create(w1[k]); c10 = Avx512F.FusedMultiplyAdd(a, b0, c10); c11 = Avx512F.FusedMultiplyAdd(a, b1, c11);
            a = Vector512.Create(w2[k]); c20 = Avx512F.FusedMultiplyAdd(a, b0, c20); c21 = Avx512F.FusedMultiplyAdd(a, b1, c21);
            a = Vector512.Create(w3[k]); c30 = Avx512F.FusedMultiplyAdd(a, b0, c30); c31 = Avx512F.FusedMultiplyAdd(a, b1, c31);
            a = Vector512.Create(w4[k]); c40 = Avx512F.FusedMultiplyAdd(a, b0, c40); c41 = Avx512F.FusedMultiplyAdd(a, b1, c41);
            a = Vector512.Create(w5[k]); c50 = Avx512F.FusedMultiplyAdd(a, b0, c50); c51 = Avx512F.FusedMultiplyAdd(a, b1, c51);
            a = Vector512.Create(w6[k]); c60 = Avx512F.FusedMultiplyAdd(a, b0, c60); c61 = Avx512F.FusedMultiplyAdd(a, b1, c61);
            a = Vector512.Create(w7[k]); c70 = Avx512F.FusedMultiplyAdd(a, b0, c70); c71 = Avx512F.FusedMultiplyAdd(a, b1, c71);
        }
        if (first)
        {
            c00.Store(acc); c01.Store(acc + 16); c10.Store(acc + ldc); c11.Store(acc + ldc + 16);
            c20.Store(acc + 2 * ldc); c21.Store(acc + 2 * ldc + 16); c30.Store(acc + 3 * ldc); c31.Store(acc + 3 * ldc + 16);
            c40.Store(acc + 4 * ldc); c41.Store(acc + 4 * ldc + 16); c50.Store(acc + 5 * ldc); c51.Store(acc + 5 * ldc + 16);
            c60.Store(acc + 6 * ldc); c61.Store(acc + 6 * ldc + 16); c70.Store(acc + 7 * ldc); c71.Store(acc + 7 * ldc + 16);
            return;
        }
        Add(acc, c00, c01); Add(acc + ldc, c10, c11); Add(acc + 2 * ldc, c20, c21); Add(acc + 3 * ldc, c30, c31);
        Add(acc + 4 * ldc, c40, c41); Add(acc + 5 * ldc, c50, c51); Add(acc + 6 * ldc, c60, c61); Add(acc + 7 * ldc, c70, c71);

        static void Add(float* p, Vector512<float> lo, Vector512<float> hi)
        {
            (Vector512.Load(p) + lo).Store(p);
            (Vector512.Load(p + 16) + hi).Store(p + 16);
        }
    }

    /// <summary>acc[i*ldc + j] (+)= sum_k w[i*ldw + k] * b[k*16 + j] for i &lt; 8, j &lt; 16 (the last AVX-512 tile when
    /// 16 tokens are left; stores when <paramref name="first"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Micro8x16(float* w, int ldw, float* b, int kc, float* acc, int ldc, bool first)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        float* w0 = w, w1 = w + ldw, w2 = w + 2 * ldw, w3 = w + 3 * ldw, w4 = w + 4 * ldw, w5 = w + 5 * ldw, w6 = w + 6 * ldw, w7 = w + 7 * ldw;
        for (int k = 0; k < kc; k++, b += 16)
        {
            var b0 = Vector512.Load(b);
            c0 = Avx512F.FusedMultiplyAdd(Vector512.Create(w0[k]), b0, c0); c1 = Avx512F.FusedMultiplyAdd(Vector512.Create(w1[k]), b0, c1);
            c2 = Avx512F.FusedMultiplyAdd(Vector512.Create(w2[k]), b0, c2); c3 = Avx512F.FusedMultiplyAdd(Vector512.Create(w3[k]), b0, c3);
            c4 = Avx512F.FusedMultiplyAdd(Vector512.Create(w4[k]), b0, c4); c5 = Avx512F.FusedMultiplyAdd(Vector512.Create(w5[k]), b0, c5);
            c6 = Avx512F.FusedMultiplyAdd(Vector512.Create(w6[k]), b0, c6); c7 = Avx512F.FusedMultiplyAdd(Vector512.Create(w7[k]), b0, c7);
        }
        if (!first)
        {
            c0 += Vector512.Load(acc); c1 += Vector512.Load(acc + ldc); c2 += Vector512.Load(acc + 2 * ldc); c3 += Vector512.Load(acc + 3 * ldc);
            c4 += Vector512.Load(acc + 4 * ldc); c5 += Vector512.Load(acc + 5 * ldc); c6 += Vector512.Load(acc + 6 * ldc); c7 += Vector512.Load(acc + 7 * ldc);
        }
        c0.Store(acc); c1.Store(acc + ldc); c2.Store(acc + 2 * ldc); c3.Store(acc + 3 * ldc);
        c4.Store(acc + 4 * ldc); c5.Store(acc + 5 * ldc); c6.Store(acc + 6 * ldc); c7.Store(acc + 7 * ldc);
    }

    /// <summary>acc[i*ldc + j] (+)= sum_k w[i*ldw + k] * b[k*16 + j] for i &lt; 6, j &lt; 16 (stores when <paramref name="first"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Micro6x16(float* w, int ldw, float* b, int kc, float* acc, int ldc, bool first)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* w0 = w, w1 = w + ldw, w2 = w + 2 * ldw, w3 = w + 3 * ldw, w4 = w + 4 * ldw, w5 = w + 5 * ldw;
        for (int k = 0; k < kc; k++, b += 16)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var a = Vector256.Create(w0[k]); c00 = Fma.MultiplyAdd(a, b0, c00); c01 = Fma.MultiplyAdd(a, b1, c01);
            a = Vector256.Create(w1[k]); c10 = Fma.MultiplyAdd(a, b0, c10); c11 = Fma.MultiplyAdd(a, b1, c11);
            a = Vector256.Create(w2[k]); c20 = Fma.MultiplyAdd(a, b0, c20); c21 = Fma.MultiplyAdd(a, b1, c21);
            a = Vector256.Create(w3[k]); c30 = Fma.MultiplyAdd(a, b0, c30); c31 = Fma.MultiplyAdd(a, b1, c31);
            a = Vector256.Create(w4[k]); c40 = Fma.MultiplyAdd(a, b0, c40); c41 = Fma.MultiplyAdd(a, b1, c41);
            a = Vector256.Create(w5[k]); c50 = Fma.MultiplyAdd(a, b0, c50); c51 = Fma.MultiplyAdd(a, b1, c51);
        }
        if (first)
        {
            c00.Store(acc); c01.Store(acc + 8); c10.Store(acc + ldc); c11.Store(acc + ldc + 8); c20.Store(acc + 2 * ldc); c21.Store(acc + 2 * ldc + 8);
            c30.Store(acc + 3 * ldc); c31.Store(acc + 3 * ldc + 8); c40.Store(acc + 4 * ldc); c41.Store(acc + 4 * ldc + 8); c50.Store(acc + 5 * ldc); c51.Store(acc + 5 * ldc + 8);
            return;
        }
        Add(acc, c00, c01); Add(acc + ldc, c10, c11); Add(acc + 2 * ldc, c20, c21);
        Add(acc + 3 * ldc, c30, c31); Add(acc + 4 * ldc, c40, c41); Add(acc + 5 * ldc, c50, c51);

        static void Add(float* p, Vector256<float> lo, Vector256<float> hi)
        {
            (Vector256.Load(p) + lo).Store(p);
            (Vector256.Load(p + 8) + hi).Store(p + 8);
        }
    }
}
