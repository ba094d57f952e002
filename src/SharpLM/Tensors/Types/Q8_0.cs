using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Q8_0: blocks of 32 values in 34 bytes: f16 d, int8 q[32]; x = d * q.
/// </summary>
internal static unsafe class Q8_0Type
{
    public static readonly TypeTraits Traits = new(DType.Q8_0, "q8_0", 32, 34, "8-bit blocks of 32 with an f16 scale (34 bytes / 32 values)", 7u)
    {
        Quantize = &Quantize,
        DequantizeNaive = &DequantizeNaive,
        Dequantize = &Dequantize,
        Dot = &Dot,
        DotQ8Block = 32,
        DotQ8 = &DotQ8,
        DotQ8x4 = &DotQ8x4,
        Unpack32 = &Unpack32,
        Int8 = new Int8Form(Signed: true, Max: 127, Offset: 0, HasMin: false),
    };

    /// <summary>The integer GEMM's form (<see cref="TypeTraits.Unpack32"/>): the signed bytes as they are.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // full speed from the first call: a prompt's prefill is over before tier 1 arrives
    public static void Unpack32(byte* src, int n, byte* u, float* d, float* m)
    {
        for (int b = 0; b < n / 32; b++, src += 34, u += 32)
        {
            d[b] = Half(src);
            Vector256.Load(src + 2).Store(u);
        }
    }

