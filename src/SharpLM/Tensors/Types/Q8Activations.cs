using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;

namespace SharpLM.Tensors.Types;

/// <summary>
/// One activation row quantized to 8 bits for the integer dot products of the quantized matvec (what llama.cpp calls
/// the weight type's vec_dot_type: blocks of 32 for the legacy types, 256 for the k-quants). Structure of arrays, so a
/// 64-byte load covers two 32-blocks of q:
/// <code>
/// q    (n)       int8 in [-127, 127]
/// d    (n/B)     float scale of each block of B (32 or 256): x ≈ d * q
/// sums (n/16)    int16 sum of each 16 consecutive q (the weight formats' offsets and mins need sum(q))
/// </code>
/// Per block, with id = 127 / max|x|: q = round-half-even(x * id), and d = f16(max|x| / 127) for blocks of 32, 1 / id for
/// blocks of 256 (0 for an all-zero block). These are the values llama.cpp's x86 build gives its Q8_0 and Q8_K activation
/// blocks (its Q8_K stores q and d negated, the same products), so the integer dots see the activations llama.cpp sees;
/// the layout is SharpLM's own (never written to a file). <see cref="Q8Activations"/> quantizes into it.
/// </summary>
internal readonly unsafe struct Q8Row(sbyte* q, float* d, short* sums)
{
    public readonly sbyte* Q = q;
    public readonly float* D = d;
    public readonly short* Sums = sums;
}

/// <summary>
/// The activation quantizer of the integer matvec (<see cref="Q8Row"/>) in its reference and SIMD forms (bit-identical),
/// the storage of T quantized rows, and the two generic paths every weight type shares: the oracle (the naive dequantizer
/// times the dequantized activations, in double) and the scalar path (dequantize the row, f32 dot per block).
/// Accuracy: per block, |x - d*q| &lt;= d/2 (+ the f16 rounding of d for 32-blocks, 2^-11 relative), about max|x|/254, so
/// a dot product moves by at most about sum|w|*max|x|/254 per block (measured ~1.5e-4 of sum|w x| on average; the tests
/// and docs/BENCHMARKS.md state the figures).
/// </summary>
internal static unsafe class Q8Activations
{
    /// <summary>Bytes one quantized row of n values takes in a row buffer (q, d and sums, each 64-byte aligned).</summary>
    public static long RowStride(int n, int block) => Align(n) + Align(4L * (n / block)) + Align(2L * (n / 16));

    private static long Align(long b) => (b + 63) & ~63L;

    /// <summary>The quantized row at <paramref name="p"/> (laid out by <see cref="RowStride"/>).</summary>
    public static Q8Row At(byte* p, int n, int block) =>
        new((sbyte*)p, (float*)(p + Align(n)), (short*)(p + Align(n) + Align(4L * (n / block))));

    /// <summary>x (n) f32 -> dst, n a multiple of <paramref name="block"/> (32 or 256).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // full speed from the first call: a prompt's prefill is over before tier 1 arrives
    public static void Quantize(float* x, int n, int block, Q8Row dst, KernelIsa isa)
    {
        if (n % block != 0 || (block != 32 && block != 256)) throw new ArgumentException($"a row of {n} values cannot be quantized in blocks of {block}");
        for (int b = 0; b < n / block; b++)
        {
            float* xb = x + (long)b * block;
            sbyte* qb = dst.Q + (long)b * block;
            short* sb = dst.Sums + (long)b * (block / 16);
            float amax = isa switch
            {
                KernelIsa.Avx512 => AbsMax512(xb, block),
                KernelIsa.Avx2 => AbsMax256(xb, block),
                _ => AbsMaxScalar(xb, block),
            };
            float id = amax > 0 ? 127f / amax : 0f;
            dst.D[b] = Scale(amax, id, block);
            if (isa == KernelIsa.Avx512) Round512(xb, block, id, qb, sb);
            else if (isa == KernelIsa.Avx2) Round256(xb, block, id, qb, sb);
            else RoundScalar(xb, block, id, qb, sb);
        }
    }

    /// <summary>The reference quantizer (readable form of <see cref="Quantize"/>; bit-identical).</summary>
    public static void QuantizeNaive(ReadOnlySpan<float> x, int block, Span<sbyte> q, Span<float> d, Span<short> sums)
    {
        for (int b = 0; b < x.Length / block; b++)
        {
            float amax = 0;
            for (int i = 0; i < block; i++) amax = MathF.Max(amax, MathF.Abs(x[b * block + i]));
            float id = amax > 0 ? 127f / amax : 0f;
            d[b] = Scale(amax, id, block);
            for (int i = 0; i < block; i++) q[b * block + i] = (sbyte)Math.Clamp((int)MathF.Round(x[b * block + i] * id, MidpointRounding.ToEven), -127, 127);
        }
        for (int g = 0; g < x.Length / 16; g++)
        {
            int s = 0;
            for (int i = 0; i < 16; i++) s += q[g * 16 + i];
            sums[g] = (short)s;
        }
    }

    /// <summary>A block's scale: f16(max|x| / 127) for 32-blocks, 1 / id for 256-blocks (0 for an all-zero block).</summary>
    private static float Scale(float amax, float id, int block) =>
        amax == 0 ? 0f : block == 32 ? (float)(Half)(amax / 127f) : 1f / id;

