using System.Numerics;

namespace SharpLM.Training.Ops;

/// <summary>
/// GELU, tanh approximation (GPT-2, torch approximate='tanh'): y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
/// Forward: x (N) -> y (N). Backward (+=): dx += dy * y'(x).
/// </summary>
internal static class GeluTanh
{
    private const double K = 0.7978845608028654; // sqrt(2/pi)

    public static void Forward<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T k = T.CreateTruncating(K), c = T.CreateTruncating(0.044715), half = T.CreateTruncating(0.5);
        for (int i = 0; i < y.Length; i++)
        {
            T v = x[i];
            y[i] = half * v * (T.One + T.Tanh(k * (v + c * v * v * v)));
        }
    }

    public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T k = T.CreateTruncating(K), c = T.CreateTruncating(0.044715), half = T.CreateTruncating(0.5), c3 = T.CreateTruncating(3 * 0.044715);
        for (int i = 0; i < dy.Length; i++)
        {
            T v = x[i];
            T th = T.Tanh(k * (v + c * v * v * v));
            T sech2 = T.One - th * th;
            dx[i] += dy[i] * (half * (T.One + th) + half * v * sech2 * k * (T.One + c3 * v * v));
        }
    }
}

/// <summary>
/// Exact GELU (BERT): y = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)). Forward: x (N) -> y (N). Backward (+=):
/// dx += dy * (Phi(x) + x phi(x)).
/// </summary>
internal static class GeluErf
{
    public static void Forward<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < y.Length; i++)
        {
            double v = double.CreateTruncating(x[i]);
            y[i] = T.CreateTruncating(0.5 * v * (1 + Erf(v / Math.Sqrt(2))));
        }
    }

    public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < dy.Length; i++)
        {
            double v = double.CreateTruncating(x[i]);
            double d = 0.5 * (1 + Erf(v / Math.Sqrt(2))) + v * Math.Exp(-0.5 * v * v) / Math.Sqrt(2 * Math.PI);
            dx[i] += dy[i] * T.CreateTruncating(d);
        }
    }

    /// <summary>erf to about 1e-16 relative (series for |x| &lt; 3, continued fraction beyond).</summary>
    internal static double Erf(double x)
    {
        double ax = Math.Abs(x);
        double r;
        if (ax < 3)
        {
            // Maclaurin series: erf x = 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1))
            double term = ax, sum = ax, x2 = ax * ax;
            for (int n = 1; n < 200; n++)
            {
                term *= -x2 / n;
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.Abs(add) < 1e-17 * Math.Abs(sum)) break;
            }
            r = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            // erfc x = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))) (Lentz-free backward evaluation)
            double f = ax;
            for (int n = 60; n >= 1; n--) f = ax + n / 2.0 / f;
            r = 1 - Math.Exp(-ax * ax) / Math.Sqrt(Math.PI) / f;
        }
        return x < 0 ? -r : r;
    }
}
