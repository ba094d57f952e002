using System.Numerics;

namespace SharpLM.Kernels;

/// <summary>
/// A norm's affine part alone (the lab's "no norm"): x (N,C), w (C), b (C or empty) -> y (N,C) = x · w + b. y may alias x.
/// Backward (accumulating): dx += dy · w; dw += Σ_r dy · x; db += Σ_r dy.
/// </summary>
internal static class Affine
{
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, int c)
    {
        if (w.Length < c || (!b.IsEmpty && b.Length < c)) throw new ArgumentException($"weight ({w.Length}) and bias ({b.Length}) need C = {c} floats");
        int n = x.Length / c;
        if (y.Length < n * c) throw new ArgumentException($"y holds {y.Length} floats, need {n * c}", nameof(y));
        for (int r = 0; r < n; r++)
        {
            var xr = x.Slice(r * c, c);
            var yr = y.Slice(r * c, c);
            for (int i = 0; i < c; i++) yr[i] = xr[i] * w[i] + (b.IsEmpty ? 0f : b[i]);
        }
    }

    /// <summary>dy, x (N,C), w (C) -> dx (N,C) +=, dw (C) +=, db (C) += (when not empty). Rows in order (deterministic).</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> dx, Span<float> dw, Span<float> db, int n, int c)
    {
        for (int r = 0; r < n; r++)
        {
            var xr = x.Slice(r * c, c);
            var dyr = dy.Slice(r * c, c);
            var dxr = dx.Slice(r * c, c);
            for (int i = 0; i < c; i++)
            {
                dxr[i] += dyr[i] * w[i];
                dw[i] += dyr[i] * xr[i];
                if (!db.IsEmpty) db[i] += dyr[i];
            }
        }
    }

    /// <summary>The readable oracle, generic so the gradient checks run it in double.</summary>
    public static class Naive
    {
        public static void Forward<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> w, ReadOnlySpan<T> b, Span<T> y, int n, int c)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            for (int r = 0; r < n; r++)
                for (int i = 0; i < c; i++) y[r * c + i] = x[r * c + i] * w[i] + (b.IsEmpty ? T.Zero : b[i]);
        }

        public static void Backward<T>(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, ReadOnlySpan<T> w, Span<T> dx, Span<T> dw, Span<T> db, int n, int c)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            for (int r = 0; r < n; r++)
                for (int i = 0; i < c; i++)
                {
                    dx[r * c + i] += dy[r * c + i] * w[i];
                    dw[i] += dy[r * c + i] * x[r * c + i];
                    if (!db.IsEmpty) db[i] += dy[r * c + i];
                }
        }
    }
}
