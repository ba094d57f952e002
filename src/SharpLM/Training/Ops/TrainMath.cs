using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SharpLM.Training.Ops;

/// <summary>
/// Vector helpers shared by the training ops. Every op is generic over the element type so it runs on
/// <see cref="float"/> for training and on <see cref="double"/> for the finite-difference gradient checks.
/// Sums are always taken in the same order whatever the thread count, so training is deterministic.
/// </summary>
internal static class TrainMath
{
    public static T C<T>(double v) where T : unmanaged, IFloatingPointIeee754<T> => T.CreateTruncating(v);

    /// <summary>sum_i a[i] * b[i] over a.Length elements.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Dot<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = a.Length, i = 0, w = Vector<T>.Count;
        b = b[..n];
        if (Vector.IsHardwareAccelerated && n >= 2 * w)
        {
            ref T ra = ref MemoryMarshal.GetReference(a);
            ref T rb = ref MemoryMarshal.GetReference(b);
            Vector<T> acc0 = Vector<T>.Zero, acc1 = Vector<T>.Zero;
            for (; i <= n - 2 * w; i += 2 * w)
            {
                acc0 += Vector.LoadUnsafe(ref ra, (nuint)i) * Vector.LoadUnsafe(ref rb, (nuint)i);
                acc1 += Vector.LoadUnsafe(ref ra, (nuint)(i + w)) * Vector.LoadUnsafe(ref rb, (nuint)(i + w));
            }
            for (; i <= n - w; i += w) acc0 += Vector.LoadUnsafe(ref ra, (nuint)i) * Vector.LoadUnsafe(ref rb, (nuint)i);
            T s = Vector.Sum(acc0 + acc1);
            for (; i < n; i++) s += a[i] * b[i];
            return s;
        }
        T r = T.Zero;
        for (; i < n; i++) r += a[i] * b[i];
        return r;
    }

    /// <summary>y[i] += alpha * x[i] over y.Length elements.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Axpy<T>(T alpha, ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = y.Length, i = 0, w = Vector<T>.Count;
        x = x[..n];
        if (Vector.IsHardwareAccelerated && n >= w)
        {
            ref T rx = ref MemoryMarshal.GetReference(x);
            ref T ry = ref MemoryMarshal.GetReference(y);
            var va = new Vector<T>(alpha);
            for (; i <= n - w; i += w)
                (Vector.LoadUnsafe(ref ry, (nuint)i) + va * Vector.LoadUnsafe(ref rx, (nuint)i)).StoreUnsafe(ref ry, (nuint)i);
        }
        for (; i < n; i++) y[i] += alpha * x[i];
    }

    /// <summary>y[i] += x[i].</summary>
    public static void Add<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = y.Length, i = 0, w = Vector<T>.Count;
        x = x[..n];
        if (Vector.IsHardwareAccelerated)
        {
            ref T rx = ref MemoryMarshal.GetReference(x);
            ref T ry = ref MemoryMarshal.GetReference(y);
            for (; i <= n - w; i += w)
                (Vector.LoadUnsafe(ref ry, (nuint)i) + Vector.LoadUnsafe(ref rx, (nuint)i)).StoreUnsafe(ref ry, (nuint)i);
        }
        for (; i < n; i++) y[i] += x[i];
    }
}

/// <summary>
/// How many threads the training ops use, and a parallel loop over work items. Work is split into contiguous
/// chunks, one per thread; each item writes its own outputs, so results do not depend on the thread count.
/// </summary>
internal static class TrainParallel
{
    private static int s_threads = Math.Max(1, Environment.ProcessorCount);

    /// <summary>Threads used by the training ops (default: all cores).</summary>
    public static int Threads
    {
        get => s_threads;
        set => s_threads = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "threads must be >= 1");
    }

    /// <summary>Float32 linear layers run on the engine's packed SGEMM (set false to use the portable loops;
    /// SHARPLM_TRAIN_GEMM=0 does the same).</summary>
    public static bool UseGemm { get; set; } = Environment.GetEnvironmentVariable("SHARPLM_TRAIN_GEMM") != "0";

    /// <summary>The worker pool (of <see cref="Threads"/> threads) the training ops run on. One pool per thread count is
    /// kept for the process, so changing <see cref="Threads"/> never disposes a pool another thread may be using.</summary>
    public static Kernels.WorkerPool Pool => s_pools.GetOrAdd(s_threads, static n => new Kernels.WorkerPool(n));

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, Kernels.WorkerPool> s_pools = new();

    /// <summary>Runs body(i) for i in [0, count) on <see cref="Pool"/>; items are split into at most
    /// <see cref="Threads"/> contiguous chunks. minItemsPerThread keeps tiny loops on one thread.</summary>
    public static void For(int count, Action<int> body, int minItemsPerThread = 1)
    {
        int chunks = Math.Min(s_threads, Math.Max(1, count / Math.Max(1, minItemsPerThread)));
        if (chunks <= 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        var h = System.Runtime.InteropServices.GCHandle.Alloc(body);
        try
        {
            Pool.Run(chunks, new ChunkJob { Body = System.Runtime.InteropServices.GCHandle.ToIntPtr(h), Count = count, Chunks = chunks });
        }
        finally { h.Free(); }
    }

    private struct ChunkJob : Kernels.IParallelJob
    {
        public nint Body;
        public int Count, Chunks;

        public readonly void Execute(int c)
        {
            var body = (Action<int>)System.Runtime.InteropServices.GCHandle.FromIntPtr(Body).Target!;
            int lo = (int)((long)Count * c / Chunks), hi = (int)((long)Count * (c + 1) / Chunks);
            for (int i = lo; i < hi; i++) body(i);
        }
    }
}
