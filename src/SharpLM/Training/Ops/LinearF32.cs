using System.Runtime.InteropServices;
using SharpLM.Kernels;
using SharpLM.Tensors;

namespace SharpLM.Training.Ops;

/// <summary>
/// The float32 fast path of <see cref="Linear"/>: all three products run on the engine's packed SGEMM
/// (<see cref="MatMul"/>, register-tiled AVX-512/AVX2 on the training worker pool):
///   y (N,OC)  = x (N,C) W^T                     (W (OC,C) used in place)
///   dx (N,C) += dy (N,OC) (W^T)^T               (W^T (C,OC) transposed into scratch)
///   dW (OC,C) += dy^T (OC,N) (x^T)^T            (dy^T and x^T (C,N) transposed into scratch)
/// Each output element is summed in a fixed order that does not depend on the thread count.
/// </summary>
internal static unsafe class LinearF32
{
    [ThreadStatic] private static float[]?[]? t_buf;

    private static Span<float> Buf(int slot, long n)
    {
        var bufs = t_buf ??= new float[]?[4];
        var b = bufs[slot];
        if (b is null || b.Length < n) b = bufs[slot] = GC.AllocateUninitializedArray<float>(checked((int)Math.Max(n, 1024)), pinned: true);
        return b.AsSpan(0, (int)n);
    }

    private static void Mm(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, int t, int rows, int cols)
    {
        fixed (float* pw = w)
        {
            var wm = new WeightMatrix(DType.F32, (byte*)pw, rows, cols);
            MatMul.Forward(x, wm, y, t, TrainParallel.Pool, KernelIsaSelector.Current);
        }
    }

    /// <summary>dst (cols,rows) = src (rows,cols)^T.</summary>
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

    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y, int n, int c, int oc)
    {
        Mm(x, w, y, n, oc, c);
        if (!bias.IsEmpty)
            for (int r = 0; r < n; r++) TrainMath.Add(bias, y.Slice(r * oc, oc));
    }

    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w,
                                Span<float> dx, Span<float> dw, Span<float> dbias, int n, int c, int oc)
    {
        if (!dx.IsEmpty)
        {
            var wt = Buf(0, (long)c * oc);
            Transpose(w[..(oc * c)], wt, oc, c);
            var tmp = Buf(1, (long)n * c);
            Mm(dy, wt, tmp, n, c, oc);
            TrainMath.Add<float>(tmp, dx[..(n * c)]);
        }
        var dyT = Buf(0, (long)oc * n);
        Transpose(dy[..(n * oc)], dyT, n, oc);
        var xT = Buf(2, (long)c * n);
        Transpose(x[..(n * c)], xT, n, c);
        var g = Buf(1, (long)oc * c);
        Mm(dyT, xT, g, oc, c, n);
        TrainMath.Add<float>(g, dw[..(oc * c)]);
        if (!dbias.IsEmpty)
            for (int o = 0; o < oc; o++)
            {
                float s = 0;
                var row = dyT.Slice(o * n, n);
                for (int r = 0; r < n; r++) s += row[r];
                dbias[o] += s;
            }
    }

    public static ReadOnlySpan<float> AsF<T>(ReadOnlySpan<T> s) where T : struct => MemoryMarshal.Cast<T, float>(s);
    public static Span<float> AsF<T>(Span<T> s) where T : struct => MemoryMarshal.Cast<T, float>(s);
}
