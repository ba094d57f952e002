using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>How a dense (unblocked) weight type widens to f32 in registers: F32 loads, F16 and BF16 convert.</summary>
internal unsafe interface IDenseElement
{
    /// <summary>Bytes per element.</summary>
    static abstract int Size { get; }
    /// <summary>Whether the dots prefetch the row ahead in software. F32 rows stream fastest on the hardware prefetcher
    /// alone (decode-race 134m F32 on the AVX2 EPYC: 24.5 vs 19.7 tok/s at 1 thread without and with), the 16-bit rows,
    /// half the bytes per FMA, with it.</summary>
    static abstract bool Prefetches { get; }
    /// <summary>Whether the fast conversion is wrong for some values (F16: infinities and NaNs), so the dots screen the
    /// main loop's elements with <see cref="Screen256"/> / <see cref="Screen512"/> and redo the row exactly.</summary>
    static abstract bool Screens { get; }
    /// <summary>8 elements for the main loop (may be the fast conversion).</summary>
    static abstract Vector256<float> Fast8(byte* p);
    /// <summary>8 elements, exact (the tail of a row, and rows that fail the screen).</summary>
    static abstract Vector256<float> Exact8(byte* p);
    static abstract Vector512<float> Fast16(byte* p);
    static abstract Vector512<float> Exact16(byte* p);
    static abstract float One(byte* p);
    /// <summary>The screened magnitudes of 16 (32) elements; a lane at or above <see cref="ScreenLimit"/> fails.</summary>
    static abstract Vector256<ushort> Screen256(byte* p);
    static abstract Vector512<ushort> Screen512(byte* p);
    static abstract ushort ScreenLimit { get; }
}

