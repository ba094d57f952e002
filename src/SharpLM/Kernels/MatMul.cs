using System.Runtime.CompilerServices;
using System.Numerics;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;

namespace SharpLM.Kernels;

/// <summary>
/// y = x W^T for a weight of any supported dtype. x (T,C) f32, w (OC,C) -> y (T,OC).
/// Weights packed at load (<see cref="WeightMatrix.Packed"/>: the encoder's) take the packed GEMM for every T.
/// Otherwise few rows (decode: T &lt; <see cref="GemmMinRows"/>) take the bandwidth-bound matvec: output rows are split across the worker pool and each weight row is
/// streamed once (fused dequantize + dot, software prefetch). More rows take the compute-bound <see cref="Gemm"/>. The variant (AVX-512, AVX2, scalar) comes from <see cref="KernelIsaSelector.Current"/>.
/// <para>Activations. For a weight type with an integer dot (<see cref="TypeTraits.DotQ8"/>: Q8_0, Q4_0, Q4_K, Q6_K, ...)
/// the matvec quantizes each x row to 8 bits per block (<see cref="Q8Row"/>, as llama.cpp does) and multiplies
/// integers; the GEMM then multiplies the same quantized-and-dequantized rows in f32, so a row gets the same products
/// whichever path its batch takes (equal to f32 rounding). <see cref="Int8Activations"/> switches this off (the exact
/// f32-activation path: SHARPLM_ACTIVATIONS=f32, or <see cref="ExactActivations"/> on a thread); F32/F16/BF16 weights
/// always keep f32 activations, so training (F32) is unaffected.</para>
/// Accuracy: the f32 path is within a few f32 ulps of sum_k |x_k w_k| (the tests allow 1e-5 of it); the 8-bit path adds
/// the activation rounding, |x - d q| &lt;= max|x| / 254 per block (see <see cref="Q8Activations"/>).
/// Backward (training, F32 weights): dx (T,C) += dy W and dW (OC,C) += dy^T x, both on the same GEMM (W^T, dy^T and
/// x^T transposed into per-thread scratch); each output element is summed in a fixed order whatever the thread count.
/// </summary>
internal static unsafe class MatMul
{
    /// <summary>Row count from which the GEMM path is used (the matvec wins below it). One threshold for every type: a text
    /// of fewer rows gives the same bits alone as in a batch that stays under it (the GEMM sums in another order; an F32
    /// GEMM from 6 rows was faster but broke that for short encoder batches).</summary>
    public static int GemmMinRows { get; set; } = 16;

    /// <summary>Whether the matvec of 2-15 rows uses the four-row dots (<see cref="TypeTraits.DotQ8x4"/>, <see cref="TypeTraits.Dot4"/>);
    /// off only to measure what they save (the results are the same bits either way).</summary>
    internal static bool FourRowKernels { get; set; } = true;

    /// <summary>Whether prefill of the quantized types with an integer form uses <see cref="GemmInt8"/> (else their rows are
    /// dequantized for the f32 GEMM, with the activations rounded through 8 bits); for benchmarks and tests.</summary>
    internal static bool IntegerGemm { get; set; } = true;

    private static readonly bool s_int8Default = ParseActivations(Environment.GetEnvironmentVariable("SHARPLM_ACTIVATIONS"));

    [ThreadStatic] private static bool? t_exact;

    /// <summary>Whether weights with an integer dot take 8-bit activations on this thread (the default) or f32 ones.</summary>
    public static bool Int8Activations => t_exact is bool exact ? !exact : s_int8Default;

    /// <summary>SHARPLM_ACTIVATIONS: unset or "q8" for 8-bit activations, "f32" for the exact path.</summary>
    internal static bool ParseActivations(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "q8" or "int8" => true,
        "f32" or "exact" => false,
        _ => throw new ArgumentException($"SHARPLM_ACTIVATIONS='{value}' is not an activation mode; expected q8 (8-bit activations for quantized weights, the default) or f32 (exact)"),
    };

    /// <summary>Forces the exact f32-activation path (or, with false, the 8-bit one) on this thread until disposed.</summary>
    public static ActivationScope ExactActivations(bool exact = true)
    {
        var old = t_exact;
        t_exact = exact;
        return new ActivationScope(old);
    }

