using System.Runtime.Intrinsics;

using System.Numerics;

namespace SharpLM.Kernels;

/// <summary>
/// Rotary position embedding in place: x (T, NH, HS), positions (T), invFreq (R/2) for the first R = ropeDim dimensions of
/// each head (all HS by default; Phi-4-mini rotates 3/4 of them, the rest pass through).
/// neox = rotate-half pairs (i, i+R/2); otherwise adjacent pairs (2i, 2i+1)
/// as llama.cpp's LLaMA. Pair i at position p turns by the angle p * invFreq[i]. cos/sin are computed once per position
/// in double (as the naive oracle) and applied to every head with SIMD.
/// Backward: a rotation's transpose is the rotation by the opposite angle, so dx is turned back in place.
/// </summary>
internal static unsafe class Rope
{
    public static void Forward(Span<float> x, int t, int nHeads, int headSize, ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq, bool neox, int ropeDim = 0) =>
        Rotate(x, t, nHeads, headSize, positions, invFreq, neox, 1, ropeDim);

    /// <summary>dx (T, NH, HS) in place: the gradient with respect to the input of <see cref="Forward"/>.</summary>
    public static void Backward(Span<float> dx, int t, int nHeads, int headSize, ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq, bool neox, int ropeDim = 0) =>
        Rotate(dx, t, nHeads, headSize, positions, invFreq, neox, -1, ropeDim);

    private static void Rotate(Span<float> x, int t, int nHeads, int headSize, ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq, bool neox, int sign, int ropeDim)
    {
        if (headSize <= 0 || (headSize & 1) != 0) throw new ArgumentOutOfRangeException(nameof(headSize), headSize, "head size must be a positive even number");
        int rd = ropeDim == 0 ? headSize : ropeDim;
        if (rd <= 0 || (rd & 1) != 0 || rd > headSize) throw new ArgumentOutOfRangeException(nameof(ropeDim), ropeDim, $"rotated dimensions must be even and at most the head size {headSize}");
        int half = rd / 2;
        if (x.Length < (long)t * nHeads * headSize) throw new ArgumentException($"x holds {x.Length} floats, need T*NH*HS = {t}*{nHeads}*{headSize}", nameof(x));
        if (positions.Length < t) throw new ArgumentException($"positions holds {positions.Length}, need T = {t}", nameof(positions));
        if (invFreq.Length < half) throw new ArgumentException($"invFreq holds {invFreq.Length}, need R/2 = {half}", nameof(invFreq));
        var isa = KernelIsaSelector.Current;
        // cos and sin laid out the way the pairs sit in memory:
        // neox: cs[i] = cos_i, sn[i] = sin_i for i < half; adjacent: cs[2i] = cs[2i+1] = cos_i, sn[2i] = -sin_i, sn[2i+1] = sin_i.
        Span<float> table = rd <= 1024 ? stackalloc float[2 * rd] : new float[2 * rd];
        fixed (float* px = x)
        fixed (float* tab = table)
        {
            float* cs = tab, sn = tab + rd;
            for (int ti = 0; ti < t; ti++)
            {
                for (int i = 0; i < half; i++)
                {
                    double ang = positions[ti] * (double)invFreq[i];
                    float c = (float)Math.Cos(ang), s = sign * (float)Math.Sin(ang);
                    if (neox) { cs[i] = c; sn[i] = s; }
                    else { cs[2 * i] = cs[2 * i + 1] = c; sn[2 * i] = -s; sn[2 * i + 1] = s; }
                }
                for (int h = 0; h < nHeads; h++)
                {
                    float* v = px + ((long)ti * nHeads + h) * headSize;
                    if (neox) RotateHalf(v, cs, sn, half, isa);
                    else RotatePairs(v, cs, sn, rd, isa);
                }
            }
        }
    }

    private static void RotateHalf(float* v, float* cs, float* sn, int half, KernelIsa isa)
    {
        float* a = v, b = v + half;
        int i = 0;
        if (isa == KernelIsa.Avx512)
            for (; i + 16 <= half; i += 16)
            {
                var x0 = Vector512.Load(a + i); var x1 = Vector512.Load(b + i);
                var c = Vector512.Load(cs + i); var s = Vector512.Load(sn + i);
                (x0 * c - x1 * s).Store(a + i);
                (x0 * s + x1 * c).Store(b + i);
            }
        else if (isa == KernelIsa.Avx2)
            for (; i + 8 <= half; i += 8)
            {
                var x0 = Vector256.Load(a + i); var x1 = Vector256.Load(b + i);
                var c = Vector256.Load(cs + i); var s = Vector256.Load(sn + i);
                (x0 * c - x1 * s).Store(a + i);
                (x0 * s + x1 * c).Store(b + i);
            }
        for (; i < half; i++)
        {
            float x0 = a[i], x1 = b[i];
            a[i] = x0 * cs[i] - x1 * sn[i];
            b[i] = x0 * sn[i] + x1 * cs[i];
        }
    }

    private static void RotatePairs(float* v, float* cs, float* sn, int hs, KernelIsa isa)
    {
        int i = 0;
        if (isa == KernelIsa.Avx512)
        {
            var swap = Vector512.Create(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
            for (; i + 16 <= hs; i += 16)
            {
                var x = Vector512.Load(v + i);
                (x * Vector512.Load(cs + i) + Vector512.Shuffle(x, swap) * Vector512.Load(sn + i)).Store(v + i);
            }
        }
        else if (isa == KernelIsa.Avx2)
        {
            var swap = Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6);
            for (; i + 8 <= hs; i += 8)
            {
                var x = Vector256.Load(v + i);
                (x * Vector256.Load(cs + i) + Vector256.Shuffle(x, swap) * Vector256.Load(sn + i)).Store(v + i);
            }
        }
        for (; i < hs; i += 2)
        {
            float x0 = v[i], x1 = v[i + 1];
            v[i] = x0 * cs[i] + x1 * sn[i];
            v[i + 1] = x1 * cs[i + 1] + x0 * sn[i + 1];
        }
    }

    /// <summary>The readable oracle (generic, for the gradient checks): Backward is Forward with the angle negated.</summary>
    public static class Naive
    {
        public static void Forward<T>(Span<T> x, int t, int nHeads, int headSize, ReadOnlySpan<int> positions, ReadOnlySpan<float> invFreq, bool neox, bool inverse = false,
                                      int ropeDim = 0)
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            int half = (ropeDim == 0 ? headSize : ropeDim) / 2;
            for (int ti = 0; ti < t; ti++)
                for (int h = 0; h < nHeads; h++)
                {
                    var v = x.Slice((ti * nHeads + h) * headSize, headSize);
                    for (int i = 0; i < half; i++)
                    {
                        double ang = positions[ti] * (double)invFreq[i] * (inverse ? -1 : 1);
                        T cos = T.CreateTruncating(Math.Cos(ang)), sin = T.CreateTruncating(Math.Sin(ang));
                        int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
                        T x0 = v[a], x1 = v[b];
                        v[a] = x0 * cos - x1 * sin;
                        v[b] = x0 * sin + x1 * cos;
                    }
                }
        }
    }
}
