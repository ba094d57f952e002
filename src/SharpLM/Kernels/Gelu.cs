using System.Numerics;
using System.Runtime.Intrinsics;

namespace SharpLM.Kernels;

/// <summary>The activations of the non-gated MLPs, chosen by name: gelu (erf, BERT), gelu_tanh (GPT-2), relu.</summary>
internal static class Activation
{
    /// <summary>x (N) -> y (N) (y may alias x).</summary>
    public static void Forward(string kind, ReadOnlySpan<float> x, Span<float> y)
    {
        switch (kind)
        {
            case "gelu": Gelu.Forward(x, y); break;
            case "gelu_tanh": GeluTanh.Forward(x, y); break;
            case "relu": for (int i = 0; i < y.Length; i++) y[i] = Math.Max(x[i], 0f); break;
            default: throw new NotSupportedException($"activation '{kind}' is not supported (gelu, gelu_tanh, relu)");
        }
    }

    /// <summary>The gated MLPs: y = act(gate) * up (SwiGLU for silu, GeGLU for gelu_tanh and gelu); y may alias gate.
    /// Forward only for the GELU gates (no model SharpLM trains uses them).</summary>
    public static unsafe void Gated(string kind, ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y)
    {
        if (kind == "silu")
        {
            SwiGlu.Forward(gate, up, y);
            return;
        }
        Forward(kind, gate, y);
        int n = y.Length, i = 0;
        fixed (float* pu = up, py = y)
        {
            if (Vector512.IsHardwareAccelerated)
                for (; i + 16 <= n; i += 16) (Vector512.Load(py + i) * Vector512.Load(pu + i)).Store(py + i);
            for (; i + 8 <= n; i += 8) (Vector256.Load(py + i) * Vector256.Load(pu + i)).Store(py + i); // (emulated Vector512 is slow)
            for (; i < n; i++) py[i] *= pu[i];
        }
    }

    /// <summary>dx (N) += dy * act'(x).</summary>
    public static void Backward(string kind, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx)
    {
        switch (kind)
        {
            case "gelu": Gelu.Backward(dy, x, dx); break;
            case "gelu_tanh": GeluTanh.Backward(dy, x, dx); break;
            case "relu": for (int i = 0; i < dy.Length; i++) if (x[i] > 0) dx[i] += dy[i]; break;
            default: throw new NotSupportedException($"activation '{kind}' is not supported (gelu, gelu_tanh, relu)");
        }
    }
}

/// <summary>
/// Exact GELU (BERT): y = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); y may alias x. Backward (accumulating):
/// dx += dy * (Phi(x) + x phi(x)). The fast path uses a float erf with |error| &lt;= 1.5e-7 (<see cref="VecMath.Erf(float)"/>).
/// </summary>
internal static unsafe class Gelu
{
    private const float InvSqrt2 = 0.7071067811865476f, InvSqrt2Pi = 0.3989422804014327f;

    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        var isa = KernelIsaSelector.Current;
        int n = y.Length;
        fixed (float* p = x)
        fixed (float* o = y)
        {
            int i = 0;
            if (isa == KernelIsa.Avx512)
            {
                for (; i + 16 <= n; i += 16) Erf512(p + i, null, o + i);
                if (i < n) VecMath.Tail(p + i, null, o + i, n - i, 16, &Erf512);
            }
            else if (isa == KernelIsa.Avx2)
            {
                for (; i + 8 <= n; i += 8) Erf256(p + i, null, o + i);
                if (i < n) VecMath.Tail(p + i, null, o + i, n - i, 8, &Erf256);
            }
            else
                for (; i < n; i++) o[i] = 0.5f * p[i] * (1f + VecMath.Erf(p[i] * InvSqrt2));
        }
    }

    private static void Erf512(float* p, float* unused, float* o)
    {
        var v = Vector512.Load(p);
        (Vector512.Create(0.5f) * v * (Vector512<float>.One + VecMath.Erf(v * Vector512.Create(InvSqrt2)))).Store(o);
    }

    private static void Erf256(float* p, float* unused, float* o)
    {
        var v = Vector256.Load(p);
        (Vector256.Create(0.5f) * v * (Vector256<float>.One + VecMath.Erf(v * Vector256.Create(InvSqrt2)))).Store(o);
    }

    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx)
    {
        for (int i = 0; i < dy.Length; i++)
        {
            float v = x[i];
            dx[i] += dy[i] * (0.5f * (1f + VecMath.Erf(v * InvSqrt2)) + v * MathF.Exp(-0.5f * v * v) * InvSqrt2Pi);
        }
    }

    /// <summary>The readable oracle with a double-precision erf, generic so the gradient checks run it in double.</summary>
    public static class Naive
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
        public static double Erf(double x)
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
                // erfc x = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))), evaluated backward
                double f = ax;
                for (int n = 60; n >= 1; n--) f = ax + n / 2.0 / f;
                r = 1 - Math.Exp(-ax * ax) / Math.Sqrt(Math.PI) / f;
            }
            return x < 0 ? -r : r;
        }
    }
}

