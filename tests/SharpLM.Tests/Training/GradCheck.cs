using SharpLM.Training;

namespace SharpLM.Tests.Training;

/// <summary>Central finite differences in double precision against a hand-written backward pass.</summary>
internal static class GradCheck
{
    /// <summary>Random values in [-scale, scale) from a fixed seed.</summary>
    public static double[] Rand(int n, ulong seed, double scale = 1.0)
    {
        var r = new TrainRandom(seed);
        var a = new double[n];
        for (int i = 0; i < n; i++) a[i] = (r.NextDouble() * 2 - 1) * scale;
        return a;
    }

    /// <summary>
    /// Compares analytic[i] with (loss(x_i + h) - loss(x_i - h)) / 2h for every element of x; the error is
    /// max |analytic - numeric| / max(max |numeric|, 1e-3) and must stay below tol.
    /// </summary>
    public static void Check(string name, double[] x, ReadOnlySpan<double> analytic, Func<double> loss, double tol = 1e-6, double h = 1e-5)
    {
        var numeric = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double keep = x[i];
            x[i] = keep + h; double lp = loss();
            x[i] = keep - h; double lm = loss();
            x[i] = keep;
            numeric[i] = (lp - lm) / (2 * h);
        }
        double maxDiff = 0, maxRef = 0; int at = -1;
        for (int i = 0; i < x.Length; i++)
        {
            double d = Math.Abs(analytic[i] - numeric[i]);
            if (d > maxDiff) { maxDiff = d; at = i; }
            maxRef = Math.Max(maxRef, Math.Abs(numeric[i]));
        }
        double rel = maxDiff / Math.Max(maxRef, 1e-3);
        Assert.True(rel < tol, $"{name}: relative gradient error {rel:E3} (max |diff| {maxDiff:E3} at {at}: analytic {(at >= 0 ? analytic[at] : 0):G9} numeric {(at >= 0 ? numeric[at] : 0):G9}; max |grad| {maxRef:E3}), tolerance {tol:E1}");
    }

    public static double WeightedSum(ReadOnlySpan<double> y, ReadOnlySpan<double> r)
    {
        double s = 0;
        for (int i = 0; i < y.Length; i++) s += y[i] * r[i];
        return s;
    }
}
