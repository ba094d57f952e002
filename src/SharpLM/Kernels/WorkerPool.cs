using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace SharpLM.Kernels;

/// <summary>A unit of parallel work: <see cref="Execute"/> runs once for each task index 0..tasks-1.</summary>
internal interface IParallelJob
{
    void Execute(int task);
}

/// <summary>
/// A persistent pool of worker threads for the kernels (created once; no Parallel.For per op, which on this machine ran
/// almost everything on the calling thread). <see cref="Run{T}"/> hands out task indices dynamically; the calling
/// thread works too, so a pool of N threads has N-1 workers. Idle workers spin briefly (SHARPLM_SPIN_US, default 50 µs)
/// and then block, so a busy neighbour process is not starved. Run never allocates. A Run called while another Run of
/// the same pool is in progress (from a job, or from another thread) executes inline on its caller: two threads sharing a
/// pool never wait for each other, and since every kernel's result is independent of how its tasks are spread, they
/// get the same bits. An exception in a task stops the hand-out of further tasks and is rethrown by Run (wrapped in an
/// AggregateException when a worker threw).
/// <para>Which pool: the thread count belongs to a model or a call, not to the process. The kernels run on
/// <see cref="Shared"/>, the pool put in place on the calling thread by <see cref="Use"/> (a model loaded with its own
/// thread count, a trainer, a lab run, a benchmark), else the process's pool of one thread per core.</para>
/// </summary>
internal sealed unsafe class WorkerPool : IDisposable
{
    private static readonly WorkerPool s_process = new(Environment.ProcessorCount);

    [ThreadStatic] private static WorkerPool? t_current;

    /// <summary>
    /// The pool the kernels use on the calling thread: the one <see cref="Use"/> put in place (a worker thread's own
    /// pool on a worker), else the process's pool of <see cref="Environment.ProcessorCount"/> threads.
    /// </summary>
    public static WorkerPool Shared => t_current ?? s_process;

    /// <summary>
    /// Makes this pool <see cref="Shared"/> on the calling thread until the scope is disposed (scopes nest; dispose on
    /// the same thread, in reverse order, e.g. with <c>using</c>). Allocates nothing.
    /// </summary>
    public Scope Use()
    {
        var previous = t_current;
        t_current = this;
        return new Scope(previous);
    }

    /// <summary>Restores the calling thread's previous pool.</summary>
    public readonly struct Scope(WorkerPool? previous) : IDisposable
    {
        public void Dispose() => t_current = previous;
    }

    private readonly Thread[] _workers;
    private readonly object _sleepLock = new();
    private readonly long _spinTicks;

    // Seqlock-style generation: odd while the caller is writing the job fields, even when published.
    private int _generation;
    private int _active;      // workers currently inside a job
    private int _sleepers;    // workers blocked in Monitor.Wait
    private int _busy;        // 1 while a Run is in progress
    private int _next;        // next task index to hand out
    private int _tasks;
    private void* _job;
    private delegate*<void*, int, void> _invoke;
    private volatile bool _disposed;
    private Exception? _error;
    private KernelIsa? _isa;  // the caller's forced kernel variant, carried to the workers for the run

