using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>
/// F16: IEEE half precision, 2 bytes per value. Also the home of half &lt;-&gt; float conversion by bit manipulation, in
/// scalar and SIMD registers (this CPU has no F16C class in .NET, and TensorPrimitives' Half conversion is slow), used
/// by every block format with an f16 scale. Half -> float is exact for every one of the 65536 inputs; float -> half
/// rounds to nearest even like <c>(Half)f</c>.
/// </summary>
internal static unsafe class F16Type
{
    public static readonly TypeTraits Traits = new(DType.F16, "f16", 1, 2, "16-bit float", 1u)
    {
        Quantize = &Quantize,
        DequantizeNaive = &DequantizeNaive,
        Dequantize = &Dequantize,
        Dot = &Dot,
        Dot4 = &Dot4,
        Dot8 = &Dot8,
    };

    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) =>
        FromSingle(src, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(dst[..(2 * src.Length)]), KernelIsaSelector.Current);

    public static void DequantizeNaive(ReadOnlySpan<byte> src, Span<float> dst)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(src[(2 * i)..]);
    }

    public static void Dequantize(byte* src, float* dst, int n, KernelIsa isa) =>
        ToSingle(new ReadOnlySpan<ushort>(src, n), new Span<float>(dst, n), isa);

    /// <summary>w (n halves) . x (n), converted in registers, f32 FMA.</summary>
    public static float Dot(byte* w, float* x, int n, KernelIsa isa, float* rowBuf) => isa switch
    {
        KernelIsa.Avx512 => DenseDots.Dot512<F16Element>(w, x, n),
        KernelIsa.Avx2 => DenseDots.Dot256<F16Element>(w, x, n),
        _ => TypeTraits.DotGeneric(Traits, w, x, n, isa, rowBuf),
    };

    /// <summary>Four activation rows against one weight row, each half converted once (<see cref="DenseDots.Dot4{T}"/>).</summary>
    public static bool Dot4(byte* w, float** xs, int n, KernelIsa isa, float* results) => DenseDots.Dot4<F16Element>(w, xs, n, isa, results);

    /// <summary>Eight activation rows against one weight row (<see cref="DenseDots.Dot8{T}"/>).</summary>
    public static bool Dot8(byte* w, float** xs, int n, KernelIsa isa, float* results) => DenseDots.Dot8<F16Element>(w, xs, n, isa, results);

    // Fast in-register conversion for the dots: a half sign-extended to 32 bits and shifted left by 13 has its exponent
    // and mantissa at bits 27..13 and copies of the sign in 31..28; masking 0x8FFFE000 leaves a float whose product with
    // 2^112 is the half's value (normal or subnormal). Infinities and NaNs (exponent 31) would come out finite, so the
    // dots track the largest |h| and redo the row with the exact conversion when one is present. A subnormal half is a
    // float subnormal here, which the multiply handles on the CPU's slow path; measured on the Zen 5 EPYC (one 4096-wide
    // row in L1, a throwaway loop not kept in bench/; docs/BENCHMARKS.md says so) this form still beats the exact subnormal-free one of ToSingle on weights as trained
    // (Gaussian, 0.2% subnormal: 17 vs ~10-13 G weights/s), so the dense dots keep it; block scales use ToSingle.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Fast16(ushort* p) =>
        ((Avx512F.ConvertToVector512Int32(Vector256.Load((short*)p)) << 13) & Vector512.Create(unchecked((int)0x8FFFE000))).AsSingle() * Vector512.Create(Rebias);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Fast8(ushort* p) =>
        ((Avx2.ConvertToVector256Int32((short*)p) << 13) & Vector256.Create(unchecked((int)0x8FFFE000))).AsSingle() * Vector256.Create(Rebias);

    // 2^112 rebases a half exponent (bias 15) placed in a float's exponent field (bias 127); it also scales
    // subnormal halves (which land as float subnormals) to the right value.
    internal const float Rebias = 5.192296858534828e33f; // 2^112

    /// <summary>Half bits -> float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort h)
    {
        uint em = h & 0x7FFFu;
        uint bits = em << 13;
        float f = em < 0x0400u ? em * SubnormalUnit                                  // zero and subnormals, from an integer
                : BitConverter.UInt32BitsToSingle(em >= 0x7C00u ? bits | 0x7F800000u   // inf / nan keep their payload
                                                                : bits + ExponentRebias);
        return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(f) | ((uint)(h & 0x8000) << 16));
    }

    // Half -> float without a float operation on a subnormal: a normal half's exponent is rebased by an integer add
    // (ExponentRebias: 112 in the exponent field), a subnormal's 10-bit mantissa is an integer times 2^-24. (Multiplying
    // the float-subnormal bit pattern by 2^112, the obvious way, is exact but runs through the CPU's slow subnormal path:
    // on the Zen 5 EPYC a Q4_K matvec whose block scales were subnormal halves ran at a third of its speed.)
    internal const uint ExponentRebias = 0x38000000u;
    internal const float SubnormalUnit = 5.9604645e-8f; // 2^-24

    /// <summary>float -> half bits, round to nearest even (as the <see cref="Half"/> cast).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromSingle(float f) => BitConverter.HalfToUInt16Bits((Half)f);

    /// <summary>16 half values (as 32-bit lanes holding the 16 bits) -> 16 floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ToSingle(Vector512<uint> h)
    {
        var em = h & Vector512.Create(0x7FFFu);
        var bits = em << 13;
        var f = (bits + Vector512.Create(ExponentRebias)).AsSingle();
        var sub = Vector512.ConvertToSingle(em.AsInt32()) * Vector512.Create(SubnormalUnit);
        f = Vector512.ConditionalSelect(Vector512.LessThan(em.AsInt32(), Vector512.Create(0x0400)).AsSingle(), sub, f);
        var special = Vector512.GreaterThan(em.AsInt32(), Vector512.Create(0x7BFF));
        f = Vector512.ConditionalSelect(special.AsSingle(), (bits | Vector512.Create(0x7F800000u)).AsSingle(), f);
        return (f.AsUInt32() | ((h & Vector512.Create(0x8000u)) << 16)).AsSingle();
    }

    /// <summary>8 half values in 32-bit lanes -> 8 floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToSingle(Vector256<uint> h)
    {
        var em = h & Vector256.Create(0x7FFFu);
        var bits = em << 13;
        var f = (bits + Vector256.Create(ExponentRebias)).AsSingle();
        var sub = Vector256.ConvertToSingle(em.AsInt32()) * Vector256.Create(SubnormalUnit);
        f = Vector256.ConditionalSelect(Vector256.LessThan(em.AsInt32(), Vector256.Create(0x0400)).AsSingle(), sub, f);
        var special = Vector256.GreaterThan(em.AsInt32(), Vector256.Create(0x7BFF));
        f = Vector256.ConditionalSelect(special.AsSingle(), (bits | Vector256.Create(0x7F800000u)).AsSingle(), f);
        return (f.AsUInt32() | ((h & Vector256.Create(0x8000u)) << 16)).AsSingle();
    }

    /// <summary>Loads 16 halves from <paramref name="p"/> and converts them (AVX-512).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector512<float> Load16(ushort* p) => ToSingle(Avx512F.ConvertToVector512UInt32(Vector256.Load(p)));

    /// <summary>Loads 8 halves from <paramref name="p"/> and converts them (AVX2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector256<float> Load8(ushort* p) => ToSingle(Avx2.ConvertToVector256Int32(Vector128.Load(p)).AsUInt32());

    /// <summary>Converts a span of half bits to floats with the best vector width.</summary>
    public static unsafe void ToSingle(ReadOnlySpan<ushort> src, Span<float> dst, KernelIsa isa)
    {
        if (dst.Length < src.Length) throw new ArgumentException($"dst holds {dst.Length} floats, need {src.Length}", nameof(dst));
        int n = src.Length, i = 0;
        fixed (ushort* s = src)
        fixed (float* d = dst)
        {
            if (isa == KernelIsa.Avx512)
                for (; i + 16 <= n; i += 16) Load16(s + i).Store(d + i);
            else if (isa == KernelIsa.Avx2)
                for (; i + 8 <= n; i += 8) Load8(s + i).Store(d + i);
            for (; i < n; i++) d[i] = ToSingle(s[i]);
        }
    }

    // float -> half, round to nearest even, branch-free (F. Giesen's float_to_half_fast3_rtne, vectorized):
    // |f| >= 65536 -> inf (or a quiet NaN), |f| < 2^-14 -> subnormal via a float add that rounds for us,
    // otherwise rebias the exponent and round the 13 dropped mantissa bits to even.
    private const uint F16Max = (127 + 16) << 23, F32Inf = 255u << 23, DenormMagic = ((127 - 15) + (23 - 10) + 1) << 23;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<uint> FromSingle(Vector512<float> f)
    {
        var u = f.AsUInt32();
        var sign = u & Vector512.Create(0x80000000u);
        u ^= sign;
        var infNan = Vector512.ConditionalSelect(Vector512.GreaterThan(u, Vector512.Create(F32Inf)), Vector512.Create(0x7E00u), Vector512.Create(0x7C00u));
        var sub = (u.AsSingle() + Vector512.Create(DenormMagic).AsSingle()).AsUInt32() - Vector512.Create(DenormMagic);
        var odd = (u >>> 13) & Vector512<uint>.One;
        var norm = (u + Vector512.Create(unchecked((uint)((15 - 127) << 23) + 0xFFFu)) + odd) >>> 13;
        var r = Vector512.ConditionalSelect(Vector512.LessThan(u, Vector512.Create(113u << 23)), sub, norm);
        r = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(u, Vector512.Create(F16Max)), infNan, r);
        return r | (sign >>> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<uint> FromSingle(Vector256<float> f)
    {
        var u = f.AsUInt32();
        var sign = u & Vector256.Create(0x80000000u);
        u ^= sign;
        var infNan = Vector256.ConditionalSelect(Vector256.GreaterThan(u, Vector256.Create(F32Inf)), Vector256.Create(0x7E00u), Vector256.Create(0x7C00u));
        var sub = (u.AsSingle() + Vector256.Create(DenormMagic).AsSingle()).AsUInt32() - Vector256.Create(DenormMagic);
        var odd = (u >>> 13) & Vector256<uint>.One;
        var norm = (u + Vector256.Create(unchecked((uint)((15 - 127) << 23) + 0xFFFu)) + odd) >>> 13;
        var r = Vector256.ConditionalSelect(Vector256.LessThan(u, Vector256.Create(113u << 23)), sub, norm);
        r = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(u, Vector256.Create(F16Max)), infNan, r);
        return r | (sign >>> 16);
    }

    /// <summary>Converts floats to half bits (round to nearest even) with the given vector width.</summary>
    public static unsafe void FromSingle(ReadOnlySpan<float> src, Span<ushort> dst, KernelIsa isa)
    {
        if (dst.Length < src.Length) throw new ArgumentException($"dst holds {dst.Length} halves, need {src.Length}", nameof(dst));
        int n = src.Length, i = 0;
        fixed (float* s = src)
        fixed (ushort* d = dst)
        {
            if (isa == KernelIsa.Avx512)
                for (; i + 16 <= n; i += 16) Avx512F.ConvertToVector256UInt16(FromSingle(Vector512.Load(s + i))).Store(d + i);
            else if (isa == KernelIsa.Avx2)
                for (; i + 16 <= n; i += 16) Vector256.Narrow(FromSingle(Vector256.Load(s + i)), FromSingle(Vector256.Load(s + i + 8))).Store(d + i);
            for (; i < n; i++) d[i] = FromSingle(s[i]);
        }
    }
}

/// <summary>F16 weights for <see cref="DenseDots"/>: the fast conversion in the main loop, screened for infinities and
/// NaNs (exponent 31, which it would make finite).</summary>
internal readonly unsafe struct F16Element : IDenseElement
{
    public static int Size => 2;
    public static bool Prefetches => true;
    public static bool Screens => true;
    public static ushort ScreenLimit => 0x7C00;
    public static Vector256<float> Fast8(byte* p) => F16Type.Fast8((ushort*)p);
    public static Vector256<float> Exact8(byte* p) => F16Type.Load8((ushort*)p);
    public static Vector512<float> Fast16(byte* p) => F16Type.Fast16((ushort*)p);
    public static Vector512<float> Exact16(byte* p) => F16Type.Load16((ushort*)p);
    public static float One(byte* p) => F16Type.ToSingle(*(ushort*)p);
    public static Vector256<ushort> Screen256(byte* p) => Vector256.Load((ushort*)p) & Vector256.Create((ushort)0x7FFF);
}
