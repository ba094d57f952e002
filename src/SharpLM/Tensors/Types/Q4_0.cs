using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Q4_0: blocks of 32 values in 18 bytes: f16 d, 16 bytes; element j = low nibble of byte j, element j+16 = high nibble;
/// x = d * (q - 8).
/// </summary>
internal static unsafe class Q4_0Type
{
    public static readonly TypeTraits Traits = new(DType.Q4_0, "q4_0", 32, 18, "4-bit blocks of 32 with an f16 scale (18 bytes / 32 values)", 2u)
    {
        Quantize = &Quantize,
        DequantizeNaive = &DequantizeNaive,
        Dequantize = &Dequantize,
        Dot = &Dot,
        DotQ8Block = 32,
        DotQ8 = &DotQ8,
        DotQ8x4 = &DotQ8x4,
        Unpack32 = &Unpack32,
        Int8 = new Int8Form(Signed: false, Max: 15, Offset: 8, HasMin: false),
    };

    /// <summary>The integer GEMM's form (<see cref="TypeTraits.Unpack32"/>): u = the nibbles in element order, offset 8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // full speed from the first call: a prompt's prefill is over before tier 1 arrives
    public static void Unpack32(byte* src, int n, byte* u, float* d, float* m)
    {
        var mask = Vector128.Create((byte)15);
        for (int b = 0; b < n / 32; b++, src += 18, u += 32)
        {
            d[b] = Half(src);
            var v = Vector128.Load(src + 2);
            (v & mask).Store(u);
            ((v.AsUInt16() >>> 4).AsByte() & mask).Store(u + 16);
        }
    }

