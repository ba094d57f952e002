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
}