    /// <summary>Creates a pool of <paramref name="threads"/> threads in all (the caller counts as one).</summary>
    public WorkerPool(int threads)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), threads, "thread count must be at least 1");
        Threads = threads;
        double us = 50;
        if (double.TryParse(Environment.GetEnvironmentVariable("SHARPLM_SPIN_US"), System.Globalization.NumberStyles.Float,
                System.Globalization.CultureInfo.InvariantCulture, out var v) && v >= 0) us = v;
        _spinTicks = (long)(us * Stopwatch.Frequency / 1e6);
        _workers = new Thread[threads - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            _workers[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"SharpLM worker {i + 1}" };
            _workers[i].Start();
        }
    }

    /// <summary>Threads in all, the caller included.</summary>
    public int Threads { get; }

    /// <summary>
    /// Runs <c>job.Execute(i)</c> for i in 0..tasks-1 across the pool and returns when all are done. The job is a
    /// struct (copied to the caller's stack), so a call allocates nothing.
    /// </summary>
    public void Run<T>(int tasks, in T job) where T : unmanaged, IParallelJob
    {
        if (tasks <= 0) return;
        T local = job;
        if (tasks == 1 || _workers.Length == 0 || _disposed || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            for (int i = 0; i < tasks; i++) local.Execute(i);
            return;
        }
        bool published = false;
        try
        {
            Interlocked.Increment(ref _generation); // odd: writing
            SpinWait sw = default;
            while (Volatile.Read(ref _active) != 0) sw.SpinOnce(-1); // a late worker from the previous run leaves
            _job = &local;
            _invoke = &Invoke<T>;
            _tasks = tasks;
            _error = null;
            _isa = KernelIsaSelector.Forced;
            Volatile.Write(ref _next, 0);
            Interlocked.Increment(ref _generation); // even: published
            published = true;
            if (Volatile.Read(ref _sleepers) > 0)
                lock (_sleepLock) Monitor.PulseAll(_sleepLock);
            int i;
            while ((i = Interlocked.Increment(ref _next) - 1) < tasks) local.Execute(i);
        }
        catch
        {
            Volatile.Write(ref _next, int.MaxValue / 2); // hand out no more tasks
            throw;
        }
        finally
        {
            // Workers hold a pointer to 'local' on this stack frame: never return before they have all left.
            SpinWait sw = default;
            while (published && Volatile.Read(ref _active) != 0) sw.SpinOnce(-1);
            Volatile.Write(ref _busy, 0);
        }
        if (_error is { } error)
            throw new AggregateException("a kernel task failed on a worker thread", error);
    }

    private static void Invoke<T>(void* job, int task) where T : unmanaged, IParallelJob => ((T*)job)->Execute(task);

    /// <summary>
    /// Runs <c>body(i)</c> for i in [0, count), split into at most <see cref="Threads"/> contiguous chunks (fewer when
    /// <paramref name="minItemsPerChunk"/> says the loop is small). For loops whose items are coarse (the training
    /// kernels' per-sequence or per-row work); each item must write only its own outputs, so results do not depend on
    /// the thread count. Allocates a closure handle per call.
    /// </summary>
    public void For(int count, Action<int> body, int minItemsPerChunk = 1)
    {
        int chunks = Math.Min(Threads, Math.Max(1, count / Math.Max(1, minItemsPerChunk)));
        if (chunks <= 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        var h = System.Runtime.InteropServices.GCHandle.Alloc(body);
        try
        {
            Run(chunks, new ChunkJob { Body = System.Runtime.InteropServices.GCHandle.ToIntPtr(h), Count = count, Chunks = chunks });
        }
        finally { h.Free(); }
    }

    private struct ChunkJob : IParallelJob
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

    private void WorkerLoop()
    {
        t_current = this; // a kernel called from a task runs on its own pool (inline, as the pool is busy)
        int seen = 0;
        while (!_disposed)
        {
            int g = WaitForWork(seen);
            if (_disposed) return;
            Interlocked.Increment(ref _active);
            if (Volatile.Read(ref _generation) != g)
            {
                Interlocked.Decrement(ref _active);
                continue; // the caller moved on; look again
            }
            seen = g;
            void* job = _job;
            var invoke = _invoke;
            int tasks = _tasks, i;
            KernelIsaSelector.Forced = _isa;
            try
            {
                while ((i = Interlocked.Increment(ref _next) - 1) < tasks) invoke(job, i);
            }
            catch (Exception ex)
            {
                Interlocked.CompareExchange(ref _error, ex, null);
                Volatile.Write(ref _next, int.MaxValue / 2);
            }
            finally
            {
                Interlocked.Decrement(ref _active);
            }
        }
    }

    /// <summary>Returns the next published (even) generation different from <paramref name="seen"/>.</summary>
    private int WaitForWork(int seen)
    {
        long start = Stopwatch.GetTimestamp();
        int spins = 0;
        while (true)
        {
            int g = Volatile.Read(ref _generation);
            if (g != seen && (g & 1) == 0) return g;
            if (_disposed) return g;
            if (++spins < 64 || Stopwatch.GetTimestamp() - start < _spinTicks)
            {
                Thread.SpinWait(8);
                continue;
            }
            lock (_sleepLock)
            {
                Interlocked.Increment(ref _sleepers);
                while (!_disposed)
                {
                    g = Volatile.Read(ref _generation);
                    if (g != seen && (g & 1) == 0) break;
                    Monitor.Wait(_sleepLock, 100);
                }
                Interlocked.Decrement(ref _sleepers);
            }
            spins = 0;
            start = Stopwatch.GetTimestamp();
        }
    }

    /// <summary>Stops the workers (they exit after their current task).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (_sleepLock) Monitor.PulseAll(_sleepLock);
    }
}

/// <summary>Splits a range of <c>count</c> items into tasks for <see cref="WorkerPool.Run{T}"/>.</summary>
internal static class WorkSplit
{
    /// <summary>Number of tasks for <paramref name="count"/> items costing about <paramref name="bytesPerItem"/> each: none smaller than ~64 KB of work, about 8 per thread.</summary>
    public static int Tasks(int count, long bytesPerItem, int threads, int align = 1)
    {
        if (count <= 0) return 0;
        long total = count * Math.Max(1, bytesPerItem);
        int byWork = (int)Math.Clamp(total / (64 * 1024), 1, int.MaxValue);
        int t = Math.Min(threads == 1 ? 1 : threads * 8, byWork); // small tasks: a descheduled worker holds up little
        int maxByAlign = Math.Max(1, (count + align - 1) / align);
        return Math.Max(1, Math.Min(t, maxByAlign));
    }

    /// <summary>Item range [start, end) of task <paramref name="task"/> of <paramref name="tasks"/>, boundaries multiples of <paramref name="align"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (int Start, int End) Range(int task, int tasks, int count, int align = 1)
    {
        int units = (count + align - 1) / align;
        int s = (int)((long)units * task / tasks) * align;
        int e = (int)((long)units * (task + 1) / tasks) * align;
        return (Math.Min(s, count), Math.Min(e, count));
    }
}
