using SharpLM.Kernels;

namespace SharpLM.Tests.Kernels;

public class KernelIsaTests
{
    [Fact]
    public void EnvironmentValuesParseAndAreCappedAtTheBest()
    {
        Assert.Equal(KernelIsaSelector.Best, KernelIsaSelector.Parse(null));
        Assert.Equal(KernelIsaSelector.Best, KernelIsaSelector.Parse(" "));
        Assert.Equal(KernelIsa.Scalar, KernelIsaSelector.Parse("scalar"));
        Assert.Equal(KernelIsaSelector.Best >= KernelIsa.Avx2 ? KernelIsa.Avx2 : KernelIsaSelector.Best, KernelIsaSelector.Parse("AVX2"));
        Assert.Equal(KernelIsaSelector.Best, KernelIsaSelector.Parse("avx512"));
        var ex = Assert.Throws<ArgumentException>(() => KernelIsaSelector.Parse("sse"));
        Assert.Contains("avx512, avx2 or scalar", ex.Message);
    }

    [Fact]
    public void ForceAppliesToThisThreadOnlyAndRestores()
    {
        var before = KernelIsaSelector.Current;
        using (KernelIsaSelector.Force(KernelIsa.Scalar))
        {
            Assert.Equal(KernelIsa.Scalar, KernelIsaSelector.Current);
            KernelIsa other = KernelIsa.Scalar;
            var t = new Thread(() => other = KernelIsaSelector.Current);
            t.Start();
            t.Join();
            Assert.Equal(KernelIsaSelector.Default, other);
        }
        Assert.Equal(before, KernelIsaSelector.Current);
    }

    [Fact]
    public void ForceReachesThePoolsWorkersForTheWorkItHandsThem()
    {
        using var pool = new WorkerPool(3);
        var seen = new KernelIsa[64];
        var threads = new int[64];
        using (KernelIsaSelector.Force(KernelIsa.Scalar))
            pool.For(seen.Length, i => { Thread.SpinWait(20_000); seen[i] = KernelIsaSelector.Current; threads[i] = Environment.CurrentManagedThreadId; });
        Assert.All(seen, isa => Assert.Equal(KernelIsa.Scalar, isa));
        Assert.True(threads.Distinct().Count() > 1, "the work should have run on more than one thread");
        pool.For(seen.Length, i => seen[i] = KernelIsaSelector.Current);   // not forced now: the default again
        Assert.All(seen, isa => Assert.Equal(KernelIsaSelector.Default, isa));
    }
}