    internal readonly struct ActivationScope(bool? previous) : IDisposable
    {
        public void Dispose() => t_exact = previous;
    }

    public static void Forward(ReadOnlySpan<float> x, in WeightMatrix w, Span<float> y, int t) =>
        Forward(x, w, y, t, WorkerPool.Shared, KernelIsaSelector.Current);

    /// <summary>As <see cref="Forward(ReadOnlySpan{float}, in WeightMatrix, Span{float}, int)"/> on a given pool and variant.</summary>
    public static void Forward(ReadOnlySpan<float> x, in WeightMatrix w, Span<float> y, int t, WorkerPool pool, KernelIsa isa) =>
        Forward(x, w, default, y, t, pool, isa);

    /// <summary>y (T,OC) = x (T,C) W^T + bias (OC) (empty: no bias), the bias added in the packed GEMM's store (the same
    /// bits as adding it afterwards).</summary>
    public static void Forward(ReadOnlySpan<float> x, in WeightMatrix w, ReadOnlySpan<float> bias, Span<float> y, int t) =>
        Forward(x, w, bias, y, t, WorkerPool.Shared, KernelIsaSelector.Current);

    public static void Forward(ReadOnlySpan<float> x, in WeightMatrix w, ReadOnlySpan<float> bias, Span<float> y, int t, WorkerPool pool, KernelIsa isa)
    {
        if (t < 0) throw new ArgumentOutOfRangeException(nameof(t), t, "T must be >= 0");
        if (x.Length < (long)t * w.Cols) throw new ArgumentException($"x holds {x.Length} floats, need T*C = {t}*{w.Cols}", nameof(x));
        if (y.Length < (long)t * w.Rows) throw new ArgumentException($"y holds {y.Length} floats, need T*OC = {t}*{w.Rows}", nameof(y));
        if (!bias.IsEmpty && bias.Length != w.Rows) throw new ArgumentException($"bias holds {bias.Length} floats, need OC = {w.Rows}", nameof(bias));
        if (t == 0 || w.Rows == 0) return;
        if (w.Cols == 0) { y[..(t * w.Rows)].Clear(); if (!bias.IsEmpty) Bias.Forward(y[..(t * w.Rows)], bias); return; }
        if (w.Data == null) throw new ArgumentException("weight matrix has no data pointer", nameof(w));
        if (w.Packed != null && isa != KernelIsa.Scalar)
        {
            fixed (float* px = x)
            fixed (float* py = y)
            fixed (float* pb = bias)
                Gemm.ForwardPacked(px, w, pb, py, t, pool, isa);
            return;
        }
        Unbiased(x, w, y, t, pool, isa);
        if (!bias.IsEmpty) Bias.Forward(y[..(t * w.Rows)], bias);
    }

    /// <summary>y1 = x W1^T, y2 = x W2^T and (when <paramref name="w3"/> has rows) y3 = x W3^T for weights that read the
    /// same x (attention's Q, K and V; the MLP's gate and up): the same results, bit for bit, as three
    /// <see cref="Forward(ReadOnlySpan{float}, in WeightMatrix, Span{float}, int)"/> calls; x is quantized and packed once
    /// when all of them take the integer GEMM with the same activation blocks.</summary>
    public static void ForwardShared(ReadOnlySpan<float> x, int t, in WeightMatrix w1, Span<float> y1, in WeightMatrix w2, Span<float> y2,
                                     in WeightMatrix w3, Span<float> y3)
    {
        var pool = WorkerPool.Shared;
        var isa = KernelIsaSelector.Current;
        bool three = w3.Rows > 0;
        if (t < GemmMinRows && MatVecShared(x, t, w1, y1, w2, y2, w3, y3, pool, isa)) return;
        if (!Shares(w1, w2, t, isa) || x.Length < (long)t * w1.Cols || y1.Length < (long)t * w1.Rows || y2.Length < (long)t * w2.Rows)
        {
            Forward(x, w1, y1, t, pool, isa);
            Forward(x, w2, y2, t, pool, isa);
            if (three) Forward(x, w3, y3, t, pool, isa);
            return;
        }
        // the third packs differently (Q4_K_M's Q6_K V beside Q4_K Q and K): on its own, after
        bool third = three && Shares(w1, w3, t, isa) && y3.Length >= (long)t * w3.Rows;
        fixed (float* px = x)
        fixed (float* p1 = y1)
        fixed (float* p2 = y2)
        fixed (float* p3 = y3)
        {
            var packed = GemmInt8.Pack(px, w1.Type, w1.Cols, t, isa, pool);
            GemmInt8.Run(packed, w1, p1, pool);
            GemmInt8.Run(packed, w2, p2, pool);
            if (third) GemmInt8.Run(packed, w3, p3, pool);
        }
        if (three && !third) Forward(x, w3, y3, t, pool, isa);
    }

