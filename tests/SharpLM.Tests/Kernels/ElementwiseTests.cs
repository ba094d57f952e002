using SharpLM.Kernels;

namespace SharpLM.Tests.Kernels;

/// <summary>
/// SIMD elementwise kernels against Naive/NaiveOps for every length 0..256 plus a few odd and realistic ones, under
/// every variant. Tolerances (|fast - naive| / max(1, |naive|) unless stated): RmsNorm, LayerNorm 1e-5; Softmax,
/// Rope, SwiGlu, GeluTanh 2e-6; Gelu 1e-6 * max(1, |x|) (the oracle uses a double erf).
/// </summary>
public class ElementwiseTests
{
    private static IEnumerable<int> Lengths() => Enumerable.Range(0, 257).Concat([511, 1000, 4099]);

    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public void RmsNormMatchesNaive(KernelIsa isa)
    {
        using var _ = KernelIsaSelector.Force(isa);
        var rng = new Random(1);
        foreach (int c in Lengths().Where(c => c > 0))
        {
            var x = KernelTestUtil.Gaussian(rng, 3 * c, 3f);
            var w = KernelTestUtil.Gaussian(rng, c);
            var expected = new float[3 * c];
            var got = new float[3 * c];
            Oracles.RmsNorm(x, w, expected, c, 1e-5f);
            RmsNorm.Forward(x, w, got, c, 1e-5f);
            KernelTestUtil.AssertClose(expected, got, 1e-5, $"RmsNorm {isa} C={c}");
            RmsNorm.Forward(x, w, x, c, 1e-5f); // in place
            KernelTestUtil.AssertClose(expected, x, 1e-5, $"RmsNorm in place {isa} C={c}");
        }
    }

    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public void LayerNormMatchesNaive(KernelIsa isa)
    {
        using var _ = KernelIsaSelector.Force(isa);
        var rng = new Random(2);
        foreach (int c in Lengths().Where(c => c > 0))
        {
            var x = KernelTestUtil.Gaussian(rng, 3 * c, 2f);
            for (int i = 0; i < x.Length; i++) x[i] += 5f; // an offset mean
            var w = KernelTestUtil.Gaussian(rng, c);
            var b = KernelTestUtil.Gaussian(rng, c);
            var expected = new float[3 * c];
            var got = new float[3 * c];
            Oracles.LayerNorm(x, w, b, expected, c, 1e-12f);
            LayerNorm.Forward(x, w, b, got, c, 1e-12f);
            KernelTestUtil.AssertClose(expected, got, 1e-5, $"LayerNorm {isa} C={c}");
        }
    }

    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public void SoftmaxMatchesNaiveWithMasking(KernelIsa isa)
    {
        using var _ = KernelIsaSelector.Force(isa);
        var rng = new Random(3);
        foreach (int n in Lengths().Where(n => n > 0))
        {
            var x = KernelTestUtil.Gaussian(rng, n, 4f);
            for (int i = 0; i < n; i++)
                if (i % 3 == 1 && i != 0) x[i] = float.NegativeInfinity; // masked positions (never all of them)
            var expected = (float[])x.Clone();
            Softmax.Naive(expected);
            Softmax.Forward(x);
            KernelTestUtil.AssertClose(expected, x, 2e-6, $"Softmax {isa} n={n}");
            for (int i = 1; i < n; i += 3) Assert.Equal(0f, x[i]);
        }
    }

    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public void RopeMatchesNaiveInBothLayouts(KernelIsa isa)
    {
        using var _ = KernelIsaSelector.Force(isa);
        var rng = new Random(4);
        foreach (bool neox in new[] { false, true })
            foreach (int hs in new[] { 2, 4, 6, 8, 14, 16, 18, 32, 34, 64, 80, 128, 256 })
            {
                int t = 3, nh = 5;
                var x = KernelTestUtil.Gaussian(rng, t * nh * hs);
                int[] pos = [0, 7, 4095];
                var invFreq = Enumerable.Range(0, hs / 2).Select(i => (float)Math.Pow(10000, -2.0 * i / hs)).ToArray();
                var expected = (float[])x.Clone();
                Oracles.Rope(expected, t, nh, hs, pos, invFreq, neox);
                Rope.Forward(x, t, nh, hs, pos, invFreq, neox);
                KernelTestUtil.AssertClose(expected, x, 2e-6, $"Rope {isa} neox={neox} HS={hs}");
            }
    }

    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public void SwiGluMatchesNaive(KernelIsa isa)
    {
        using var _ = KernelIsaSelector.Force(isa);
        var rng = new Random(5);
        foreach (int n in Lengths())
        {
            var g = KernelTestUtil.Gaussian(rng, n, 4f);
            if (n > 2) { g[0] = -120f; g[1] = 120f; } // exp overflow must not give NaN
            var u = KernelTestUtil.Gaussian(rng, n);
            var expected = new float[n];
            var got = new float[n];
            Oracles.SwiGlu(g, u, expected);
            SwiGlu.Forward(g, u, got);
            KernelTestUtil.AssertClose(expected, got, 2e-6, $"SwiGlu {isa} n={n}");
        }
    }

    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public void GeluMatchesDoubleErfOracle(KernelIsa isa)
    {
        using var _ = KernelIsaSelector.Force(isa);
        var rng = new Random(6);
        foreach (int n in Lengths())
        {
            var x = KernelTestUtil.Gaussian(rng, n, 3f);
            if (n > 3) { x[0] = -30f; x[1] = 30f; x[2] = 0f; }
            var expected = (float[])x.Clone();
            var got = (float[])x.Clone();
            Oracles.Gelu(expected);
            Gelu.Forward(got, got);
            for (int i = 0; i < n; i++)
            {
                double tol = 1e-6 * Math.Max(1, Math.Abs(x[i]));
                Assert.True(Math.Abs(got[i] - expected[i]) <= tol, $"Gelu {isa} x={x[i]}: expected {expected[i]}, got {got[i]}, |diff| {Math.Abs(got[i] - expected[i]):G3} > {tol:G3}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public void GeluTanhMatchesNaive(KernelIsa isa)
    {
        using var _ = KernelIsaSelector.Force(isa);
        var rng = new Random(7);
        foreach (int n in Lengths())
        {
            var x = KernelTestUtil.Gaussian(rng, n, 3f);
            if (n > 3) { x[0] = -30f; x[1] = 30f; x[2] = 0f; }
            var expected = (float[])x.Clone();
            Oracles.GeluTanh(expected);
            GeluTanh.Forward(x, x);
            KernelTestUtil.AssertClose(expected, x, 2e-6, $"GeluTanh {isa} n={n}");
        }
    }

    [Theory]
    [MemberData(nameof(KernelTestUtil.IsaData), MemberType = typeof(KernelTestUtil))]
    public void AddScaleDotMatchPlainLoops(KernelIsa isa)
    {
        using var _ = KernelIsaSelector.Force(isa);
        var rng = new Random(8);
        foreach (int n in Lengths())
        {
            var a = KernelTestUtil.Gaussian(rng, n);
            var b = KernelTestUtil.Gaussian(rng, n);
            var y = new float[n];
            Add.Forward(a, b, y);
            for (int i = 0; i < n; i++) Assert.Equal(a[i] + b[i], y[i]);
            Scale.InPlace(y, 0.5f);
            for (int i = 0; i < n; i++) Assert.Equal((a[i] + b[i]) * 0.5f, y[i]);
            double dot = 0, abs = 0;
            for (int i = 0; i < n; i++) { dot += (double)a[i] * b[i]; abs += Math.Abs((double)a[i] * b[i]); }
            float got = Dot.Compute(a, b);
            Assert.True(Math.Abs(got - dot) <= 1e-6 * abs + 1e-7, $"Dot {isa} n={n}: {got} vs {dot}");
        }
    }
}
