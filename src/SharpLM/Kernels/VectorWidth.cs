using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpLM.Kernels;

/// <summary>
/// A kernel's vector width as a type parameter, so one kernel body serves AVX2 (256-bit) and AVX-512 (512-bit): the
/// packed GEMM's micro-kernel and the dense types' dots (with their conversions per width, <c>Tensors/Types/DenseDots.cs</c>)
/// are written once over it. The 512-bit width uses the portable
/// <see cref="Vector512"/> API (the same instructions on AVX-512), so its kernels also run, emulated, on machines without
/// AVX-512, which is how the tests check them there.
/// </summary>
internal unsafe interface IVectorWidth<TV> where TV : struct
{
    static abstract int Lanes { get; }
    static abstract TV Load(float* p);
    static abstract void Store(TV v, float* p);
    static abstract TV Broadcast(float v);
    /// <summary>a * b + c, fused.</summary>
    static abstract TV MultiplyAdd(TV a, TV b, TV c);
    static abstract TV Add(TV a, TV b);
    static abstract float Sum(TV v);
    /// <summary>dst[r] = Sum(v_r), r &lt; 4, bit for bit (<see cref="Horizontal.Sum4(Vector512{float}, Vector512{float}, Vector512{float}, Vector512{float}, float*)"/>).</summary>
    static abstract void Sum4(TV v0, TV v1, TV v2, TV v3, float* dst);
}

internal readonly unsafe struct Width256 : IVectorWidth<Vector256<float>>
{
    public static int Lanes => 8;
    public static Vector256<float> Load(float* p) => Vector256.Load(p);
    public static void Store(Vector256<float> v, float* p) => v.Store(p);
    public static Vector256<float> Broadcast(float v) => Vector256.Create(v);
    public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Fma.MultiplyAdd(a, b, c);
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    public static float Sum(Vector256<float> v) => Horizontal.Sum(v);
    public static void Sum4(Vector256<float> v0, Vector256<float> v1, Vector256<float> v2, Vector256<float> v3, float* dst)
    {
        dst[0] = Horizontal.Sum(v0); dst[1] = Horizontal.Sum(v1); dst[2] = Horizontal.Sum(v2); dst[3] = Horizontal.Sum(v3);
    }
}

internal readonly unsafe struct Width512 : IVectorWidth<Vector512<float>>
{
    public static int Lanes => 16;
    public static Vector512<float> Load(float* p) => Vector512.Load(p);
    public static void Store(Vector512<float> v, float* p) => v.Store(p);
    public static Vector512<float> Broadcast(float v) => Vector512.Create(v);
    public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    public static float Sum(Vector512<float> v) => Horizontal.Sum(v);
    public static void Sum4(Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3, float* dst) => Horizontal.Sum4(v0, v1, v2, v3, dst);
}

/// <summary>
/// The sum of a vector's lanes, for every kernel (one order, so a row's one-row and four-row dots give the same bits): halves
/// added down to 128 bits, then two shuffles. Eight instructions where <c>Vector512.Sum</c> compiles to about 25 in a longer
/// dependency chain; at the 134M model's 576-wide rows the Q4_0 one-row dot ran 16% faster in L1 (dot-tune Q4_0 576:
/// 24.1 -> 28.0 G weights/s), the four-row dot 15-20%.
/// </summary>
internal static class Horizontal
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector512<float> v) => Sum(v.GetLower() + v.GetUpper());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector256<float> v)
    {
        var s = v.GetLower() + v.GetUpper();
        s += Vector128.Shuffle(s, Vector128.Create(2, 3, 0, 1));
        s += Vector128.Shuffle(s, Vector128.Create(1, 0, 3, 2));
        return s.ToScalar();
    }

    /// <summary>dst[r] = <see cref="Sum(Vector512{float})"/>(v_r) for four vectors, the same additions of the same lanes in
    /// the same order (so the same bits), done for the four at once: halves of two vectors side by side in one register,
    /// then quarters of four (11 instructions where four sums take 44; the four- and eight-row dots end with one per four rows).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Sum4(Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3, float* dst)
    {
        if (!Avx512F.IsSupported)
        {
            dst[0] = Sum(v0); dst[1] = Sum(v1); dst[2] = Sum(v2); dst[3] = Sum(v3);
            return;
        }
        // [v0 lo | v1 lo] + [v0 hi | v1 hi]: quarters (s0 0-3, s0 4-7, s1 0-3, s1 4-7)
        var s01 = Avx512F.Shuffle4x128(v0, v1, 0x44) + Avx512F.Shuffle4x128(v0, v1, 0xEE);
        var s23 = Avx512F.Shuffle4x128(v2, v3, 0x44) + Avx512F.Shuffle4x128(v2, v3, 0xEE);
        // (s0 0-3, s1 0-3, s2 0-3, s3 0-3) + (s0 4-7, s1 4-7, ...): quarter r holds row r's 4 lanes
        StoreQuarterSums(Avx512F.Shuffle4x128(s01, s23, 0x88) + Avx512F.Shuffle4x128(s01, s23, 0xDD), dst);
    }

    /// <summary><see cref="Sum4(Vector512{float}, Vector512{float}, Vector512{float}, Vector512{float}, float*)"/> for 256-bit
    /// vectors: dst[r] = <see cref="Sum(Vector256{float})"/>(v_r), the same additions in the same order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Sum4(Vector256<float> v0, Vector256<float> v1, Vector256<float> v2, Vector256<float> v3, float* dst)
    {
        if (!Avx512F.IsSupported)
        {
            dst[0] = Sum(v0); dst[1] = Sum(v1); dst[2] = Sum(v2); dst[3] = Sum(v3);
            return;
        }
        // [v0 lo | v1 lo] + [v0 hi | v1 hi]: s0 in lanes 0-3, s1 in 4-7 (Sum's first add, lower + upper)
        var s01 = Avx.Permute2x128(v0, v1, 0x20) + Avx.Permute2x128(v0, v1, 0x31);
        var s23 = Avx.Permute2x128(v2, v3, 0x20) + Avx.Permute2x128(v2, v3, 0x31);
        StoreQuarterSums(Vector512.Create(s01, s23), dst); // quarter r holds row r's 4 lanes
    }

    /// <summary>dst[r] = the sum of quarter r's four lanes by <see cref="Sum(Vector256{float})"/>'s two shuffled adds (the
    /// left operand of every add the one that sum puts there, so a NaN keeps its payload either way).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreQuarterSums(Vector512<float> t, float* dst)
    {
        t += Avx512F.Permute4x32(t, 0x4E); // (2, 3, 0, 1) in each quarter
        t += Avx512F.Permute4x32(t, 0xB1); // (1, 0, 3, 2)
        Avx512F.PermuteVar16x32(t, Vector512.Create(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)).GetLower().GetLower().Store(dst);
    }
}

/// <summary>A small count known to the JIT as a type parameter (rows or groups of a micro-kernel), so one kernel body
/// written for up to 6 compiles to straight-line code per count.</summary>
internal interface ICount { static abstract int N { get; } }
internal struct N1 : ICount { public static int N => 1; }
internal struct N2 : ICount { public static int N => 2; }
internal struct N3 : ICount { public static int N => 3; }
internal struct N4 : ICount { public static int N => 4; }
internal struct N5 : ICount { public static int N => 5; }
internal struct N6 : ICount { public static int N => 6; }
internal struct N8 : ICount { public static int N => 8; }