    /// <summary>Whether a and b (same columns, unpacked, with data) both take the integer GEMM for t rows on one packing.</summary>
    private static bool Shares(in WeightMatrix a, in WeightMatrix b, int t, KernelIsa isa)
    {
        if (t < GemmMinRows || isa == KernelIsa.Scalar || !Int8Activations || !IntegerGemm) return false;
        if (a.Cols != b.Cols || a.Cols == 0 || a.Rows == 0 || b.Rows == 0 || a.Data == null || b.Data == null || a.Packed != null || b.Packed != null) return false;
        TypeTraits ta = DTypes.Of(a.Type), tb = DTypes.Of(b.Type);
        return GemmInt8.Supports(ta, isa) && GemmInt8.Supports(tb, isa) && GemmInt8.SamePack(a.Type, b.Type);
    }

    private static void Unbiased(ReadOnlySpan<float> x, in WeightMatrix w, Span<float> y, int t, WorkerPool pool, KernelIsa isa)
    {
        var traits = DTypes.Of(w.Type);
        int block = traits.HasDotQ8 && Int8Activations ? traits.DotQ8Block : 0;
        int c = w.Cols;
        fixed (float* px = x)
        fixed (float* py = y)
        {
            if (t >= GemmMinRows && isa != KernelIsa.Scalar)
            {
                if (block != 0 && IntegerGemm && GemmInt8.Supports(traits, isa))
                {
                    GemmInt8.Forward(px, w, py, t, isa, pool);
                    return;
                }
                float* xin = px;
                if (block != 0)
                {
                    xin = Scratch.Get(Scratch.RoundTrip, (long)t * c);
                    byte* rowBuf = (byte*)Scratch.Get(Scratch.Q8, Q8Activations.RowStride(c, block) / 4 + 16);
                    Q8Activations.RoundTrip(px, xin, t, c, block, rowBuf, isa);
                }
                Gemm.Forward(xin, w, py, t, isa, pool);
                return;
            }
            var job = MatVecActivations(px, t, c, block, isa);
            job.P1 = MatVecPart.Of(w, py);
            job.Tasks = WorkSplit.Tasks(w.Rows, w.RowBytes + (long)t * c, pool.Threads, job.Align);
            pool.Run(job.Tasks, job);
        }
    }

    /// <summary>A matvec job's activations: quantized to 8 bits once (types with an integer dot), or f32 from a 64-byte
    /// aligned copy when x is not aligned (every weight row reads them: unaligned, each vector load splits a cache line;
    /// the decoder's pinned arrays are 8-byte aligned; F32 matvec 1536x576 out of cache, 1 thread: 154 -> 117 us at T = 1,
    /// 376 -> 238 us at T = 8).</summary>
    private static MatVecJob MatVecActivations(float* px, int t, int c, int block, KernelIsa isa)
    {
        var job = new MatVecJob { X = px, Cols = c, T = t, Isa = isa, Block = block };
        if (block != 0)
        {
            job.XqStride = Q8Activations.RowStride(c, block);
            job.Xq = (byte*)Scratch.Get(Scratch.Q8, job.XqStride * t / 4 + 16);
            for (int i = 0; i < t; i++) Q8Activations.Quantize(px + (long)i * c, c, block, Q8Activations.At(job.Xq + i * job.XqStride, c, block), isa);
        }
        else if (((nint)px & 63) != 0)
        {
            float* xa = Scratch.Get(Scratch.RoundTrip, (long)t * c);
            Buffer.MemoryCopy(px, xa, (long)t * c * 4, (long)t * c * 4);
            job.X = xa;
        }
        return job;
    }

