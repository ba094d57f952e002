namespace SharpLM.Kernels.Naive;

/// <summary>Readable versions of the elementwise and normalisation kernels: the oracles for the SIMD ones.</summary>
internal static class NaiveOps
{
    /// <summary>x (T,C), weight (C) -> y (T,C): y = x / sqrt(mean(x^2) + eps) * weight.</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, int c, float eps)
    {
        for (int r = 0; r < x.Length / c; r++)
        {
            double ss = 0;
            for (int i = 0; i < c; i++) ss += (double)x[r * c + i] * x[r * c + i];
            float inv = (float)(1.0 / Math.Sqrt(ss / c + eps));
            for (int i = 0; i < c; i++) y[r * c + i] = x[r * c + i] * inv * weight[i];
        }
    }

    /// <summary>x (T,C), weight (C), bias (C) -> y (T,C): y = (x - mean) / sqrt(var + eps) * weight + bias.</summary>
    public static void LayerNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> y, int c, float eps)
    {
        for (int r = 0; r < x.Length / c; r++)
        {
            double mean = 0, var = 0;
            for (int i = 0; i < c; i++) mean += x[r * c + i];
            mean /= c;
            for (int i = 0; i < c; i++) { double d = x[r * c + i] - mean; var += d * d; }
            var /= c;
            double inv = 1.0 / Math.Sqrt(var + eps);
            for (int i = 0; i < c; i++) y[r * c + i] = (float)((x[r * c + i] - mean) * inv) * weight[i] + bias[i];
        }
    }

    /// <summary>In place over one row: x = exp(x - max) / sum. -inf entries become 0.</summary>
    public static void Softmax(Span<float> x)
    {
        float max = float.NegativeInfinity;
        foreach (var v in x) max = Math.Max(max, v);
        double sum = 0;
        for (int i = 0; i < x.Length; i++) { x[i] = MathF.Exp(x[i] - max); sum += x[i]; }
        float inv = (float)(1.0 / sum);
        for (int i = 0; i < x.Length; i++) x[i] *= inv;
    }

    /// <summary>
    /// Rotary position embedding in place. x (T, NH, HS); positions (T); invFreq (HS/2) with invFreq[i] = theta^(-2i/HS)
    /// (after any rope scaling). Pairs are (x[2i], x[2i+1]) when !neox (llama.cpp NORM, GGUF LLaMA), or (x[i], x[i+HS/2])
    /// when neox (rotate-half, Hugging Face and Qwen2 in GGUF).
    /// </summary>
    public static void Rope(Span<float> x, int t, int nHeads, int headSize, ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq, bool neox)
    {
        int half = headSize / 2;
        for (int ti = 0; ti < t; ti++)
            for (int h = 0; h < nHeads; h++)
            {
                var v = x.Slice((ti * nHeads + h) * headSize, headSize);
                for (int i = 0; i < half; i++)
                {
                    double ang = positions[ti] * (double)invFreq[i];
                    float cos = (float)Math.Cos(ang), sin = (float)Math.Sin(ang);
                    int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
                    float x0 = v[a], x1 = v[b];
                    v[a] = x0 * cos - x1 * sin;
                    v[b] = x0 * sin + x1 * cos;
                }
            }
    }

    /// <summary>gate (N), up (N) -> y (N): y = silu(gate) * up, silu(g) = g / (1 + exp(-g)).</summary>
    public static void SwiGlu(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y)
    {
        for (int i = 0; i < y.Length; i++) y[i] = gate[i] / (1f + MathF.Exp(-gate[i])) * up[i];
    }

    /// <summary>In place: x = 0.5 x (1 + erf(x / sqrt 2)) (BERT's exact GELU).</summary>
    public static void Gelu(Span<float> x)
    {
        for (int i = 0; i < x.Length; i++) x[i] = (float)(0.5 * x[i] * (1 + Erf(x[i] / Math.Sqrt(2))));
    }

    /// <summary>In place: x = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (GPT-2's GELU).</summary>
    public static void GeluTanh(Span<float> x)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            x[i] = (float)(0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))));
        }
    }

    /// <summary>erf to double precision (Abramowitz-Stegun 7.1.26 is too coarse; this uses a series / continued fraction).</summary>
    public static double Erf(double x)
    {
        double ax = Math.Abs(x);
        double r;
        if (ax < 2.5)
        {
            // Maclaurin series: erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
            double sum = 0, term = ax;
            for (int n = 0; n < 60; n++)
            {
                sum += term / (2 * n + 1);
                term *= -ax * ax / (n + 1);
            }
            r = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            // erfc continued fraction (Lentz), accurate for x >= 2.5
            double f = 0;
            for (int k = 60; k >= 1; k--) f = k / 2.0 / (ax + f);
            r = 1 - Math.Exp(-ax * ax) / Math.Sqrt(Math.PI) / (ax + f);
        }
        return x < 0 ? -r : r;
    }
}
