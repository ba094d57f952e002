using System.Numerics;
using System.Runtime.InteropServices;

namespace SharpLM.Models;

/// <summary>Small vector helpers the model glue needs (residual adds, dot products). Spans of equal length; no allocation.</summary>
internal static class VecOps
{
    /// <summary>y += x.</summary>
    public static void AddInPlace(Span<float> y, ReadOnlySpan<float> x)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var yv = MemoryMarshal.Cast<float, Vector<float>>(y);
            var xv = MemoryMarshal.Cast<float, Vector<float>>(x[..y.Length]);
            for (int j = 0; j < yv.Length; j++) yv[j] += xv[j];
            i = yv.Length * Vector<float>.Count;
        }
        for (; i < y.Length; i++) y[i] += x[i];
    }

    /// <summary>y += a * x.</summary>
    public static void AddScaled(Span<float> y, ReadOnlySpan<float> x, float a)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var yv = MemoryMarshal.Cast<float, Vector<float>>(y);
            var xv = MemoryMarshal.Cast<float, Vector<float>>(x[..y.Length]);
            var av = new Vector<float>(a);
            for (int j = 0; j < yv.Length; j++) yv[j] += av * xv[j];
            i = yv.Length * Vector<float>.Count;
        }
        for (; i < y.Length; i++) y[i] += a * x[i];
    }

    /// <summary>sum x[i] y[i].</summary>
    public static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        int i = 0;
        float s = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var xv = MemoryMarshal.Cast<float, Vector<float>>(x);
            var yv = MemoryMarshal.Cast<float, Vector<float>>(y[..x.Length]);
            var acc = Vector<float>.Zero;
            for (int j = 0; j < xv.Length; j++) acc += xv[j] * yv[j];
            s = Vector.Sum(acc);
            i = xv.Length * Vector<float>.Count;
        }
        for (; i < x.Length; i++) s += x[i] * y[i];
        return s;
    }
}