    /// <summary>The activation block a matrix's matvec quantizes x in (0: f32 activations).</summary>
    private static int ActivationBlock(in WeightMatrix w)
    {
        var traits = DTypes.Of(w.Type);
        return traits.HasDotQ8 && Int8Activations ? traits.DotQ8Block : 0;
    }

    /// <summary>ForwardShared's matvec (T below the GEMM's threshold): the two or three products as one pool job over all
    /// their rows (one barrier instead of three; x quantized or aligned once), each row by the dot it takes alone, so the
    /// bits are those of separate calls. False when they cannot share (other column counts or activation blocks, packed
    /// or empty weights, short buffers): the caller runs them one by one. At 2 threads a small matrix's own call cost
    /// about 10 us (matrix-profile: TinyLlama's k and v at 13-18 GB/s, the large matrices at 26-40).</summary>
    private static bool MatVecShared(ReadOnlySpan<float> x, int t, in WeightMatrix w1, Span<float> y1, in WeightMatrix w2, Span<float> y2,
                                     in WeightMatrix w3, Span<float> y3, WorkerPool pool, KernelIsa isa)
    {
        int c = w1.Cols;
        bool three = w3.Rows > 0;
        static bool Plain(in WeightMatrix w, int c) => w.Rows > 0 && w.Cols == c && c > 0 && w.Data != null && w.Packed == null;
        if (t <= 0 || !Plain(w1, c) || !Plain(w2, c) || (three && !Plain(w3, c))) return false;
        int block = ActivationBlock(w1);
        if (ActivationBlock(w2) != block || (three && ActivationBlock(w3) != block)) return false;
        if (x.Length < (long)t * c || y1.Length < (long)t * w1.Rows || y2.Length < (long)t * w2.Rows || (three && y3.Length < (long)t * w3.Rows)) return false;
        fixed (float* px = x)
        fixed (float* p1 = y1)
        fixed (float* p2 = y2)
        fixed (float* p3 = y3)
        {
            var job = MatVecActivations(px, t, c, block, isa);
            job.P1 = MatVecPart.Of(w1, p1);
            job.P2 = MatVecPart.Of(w2, p2);
            if (three) job.P3 = MatVecPart.Of(w3, p3);
            long rowBytes = Math.Max(w1.RowBytes, Math.Max(w2.RowBytes, three ? w3.RowBytes : 0));
            job.Tasks = WorkSplit.Tasks(job.P1.Rows + job.P2.Rows + job.P3.Rows, rowBytes + (long)t * c, pool.Threads, job.Align);
            pool.Run(job.Tasks, job);
        }
        return true;
    }

    /// <summary>One matrix of a matvec job: its rows, their layout and where its results go.</summary>
    private struct MatVecPart
    {
        public byte* W;
        public long RowBytes;
        public DType Type;
        public float* Y;
        public int Rows;
        /// <summary>The matrix's rows stored in groups of eight (<see cref="WeightMatrix.GroupedRows"/>).</summary>
        public int Grouped;

        public static MatVecPart Of(in WeightMatrix w, float* y) =>
            new() { W = w.Data, RowBytes = w.RowBytes, Type = w.Type, Y = y, Rows = w.Rows, Grouped = w.GroupedRows };
    }

    private struct MatVecJob : IParallelJob
    {
        public byte* Xq;
        public long XqStride;
        public float* X;
        public int Cols, T, Tasks, Block;
        public KernelIsa Isa;
        /// <summary>The matrix; a second and third over the same activations (ForwardShared; no rows when absent): their
        /// rows follow the first's in the split.</summary>
        public MatVecPart P1, P2, P3;

        // the matrix Range works on (Execute runs the second and third as copies of this job with them first)
        private readonly byte* W => P1.W;
        private readonly long RowBytes => P1.RowBytes;
        private readonly DType Type => P1.Type;
        private readonly float* Y => P1.Y;
        private readonly int Rows => P1.Rows;
        private readonly int Grouped => P1.Grouped;