/// <summary>
/// GELU, tanh approximation (GPT-2's gelu_new, torch approximate='tanh'): y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
/// y may alias x. Backward (accumulating): dx += dy * y'(x).
/// </summary>
internal static unsafe class GeluTanh
{
    private const float K = 0.7978845608028654f, C = 0.044715f;

    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        var isa = KernelIsaSelector.Current;
        int n = y.Length;
        fixed (float* p = x)
        fixed (float* o = y)
        {
            int i = 0;
            if (isa == KernelIsa.Avx512)
            {
                for (; i + 16 <= n; i += 16) Tanh512(p + i, null, o + i);
                if (i < n) VecMath.Tail(p + i, null, o + i, n - i, 16, &Tanh512);
            }
            else if (isa == KernelIsa.Avx2)
            {
                for (; i + 8 <= n; i += 8) Tanh256(p + i, null, o + i);
                if (i < n) VecMath.Tail(p + i, null, o + i, n - i, 8, &Tanh256);
            }
            else
                for (; i < n; i++)
                {
                    float v = p[i];
                    o[i] = 0.5f * v * (1f + VecMath.Tanh(K * (v + C * v * v * v)));
                }
        }
    }

    private static void Tanh512(float* p, float* unused, float* o)
    {
        var v = Vector512.Load(p);
        var u = Vector512.Create(K) * (v + Vector512.Create(C) * v * v * v);
        (Vector512.Create(0.5f) * v * (Vector512<float>.One + VecMath.Tanh(u))).Store(o);
    }

    private static void Tanh256(float* p, float* unused, float* o)
    {
        var v = Vector256.Load(p);
        var u = Vector256.Create(K) * (v + Vector256.Create(C) * v * v * v);
        (Vector256.Create(0.5f) * v * (Vector256<float>.One + VecMath.Tanh(u))).Store(o);
    }

    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx)
    {
        for (int i = 0; i < dy.Length; i++)
        {
            float v = x[i];
            float th = MathF.Tanh(K * (v + C * v * v * v));
            dx[i] += dy[i] * (0.5f * (1f + th) + 0.5f * v * (1f - th * th) * K * (1f + 3 * C * v * v));
        }
    }

    /// <summary>The readable oracle, generic so the gradient checks run it in double.</summary>
    public static class Naive
    {
        public static void Forward<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
        {
            T k = T.CreateTruncating(0.7978845608028654), c = T.CreateTruncating(0.044715), half = T.CreateTruncating(0.5);
            for (int i = 0; i < y.Length; i++)
            {
                T v = x[i];
                y[i] = half * v * (T.One + T.Tanh(k * (v + c * v * v * v)));
            }
        }

        public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx) where T : unmanaged, IFloatingPointIeee754<T>
        {
            T k = T.CreateTruncating(0.7978845608028654), c = T.CreateTruncating(0.044715), half = T.CreateTruncating(0.5), c3 = T.CreateTruncating(3 * 0.044715);
            for (int i = 0; i < dy.Length; i++)
            {
                T v = x[i];
                T th = T.Tanh(k * (v + c * v * v * v));
                dx[i] += dy[i] * (half * (T.One + th) + half * v * (T.One - th * th) * k * (T.One + c3 * v * v));
            }
        }
    }
}
