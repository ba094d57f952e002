using SharpLM.Kernels;

namespace SharpLM.Tests.Kernels;

public class WorkerPoolTests
{
    private unsafe struct CountJob : IParallelJob
    {
        public int* Hits;
        public int* Threads;

        public readonly void Execute(int task)
        {
            Interlocked.Increment(ref Hits[task]);
            Threads[task] = Environment.CurrentManagedThreadId;
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    public unsafe void EveryTaskRunsExactlyOnceAcrossManyRuns(int threads)
    {
        using var pool = new WorkerPool(threads);
        var hits = new int[257];
        var ids = new int[257];
        fixed (int* h = hits)
        fixed (int* t = ids)
        {
            for (int run = 0; run < 2000; run++)
            {
                int tasks = run % 257;
                Array.Clear(hits);
                pool.Run(tasks, new CountJob { Hits = h, Threads = t });
                for (int i = 0; i < hits.Length; i++)
                    Assert.True(hits[i] == (i < tasks ? 1 : 0), $"run {run}: task {i} ran {hits[i]} times (tasks {tasks})");
            }
        }
    }

    [Fact]
    public unsafe void WorkersTakePartWhenTasksAreLong()
    {
        using var pool = new WorkerPool(2);
        var ids = new int[64];
        var hits = new int[64];
        fixed (int* h = hits)
        fixed (int* t = ids)
            for (int r = 0; r < 20 && ids.Distinct().Count() < 2; r++)
                pool.Run(64, new SlowJob { Threads = t });
        Assert.True(ids.Distinct().Count() >= 2, "all 64 tasks of 1 ms ran on one thread in 20 tries: the worker never woke");
    }

    private unsafe struct SlowJob : IParallelJob
    {
        public int* Threads;

        public readonly void Execute(int task)
        {
            Threads[task] = Environment.CurrentManagedThreadId;
            Thread.Sleep(1);
        }
    }

    [Fact]
    public async Task ConcurrentCallersBothComplete()
    {
        using var pool = new WorkerPool(2);
        var a = new int[100];
        var b = new int[100];
        var ids = new int[100];
        var t1 = Task.Run(() => RunMany(pool, a, ids));
        var t2 = Task.Run(() => RunMany(pool, b, ids));
        await Task.WhenAll(t1, t2).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.All(a, v => Assert.Equal(500, v));
        Assert.All(b, v => Assert.Equal(500, v));
    }

    private static unsafe void RunMany(WorkerPool pool, int[] hits, int[] ids)
    {
        fixed (int* p = hits)
        fixed (int* q = ids)
            for (int i = 0; i < 500; i++) pool.Run(100, new CountJob { Hits = p, Threads = q });
    }

    private struct ThrowJob : IParallelJob
    {
        public int ThrowAt;

        public readonly void Execute(int task)
        {
            Thread.Sleep(1);
            if (task == ThrowAt) throw new InvalidOperationException($"task {task} failed");
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(31)]
    public unsafe void ATaskExceptionReachesTheCallerAndThePoolStaysUsable(int throwAt)
    {
        using var pool = new WorkerPool(3);
        var ex = Record.Exception(() => pool.Run(32, new ThrowJob { ThrowAt = throwAt }));
        Assert.NotNull(ex);
        Assert.Contains($"task {throwAt} failed", ex is AggregateException a ? a.InnerExceptions[0].Message : ex.Message);
        var hits = new int[16];
        var ids = new int[16];
        fixed (int* h = hits)
        fixed (int* t = ids)
            pool.Run(16, new CountJob { Hits = h, Threads = t });
        Assert.All(hits, v => Assert.Equal(1, v));
    }

    [Fact]
    public async Task UseMakesAPoolTheKernelsPoolOnItsThreadOnly()
    {
        var process = WorkerPool.Shared;
        Assert.Equal(Environment.ProcessorCount, process.Threads);
        using var three = new WorkerPool(3);
        using var one = new WorkerPool(1);
        using (three.Use())
        {
            Assert.Same(three, WorkerPool.Shared);
            using (one.Use()) Assert.Same(one, WorkerPool.Shared); // scopes nest
            Assert.Same(three, WorkerPool.Shared);
            // another thread is unaffected
            Assert.Same(process, await Task.Factory.StartNew(() => WorkerPool.Shared, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default));
        }
        Assert.Same(process, WorkerPool.Shared);
        Assert.Throws<ArgumentOutOfRangeException>(() => new WorkerPool(0));
    }
}