        /// <summary>Task boundaries fall on whole groups when a matrix has any (a group split between two tasks would be
        /// computed by both).</summary>
        public readonly int Align => (P1.Grouped | P2.Grouped | P3.Grouped) > 0 ? RowGroups.Size : 1;

        public readonly void Execute(int task)
        {
            int rows2 = P2.Rows, rows3 = P3.Rows;
            var (s, e) = WorkSplit.Range(task, Tasks, Rows + rows2 + rows3, Align);
            if (s < Rows) Range(s, Math.Min(e, Rows));
            if (rows2 > 0 && e > Rows && s < Rows + rows2)
                (this with { P1 = P2 }).Range(Math.Max(s - Rows, 0), Math.Min(e - Rows, rows2));
            int o3 = Rows + rows2;
            if (rows3 > 0 && e > o3)
                (this with { P1 = P3 }).Range(Math.Max(s - o3, 0), Math.Min(e - o3, rows3));
        }

        /// <summary>The grouped rows of s..e (those below <see cref="Grouped"/>) by the group kernel, a whole group at a time for
        /// every activation row (rows of a group outside s..e computed and not stored); returns the first row left.</summary>
        [SkipLocalsInit]
        private readonly int Groups(Q8Row* xs, int s, int e)
        {
            int end = Math.Min(e, Grouped);
            if (s >= end) return s;
            float* y8 = stackalloc float[4 * RowGroups.Size];
            for (int g = s / RowGroups.Size; g * RowGroups.Size < end; g++)
            {
                int r0 = g * RowGroups.Size, lo = Math.Max(s, r0), hi = Math.Min(end, r0 + RowGroups.Size);
                byte* w = W + r0 * RowBytes;
                for (int ti = 0; ti < T;)
                {
                    // four activation rows at once from two up (a short last four repeats the last row: xs is padded);
                    // a whole group of real rows straight into y, else through y8
                    int k = T - ti >= 2 && FourRowKernels ? 4 : 1;
                    if (hi - lo == RowGroups.Size && ti + k <= T) RowGroups.Dot(Type, w, xs + ti, k, Cols, Y + (long)ti * Rows + r0, Rows);
                    else
                    {
                        RowGroups.Dot(Type, w, xs + ti, k, Cols, y8);
                        for (int j = 0; j < Math.Min(k, T - ti); j++)
                            for (int r = lo; r < hi; r++) Y[(long)(ti + j) * Rows + r] = y8[j * RowGroups.Size + r - r0];
                    }
                    ti += k;
                }
            }
            return end;
        }

        /// <summary>Rows s..e of the (first) matrix.</summary>
        private readonly void Range(int s, int e)
        {
            var traits = DTypes.Of(Type);
            if (Xq != null)
            {
                // the activation rows, and groups of four for the four-row dot (a short last group repeats its last row);
                // a row's value never depends on its group: each kernel does every row's own operations in the same order
                Q8Row* xs = stackalloc Q8Row[T + 3];
                for (int ti = 0; ti < T + 3; ti++) xs[ti] = Q8Activations.At(Xq + Math.Min(ti, T - 1) * XqStride, Cols, Block);
                var q8 = new Q8Rows { Traits = traits, Xs = xs, Cols = Cols, Isa = Isa, RowBuf = Scratch.Get(Scratch.Row, Cols) };
                if (Isa != KernelIsa.Scalar && System.Runtime.Intrinsics.X86.AvxVnni.IsSupported) s = Groups(xs, s, e);
                Dots(ref q8, s, e, traits.DotQ8x4 != null);
                return;
            }
            float** xf = stackalloc float*[T + 7]; // groups of four or eight, a short last group repeating the last row
            for (int ti = 0; ti < T + 7; ti++) xf[ti] = X + (long)Math.Min(ti, T - 1) * Cols;
            var f32 = new F32Rows { Traits = traits, Xs = xf, Cols = Cols, Isa = Isa, RowBuf = Scratch.Get(Scratch.Row, Cols) };
            Dots(ref f32, s, e, traits.Dot4 != null);
        }

