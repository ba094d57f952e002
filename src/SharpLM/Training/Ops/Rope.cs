using System.Numerics;

namespace SharpLM.Training.Ops;

/// <summary>
/// Rotary position embedding, rotate-half form (Hugging Face LLaMA): for i &lt; HS/2 the pair (x[i], x[i+HS/2])
/// at position p is rotated by angle p * theta^(-2i/HS). Positions are the time index t within each sequence.
/// Forward in place: x (B,T,H,HS). Backward in place: dx (B,T,H,HS) rotated by the opposite angle (a rotation's
/// transpose). Tables: cos, sin (T, HS/2) from <see cref="Tables{T}"/>.
/// (llama.cpp rotates adjacent pairs; the GGUF exporter permutes the q/k rows to match.)
/// </summary>
internal static class Rope
{
    public static (T[] Cos, T[] Sin) Tables<T>(int t, int hs, double theta) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int half = hs / 2;
        var cos = new T[t * half];
        var sin = new T[t * half];
        for (int p = 0; p < t; p++)
            for (int i = 0; i < half; i++)
            {
                // computed in float32 like torch's inv_freq and angle, then widened
                float invFreq = (float)(1.0 / Math.Pow(theta, 2.0 * i / hs));
                float ang = p * invFreq;
                double a = typeof(T) == typeof(float) ? ang : p * (1.0 / Math.Pow(theta, 2.0 * i / hs));
                cos[p * half + i] = T.CreateTruncating(typeof(T) == typeof(float) ? MathF.Cos((float)a) : Math.Cos(a));
                sin[p * half + i] = T.CreateTruncating(typeof(T) == typeof(float) ? MathF.Sin((float)a) : Math.Sin(a));
            }
        return (cos, sin);
    }

    public static void Forward<T>(Span<T> x, ReadOnlySpan<T> cos, ReadOnlySpan<T> sin, int b, int t, int h, int hs)
        where T : unmanaged, IFloatingPointIeee754<T> => Rotate(x, cos, sin, b, t, h, hs, T.One);

    public static void Backward<T>(Span<T> dx, ReadOnlySpan<T> cos, ReadOnlySpan<T> sin, int b, int t, int h, int hs)
        where T : unmanaged, IFloatingPointIeee754<T> => Rotate(dx, cos, sin, b, t, h, hs, -T.One);

    private static void Rotate<T>(Span<T> x, ReadOnlySpan<T> cos, ReadOnlySpan<T> sin, int b, int t, int h, int hs, T sign)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int half = hs / 2;
        for (int bi = 0; bi < b; bi++)
            for (int ti = 0; ti < t; ti++)
            {
                var cr = cos.Slice(ti * half, half);
                var sr = sin.Slice(ti * half, half);
                for (int hi = 0; hi < h; hi++)
                {
                    var v = x.Slice(((bi * t + ti) * h + hi) * hs, hs);
                    for (int i = 0; i < half; i++)
                    {
                        T x1 = v[i], x2 = v[i + half], c = cr[i], s = sign * sr[i];
                        v[i] = x1 * c - x2 * s;
                        v[i + half] = x2 * c + x1 * s;
                    }
                }
            }
    }
}