/// <summary>
/// The dots of the dense weight types (F32, F16, BF16), one shape for all three: a weight row against one activation row,
/// and against four activation rows with each weight vector loaded and widened once (a batch of decoding sequences).
/// Per row the four-row dot does exactly the one-row dot's operations in the same order (two accumulators over steps of
/// two vectors, the last vector on the first accumulator, one horizontal sum, a scalar tail), so a row's result is the
/// same bits alone or in any batch.
/// </summary>
internal static unsafe class DenseDots
{
    public static float Dot256<T>(byte* w, float* x, int n) where T : IDenseElement
    {
        Vector256<float> a0 = default, a1 = default;
        Vector256<ushort> big = default;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            byte* p = w + (long)i * T.Size;
            if (T.Prefetches) Prefetch(p);
            if (T.Screens) big = Vector256.Max(big, T.Screen256(p));
            a0 = Fma.MultiplyAdd(T.Fast8(p), Vector256.Load(x + i), a0);
            a1 = Fma.MultiplyAdd(T.Fast8(p + 8 * T.Size), Vector256.Load(x + i + 8), a1);
        }
        if (T.Screens && Vector256.GreaterThanOrEqualAny(big, Vector256.Create(T.ScreenLimit))) return Exact256<T>(w, x, n);
        for (; i + 8 <= n; i += 8) a0 = Fma.MultiplyAdd(T.Exact8(w + (long)i * T.Size), Vector256.Load(x + i), a0);
        float s = Vector256.Sum(a0 + a1);
        for (; i < n; i++) s += T.One(w + (long)i * T.Size) * x[i];
        return s;
    }

    public static float Dot512<T>(byte* w, float* x, int n) where T : IDenseElement
    {
        Vector512<float> a0 = default, a1 = default;
        Vector512<ushort> big = default;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            byte* p = w + (long)i * T.Size;
            if (T.Prefetches) Prefetch(p);
            if (T.Screens) big = Vector512.Max(big, T.Screen512(p));
            a0 = Vector512.FusedMultiplyAdd(T.Fast16(p), Vector512.Load(x + i), a0);
            a1 = Vector512.FusedMultiplyAdd(T.Fast16(p + 16 * T.Size), Vector512.Load(x + i + 16), a1);
        }
        if (T.Screens && Vector512.GreaterThanOrEqualAny(big, Vector512.Create(T.ScreenLimit))) return Exact512<T>(w, x, n);
        for (; i + 16 <= n; i += 16) a0 = Vector512.FusedMultiplyAdd(T.Exact16(w + (long)i * T.Size), Vector512.Load(x + i), a0);
        float s = Vector512.Sum(a0 + a1);
        for (; i < n; i++) s += T.One(w + (long)i * T.Size) * x[i];
        return s;
    }

    /// <summary>The one-row dot with the exact conversion throughout (rows that fail the screen).</summary>
    private static float Exact256<T>(byte* w, float* x, int n) where T : IDenseElement
    {
        Vector256<float> a0 = default;
        int i = 0;
        for (; i + 8 <= n; i += 8) a0 = Fma.MultiplyAdd(T.Exact8(w + (long)i * T.Size), Vector256.Load(x + i), a0);
        float s = Vector256.Sum(a0);
        for (; i < n; i++) s += T.One(w + (long)i * T.Size) * x[i];
        return s;
    }

    private static float Exact512<T>(byte* w, float* x, int n) where T : IDenseElement
    {
        Vector512<float> a0 = default;
        int i = 0;
        for (; i + 16 <= n; i += 16) a0 = Vector512.FusedMultiplyAdd(T.Exact16(w + (long)i * T.Size), Vector512.Load(x + i), a0);
        float s = Vector512.Sum(a0);
        for (; i < n; i++) s += T.One(w + (long)i * T.Size) * x[i];
        return s;
    }

    /// <summary>results[r] = the one-row dot of w with xs[r], r &lt; 4, bit for bit; false for the scalar variant.</summary>
    public static bool Dot4<T>(byte* w, float** xs, int n, KernelIsa isa, float* results) where T : IDenseElement
    {
        if (isa == KernelIsa.Avx2) return Dot4x256<T>(w, xs, n, results);
        if (isa == KernelIsa.Avx512) return Dot4x512<T>(w, xs, n, results);
        return false;
    }

    private static bool Dot4x256<T>(byte* w, float** xs, int n, float* results) where T : IDenseElement
    {
        float* x0 = xs[0], x1 = xs[1], x2 = xs[2], x3 = xs[3];
        Vector256<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
        Vector256<ushort> big = default;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            byte* p = w + (long)i * T.Size;
            if (T.Prefetches) Prefetch(p);
            if (T.Screens) big = Vector256.Max(big, T.Screen256(p));
            var v = T.Fast8(p);
            a0 = Fma.MultiplyAdd(v, Vector256.Load(x0 + i), a0);
            a1 = Fma.MultiplyAdd(v, Vector256.Load(x1 + i), a1);
            a2 = Fma.MultiplyAdd(v, Vector256.Load(x2 + i), a2);
            a3 = Fma.MultiplyAdd(v, Vector256.Load(x3 + i), a3);
            v = T.Fast8(p + 8 * T.Size);
            b0 = Fma.MultiplyAdd(v, Vector256.Load(x0 + i + 8), b0);
            b1 = Fma.MultiplyAdd(v, Vector256.Load(x1 + i + 8), b1);
            b2 = Fma.MultiplyAdd(v, Vector256.Load(x2 + i + 8), b2);
            b3 = Fma.MultiplyAdd(v, Vector256.Load(x3 + i + 8), b3);
        }
        if (T.Screens && Vector256.GreaterThanOrEqualAny(big, Vector256.Create(T.ScreenLimit)))
        {
            for (int r = 0; r < 4; r++) results[r] = Exact256<T>(w, xs[r], n);
            return true;
        }
        for (; i + 8 <= n; i += 8)
        {
            var v = T.Exact8(w + (long)i * T.Size);
            a0 = Fma.MultiplyAdd(v, Vector256.Load(x0 + i), a0);
            a1 = Fma.MultiplyAdd(v, Vector256.Load(x1 + i), a1);
            a2 = Fma.MultiplyAdd(v, Vector256.Load(x2 + i), a2);
            a3 = Fma.MultiplyAdd(v, Vector256.Load(x3 + i), a3);
        }
        results[0] = Vector256.Sum(a0 + b0); results[1] = Vector256.Sum(a1 + b1);
        results[2] = Vector256.Sum(a2 + b2); results[3] = Vector256.Sum(a3 + b3);
        Tail<T>(w, xs, i, n, results);
        return true;
    }

    private static bool Dot4x512<T>(byte* w, float** xs, int n, float* results) where T : IDenseElement
    {
        float* x0 = xs[0], x1 = xs[1], x2 = xs[2], x3 = xs[3];
        Vector512<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
        Vector512<ushort> big = default;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            byte* p = w + (long)i * T.Size;
            if (T.Prefetches) Prefetch(p);
            if (T.Screens) big = Vector512.Max(big, T.Screen512(p));
            var v = T.Fast16(p);
            a0 = Vector512.FusedMultiplyAdd(v, Vector512.Load(x0 + i), a0);
            a1 = Vector512.FusedMultiplyAdd(v, Vector512.Load(x1 + i), a1);
            a2 = Vector512.FusedMultiplyAdd(v, Vector512.Load(x2 + i), a2);
            a3 = Vector512.FusedMultiplyAdd(v, Vector512.Load(x3 + i), a3);
            v = T.Fast16(p + 16 * T.Size);
            b0 = Vector512.FusedMultiplyAdd(v, Vector512.Load(x0 + i + 16), b0);
            b1 = Vector512.FusedMultiplyAdd(v, Vector512.Load(x1 + i + 16), b1);
            b2 = Vector512.FusedMultiplyAdd(v, Vector512.Load(x2 + i + 16), b2);
            b3 = Vector512.FusedMultiplyAdd(v, Vector512.Load(x3 + i + 16), b3);
        }
        if (T.Screens && Vector512.GreaterThanOrEqualAny(big, Vector512.Create(T.ScreenLimit)))
        {
            for (int r = 0; r < 4; r++) results[r] = Exact512<T>(w, xs[r], n);
            return true;
        }
        for (; i + 16 <= n; i += 16)
        {
            var v = T.Exact16(w + (long)i * T.Size);
            a0 = Vector512.FusedMultiplyAdd(v, Vector512.Load(x0 + i), a0);
            a1 = Vector512.FusedMultiplyAdd(v, Vector512.Load(x1 + i), a1);
            a2 = Vector512.FusedMultiplyAdd(v, Vector512.Load(x2 + i), a2);
            a3 = Vector512.FusedMultiplyAdd(v, Vector512.Load(x3 + i), a3);
        }
        results[0] = Vector512.Sum(a0 + b0); results[1] = Vector512.Sum(a1 + b1);
        results[2] = Vector512.Sum(a2 + b2); results[3] = Vector512.Sum(a3 + b3);
        Tail<T>(w, xs, i, n, results);
        return true;
    }

    /// <summary>The scalar tail of four rows, each in the one-row dot's order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tail<T>(byte* w, float** xs, int i, int n, float* results) where T : IDenseElement
    {
        for (; i < n; i++)
        {
            float e = T.One(w + (long)i * T.Size);
            for (int r = 0; r < 4; r++) results[r] += e * xs[r][i];
        }
    }
}

/// <summary>F32 weights: loaded as they are.</summary>
internal readonly unsafe struct F32Element : IDenseElement
{
    public static int Size => 4;
    public static bool Prefetches => false;
    public static bool Screens => false;
    public static ushort ScreenLimit => ushort.MaxValue;
    public static Vector256<float> Fast8(byte* p) => Vector256.Load((float*)p);
    public static Vector256<float> Exact8(byte* p) => Vector256.Load((float*)p);
    public static Vector512<float> Fast16(byte* p) => Vector512.Load((float*)p);
    public static Vector512<float> Exact16(byte* p) => Vector512.Load((float*)p);
    public static float One(byte* p) => *(float*)p;
    public static Vector256<ushort> Screen256(byte* p) => default;
    public static Vector512<ushort> Screen512(byte* p) => default;
}