    /// <summary>Reference quantizer (ggml quantize_row_q8_0_ref): src (n) f32 -> dst (RowBytes(n)).</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        for (int b = 0; b < src.Length / 32; b++) QuantizeBlock(src.Slice(b * 32, 32), dst.Slice(b * 34, 34));
    }

    private static void QuantizeBlock(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0;
        foreach (var v in x) amax = Math.Max(amax, Math.Abs(v));
        float d = amax / 127;
        float id = d != 0 ? 1 / d : 0;
        WriteHalf(y, d);
        for (int j = 0; j < 32; j++) y[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero); // roundf
    }

    /// <summary>The readable oracle (ggml dequantize_row_q8_0): src (RowBytes(n)) -> dst (n) f32.</summary>
    public static void DequantizeNaive(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = dst.Length;
        // block (34 bytes): f16 d, int8 q[32]; x = d * q
        for (int b = 0; b < n / 32; b++)
        {
            var blk = src.Slice(b * 34, 34);
            float d = H(blk, 0);
            for (int j = 0; j < 32; j++) dst[b * 32 + j] = (sbyte)blk[2 + j] * d;
        }
    }

    /// <summary>Fast dequantization (bit-identical to the oracle): n elements from src -> dst.</summary>
    public static void Dequantize(byte* src, float* dst, int n, KernelIsa isa)
    {
        if (isa == KernelIsa.Scalar) DequantizeNaive(new ReadOnlySpan<byte>(src, checked((int)Traits.RowBytes(n))), new Span<float>(dst, n));
        else DequantizeSimd(src, dst, n, isa);
    }

    private static void DequantizeSimd(byte* src, float* dst, int n, KernelIsa isa)
    {
        for (int b = 0; b < n / 32; b++, src += 34, dst += 32)
        {
            float d = Half(src);
            var q = (sbyte*)(src + 2);
            if (isa == KernelIsa.Avx512)
            {
                var vd = Vector512.Create(d);
                (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(q))) * vd).Store(dst);
                (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(q + 16))) * vd).Store(dst + 16);
            }
            else
            {
                var vd = Vector256.Create(d);
                for (int j = 0; j < 32; j += 8)
                    (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + j)) * vd).Store(dst + j);
            }
        }
    }

    /// <summary>w (n elements) . x (n) f32, fused (dequantized in registers, f32 FMA accumulation, prefetch).</summary>
    public static float Dot(byte* w, float* x, int n, KernelIsa isa, float* rowBuf) => isa switch
    {
        KernelIsa.Avx512 => Dot512(w, x, n),
        KernelIsa.Avx2 => Dot256(w, x, n),
        _ => TypeTraits.DotGeneric(Traits, w, x, n, isa, rowBuf),
    };

    public static float Dot512(byte* w, float* x, int n)
    {
        Vector512<float> acc0 = default, acc1 = default;
        for (int b = 0; b < n / 32; b++, w += 34, x += 32)
        {
            Prefetch(w);
            var q = (sbyte*)(w + 2);
            var p = Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(q))) * Vector512.Load(x);
            p = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(q + 16))), Vector512.Load(x + 16), p);
            if ((b & 1) == 0) acc0 = Avx512F.FusedMultiplyAdd(Vector512.Create(Half(w)), p, acc0);
            else acc1 = Avx512F.FusedMultiplyAdd(Vector512.Create(Half(w)), p, acc1);
        }
        return Horizontal.Sum(acc0 + acc1);
    }

    public static float Dot256(byte* w, float* x, int n)
    {
        Vector256<float> acc = default;
        for (int b = 0; b < n / 32; b++, w += 34, x += 32)
        {
            Prefetch(w);
            var q = (sbyte*)(w + 2);
            var p = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q)) * Vector256.Load(x);
            p = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + 8)), Vector256.Load(x + 8), p);
            p = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + 16)), Vector256.Load(x + 16), p);
            p = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + 24)), Vector256.Load(x + 24), p);
            acc = Fma.MultiplyAdd(Vector256.Create(Half(w)), p, acc);
        }
        return Horizontal.Sum(acc);
    }

    /// <summary>w (n elements) . x quantized in blocks of 32: per block the integer sum of q_w*q_x times d_w*d_x.</summary>
    public static float DotQ8(byte* w, Q8Row x, int n, KernelIsa isa, float* rowBuf) => isa switch
    {
        KernelIsa.Avx512 => DotQ8_512(w, x.Q, x.D, n),
        KernelIsa.Avx2 => DotQ8_256(w, x.Q, x.D, n),
        _ => Q8Activations.DotGeneric(Traits, w, x, n, 32, isa, rowBuf),
    };

    /// <summary>results[r] = <see cref="DotQ8"/>(w, xs[r]) for r &lt; 4, bit for bit (the same operations per row, the weight
    /// bytes loaded, made absolute and their sign mask taken once). False for the scalar variant.</summary>
    [SkipLocalsInit] // the short step's buffers need no zeroing
    public static bool DotQ8x4(byte* w, Q8Row* xs, int n, KernelIsa isa, float* results)
    {
        if (isa == KernelIsa.Avx2) { DotQ8x4_256(w, xs, n, results); return true; }
        if (isa != KernelIsa.Avx512) return false;
        Vector512<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
        sbyte* q0 = xs[0].Q, q1 = xs[1].Q, q2 = xs[2].Q, q3 = xs[3].Q;
        float* d0 = xs[0].D, d1 = xs[1].D, d2 = xs[2].D, d3 = xs[3].D;
        var ones = Vector512.Create((short)1);
        var two = Vector512.Create(2);
        int nb = n / 32, b = 0;
        byte* wb = w;
        for (; b + 16 <= nb; b += 16)
        {
            var h = BlockMath.Halves16(wb, 34);
            Vector512<float> s0 = h * Vector512.Load(d0 + b), s1 = h * Vector512.Load(d1 + b), s2 = h * Vector512.Load(d2 + b), s3 = h * Vector512.Load(d3 + b);
            var idx = PairIndex;
            for (int j = 0; j < 8; j += 2, wb += 136)
            {
                Prefetch(wb); Prefetch(wb + 64);
                int o = 32 * b + 64 * j; // element offset of this step's first block (j counts blocks in pairs)
                PairX4(wb, q0 + o, q1 + o, q2 + o, q3 + o, ones, out var p0, out var p1, out var p2, out var p3);
                a0 = Avx512F.FusedMultiplyAdd(p0, Avx512F.PermuteVar16x32(s0, idx), a0);
                a1 = Avx512F.FusedMultiplyAdd(p1, Avx512F.PermuteVar16x32(s1, idx), a1);
                a2 = Avx512F.FusedMultiplyAdd(p2, Avx512F.PermuteVar16x32(s2, idx), a2);
                a3 = Avx512F.FusedMultiplyAdd(p3, Avx512F.PermuteVar16x32(s3, idx), a3);
                idx += two;
                Prefetch(wb + 128);
                PairX4(wb + 68, q0 + o + 64, q1 + o + 64, q2 + o + 64, q3 + o + 64, ones, out p0, out p1, out p2, out p3);
                b0 = Avx512F.FusedMultiplyAdd(p0, Avx512F.PermuteVar16x32(s0, idx), b0);
                b1 = Avx512F.FusedMultiplyAdd(p1, Avx512F.PermuteVar16x32(s1, idx), b1);
                b2 = Avx512F.FusedMultiplyAdd(p2, Avx512F.PermuteVar16x32(s2, idx), b2);
                b3 = Avx512F.FusedMultiplyAdd(p3, Avx512F.PermuteVar16x32(s3, idx), b3);
                idx += two;
            }
        }
        Horizontal.Sum4(a0 + b0, a1 + b1, a2 + b2, a3 + b3, results);
        if (nb - b >= ShortStep)
        {
            Vector512<float>* t = stackalloc Vector512<float>[4];
            LastBlocks(wb, nb - b, b >= 16, xs, 4, b, t);
            AddSums4(t, results);
            return true;
        }
        for (; b < nb; b++, wb += 34)
        {
            float hw = Half(wb);
            results[0] += Block256(wb, q0 + 32 * b, hw * d0[b]);
            results[1] += Block256(wb, q1 + 32 * b, hw * d1[b]);
            results[2] += Block256(wb, q2 + 32 * b, hw * d2[b]);
            results[3] += Block256(wb, q3 + 32 * b, hw * d3[b]);
        }
        return true;
    }

    /// <summary><see cref="Pair"/> for four activation rows against the same two weight blocks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PairX4(byte* w, sbyte* x0, sbyte* x1, sbyte* x2, sbyte* x3, Vector512<short> ones,
                               out Vector512<float> p0, out Vector512<float> p1, out Vector512<float> p2, out Vector512<float> p3)
    {
        var wv = Avx512F.InsertVector256(Vector256.Load((sbyte*)(w + 2)).ToVector512Unsafe(), Vector256.Load((sbyte*)(w + 36)), 1);
        var aw = Vector512.Abs(wv).AsByte();
        p0 = Signed(aw, wv, Vector512.Load(x0), ones);
        p1 = Signed(aw, wv, Vector512.Load(x1), ones);
        p2 = Signed(aw, wv, Vector512.Load(x2), ones);
        p3 = Signed(aw, wv, Vector512.Load(x3), ones);
    }

    /// <summary>|w| * (sign(w) x) summed to int32 lanes. The sign mask is the compare written here, once per row: the JIT
    /// then keeps it in a mask register and negates x with one masked vpsubb; a mask computed once and shared by the four
    /// rows was turned into a vector (vpmovm2b) and cost a subtract and a vpternlogd per row (dot-tune Q8_0 x4, medians
    /// of 5 alternated runs: 576 wide 40.6 -> 52.4, 2048 wide 68.1 -> 76.2 G weights/s).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Signed(Vector512<byte> aw, Vector512<sbyte> wv, Vector512<sbyte> xv, Vector512<short> ones) =>
        Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(aw, Vector512.ConditionalSelect(Vector512.LessThan(wv, Vector512<sbyte>.Zero), Vector512<sbyte>.Zero - xv, xv)), ones));

    // Lanes [8j, 8j+8) of a block pair take scale 2j (first half) and 2j+1: indices into 16 per-block scales.
    internal static readonly Vector512<int> PairIndex = Vector512.Create(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);

    // Two blocks per zmm, 16 blocks per step (their f16 scales gathered and multiplied by d_x at once). vpmaddubsw
    // multiplies unsigned by signed bytes, so the weight's sign moves onto the activation: |w| * (sign(w) x); pairs sum
    // to at most 2*128*127 < 2^15, so the int16 step never saturates.
    private static float DotQ8_512(byte* w, sbyte* q, float* d, int n)
    {
        Vector512<float> acc0 = default, acc1 = default;
        var ones = Vector512.Create((short)1);
        var two = Vector512.Create(2);
        int nb = n / 32, b = 0;
        for (; b + 16 <= nb; b += 16, d += 16)
        {
            var scales = BlockMath.Halves16(w, 34) * Vector512.Load(d);
            var idx = PairIndex;
            for (int j = 0; j < 8; j += 2, w += 136, q += 128)
            {
                Prefetch(w); Prefetch(w + 64);
                acc0 = Avx512F.FusedMultiplyAdd(Pair(w, q, ones), Avx512F.PermuteVar16x32(scales, idx), acc0);
                idx += two;
                Prefetch(w + 128);
                acc1 = Avx512F.FusedMultiplyAdd(Pair(w + 68, q + 64, ones), Avx512F.PermuteVar16x32(scales, idx), acc1);
                idx += two;
            }
        }
        float r = Horizontal.Sum(acc0 + acc1);
        if (nb - b >= ShortStep)
        {
            var x = new Q8Row(q - 32 * b, d - b, null);
            Vector512<float> t;
            LastBlocks(w, nb - b, b >= 16, &x, 1, b, &t);
            return r + Horizontal.Sum(t);
        }
        for (int i = 0; b < nb; b++, i++, w += 34, q += 32) r += Block256(w, q, Half(w) * d[i]);
        return r;
    }

    /// <summary>The last m (4-15) blocks of a row (at w; block b of the activation rows) as a short step for
    /// <paramref name="rows"/> activation rows: t[r] = the pairs' lanes times their scales, summed over the pairs (a lone
    /// last block is a pair with a zero second half; nothing past the row is read). Each row's operations are the same
    /// whatever the row count, so one-row and four-row dots keep the same bits. Not inlined: once per weight row.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void LastBlocks(byte* w, int m, bool after16, Q8Row* xs, int rows, int b, Vector512<float>* t)
    {
        var h = BlockMath.LastHalves(w, 34, m, after16);
        var ones = Vector512.Create((short)1);
        var two = Vector512.Create(2);
        for (int r = 0; r < rows; r++)
        {
            var s = h * Load16(xs[r].D + b, m);
            sbyte* q = xs[r].Q + 32 * b;
            byte* wp = w;
            var idx = PairIndex;
            Vector512<float> acc = default;
            int j = 0;
            for (; j + 2 <= m; j += 2, wp += 68, q += 64, idx += two) acc = Avx512F.FusedMultiplyAdd(Pair(wp, q, ones), Avx512F.PermuteVar16x32(s, idx), acc);
            if (j < m) acc = Avx512F.FusedMultiplyAdd(Lone(wp, q, ones), Avx512F.PermuteVar16x32(s, idx), acc);
            t[r] = acc;
        }
    }

    /// <summary>The 16 int32 partial sums of two blocks (8 lanes each) as floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Pair(byte* w, sbyte* q, Vector512<short> ones) =>
        Signed(Avx512F.InsertVector256(Vector256.Load((sbyte*)(w + 2)).ToVector512Unsafe(), Vector256.Load((sbyte*)(w + 36)), 1), q, ones);

    /// <summary><see cref="Pair"/> for one block (the last of an odd count): the second half zero, nothing past the block
    /// read from the weights (the activations' 64 bytes stay inside their row, padded to 64).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Lone(byte* w, sbyte* q, Vector512<short> ones) => Signed(Vector256.Load((sbyte*)(w + 2)).ToVector512(), q, ones);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Signed(Vector512<sbyte> wv, sbyte* q, Vector512<short> ones) =>
        Signed(Vector512.Abs(wv).AsByte(), wv, Vector512.Load(q), ones);

    // AVX2: 8 blocks per step, their f16 scales converted at once and multiplied by d_x, each block's scale broadcast
    // from a stack copy; even and odd blocks on two accumulators (an FMA's latency is hidden behind the other's).
    private static float DotQ8_256(byte* w, sbyte* q, float* d, int n)
    {
        Vector256<float> acc0 = default, acc1 = default;
        var ones = Vector256.Create((short)1);
        float* sc = stackalloc float[8];
        int nb = n / 32, b = 0;
        for (; b + 8 <= nb; b += 8)
        {
            (Halves8(w, 34) * Vector256.Load(d + b)).Store(sc);
            float* sp = sc; // scale pointers (not sc[j]): one broadcast instruction per block
            for (int j = 0; j < 4; j++, w += 68, q += 64, sp += 2)
            {
                Prefetch(w); Prefetch(w + 64);
                var wv = Vector256.Load((sbyte*)(w + 2));
                acc0 = Fma.MultiplyAdd(Sums256(Avx2.Abs(wv), wv, Vector256.Load(q), ones), Vector256.Create(sp[0]), acc0);
                wv = Vector256.Load((sbyte*)(w + 36));
                acc1 = Fma.MultiplyAdd(Sums256(Avx2.Abs(wv), wv, Vector256.Load(q + 32), ones), Vector256.Create(sp[1]), acc1);
            }
        }
        for (; b < nb; b++, w += 34, q += 32) // the last blocks on the vector accumulator too (no horizontal sum per block)
        {
            var wv = Vector256.Load((sbyte*)(w + 2));
            acc0 = Fma.MultiplyAdd(Sums256(Avx2.Abs(wv), wv, Vector256.Load(q), ones), Vector256.Create(Half(w) * d[b]), acc0);
        }
        return Horizontal.Sum(acc0 + acc1);
    }

    /// <summary>The 8 int32 partial sums of one block (|w| * (sign(w) x), pairs then quads) as floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Sums256(Vector256<byte> aw, Vector256<sbyte> wv, Vector256<sbyte> xv, Vector256<short> ones) =>
        Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(aw, Avx2.Sign(xv, wv)), ones));

    /// <summary><see cref="DotQ8_256"/> for four activation rows against the same weights, bit for bit per row (the weight
    /// bytes loaded and made absolute once).</summary>
    private static void DotQ8x4_256(byte* w, Q8Row* xs, int n, float* results)
    {
        Vector256<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
        sbyte* q0 = xs[0].Q, q1 = xs[1].Q, q2 = xs[2].Q, q3 = xs[3].Q;
        float* d0 = xs[0].D, d1 = xs[1].D, d2 = xs[2].D, d3 = xs[3].D;
        var ones = Vector256.Create((short)1);
        float* sc = stackalloc float[32];
        int nb = n / 32, b = 0;
        byte* wb = w;
        for (; b + 8 <= nb; b += 8)
        {
            var h = Halves8(wb, 34);
            (h * Vector256.Load(d0 + b)).Store(sc); (h * Vector256.Load(d1 + b)).Store(sc + 8);
            (h * Vector256.Load(d2 + b)).Store(sc + 16); (h * Vector256.Load(d3 + b)).Store(sc + 24);
            float* sp = sc; // scale pointers (not sc[j]): one broadcast instruction per block and row
            for (int j = 0; j < 8; j += 2, wb += 68, sp += 2)
            {
                Prefetch(wb); Prefetch(wb + 64);
                int o = 32 * (b + j);
                var wv = Vector256.Load((sbyte*)(wb + 2));
                var aw = Avx2.Abs(wv);
                a0 = Fma.MultiplyAdd(Sums256(aw, wv, Vector256.Load(q0 + o), ones), Vector256.Create(sp[0]), a0);
                a1 = Fma.MultiplyAdd(Sums256(aw, wv, Vector256.Load(q1 + o), ones), Vector256.Create(sp[8]), a1);
                a2 = Fma.MultiplyAdd(Sums256(aw, wv, Vector256.Load(q2 + o), ones), Vector256.Create(sp[16]), a2);
                a3 = Fma.MultiplyAdd(Sums256(aw, wv, Vector256.Load(q3 + o), ones), Vector256.Create(sp[24]), a3);
                wv = Vector256.Load((sbyte*)(wb + 36));
                aw = Avx2.Abs(wv);
                b0 = Fma.MultiplyAdd(Sums256(aw, wv, Vector256.Load(q0 + o + 32), ones), Vector256.Create(sp[1]), b0);
                b1 = Fma.MultiplyAdd(Sums256(aw, wv, Vector256.Load(q1 + o + 32), ones), Vector256.Create(sp[9]), b1);
                b2 = Fma.MultiplyAdd(Sums256(aw, wv, Vector256.Load(q2 + o + 32), ones), Vector256.Create(sp[17]), b2);
                b3 = Fma.MultiplyAdd(Sums256(aw, wv, Vector256.Load(q3 + o + 32), ones), Vector256.Create(sp[25]), b3);
            }
        }
        for (; b < nb; b++, wb += 34)
        {
            float hw = Half(wb);
            var wv = Vector256.Load((sbyte*)(wb + 2));
            var aw = Avx2.Abs(wv);
            a0 = Fma.MultiplyAdd(Sums256(aw, wv, Vector256.Load(q0 + 32 * b), ones), Vector256.Create(hw * d0[b]), a0);
            a1 = Fma.MultiplyAdd(Sums256(aw, wv, Vector256.Load(q1 + 32 * b), ones), Vector256.Create(hw * d1[b]), a1);
            a2 = Fma.MultiplyAdd(Sums256(aw, wv, Vector256.Load(q2 + 32 * b), ones), Vector256.Create(hw * d2[b]), a2);
            a3 = Fma.MultiplyAdd(Sums256(aw, wv, Vector256.Load(q3 + 32 * b), ones), Vector256.Create(hw * d3[b]), a3);
        }
        results[0] = Horizontal.Sum(a0 + b0); results[1] = Horizontal.Sum(a1 + b1);
        results[2] = Horizontal.Sum(a2 + b2); results[3] = Horizontal.Sum(a3 + b3);
    }

    private static float Block256(byte* w, sbyte* q, float scale)
    {
        var wv = Vector256.Load((sbyte*)(w + 2));
        return Horizontal.Sum(Sums256(Avx2.Abs(wv), wv, Vector256.Load(q), Vector256.Create((short)1))) * scale;
    }
}
