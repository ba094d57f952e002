using SharpLM.Tensors;

namespace SharpLM.Kernels;

/// <summary>
/// y = x W^T for a weight of any supported dtype. x (T,C) f32, w (OC,C) -> y (T,OC).
/// T &lt; <see cref="GemmMinRows"/> (decode) takes the bandwidth-bound matvec: output rows are split across the worker
/// pool and each weight row is streamed once (fused dequantize + FMA, software prefetch, see <see cref="RowDot"/>).
/// Larger T takes the compute-bound <see cref="Gemm"/>. The variant (AVX-512, AVX2, scalar) comes from
/// <see cref="KernelIsaSelector.Current"/>. Accuracy: f32 accumulation, so |y - exact| is within a few f32 ulps of
/// sum_k |x_k w_k| (the tests allow 1e-5 of it); weights are never rounded beyond their stored dtype and activations
/// are never quantized.
/// </summary>
internal static unsafe class MatMul
{
    /// <summary>Row count from which the GEMM path is used (the matvec wins below it).</summary>
    public static int GemmMinRows { get; set; } = 16;

    public static void Forward(ReadOnlySpan<float> x, in WeightMatrix w, Span<float> y, int t) =>
        Forward(x, w, y, t, WorkerPool.Shared, KernelIsaSelector.Current);

    /// <summary>As <see cref="Forward(ReadOnlySpan{float}, in WeightMatrix, Span{float}, int)"/> on a given pool and variant.</summary>
    public static void Forward(ReadOnlySpan<float> x, in WeightMatrix w, Span<float> y, int t, WorkerPool pool, KernelIsa isa)
    {
        if (t < 0) throw new ArgumentOutOfRangeException(nameof(t), t, "T must be >= 0");
        if (x.Length < (long)t * w.Cols) throw new ArgumentException($"x holds {x.Length} floats, need T*C = {t}*{w.Cols}", nameof(x));
        if (y.Length < (long)t * w.Rows) throw new ArgumentException($"y holds {y.Length} floats, need T*OC = {t}*{w.Rows}", nameof(y));
        if (t == 0 || w.Rows == 0) return;
        if (w.Cols == 0) { y[..(t * w.Rows)].Clear(); return; }
        if (w.Data == null) throw new ArgumentException("weight matrix has no data pointer", nameof(w));
        fixed (float* px = x)
        fixed (float* py = y)
        {
            if (t >= GemmMinRows && isa != KernelIsa.Scalar)
            {
                Gemm.Forward(px, w, py, t, isa, pool);
                return;
            }
            long rowBytes = w.RowBytes;
            var job = new MatVecJob
            {
                W = w.Data, RowBytes = rowBytes, Type = w.Type, X = px, Y = py, Rows = w.Rows, Cols = w.Cols, T = t, Isa = isa,
                Tasks = WorkSplit.Tasks(w.Rows, rowBytes + (long)t * w.Cols, pool.Threads),
            };
            pool.Run(job.Tasks, job);
        }
    }

    private struct MatVecJob : IParallelJob
    {
        public byte* W;
        public long RowBytes;
        public DType Type;
        public float* X, Y;
        public int Rows, Cols, T, Tasks;
        public KernelIsa Isa;

        public readonly void Execute(int task)
        {
            var (s, e) = WorkSplit.Range(task, Tasks, Rows);
            float* rowBuf = Scratch.Get(Scratch.Row, Cols);
            for (int r = s; r < e; r++)
            {
                byte* w = W + r * RowBytes;
                for (int ti = 0; ti < T; ti++) Y[(long)ti * Rows + r] = Tensors.Types.DTypes.Of(Type).DotRow(w, X + (long)ti * Cols, Cols, Isa, rowBuf);
            }
        }
    }
}
