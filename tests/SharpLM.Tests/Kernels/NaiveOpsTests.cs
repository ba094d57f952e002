using SharpLM.Kernels;

namespace SharpLM.Tests.Kernels;

public class NaiveOpsTests
{
    [Fact]
    public void SoftmaxSumsToOneAndMasksNegativeInfinity()
    {
        float[] x = [1f, 2f, float.NegativeInfinity, 3f];
        Softmax.Naive(x);
        Assert.Equal(1.0, x.Sum(), 6);
        Assert.Equal(0f, x[2]);
        Assert.True(x[3] > x[1] && x[1] > x[0]);
    }

    [Theory]
    [InlineData(0.0, 0.0)]
    [InlineData(0.5, 0.5204998778130465)]
    [InlineData(1.0, 0.8427007929497149)]
    [InlineData(-2.0, -0.9953222650189527)]
    [InlineData(3.0, 0.9999779095030014)]
    public void ErfMatchesTables(double x, double expected) => Assert.Equal(expected, Gelu.Naive.Erf(x), 12);

    [Fact]
    public void RopeRotatesPairsAndKeepsNorm()
    {
        // One head of size 4 at position 1 with invFreq [1, 0]: the first pair turns by 1 radian, the second stays.
        float[] x = [1f, 0f, 2f, 3f];
        Oracles.Rope(x, 1, 1, 4, [1], [1f, 0f], neox: false);
        Assert.Equal(MathF.Cos(1), x[0], 6);
        Assert.Equal(MathF.Sin(1), x[1], 6);
        Assert.Equal(2f, x[2], 6);
        Assert.Equal(3f, x[3], 6);
    }
}