        /// <summary>Weight rows s..e against every activation row: eight or four at a time where the type has those dots
        /// (and T >= 2), the rest one by one.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private readonly void Dots<TRows>(ref TRows rows, int s, int e, bool hasFour) where TRows : struct, IActivationRows
        {
            float* some = stackalloc float[8];
            bool x4 = T >= 2 && hasFour && FourRowKernels, x8 = x4 && T >= 5;
            byte* plain = s < Grouped ? RowGroups.RowBuffer(RowBytes) : null;
            for (int r = s; r < e; r++)
            {
                // a grouped row here (f32 activations, or the scalar variant): copied out to the plain layout
                byte* w = r < Grouped ? RowGroups.PlainRow(Type, W, RowBytes, Grouped, Cols, r, plain) : W + r * RowBytes;
                int ti = 0;
                if (x8)
                    for (; T - ti >= 5; ti += 8)
                    {
                        if (!rows.Eight(w, ti, some)) { x8 = false; break; }
                        for (int j = 0; j < Math.Min(8, T - ti); j++) Y[(long)(ti + j) * Rows + r] = some[j];
                    }
                if (x4)
                    for (; T - ti >= 2; ti += 4)
                    {
                        if (!rows.Four(w, ti, some)) { x4 = false; break; }
                        for (int j = 0; j < Math.Min(4, T - ti); j++) Y[(long)(ti + j) * Rows + r] = some[j];
                    }
                for (; ti < T; ti++) Y[(long)ti * Rows + r] = rows.One(w, ti);
            }
        }
    }

    /// <summary>The activation rows of a matvec as its dots see them: 8-bit (<see cref="Q8Rows"/>) or f32 (<see cref="F32Rows"/>).</summary>
    private interface IActivationRows
    {
        /// <summary>Rows ti..ti+3 against weight row w into results; false when the variant has no four-row dot.</summary>
        bool Four(byte* w, int ti, float* results);
        /// <summary>Rows ti..ti+7; false when the variant has no eight-row dot.</summary>
        bool Eight(byte* w, int ti, float* results);
        float One(byte* w, int ti);
    }

    private readonly struct Q8Rows : IActivationRows
    {
        public TypeTraits Traits { get; init; }
        public Q8Row* Xs { get; init; }
        public int Cols { get; init; }
        public KernelIsa Isa { get; init; }
        public float* RowBuf { get; init; }
        public bool Four(byte* w, int ti, float* results) => Traits.DotQ8x4(w, Xs + ti, Cols, Isa, results);
        public bool Eight(byte* w, int ti, float* results) => false;
        public float One(byte* w, int ti) => Traits.DotQ8(w, Xs[ti], Cols, Isa, RowBuf);
    }

    private readonly struct F32Rows : IActivationRows
    {
        public TypeTraits Traits { get; init; }
        public float** Xs { get; init; }
        public int Cols { get; init; }
        public KernelIsa Isa { get; init; }
        public float* RowBuf { get; init; }
        public bool Four(byte* w, int ti, float* results) => Traits.Dot4(w, Xs + ti, Cols, Isa, results);
        public bool Eight(byte* w, int ti, float* results) => Traits.Dot8 != null && Traits.Dot8(w, Xs + ti, Cols, Isa, results);
        public float One(byte* w, int ti) => Traits.DotRow(w, Xs[ti], Cols, Isa, RowBuf);
    }

    [ThreadStatic] private static float[]?[]? t_backward;

    private static Span<float> BackwardBuffer(int slot, long n)
    {
        var bufs = t_backward ??= new float[]?[3];
        var b = bufs[slot];
        if (b is null || b.Length < n) b = bufs[slot] = GC.AllocateUninitializedArray<float>(checked((int)Math.Max(n, 1024)), pinned: true);
        return b.AsSpan(0, (int)n);
    }

    private static void Product(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, int t, int rows, int cols)
    {
        fixed (float* pw = w)
            Forward(x, new WeightMatrix(DType.F32, (byte*)pw, rows, cols), y, t);
    }

