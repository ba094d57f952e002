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
    /// main loop's elements with <see cref="Screen256"/> and redo the row exactly.</summary>
    static abstract bool Screens { get; }
    /// <summary>8 elements for the main loop (may be the fast conversion).</summary>
    static abstract Vector256<float> Fast8(byte* p);
    /// <summary>8 elements, exact (the tail of a row, and rows that fail the screen).</summary>
    static abstract Vector256<float> Exact8(byte* p);
    static abstract Vector512<float> Fast16(byte* p);
    static abstract Vector512<float> Exact16(byte* p);
    static abstract float One(byte* p);
    /// <summary>The screened magnitudes of 16 elements; a lane at or above <see cref="ScreenLimit"/> fails.</summary>
    static abstract Vector256<ushort> Screen256(byte* p);
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
    public static float Dot256<T>(byte* w, float* x, int n) where T : IDenseElement => Dot<T, Width256, Lanes8, Vector256<float>>(w, x, n);

    public static float Dot512<T>(byte* w, float* x, int n) where T : IDenseElement => Dot<T, Width512, Lanes16, Vector512<float>>(w, x, n);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot<T, TW, TC, TV>(byte* w, float* x, int n)
        where T : IDenseElement where TW : struct, IVectorWidth<TV> where TC : struct, IWidthConversions<TV> where TV : struct
    {
        TV a0 = default, a1 = default;
        Vector256<ushort> big = default;
        int l = TW.Lanes, i = 0;
        for (; i + 2 * l <= n; i += 2 * l)
        {
            byte* p = w + (long)i * T.Size;
            if (T.Prefetches) Prefetch(p);
            if (T.Screens) big = Screen<T>(big, p, l);
            a0 = TW.MultiplyAdd(TC.Fast<T>(p), TW.Load(x + i), a0);
            a1 = TW.MultiplyAdd(TC.Fast<T>(p + l * T.Size), TW.Load(x + i + l), a1);
        }
        if (T.Screens && Vector256.GreaterThanOrEqualAny(big, Vector256.Create(T.ScreenLimit))) return Exact<T, TW, TC, TV>(w, x, n);
        for (; i + l <= n; i += l) a0 = TW.MultiplyAdd(TC.Exact<T>(w + (long)i * T.Size), TW.Load(x + i), a0);
        float s = TW.Sum(TW.Add(a0, a1));
        for (; i < n; i++) s += T.One(w + (long)i * T.Size) * x[i];
        return s;
    }

    /// <summary>The screen over one step of the main loop (2 x lanes elements, 16 per screen).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ushort> Screen<T>(Vector256<ushort> big, byte* p, int lanes) where T : IDenseElement
    {
        big = Vector256.Max(big, T.Screen256(p));
        return lanes == 16 ? Vector256.Max(big, T.Screen256(p + 16 * T.Size)) : big;
    }

    /// <summary>The one-row dot with the exact conversion throughout (rows that fail the screen).</summary>
    private static float Exact<T, TW, TC, TV>(byte* w, float* x, int n)
        where T : IDenseElement where TW : struct, IVectorWidth<TV> where TC : struct, IWidthConversions<TV> where TV : struct
    {
        TV a0 = default;
        int l = TW.Lanes, i = 0;
        for (; i + l <= n; i += l) a0 = TW.MultiplyAdd(TC.Exact<T>(w + (long)i * T.Size), TW.Load(x + i), a0);
        float s = TW.Sum(a0);
        for (; i < n; i++) s += T.One(w + (long)i * T.Size) * x[i];
        return s;
    }

    /// <summary>results[r] = the one-row dot of w with xs[r], r &lt; 4, bit for bit; false for the scalar variant.</summary>
    public static bool Dot4<T>(byte* w, float** xs, int n, KernelIsa isa, float* results) where T : IDenseElement
    {
        if (isa == KernelIsa.Avx2) DotRows<T, Width256, Lanes8, Vector256<float>, N4>(w, xs, n, results);
        else if (isa == KernelIsa.Avx512) DotRows<T, Width512, Lanes16, Vector512<float>, N4>(w, xs, n, results);
        else return false;
        return true;
    }

    /// <summary>results[r] = the one-row dot of w with xs[r], r &lt; 8, bit for bit: each weight vector loaded and widened
    /// once for eight sequences (16 accumulators). AVX-512 only (32 registers; 16 would spill them); false otherwise.</summary>
    public static bool Dot8<T>(byte* w, float** xs, int n, KernelIsa isa, float* results) where T : IDenseElement
    {
        if (isa != KernelIsa.Avx512) return false;
        DotRows<T, Width512, Lanes16, Vector512<float>, N8>(w, xs, n, results);
        return true;
    }

    /// <summary>The four- and eight-row dots, one body: rows 4-7 exist only for <typeparamref name="TN"/> = 8 (the JIT drops
    /// them for 4). Per row, exactly the one-row dot's operations in its order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotRows<T, TW, TC, TV, TN>(byte* w, float** xs, int n, float* results)
        where T : IDenseElement where TW : struct, IVectorWidth<TV> where TC : struct, IWidthConversions<TV> where TV : struct where TN : ICount
    {
        bool eight = TN.N == 8;
        float* x0 = xs[0], x1 = xs[1], x2 = xs[2], x3 = xs[3];
        float* x4 = eight ? xs[4] : null, x5 = eight ? xs[5] : null, x6 = eight ? xs[6] : null, x7 = eight ? xs[7] : null;
        TV a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
        TV a4 = default, b4 = default, a5 = default, b5 = default, a6 = default, b6 = default, a7 = default, b7 = default;
        Vector256<ushort> big = default;
        int l = TW.Lanes, i = 0;
        for (; i + 2 * l <= n; i += 2 * l)
        {
            byte* p = w + (long)i * T.Size;
            if (T.Prefetches) Prefetch(p);
            if (T.Screens) big = Screen<T>(big, p, l);
            var v = TC.Fast<T>(p);
            a0 = TW.MultiplyAdd(v, TW.Load(x0 + i), a0);
            a1 = TW.MultiplyAdd(v, TW.Load(x1 + i), a1);
            a2 = TW.MultiplyAdd(v, TW.Load(x2 + i), a2);
            a3 = TW.MultiplyAdd(v, TW.Load(x3 + i), a3);
            if (eight)
            {
                a4 = TW.MultiplyAdd(v, TW.Load(x4 + i), a4);
                a5 = TW.MultiplyAdd(v, TW.Load(x5 + i), a5);
                a6 = TW.MultiplyAdd(v, TW.Load(x6 + i), a6);
                a7 = TW.MultiplyAdd(v, TW.Load(x7 + i), a7);
            }
            v = TC.Fast<T>(p + l * T.Size);
            b0 = TW.MultiplyAdd(v, TW.Load(x0 + i + l), b0);
            b1 = TW.MultiplyAdd(v, TW.Load(x1 + i + l), b1);
            b2 = TW.MultiplyAdd(v, TW.Load(x2 + i + l), b2);
            b3 = TW.MultiplyAdd(v, TW.Load(x3 + i + l), b3);
            if (eight)
            {
                b4 = TW.MultiplyAdd(v, TW.Load(x4 + i + l), b4);
                b5 = TW.MultiplyAdd(v, TW.Load(x5 + i + l), b5);
                b6 = TW.MultiplyAdd(v, TW.Load(x6 + i + l), b6);
                b7 = TW.MultiplyAdd(v, TW.Load(x7 + i + l), b7);
            }
        }
        if (T.Screens && Vector256.GreaterThanOrEqualAny(big, Vector256.Create(T.ScreenLimit)))
        {
            for (int r = 0; r < TN.N; r++) results[r] = Exact<T, TW, TC, TV>(w, xs[r], n);
            return;
        }
        for (; i + l <= n; i += l)
        {
            var v = TC.Exact<T>(w + (long)i * T.Size);
            a0 = TW.MultiplyAdd(v, TW.Load(x0 + i), a0);
            a1 = TW.MultiplyAdd(v, TW.Load(x1 + i), a1);
            a2 = TW.MultiplyAdd(v, TW.Load(x2 + i), a2);
            a3 = TW.MultiplyAdd(v, TW.Load(x3 + i), a3);
            if (eight)
            {
                a4 = TW.MultiplyAdd(v, TW.Load(x4 + i), a4);
                a5 = TW.MultiplyAdd(v, TW.Load(x5 + i), a5);
                a6 = TW.MultiplyAdd(v, TW.Load(x6 + i), a6);
                a7 = TW.MultiplyAdd(v, TW.Load(x7 + i), a7);
            }
        }
        TW.Sum4(TW.Add(a0, b0), TW.Add(a1, b1), TW.Add(a2, b2), TW.Add(a3, b3), results);
        if (eight) TW.Sum4(TW.Add(a4, b4), TW.Add(a5, b5), TW.Add(a6, b6), TW.Add(a7, b7), results + 4);
        Tail<T>(w, xs, TN.N, i, n, results);
    }

    /// <summary>The scalar tail of the rows, each in the one-row dot's order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tail<T>(byte* w, float** xs, int rows, int i, int n, float* results) where T : IDenseElement
    {
        for (; i < n; i++)
        {
            float e = T.One(w + (long)i * T.Size);
            for (int r = 0; r < rows; r++) results[r] += e * xs[r][i];
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
}

/// <summary>Which of an element's conversions a vector width takes (8 lanes: Fast8/Exact8, 16 lanes: Fast16/Exact16).</summary>
internal unsafe interface IWidthConversions<TV> where TV : struct
{
    static abstract TV Fast<T>(byte* p) where T : IDenseElement;
    static abstract TV Exact<T>(byte* p) where T : IDenseElement;
}

internal readonly unsafe struct Lanes8 : IWidthConversions<Vector256<float>>
{
    public static Vector256<float> Fast<T>(byte* p) where T : IDenseElement => T.Fast8(p);
    public static Vector256<float> Exact<T>(byte* p) where T : IDenseElement => T.Exact8(p);
}

internal readonly unsafe struct Lanes16 : IWidthConversions<Vector512<float>>
{
    public static Vector512<float> Fast<T>(byte* p) where T : IDenseElement => T.Fast16(p);
    public static Vector512<float> Exact<T>(byte* p) where T : IDenseElement => T.Exact16(p);
}