    /// <summary>Reference quantizer (ggml quantize_row_q4_0_ref): src (n) f32 -> dst (RowBytes(n)).</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        for (int b = 0; b < src.Length / 32; b++) QuantizeBlock(src.Slice(b * 32, 32), dst.Slice(b * 18, 18));
    }

    private static void QuantizeBlock(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0, max = 0;
        foreach (var v in x)
            if (amax < Math.Abs(v)) { amax = Math.Abs(v); max = v; }
        float d = max / -8;
        float id = d != 0 ? 1 / d : 0;
        WriteHalf(y, d);
        for (int j = 0; j < 16; j++)
        {
            int x0 = Math.Min(15, (int)(sbyte)(x[j] * id + 8.5f));
            int x1 = Math.Min(15, (int)(sbyte)(x[16 + j] * id + 8.5f));
            y[2 + j] = (byte)(x0 | (x1 << 4));
        }
    }

    /// <summary>The readable oracle (ggml dequantize_row_q4_0): src (RowBytes(n)) -> dst (n) f32.</summary>
    public static void DequantizeNaive(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = dst.Length;
        // block (18 bytes): f16 d, 16 bytes; element j = low nibble of byte j, element j+16 = high nibble; x = d * (q - 8)
        for (int b = 0; b < n / 32; b++)
        {
            var blk = src.Slice(b * 18, 18);
            float d = H(blk, 0);
            for (int j = 0; j < 16; j++)
            {
                dst[b * 32 + j] = ((blk[2 + j] & 0x0F) - 8) * d;
                dst[b * 32 + j + 16] = ((blk[2 + j] >> 4) - 8) * d;
            }
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
        for (int b = 0; b < n / 32; b++, src += 18, dst += 32)
        {
            float d = Half(src);
            byte* q = src + 2;
            if (isa == KernelIsa.Avx512)
            {
                var vd = Vector512.Create(d);
                var v = Avx512F.ConvertToVector512Int32(Vector128.Load(q));
                var eight = Vector512.Create(8);
                (Avx512F.ConvertToVector512Single((v & Vector512.Create(15)) - eight) * vd).Store(dst);
                (Avx512F.ConvertToVector512Single((v >>> 4) - eight) * vd).Store(dst + 16);
            }
            else
            {
                var vd = Vector256.Create(d);
                var eight = Vector256.Create(8);
                for (int j = 0; j < 16; j += 8)
                {
                    var v = Avx2.ConvertToVector256Int32(q + j);
                    (Avx.ConvertToVector256Single((v & Vector256.Create(15)) - eight) * vd).Store(dst + j);
                    (Avx.ConvertToVector256Single((v >>> 4) - eight) * vd).Store(dst + 16 + j);
                }
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
        var m15 = Vector512.Create(15);
        var eight = Vector512.Create(8);
        for (int b = 0; b < n / 32; b++, w += 18, x += 32)
        {
            Prefetch(w);
            var v = Avx512F.ConvertToVector512Int32(Vector128.Load(w + 2));
            var p = Avx512F.ConvertToVector512Single((v & m15) - eight) * Vector512.Load(x);
            p = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single((v >>> 4) - eight), Vector512.Load(x + 16), p);
            if ((b & 1) == 0) acc0 = Avx512F.FusedMultiplyAdd(Vector512.Create(Half(w)), p, acc0);
            else acc1 = Avx512F.FusedMultiplyAdd(Vector512.Create(Half(w)), p, acc1);
        }
        return Horizontal.Sum(acc0 + acc1);
    }

    public static float Dot256(byte* w, float* x, int n)
    {
        Vector256<float> acc = default;
        var m15 = Vector256.Create(15);
        var eight = Vector256.Create(8);
        for (int b = 0; b < n / 32; b++, w += 18, x += 32)
        {
            Prefetch(w);
            var v0 = Avx2.ConvertToVector256Int32(w + 2);
            var v1 = Avx2.ConvertToVector256Int32(w + 10);
            var p = Avx.ConvertToVector256Single((v0 & m15) - eight) * Vector256.Load(x);
            p = Fma.MultiplyAdd(Avx.ConvertToVector256Single((v1 & m15) - eight), Vector256.Load(x + 8), p);
            p = Fma.MultiplyAdd(Avx.ConvertToVector256Single((v0 >>> 4) - eight), Vector256.Load(x + 16), p);
            p = Fma.MultiplyAdd(Avx.ConvertToVector256Single((v1 >>> 4) - eight), Vector256.Load(x + 24), p);
            acc = Fma.MultiplyAdd(Vector256.Create(Half(w)), p, acc);
        }
        return Horizontal.Sum(acc);
    }

    /// <summary>w (n elements) . x quantized in blocks of 32: per block d_w*d_x * sum (q_w - 8) q_x, in integers.</summary>
    public static float DotQ8(byte* w, Q8Row x, int n, KernelIsa isa, float* rowBuf) => isa switch
    {
        KernelIsa.Avx512 => DotQ8_512(w, x.Q, x.D, x.Sums, n),
        KernelIsa.Avx2 => DotQ8_256(w, x.Q, x.D, x.Sums, n),
        _ => Q8Activations.DotGeneric(Traits, w, x, n, 32, isa, rowBuf),
    };

    // Word shifts of the 128-bit lanes [b0, b0, b1, b1]: low nibbles, high nibbles of each block, the element order of q_x.
    private static readonly Vector512<ushort> s_nibbleShift = Vector512.Create((ushort)0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);

    // 16 blocks per step, each block's sum (q_w - 8) q_x exact in int32 (as llama.cpp's and the AVX2 path's), then one
    // conversion and one FMA with d_w*d_x for the 16: the nibbles (0..15) times q_x with vpmaddubsw, two blocks per zmm
    // (word sums <= 2*15*127 = 3810), then the eight pairs' words folded into block order in 16 bits (Folded: three
    // levels of two shuffles and an add, words <= 8*3810 = 30480 < 2^15) and widened once. Per row and 16 blocks that is
    // 8 vpmaddubsw + 21 folds + 5 where converting each pair's 16 lanes cost 8 x 4 (and the -8 offset is subtracted in
    // integers, from the activations' 16-sums, instead of a float sum that cancels).
    private static float DotQ8_512(byte* w, sbyte* q, float* d, short* sums, int n)
    {
        Vector512<float> acc = default;
        int nb = n / 32, b = 0;
        for (; b + 16 <= nb; b += 16, w += 288, q += 512)
        {
            var scales = BlockMath.Halves16(w, 18) * Vector512.Load(d + b);
            var (z0, z1, z2, z3, z4, z5, z6, z7) = Nibbles16(w);
            acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(BlockSums16(z0, z1, z2, z3, z4, z5, z6, z7, q, sums + 2 * b)), scales, acc);
        }
        float r = Horizontal.Sum(acc);
        if (nb - b >= ShortStep)
        {
            var x = new Q8Row(q - 32 * b, d, sums);
            Vector512<float> t;
            LastBlocks(w, nb - b, b >= 16, &x, 1, b, &t);
            return r + Horizontal.Sum(t);
        }
        for (; b < nb; b++, w += 18, q += 32) r += Block256(w, q, Half(w) * d[b]);
        return r;
    }

    /// <summary>results[r] = <see cref="DotQ8"/>(w, xs[r]) for r &lt; 4, bit for bit (the same operations per row, the
    /// nibbles unpacked once for the four rows). False for the scalar variant.</summary>
    [SkipLocalsInit] // the short step's buffers need no zeroing
    public static bool DotQ8x4(byte* w, Q8Row* xs, int n, KernelIsa isa, float* results)
    {
        if (isa == KernelIsa.Avx2) { DotQ8x4_256(w, xs, n, results); return true; }
        if (isa != KernelIsa.Avx512) return false;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        sbyte* q0 = xs[0].Q, q1 = xs[1].Q, q2 = xs[2].Q, q3 = xs[3].Q;
        float* d0 = xs[0].D, d1 = xs[1].D, d2 = xs[2].D, d3 = xs[3].D;
        short* u0 = xs[0].Sums, u1 = xs[1].Sums, u2 = xs[2].Sums, u3 = xs[3].Sums;
        int nb = n / 32, b = 0;
        for (; b + 16 <= nb; b += 16, w += 288)
        {
            var h = BlockMath.Halves16(w, 18);
            var (z0, z1, z2, z3, z4, z5, z6, z7) = Nibbles16(w);
            int o = 32 * b;
            a0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(BlockSums16(z0, z1, z2, z3, z4, z5, z6, z7, q0 + o, u0 + 2 * b)), h * Vector512.Load(d0 + b), a0);
            a1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(BlockSums16(z0, z1, z2, z3, z4, z5, z6, z7, q1 + o, u1 + 2 * b)), h * Vector512.Load(d1 + b), a1);
            a2 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(BlockSums16(z0, z1, z2, z3, z4, z5, z6, z7, q2 + o, u2 + 2 * b)), h * Vector512.Load(d2 + b), a2);
            a3 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(BlockSums16(z0, z1, z2, z3, z4, z5, z6, z7, q3 + o, u3 + 2 * b)), h * Vector512.Load(d3 + b), a3);
        }
        Horizontal.Sum4(a0, a1, a2, a3, results);
        if (nb - b >= ShortStep)
        {
            Vector512<float>* t = stackalloc Vector512<float>[4];
            LastBlocks(w, nb - b, b >= 16, xs, 4, b, t);
            AddSums4(t, results);
            return true;
        }
        for (; b < nb; b++, w += 18)
        {
            float hw = Half(w);
            results[0] += Block256(w, q0 + 32 * b, hw * d0[b]);
            results[1] += Block256(w, q1 + 32 * b, hw * d1[b]);
            results[2] += Block256(w, q2 + 32 * b, hw * d2[b]);
            results[3] += Block256(w, q3 + 32 * b, hw * d3[b]);
        }
        return true;
    }

    /// <summary>The last m (1-15) blocks of a row (at w; block b of the activation rows) as a short 16-block step, for
    /// <paramref name="rows"/> activation rows: t[r] = each block's exact sum times its scales, lanes m.. zero. The missing
    /// pairs multiply nothing (no load), a lone last block is a pair with a zero second half. Not inlined: once per weight
    /// row, and its registers would crowd the main loop's.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    private static void LastBlocks(byte* w, int m, bool after16, Q8Row* xs, int rows, int b, Vector512<float>* t)
    {
        var h = BlockMath.LastHalves(w, 18, m, after16);
        Vector512<byte>* z = stackalloc Vector512<byte>[8];
        int pairs = (m + 1) / 2;
        for (int j = 0; j < 8; j++)
            z[j] = j < m / 2 ? Nibbles(w + 36 * j) : j < pairs ? Nibble(w + 36 * j) : default;
        for (int r = 0; r < rows; r++)
        {
            sbyte* q = xs[r].Q + 32 * b;
            Vector512<short> Words(int j) => j < pairs ? Avx512BW.MultiplyAddAdjacent(z[j], Vector512.Load(q + 64 * j)) : default;
            var sums = Folded(Words(0), Words(1), Words(2), Words(3), Words(4), Words(5), Words(6), Words(7), xs[r].Sums + 2 * b);
            t[r] = Avx512F.ConvertToVector512Single(sums) * (h * Load16(xs[r].D + b, m));
        }
    }

    /// <summary>The nibbles of 16 blocks (at w, w + 18, ...) as eight pairs, each in the element order of q_x, the rows
    /// prefetched ahead.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<byte>, Vector512<byte>, Vector512<byte>, Vector512<byte>, Vector512<byte>, Vector512<byte>, Vector512<byte>, Vector512<byte>) Nibbles16(byte* w)
    {
        Prefetch(w); Prefetch(w + 64); Prefetch(w + 128); Prefetch(w + 192); Prefetch(w + 256);
        return (Nibbles(w), Nibbles(w + 36), Nibbles(w + 72), Nibbles(w + 108), Nibbles(w + 144), Nibbles(w + 180), Nibbles(w + 216), Nibbles(w + 252));
    }

    /// <summary>Sum (q_w - 8) q_x of each of 16 blocks, exact, in block order: the pairs' vpmaddubsw words folded (see
    /// <see cref="DotQ8_512"/>), widened, minus 8 times the activations' block sums (from their 16-sums).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> BlockSums16(Vector512<byte> z0, Vector512<byte> z1, Vector512<byte> z2, Vector512<byte> z3,
                                              Vector512<byte> z4, Vector512<byte> z5, Vector512<byte> z6, Vector512<byte> z7, sbyte* q, short* sums) =>
        Folded(Avx512BW.MultiplyAddAdjacent(z0, Vector512.Load(q)), Avx512BW.MultiplyAddAdjacent(z1, Vector512.Load(q + 64)),
               Avx512BW.MultiplyAddAdjacent(z2, Vector512.Load(q + 128)), Avx512BW.MultiplyAddAdjacent(z3, Vector512.Load(q + 192)),
               Avx512BW.MultiplyAddAdjacent(z4, Vector512.Load(q + 256)), Avx512BW.MultiplyAddAdjacent(z5, Vector512.Load(q + 320)),
               Avx512BW.MultiplyAddAdjacent(z6, Vector512.Load(q + 384)), Avx512BW.MultiplyAddAdjacent(z7, Vector512.Load(q + 448)), sums);

    /// <summary>The eight pairs' vpmaddubsw words (blocks 2j, 2j+1 in p_j) folded into block order and widened, minus 8
    /// times the activations' block sums: 16 exact int32 block sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Folded(Vector512<short> p0, Vector512<short> p1, Vector512<short> p2, Vector512<short> p3,
                                         Vector512<short> p4, Vector512<short> p5, Vector512<short> p6, Vector512<short> p7, short* sums)
    {
        // level 1: two pairs (blocks 4k..4k+3, 16 words each) -> 8 words per block; level 2: 4 words per block (blocks
        // 0-7, 8-15); level 3: 2 words per block (0-15), widened to one int32 each
        var g0 = Fold64(Fold128(p0, p1), Fold128(p2, p3));
        var g1 = Fold64(Fold128(p4, p5), Fold128(p6, p7));
        var words = Avx512F.PermuteVar16x32x2(g0.AsInt32(), Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), g1.AsInt32()).AsInt16()
                  + Avx512F.PermuteVar16x32x2(g0.AsInt32(), Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), g1.AsInt32()).AsInt16();
        return Avx512BW.MultiplyAddAdjacent(words, Vector512<short>.One) - Avx512BW.MultiplyAddAdjacent(Vector512.Load(sums), Vector512.Create((short)8));
    }

    /// <summary>Words of blocks [A, B] and [C, D] (16 each) -> [A, B, C, D] with 8 words each: word i + word i + 8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> Fold128(Vector512<short> p, Vector512<short> q) =>
        Avx512F.Shuffle4x128(p.AsInt32(), q.AsInt32(), 0x88).AsInt16() + Avx512F.Shuffle4x128(p.AsInt32(), q.AsInt32(), 0xDD).AsInt16();

    /// <summary>Four blocks of 8 words in each of p and q -> eight blocks of 4 words: word i + word i + 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> Fold64(Vector512<short> p, Vector512<short> q) =>
        Avx512F.PermuteVar8x64x2(p.AsInt64(), Vector512.Create(0L, 2, 4, 6, 8, 10, 12, 14), q.AsInt64()).AsInt16() + Avx512F.PermuteVar8x64x2(p.AsInt64(), Vector512.Create(1L, 3, 5, 7, 9, 11, 13, 15), q.AsInt64()).AsInt16();

    /// <summary><see cref="Nibbles"/> of one block (the last of an odd count), the second half zero: nothing past the
    /// block is read.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Nibble(byte* w)
    {
        var raw = Vector128.Load(w + 2).ToVector256().ToVector512().AsInt32();
        return Avx512BW.ShiftRightLogicalVariable(Avx512F.Shuffle4x128(raw, raw, 0x50).AsUInt16(), s_nibbleShift).AsByte() & Vector512.Create((byte)0x0F);
    }

    /// <summary>The nibbles of two blocks (at w and w + 18) in the element order of q_x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Nibbles(byte* w)
    {
        var raw = Avx512F.InsertVector128(Vector128.Load(w + 2).ToVector256Unsafe(), Vector128.Load(w + 20), 1).ToVector512Unsafe().AsInt32();
        return Avx512BW.ShiftRightLogicalVariable(Avx512F.Shuffle4x128(raw, raw, 0x50).AsUInt16(), s_nibbleShift).AsByte() & Vector512.Create((byte)0x0F);
    }

    // AVX2, after ggml_vec_dot_q4_0_q8_0 with fewer operations per block: 8 blocks per step, as four pairs (A at w, B at
    // w + 18). Per pair, one 16-byte load and one vinserti128 hold [A's 16 bytes | B's], one shift and two ands give their
    // low and high nibbles (0..15, unsigned) for both; the activations are put in the same order by two vpblendd of three
    // loads ([A 0..15 | B 0..15], [A 16..31 | B 16..31]), and two vpmaddubsw and one vpaddw give 16 words of pair sums
    // (|.| <= 7680). Three vphaddw fold the four pairs' words (|.| <= 30720: no overflow) and one vpmaddwd gives the 8
    // blocks' integer sums; one vpermd puts them in block order, the -8 offset is subtracted exactly in int32 (8 times the
    // activations' 32-sums, one vpmaddwd of the 16-sums), then one conversion and one FMA with d_w * d_x of the 8 blocks
    // (their f16 scales converted at once). Each block's sum is exact, as llama.cpp's (before: the offset was a separate
    // float sum, which cancels). Per 8 blocks: 46 vector operations besides the scales' conversion (before: 76).
    // AggressiveOptimization: without a stackalloc the kernels start in tier 0 and a short run (a dot-tune round, a CLI
    // prompt) ends before tier 1 arrives (measured: the four-row kernel at 6-8 G weights/s instead of 30).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotQ8_256(byte* w, sbyte* q, float* d, short* sums, int n)
    {
        Vector256<float> acc = default;
        int nb = n / 32, b = 0;
        for (; b + 8 <= nb; b += 8, w += 144, q += 256)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128);
            var (lo, hi) = Nibbles2(w);
            var u = PairWords(lo, hi, q);
            (lo, hi) = Nibbles2(w + 36);
            u = Avx2.HorizontalAdd(u, PairWords(lo, hi, q + 64));
            (lo, hi) = Nibbles2(w + 72);
            var t = PairWords(lo, hi, q + 128);
            (lo, hi) = Nibbles2(w + 108);
            t = Avx2.HorizontalAdd(t, PairWords(lo, hi, q + 192));
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Totals8(u, t, sums + 2 * b)), Halves8(w, 18) * Vector256.Load(d + b), acc);
        }
        for (; b < nb; b++, w += 18, q += 32) // the last blocks one by one (offset in the block, exact too)
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(BlockSums(w, q)), Vector256.Create(Half(w) * d[b]), acc);
        return Horizontal.Sum(acc);
    }

    /// <summary>The nibbles of two blocks (at w and w + 18): (low, high), each [A's 16 | B's 16].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<byte> Lo, Vector256<byte> Hi) Nibbles2(byte* w)
    {
        var raw = Vector256.Create(Vector128.Load(w + 2), Vector128.Load(w + 20));
        var m4 = Vector256.Create((byte)0x0F);
        return (raw & m4, (raw.AsUInt16() >>> 4).AsByte() & m4);
    }

    /// <summary>sum q_w q_x (no offset) of two blocks (A's activations at q, B's at q + 32) as 16 words: [A's 8 | B's 8],
    /// each |.| &lt;= 7680.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> PairWords(Vector256<byte> lo, Vector256<byte> hi, sbyte* q)
    {
        var m = Vector256.Load(q + 16).AsInt32(); // [A 16..31 | B 0..15]
        var x0 = Avx2.Blend(Vector256.Load(q).AsInt32(), m, 0xF0).AsSByte(); // [A 0..15 | B 0..15]
        var x1 = Avx2.Blend(m, Vector256.Load(q + 32).AsInt32(), 0xF0).AsSByte(); // [A 16..31 | B 16..31]
        return Avx2.MultiplyAddAdjacent(lo, x0) + Avx2.MultiplyAddAdjacent(hi, x1);
    }

    /// <summary>The 8 blocks' sums (q_w - 8) q_x in block order, from the folded words of pairs 0, 1 (u) and 2, 3 (t) and
    /// the activations' 16-sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Totals8(Vector256<short> u, Vector256<short> t, short* sums)
    {
        // lanes of the vpmaddwd: blocks [0, 2, 4, 6 | 1, 3, 5, 7]
        var s = Avx2.MultiplyAddAdjacent(Avx2.HorizontalAdd(u, t), Vector256.Create((short)1));
        return Avx2.PermuteVar8x32(s, Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)) - Avx2.MultiplyAddAdjacent(Vector256.Load(sums), Vector256.Create((short)8));
    }

    /// <summary><see cref="DotQ8_256"/> for four activation rows, bit for bit per row (the nibbles unpacked and the scales
    /// converted once; each row's integer sums are exact and its float operations those of the one-row dot).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotQ8x4_256(byte* w, Q8Row* xs, int n, float* results)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        sbyte* q0 = xs[0].Q, q1 = xs[1].Q, q2 = xs[2].Q, q3 = xs[3].Q;
        float* d0 = xs[0].D, d1 = xs[1].D, d2 = xs[2].D, d3 = xs[3].D;
        short* u0 = xs[0].Sums, u1 = xs[1].Sums, u2 = xs[2].Sums, u3 = xs[3].Sums;
        int nb = n / 32, b = 0;
        for (; b + 8 <= nb; b += 8, w += 144, q0 += 256, q1 += 256, q2 += 256, q3 += 256)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128);
            var (lo, hi) = Nibbles2(w);
            Vector256<short> p0 = PairWords(lo, hi, q0), p1 = PairWords(lo, hi, q1), p2 = PairWords(lo, hi, q2), p3 = PairWords(lo, hi, q3);
            (lo, hi) = Nibbles2(w + 36);
            p0 = Avx2.HorizontalAdd(p0, PairWords(lo, hi, q0 + 64)); p1 = Avx2.HorizontalAdd(p1, PairWords(lo, hi, q1 + 64));
            p2 = Avx2.HorizontalAdd(p2, PairWords(lo, hi, q2 + 64)); p3 = Avx2.HorizontalAdd(p3, PairWords(lo, hi, q3 + 64));
            (lo, hi) = Nibbles2(w + 72);
            Vector256<short> t0 = PairWords(lo, hi, q0 + 128), t1 = PairWords(lo, hi, q1 + 128), t2 = PairWords(lo, hi, q2 + 128), t3 = PairWords(lo, hi, q3 + 128);
            (lo, hi) = Nibbles2(w + 108);
            var h = Halves8(w, 18);
            t0 = Avx2.HorizontalAdd(t0, PairWords(lo, hi, q0 + 192));
            a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Totals8(p0, t0, u0 + 2 * b)), h * Vector256.Load(d0 + b), a0);
            t1 = Avx2.HorizontalAdd(t1, PairWords(lo, hi, q1 + 192));
            a1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Totals8(p1, t1, u1 + 2 * b)), h * Vector256.Load(d1 + b), a1);
            t2 = Avx2.HorizontalAdd(t2, PairWords(lo, hi, q2 + 192));
            a2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Totals8(p2, t2, u2 + 2 * b)), h * Vector256.Load(d2 + b), a2);
            t3 = Avx2.HorizontalAdd(t3, PairWords(lo, hi, q3 + 192));
            a3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Totals8(p3, t3, u3 + 2 * b)), h * Vector256.Load(d3 + b), a3);
        }
        for (; b < nb; b++, w += 18, q0 += 32, q1 += 32, q2 += 32, q3 += 32)
        {
            float hw = Half(w);
            a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(BlockSums(w, q0)), Vector256.Create(hw * d0[b]), a0);
            a1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(BlockSums(w, q1)), Vector256.Create(hw * d1[b]), a1);
            a2 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(BlockSums(w, q2)), Vector256.Create(hw * d2[b]), a2);
            a3 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(BlockSums(w, q3)), Vector256.Create(hw * d3[b]), a3);
        }
        results[0] = Horizontal.Sum(a0); results[1] = Horizontal.Sum(a1); results[2] = Horizontal.Sum(a2); results[3] = Horizontal.Sum(a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)] // called from the AggressiveOptimization kernels: a call would stay in tier 0
    private static Vector256<int> BlockSums(byte* w, sbyte* q)
    {
        var raw = Vector128.Load(w + 2);
        var m4 = Vector128.Create((byte)0x0F);
        var z = Vector256.Create(raw & m4, (raw.AsUInt16() >>> 4).AsByte() & m4);
        var xv = Vector256.Load(q);
        var p = Avx2.MultiplyAddAdjacent(z, xv) - Avx2.MultiplyAddAdjacent(Vector256.Create((byte)8), xv);
        return Avx2.MultiplyAddAdjacent(p, Vector256.Create((short)1));
    }

    /// <summary>One block's sum (q_w - 8) q_x, exact, times its scale (the last blocks of a row, fewer than
    /// <see cref="ShortStep"/>).</summary>
    private static float Block256(byte* w, sbyte* q, float scale) => Horizontal.Sum(Avx.ConvertToVector256Single(BlockSums(w, q))) * scale;
}