    /// <summary>
    /// dy (T,OC), x (T,C), w (OC,C) F32 -> dx (T,C) += dy W (skipped when dx is empty), dw (OC,C) += dy^T x.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, in WeightMatrix w, Span<float> dx, Span<float> dw, int t)
    {
        if (w.Type != DType.F32) throw new NotSupportedException($"the backward pass needs F32 weights, not {w.Type}");
        int oc = w.Rows, c = w.Cols;
        if (dy.Length < (long)t * oc || x.Length < (long)t * c || dw.Length < (long)oc * c || (!dx.IsEmpty && dx.Length < (long)t * c))
            throw new ArgumentException($"MatMul.Backward: dy ({dy.Length}), x ({x.Length}), dx ({dx.Length}) or dw ({dw.Length}) is too short for T={t}, OC={oc}, C={c}");
        if (!dx.IsEmpty)
        {
            var wt = BackwardBuffer(0, (long)c * oc);
            Transpose(new ReadOnlySpan<float>(w.Data, oc * c), wt, oc, c);
            var tmp = BackwardBuffer(1, (long)t * c);
            Product(dy, wt, tmp, t, c, oc);
            Add.InPlace(tmp, dx[..(t * c)]);
        }
        var dyT = BackwardBuffer(0, (long)oc * t);
        Transpose(dy[..(t * oc)], dyT, t, oc);
        var xT = BackwardBuffer(2, (long)c * t);
        Transpose(x[..(t * c)], xT, t, c);
        var g = BackwardBuffer(1, (long)oc * c);
        Product(dyT, xT, g, oc, c, t);
        Add.InPlace(g, dw[..(oc * c)]);
    }

    /// <summary>dst (cols,rows) = src (rows,cols)^T, in 16x16 tiles.</summary>
    internal static void Transpose(ReadOnlySpan<float> src, Span<float> dst, int rows, int cols)
    {
        const int Bk = 16;
        for (int r0 = 0; r0 < rows; r0 += Bk)
            for (int c0 = 0; c0 < cols; c0 += Bk)
            {
                int re = Math.Min(rows, r0 + Bk), ce = Math.Min(cols, c0 + Bk);
                for (int r = r0; r < re; r++)
                    for (int c = c0; c < ce; c++) dst[c * rows + r] = src[r * cols + c];
            }
    }

    /// <summary>The readable oracle: y[t,o] = sum_c x[t,c] W[o,c], dequantized with the naive dequantizer; and its
    /// backward, generic so the gradient checks run it in double.</summary>
    public static class Naive
    {
        /// <summary>x (T,C) f32, w (OC,C) any dtype -> y (T,OC), accumulated in double.</summary>
        public static void Forward(ReadOnlySpan<float> x, in WeightMatrix w, Span<float> y, int t)
        {
            int c = w.Cols, oc = w.Rows;
            var row = new float[c];
            for (int o = 0; o < oc; o++)
            {
                DTypes.Of(w.Type).DequantizeRowNaive(w.Row(o), row);
                for (int i = 0; i < t; i++)
                {
                    double acc = 0;
                    var xi = x.Slice(i * c, c);
                    for (int k = 0; k < c; k++) acc += (double)xi[k] * row[k];
                    y[i * oc + o] = (float)acc;
                }
            }
        }

        /// <summary>x (N,C), w (OC,C), bias (OC) or empty -> y (N,OC) = x W^T + b.</summary>
        public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> bias, Span<T> y, int n, int c, int oc)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            for (int r = 0; r < n; r++)
                for (int o = 0; o < oc; o++)
                {
                    T s = bias.IsEmpty ? T.Zero : bias[o];
                    for (int k = 0; k < c; k++) s += x[r * c + k] * w[o * c + k];
                    y[r * oc + o] = s;
                }
        }

        /// <summary>dx (N,C) += dy W; dw (OC,C) += dy^T x; dbias (OC) += sum_n dy (each skipped when empty).</summary>
        public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> w, Span<T> dx, Span<T> dw, Span<T> dbias, int n, int c, int oc)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            for (int r = 0; r < n; r++)
                for (int o = 0; o < oc; o++)
                {
                    T g = dy[r * oc + o];
                    if (!dbias.IsEmpty) dbias[o] += g;
                    for (int k = 0; k < c; k++)
                    {
                        if (!dx.IsEmpty) dx[r * c + k] += g * w[o * c + k];
                        dw[o * c + k] += g * x[r * c + k];
                    }
                }
        }
    }
}