    private static float AbsMaxScalar(float* x, int n)
    {
        float m = 0;
        for (int i = 0; i < n; i++) m = MathF.Max(m, MathF.Abs(x[i]));
        return m;
    }

    private static float AbsMax512(float* x, int n)
    {
        var m = Vector512<float>.Zero;
        for (int i = 0; i < n; i += 16) m = Vector512.Max(m, Vector512.Abs(Vector512.Load(x + i)));
        var h = Vector256.Max(m.GetLower(), m.GetUpper());
        var q = Vector128.Max(h.GetLower(), h.GetUpper());
        return MathF.Max(MathF.Max(q[0], q[1]), MathF.Max(q[2], q[3]));
    }

    private static float AbsMax256(float* x, int n)
    {
        var m = Vector256<float>.Zero;
        for (int i = 0; i < n; i += 8) m = Vector256.Max(m, Vector256.Abs(Vector256.Load(x + i)));
        var q = Vector128.Max(m.GetLower(), m.GetUpper());
        return MathF.Max(MathF.Max(q[0], q[1]), MathF.Max(q[2], q[3]));
    }

    private static void RoundScalar(float* x, int n, float id, sbyte* q, short* sums)
    {
        for (int g = 0; g < n; g += 16)
        {
            int s = 0;
            for (int i = g; i < g + 16; i++)
            {
                int v = Math.Clamp((int)MathF.Round(x[i] * id, MidpointRounding.ToEven), -127, 127);
                q[i] = (sbyte)v;
                s += v;
            }
            sums[g / 16] = (short)s;
        }
    }

    // ConvertToVector*Int32 rounds with the MXCSR mode: to nearest, ties to even, as MathF.Round(ToEven).
    private static void Round512(float* x, int n, float id, sbyte* q, short* sums)
    {
        var vid = Vector512.Create(id);
        var lo = Vector512.Create(-127);
        var hi = Vector512.Create(127);
        for (int g = 0; g < n; g += 16)
        {
            var v = Vector512.Min(Vector512.Max(Avx512F.ConvertToVector512Int32(Vector512.Load(x + g) * vid), lo), hi);
            Avx512F.ConvertToVector128SByte(v).Store(q + g);
            sums[g / 16] = (short)Vector512.Sum(v);
        }
    }

    private static void Round256(float* x, int n, float id, sbyte* q, short* sums)
    {
        var vid = Vector256.Create(id);
        var lo = Vector256.Create(-127);
        var hi = Vector256.Create(127);
        for (int g = 0; g < n; g += 16)
        {
            var a = Vector256.Min(Vector256.Max(Avx.ConvertToVector256Int32(Vector256.Load(x + g) * vid), lo), hi);
            var b = Vector256.Min(Vector256.Max(Avx.ConvertToVector256Int32(Vector256.Load(x + g + 8) * vid), lo), hi);
            var s16 = Vector256.Narrow(a, b);                    // 16 int16 (values fit, no saturation)
            var s8 = Vector128.Narrow(s16.GetLower(), s16.GetUpper()); // lane order kept by the element-wise narrows
            s8.Store(q + g);
            sums[g / 16] = (short)Vector256.Sum(a + b);
        }
    }

    /// <summary>x (T,C) -> xr (T,C): each row quantized and dequantized (d*q), the activations the integer matvec sees,
    /// so the GEMM computes the same products (to f32 rounding) as the matvec for the same row.</summary>
    public static void RoundTrip(float* x, float* xr, int t, int n, int block, byte* rowBuf, KernelIsa isa)
    {
        var row = At(rowBuf, n, block);
        for (int i = 0; i < t; i++)
        {
            Quantize(x + (long)i * n, n, block, row, isa);
            float* o = xr + (long)i * n;
            for (int b = 0; b < n / block; b++)
            {
                float d = row.D[b];
                for (int j = b * block; j < (b + 1) * block; j++) o[j] = d * row.Q[j];
            }
        }
    }

    /// <summary>
    /// The oracle of every integer dot: the weight row dequantized by the type's readable dequantizer, times the
    /// dequantized activations d*q, summed in double.
    /// </summary>
    public static double DotNaive(TypeTraits type, ReadOnlySpan<byte> w, Q8Row x, int n, int block)
    {
        var row = new float[n];
        type.DequantizeRowNaive(w, row);
        double s = 0;
        for (int i = 0; i < n; i++) s += (double)row[i] * ((double)x.D[i / block] * x.Q[i]);
        return s;
    }

    /// <summary>The scalar path any type can take: dequantize the row into rowBuf, sum w*q per block in f32, times d.</summary>
    public static float DotGeneric(TypeTraits type, byte* w, Q8Row x, int n, int block, KernelIsa isa, float* rowBuf)
    {
        type.DequantizeRow(w, rowBuf, n, isa);
        float s = 0;
        for (int b = 0; b < n / block; b++)
        {
            float bs = 0;
            for (int i = b * block; i < (b + 1) * block; i++) bs += rowBuf[i] * x.Q[i];
            s += bs * x.D[b];
        }
        return s;
    }
}
