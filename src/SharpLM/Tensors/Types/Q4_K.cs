using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>
/// Q4_K: super-blocks of 256 values in 144 bytes: f16 d, f16 dmin, u8 scales[12] (8 6-bit scales and mins), u8 qs[128].
/// Elements 64g..64g+31 = low nibbles of qs[32g..32g+31] (sub-block 2g), the next 32 = high nibbles (2g+1);
/// x = d*scale*q - dmin*min.
/// </summary>
internal static unsafe class Q4_KType
{
    public static readonly TypeTraits Traits = new(DType.Q4_K, "q4_k", 256, 144, "4-bit k-quant (144 bytes / 256 values)", 15u)
    {
        Quantize = &Quantize,
        DequantizeNaive = &DequantizeNaive,
        Dequantize = &Dequantize,
        Dot = &Dot,
        DotQ8Block = 256,
        DotQ8 = &DotQ8,
        DotQ8x4 = &DotQ8x4,
        Unpack32 = &Unpack32,
        Int8 = new Int8Form(Signed: false, Max: 15, Offset: 0, HasMin: true),
    };

    /// <summary>Reference quantizer (ggml quantize_row_q4_k_ref): src (n) f32 -> dst (RowBytes(n)).</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        for (int b = 0; b < src.Length / 256; b++) QuantizeBlock(src.Slice(b * 256, 256), dst.Slice(b * 144, 144));
    }

    private static void QuantizeBlock(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<byte> L = stackalloc byte[256];
        KQuants.QuantizeScalesMins(x, y, L, 15, -1f, 0.1f, 20);
        var q = y.Slice(16, 128);
        for (int j = 0, qi = 0; j < 256; j += 64, qi += 32)
            for (int l = 0; l < 32; l++) q[qi + l] = (byte)(L[j + l] | (L[j + l + 32] << 4));
    }

    /// <summary>The readable oracle (ggml dequantize_row_q4_k): src (RowBytes(n)) -> dst (n) f32.</summary>
    public static void DequantizeNaive(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = dst.Length;
        // block (144 bytes): f16 d, f16 dmin, u8 scales[12] (8 6-bit scales and mins), u8 qs[128].
        // elements 64g..64g+31 = low nibbles of qs[32g..32g+31] (sub-block 2g), the next 32 = high nibbles (2g+1).
        for (int b = 0; b < n / 256; b++)
        {
            var blk = src.Slice(b * 144, 144);
            float d = H(blk, 0), min = H(blk, 2);
            var scales = blk.Slice(4, 12);
            for (int g = 0; g < 4; g++)
            {
                KQuants.ScaleMinK4(2 * g, scales, out int sc1, out int m1);
                KQuants.ScaleMinK4(2 * g + 1, scales, out int sc2, out int m2);
                float d1 = d * sc1, mm1 = min * m1, d2 = d * sc2, mm2 = min * m2;
                for (int l = 0; l < 32; l++)
                {
                    byte q = blk[16 + 32 * g + l];
                    dst[b * 256 + 64 * g + l] = d1 * (q & 0xF) - mm1;
                    dst[b * 256 + 64 * g + 32 + l] = d2 * (q >> 4) - mm2;
                }
            }
        }
    }

    /// <summary>The integer GEMM's form (<see cref="TypeTraits.Unpack32"/>).</summary>
    public static void Unpack32(byte* src, int n, byte* u, float* d, float* m) => Unpack32_256(src, n, u, d, m, fiveBits: false);

    /// <summary>The integer GEMM's form (<see cref="TypeTraits.Unpack32"/>) of Q4_K / Q5_K: per 32-sub-block j, u = the
    /// nibbles (plus 16 for the 5th bit), d = d*scale_j, m = -dmin*min_j (both exact in f32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // full speed from the first call: a prompt's prefill is over before tier 1 arrives
    internal static void Unpack32_256(byte* src, int n, byte* u, float* d, float* m, bool fiveBits)
    {
        int bb = fiveBits ? 176 : 144;
        var mask = Vector256.Create((byte)15);
        for (int b = 0; b < n / 256; b++, src += bb, u += 256, d += 8, m += 8)
        {
            float dd = Half(src), dmin = Half(src + 2);
            byte* sc = src + 4;
            byte* qh = src + 16;
            byte* qs = src + (fiveBits ? 48 : 16);
            var high = fiveBits ? Vector256.Load(qh) : default;
            for (int g = 0; g < 4; g++)
            {
                KQuants.ScaleMin(sc, 2 * g, out int s1, out int m1);
                KQuants.ScaleMin(sc, 2 * g + 1, out int s2, out int m2);
                d[2 * g] = dd * s1; m[2 * g] = -(dmin * m1);
                d[2 * g + 1] = dd * s2; m[2 * g + 1] = -(dmin * m2);
                StorePair(Vector256.Load(qs + 32 * g), high, g, fiveBits, u + 64 * g);
            }
        }
    }

    /// <summary>Sub-block pair g's 64 values in element order at u, from its 32 nibble bytes v (sub-block 2g low, 2g + 1
    /// high) and, for Q5_K, the block's 32 qh bytes (bits 2g and 2g + 1 -> bit 4): the integer GEMM's form.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StorePair(Vector256<byte> v, Vector256<byte> high, int g, bool fiveBits, byte* u)
    {
        var mask = Vector256.Create((byte)15);
        var lo = v & mask;
        var hi = (v.AsUInt16() >>> 4).AsByte() & mask;
        if (fiveBits)
        {
            lo |= ((((high.AsUInt16() >>> (2 * g)).AsByte() & Vector256<byte>.One).AsUInt16()) << 4).AsByte();
            hi |= ((((high.AsUInt16() >>> (2 * g + 1)).AsByte() & Vector256<byte>.One).AsUInt16()) << 4).AsByte();
        }
        lo.Store(u);
        hi.Store(u + 32);
    }

    /// <summary>Fast dequantization (bit-identical to the oracle): n elements from src -> dst.</summary>
    public static void Dequantize(byte* src, float* dst, int n, KernelIsa isa)
    {
        if (isa == KernelIsa.Scalar) DequantizeNaive(new ReadOnlySpan<byte>(src, checked((int)Traits.RowBytes(n))), new Span<float>(dst, n));
        else DequantizeSimd(src, dst, n, isa);
    }

    private static void DequantizeSimd(byte* src, float* dst, int n, KernelIsa isa)
    {
        for (int b = 0; b < n / 256; b++, src += 144, dst += 256)
        {
            float d = Half(src), min = Half(src + 2);
            var scales = new ReadOnlySpan<byte>(src + 4, 12);
            byte* q = src + 16;
            for (int g = 0; g < 4; g++, q += 32)
            {
                KQuants.ScaleMinK4(2 * g, scales, out int sc1, out int m1);
                KQuants.ScaleMinK4(2 * g + 1, scales, out int sc2, out int m2);
                float d1 = d * sc1, mm1 = min * m1, d2 = d * sc2, mm2 = min * m2;
                float* o = dst + 64 * g;
                if (isa == KernelIsa.Avx512)
                {
                    for (int l = 0; l < 32; l += 16)
                    {
                        var v = Avx512F.ConvertToVector512Int32(Vector128.Load(q + l));
                        (Avx512F.ConvertToVector512Single(v & Vector512.Create(15)) * Vector512.Create(d1) - Vector512.Create(mm1)).Store(o + l);
                        (Avx512F.ConvertToVector512Single(v >>> 4) * Vector512.Create(d2) - Vector512.Create(mm2)).Store(o + 32 + l);
                    }
                }
                else
                {
                    for (int l = 0; l < 32; l += 8)
                    {
                        var v = Avx2.ConvertToVector256Int32(q + l);
                        (Avx.ConvertToVector256Single(v & Vector256.Create(15)) * Vector256.Create(d1) - Vector256.Create(mm1)).Store(o + l);
                        (Avx.ConvertToVector256Single(v >>> 4) * Vector256.Create(d2) - Vector256.Create(mm2)).Store(o + 32 + l);
                    }
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

    // Q4_K: sum over sub-blocks j of d*sc_j * sum(q*x) - dmin*m_j * sum(x).
    public static float Dot512(byte* w, float* x, int n)
    {
        Vector512<float> acc = default, accMin = default;
        var m15 = Vector512.Create(15);
        float* ds = stackalloc float[16];
        for (int b = 0; b < n / 256; b++, w += 144, x += 256)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128);
            KQuants.ScalesMins(w + 4, out ulong scb, out ulong mnb);
            // d*sc_j in ds[0..7], dmin*m_j in ds[8..15], converted together
            var both = Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Create(scb, mnb).AsByte()));
            (both * Vector512.Create(Vector256.Create(Half(w)), Vector256.Create(Half(w + 2)))).Store(ds);
            byte* q = w + 16;
            for (int g = 0; g < 4; g++, q += 32)
            {
                float* xg = x + 64 * g;
                var v0 = Avx512F.ConvertToVector512Int32(Vector128.Load(q));
                var v1 = Avx512F.ConvertToVector512Int32(Vector128.Load(q + 16));
                var x0 = Vector512.Load(xg); var x1 = Vector512.Load(xg + 16); var x2 = Vector512.Load(xg + 32); var x3 = Vector512.Load(xg + 48);
                var lo = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(v1 & m15), x1, Avx512F.ConvertToVector512Single(v0 & m15) * x0);
                var hi = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(v1 >>> 4), x3, Avx512F.ConvertToVector512Single(v0 >>> 4) * x2);
                acc = Avx512F.FusedMultiplyAdd(Vector512.Create(ds[2 * g]), lo, acc);
                acc = Avx512F.FusedMultiplyAdd(Vector512.Create(ds[2 * g + 1]), hi, acc);
                accMin = Avx512F.FusedMultiplyAdd(Vector512.Create(ds[8 + 2 * g]), x0 + x1, accMin);
                accMin = Avx512F.FusedMultiplyAdd(Vector512.Create(ds[9 + 2 * g]), x2 + x3, accMin);
            }
        }
        return Horizontal.Sum(acc - accMin);
    }

    public static float Dot256(byte* w, float* x, int n)
    {
        Vector256<float> acc = default, accMin = default;
        var m15 = Vector256.Create(15);
        for (int b = 0; b < n / 256; b++, w += 144, x += 256)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128);
            float d = Half(w), dmin = Half(w + 2);
            byte* sc = w + 4, q = w + 16;
            for (int g = 0; g < 4; g++, q += 32)
            {
                KQuants.ScaleMin(sc, 2 * g, out int s1, out int m1);
                KQuants.ScaleMin(sc, 2 * g + 1, out int s2, out int m2);
                float* xg = x + 64 * g;
                Vector256<float> lo = default, hi = default, xl = default, xh = default;
                for (int l = 0; l < 32; l += 8)
                {
                    var v = Avx2.ConvertToVector256Int32(q + l);
                    var a = Vector256.Load(xg + l);
                    var c = Vector256.Load(xg + 32 + l);
                    lo = Fma.MultiplyAdd(Avx.ConvertToVector256Single(v & m15), a, lo);
                    hi = Fma.MultiplyAdd(Avx.ConvertToVector256Single(v >>> 4), c, hi);
                    xl += a;
                    xh += c;
                }
                acc = Fma.MultiplyAdd(Vector256.Create(d * s1), lo, acc);
                acc = Fma.MultiplyAdd(Vector256.Create(d * s2), hi, acc);
                accMin = Fma.MultiplyAdd(Vector256.Create(dmin * m1), xl, accMin);
                accMin = Fma.MultiplyAdd(Vector256.Create(dmin * m2), xh, accMin);
            }
        }
        return Horizontal.Sum(acc - accMin);
    }

    /// <summary>w (n elements) . x quantized in blocks of 256:
    /// d_x * (d * sum_j sc_j sum_{i in j} q_i q_x,i - dmin * sum_j m_j sum_{i in j} q_x,i), the sums in integers.</summary>
    public static float DotQ8(byte* w, Q8Row x, int n, KernelIsa isa, float* rowBuf) => isa switch
    {
        KernelIsa.Avx512 => DotQ8_512(w, x.Q, x.D, x.Sums, n, fiveBits: false),
        KernelIsa.Avx2 => DotQ8_256(w, x.Q, x.D, x.Sums, n, fiveBits: false),
        _ => Q8Activations.DotGeneric(Traits, w, x, n, 256, isa, rowBuf),
    };

    /// <summary>Shared by Q4_K (144-byte blocks, nibbles at 16) and Q5_K (176-byte blocks, qh at 16, nibbles at 48, 5th bits
    /// moved into bit 4 of each value).</summary>
    internal static float DotQ8_512(byte* w, sbyte* q, float* d8, short* sums, int n, bool fiveBits) =>
        fiveBits ? DotQ8_512<FiveBits>(w, q, d8, sums, n) : DotQ8_512<FourBits>(w, q, d8, sums, n);

    /// <summary>Blocks whose d and dmin <see cref="ScaleProducts"/> converts ahead of the main loop, at a time.</summary>
    private const int ScaleChunk = 32;

    // Per block: the scales and mins unpacked once (ScalesMinsVector), then four steps of 64 elements, unrolled (each its
    // own permutation constant); d * d_x and dmin * d_x come from a buffer that ScaleProducts fills for up to 32 blocks
    // at a time, eight blocks per conversion (one gather, one 16-lane f16 conversion) instead of one per block. The
    // arithmetic per block is that of the four-row dot (the same products, the same lanes, the same order): a row's
    // result is the same bits alone or in a batch.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier 1 from the first call (see Q4_0's DotQ8_256)
    [SkipLocalsInit] // the scale products' buffer is written before it is read
    private static float DotQ8_512<TBits>(byte* w, sbyte* q, float* d8, short* sums, int n) where TBits : struct, IBits
    {
        Vector512<float> acc = default;
        Vector256<float> accMin = default;
        var m4 = Vector512.Create((byte)0x0F);
        var m1 = Vector512.Create((byte)0x01);
        // word-permute indices: lanes 0-15 take scale 2g, lanes 16-31 scale 2g+1
        var idx0 = Vector512.Create(Vector256.Create((short)0), Vector256.Create((short)1));
        var idx1 = Vector512.Create(Vector256.Create((short)2), Vector256.Create((short)3));
        var idx2 = Vector512.Create(Vector256.Create((short)4), Vector256.Create((short)5));
        var idx3 = Vector512.Create(Vector256.Create((short)6), Vector256.Create((short)7));
        // word shifts: 0 for the lower 256 bits (low nibbles), 4 for the upper (high nibbles)
        var shift = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)4));
        var bitShift = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)1));
        var minPairs = Vector256.Create((short)8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
        int blockBytes = TBits.Five ? 176 : 144, qs = TBits.Five ? 48 : 16, nb = n / 256;
        float* dm = stackalloc float[2 * ScaleChunk];
        for (int c = 0; c < nb; c += ScaleChunk)
        {
            int cn = Math.Min(ScaleChunk, nb - c);
            float* d8c = d8 + c;
            ScaleProducts(w, blockBytes, &d8c, 1, cn, dm);
            for (int b = 0; b < cn; b++, w += blockBytes, q += 256, sums += 16)
            {
                Prefetch(w); Prefetch(w + 64); Prefetch(w + 128);
                var scm = Avx2.ConvertToVector256Int16(KQuants.ScalesMinsVector(w + 4));
                var sc = scm.ToVector512Unsafe();
                Vector512<ushort> hz = default;
                if (TBits.Five) hz = Avx512BW.ShiftRightLogicalVariable(Twice(w + 16).AsUInt16(), bitShift);
                var isum = Step<TBits>(w + qs, q, sc, idx0, shift, m4, m1, hz);
                isum += Step<TBits>(w + qs + 32, q + 64, sc, idx1, shift, m4, m1, TBits.Five ? Avx512BW.ShiftRightLogical(hz, 2) : hz);
                isum += Step<TBits>(w + qs + 64, q + 128, sc, idx2, shift, m4, m1, TBits.Five ? Avx512BW.ShiftRightLogical(hz, 4) : hz);
                isum += Step<TBits>(w + qs + 96, q + 192, sc, idx3, shift, m4, m1, TBits.Five ? Avx512BW.ShiftRightLogical(hz, 6) : hz);
                acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(isum), Vector512.Create(dm[2 * b]), acc);
                var ms = Avx2.MultiplyAddAdjacent(Avx512BW.VL.PermuteVar16x16(scm, minPairs), Vector256.Load(sums));
                accMin = Fma.MultiplyAdd(Avx.ConvertToVector256Single(ms), Vector256.Create(dm[2 * b + 1]), accMin);
            }
        }
        return Horizontal.Sum(acc) - Horizontal.Sum(accMin);
    }

    /// <summary>64 elements of a block (32 bytes of nibbles at <paramref name="nib"/>: low = sub-block 2g, high = 2g+1)
    /// against their 64 activations: vpmaddubsw (value x q_x, pairs &lt;= 7874), then vpmaddwd against the two sub-block
    /// scales that <paramref name="idx"/> picks; <paramref name="hz"/> holds the 5th bits of Q5_K in bit 0 of each byte.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Step<TBits>(byte* nib, sbyte* q, Vector512<short> sc, Vector512<short> idx, Vector512<ushort> shift,
        Vector512<byte> m4, Vector512<byte> m1, Vector512<ushort> hz) where TBits : struct, IBits
    {
        var z = Nibbles(nib, shift, m4);
        if (TBits.Five) z |= Avx512BW.ShiftLeftLogical((hz.AsByte() & m1).AsUInt16(), 4).AsByte();
        return Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(z, Vector512.Load(q)), Avx512BW.PermuteVar32x16(sc, idx));
    }

    /// <summary>64 4-bit values from 32 bytes at <paramref name="nib"/>: the low nibbles in the lower 256 bits, the high
    /// nibbles in the upper (the one-row and four-row dots' unpacking).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Nibbles(byte* nib, Vector512<ushort> shift, Vector512<byte> m4) =>
        Avx512BW.ShiftRightLogicalVariable(Twice(nib).AsUInt16(), shift).AsByte() & m4;

    /// <summary>The 32 bytes at <paramref name="p"/> in both halves of a 512-bit vector. (Not
    /// Avx512F.BroadcastVector256ToVector512: in this kernel .NET 10 compiled it with its load folded in as a 128-bit
    /// broadcast, wrong data with no error; the oracle tests caught it.)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Twice(byte* p)
    {
        var v = Vector256.Load(p);
        return Avx512F.InsertVector256(v.ToVector512Unsafe(), v, 1);
    }

    /// <summary>For each of <paramref name="rows"/> activation rows r (block scales from d8[r]) and the
    /// <paramref name="count"/> blocks from <paramref name="w"/> (f16 d and dmin in each block's first four bytes): at
    /// dm + 2 r ScaleChunk, dm[2j] = d_j * d8[r][j] and dm[2j+1] = dmin_j * d8[r][j]; eight blocks per gather and
    /// conversion, done once for all the rows (so the four-row dot has the one-row dot's products).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScaleProducts(byte* w, int blockBytes, float** d8, int rows, int count, float* dm)
    {
        int j = 0;
        var offsets = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * blockBytes;
        var pairs = Vector512.Create(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
        for (; j + 8 <= count; j += 8)
        {
            var h = Avx2.GatherVector256((int*)(w + (long)j * blockBytes), offsets, 1);
            var f = F16Type.ToSingle(Avx512F.ConvertToVector512UInt32(h.AsUInt16()));
            for (int r = 0; r < rows; r++)
                (f * Avx512F.PermuteVar16x32(Vector256.Load(d8[r] + j).ToVector512Unsafe(), pairs)).Store(dm + 2 * (r * ScaleChunk + j));
        }
        for (; j < count; j++)
        {
            byte* p = w + (long)j * blockBytes;
            float d = Half(p), dmin = Half(p + 2);
            for (int r = 0; r < rows; r++)
            {
                dm[2 * (r * ScaleChunk + j)] = d * d8[r][j];
                dm[2 * (r * ScaleChunk + j) + 1] = dmin * d8[r][j];
            }
        }
    }

    /// <summary>results[r] = <see cref="DotQ8"/>(w, xs[r]) for r &lt; 4, bit for bit (the same operations per row; the
    /// nibbles, the scales and their permutations unpacked once for the four rows). False for the scalar variant.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier 1 from the first call (see Q4_0's DotQ8_256)
    [SkipLocalsInit] // the scale products' buffer is written before it is read
    public static bool DotQ8x4(byte* w, Q8Row* xs, int n, KernelIsa isa, float* results)
    {
        if (isa == KernelIsa.Avx2) { DotQ8x4_256(w, xs, n, fiveBits: false, results); return true; }
        if (isa != KernelIsa.Avx512) return false;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> m0 = default, m1 = default, m2 = default, m3 = default;
        sbyte* q0 = xs[0].Q, q1 = xs[1].Q, q2 = xs[2].Q, q3 = xs[3].Q;
        short* u0 = xs[0].Sums, u1 = xs[1].Sums, u2 = xs[2].Sums, u3 = xs[3].Sums;
        float* d0 = xs[0].D, d1 = xs[1].D, d2 = xs[2].D, d3 = xs[3].D;
        var m4 = Vector512.Create((byte)0x0F);
        // word-permute indices: lanes 0-15 take scale 2g, lanes 16-31 scale 2g+1 (the one-row dot's)
        var idx0 = Vector512.Create(Vector256.Create((short)0), Vector256.Create((short)1));
        var idx1 = Vector512.Create(Vector256.Create((short)2), Vector256.Create((short)3));
        var idx2 = Vector512.Create(Vector256.Create((short)4), Vector256.Create((short)5));
        var idx3 = Vector512.Create(Vector256.Create((short)6), Vector256.Create((short)7));
        var shift = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)4));
        var minPairs = Vector256.Create((short)8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
        // d*dx and dmin*dx of each row, a chunk of blocks at a time (the one-row dot's products: the weights' scales
        // gathered and converted once for the four rows)
        float* dm = stackalloc float[8 * ScaleChunk];
        float** ds = stackalloc float*[4];
        int nb = n / 256;
        for (int c = 0; c < nb; c += ScaleChunk)
        {
            int cn = Math.Min(ScaleChunk, nb - c);
            ds[0] = d0 + c; ds[1] = d1 + c; ds[2] = d2 + c; ds[3] = d3 + c;
            ScaleProducts(w, 144, ds, 4, cn, dm);
            for (int k = 0; k < cn; k++, w += 144)
            {
                int b = c + k;
                Prefetch(w); Prefetch(w + 64); Prefetch(w + 128);
                var scm = Avx2.ConvertToVector256Int16(KQuants.ScalesMinsVector(w + 4));
                var sc = scm.ToVector512Unsafe();
                Vector512<int> i0 = default, i1 = default, i2 = default, i3 = default;
                int o = 256 * b;
                Step4(w + 16, o, sc, idx0, shift, m4, q0, q1, q2, q3, ref i0, ref i1, ref i2, ref i3);
                Step4(w + 48, o + 64, sc, idx1, shift, m4, q0, q1, q2, q3, ref i0, ref i1, ref i2, ref i3);
                Step4(w + 80, o + 128, sc, idx2, shift, m4, q0, q1, q2, q3, ref i0, ref i1, ref i2, ref i3);
                Step4(w + 112, o + 192, sc, idx3, shift, m4, q0, q1, q2, q3, ref i0, ref i1, ref i2, ref i3);
                var mp = Avx512BW.VL.PermuteVar16x16(scm, minPairs);
                Row(ref a0, ref m0, i0, dm + 2 * k, mp, u0 + 16 * b);
                Row(ref a1, ref m1, i1, dm + 2 * (ScaleChunk + k), mp, u1 + 16 * b);
                Row(ref a2, ref m2, i2, dm + 2 * (2 * ScaleChunk + k), mp, u2 + 16 * b);
                Row(ref a3, ref m3, i3, dm + 2 * (3 * ScaleChunk + k), mp, u3 + 16 * b);
            }
        }
        float* mins = stackalloc float[4];
        Horizontal.Sum4(a0, a1, a2, a3, results);
        Horizontal.Sum4(m0, m1, m2, m3, mins);
        for (int r = 0; r < 4; r++) results[r] -= mins[r];
        return true;

        // 64 elements of the block for the four rows: the values and their scales unpacked once (the one-row Step's operations)
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Step4(byte* nib, int o, Vector512<short> sc, Vector512<short> idx, Vector512<ushort> shift, Vector512<byte> m4,
            sbyte* q0, sbyte* q1, sbyte* q2, sbyte* q3, ref Vector512<int> i0, ref Vector512<int> i1, ref Vector512<int> i2, ref Vector512<int> i3)
        {
            var z = Nibbles(nib, shift, m4);
            var scg = Avx512BW.PermuteVar32x16(sc, idx);
            i0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(z, Vector512.Load(q0 + o)), scg);
            i1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(z, Vector512.Load(q1 + o)), scg);
            i2 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(z, Vector512.Load(q2 + o)), scg);
            i3 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(z, Vector512.Load(q3 + o)), scg);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Row(ref Vector512<float> acc, ref Vector256<float> accMin, Vector512<int> isum, float* dm, Vector256<short> mp, short* sums)
        {
            acc = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(isum), Vector512.Create(dm[0]), acc);
            var ms = Avx2.MultiplyAddAdjacent(mp, Vector256.Load(sums));
            accMin = Fma.MultiplyAdd(Avx.ConvertToVector256Single(ms), Vector256.Create(dm[1]), accMin);
        }
    }

    // AVX2, as llama.cpp's ggml_vec_dot_q4_K_q8_K: per sub-block pair g (64 elements, 32 bytes of nibbles: low = sub-block
    // 2g, high = 2g+1) two vpmaddubsw of the values (0..15, or 0..31 with Q5_K's 5th bit) with q_x (pairs <= 7874), two
    // vpmaddwd with the scales (broadcast by vpshufb from one vector per block), an int32 sum per block; the mins meet the
    // 16-sums of q_x in one vpmaddwd; d and dmin converted together. One accumulator: + d d_x isum - dmin d_x msum per
    // block. The unpacking (Values, KQuants.ScalesMins256) and the per-row arithmetic (SubBlocks, BlockEnd) are shared
    // with the four-row dot; each is compiled twice (Q4_K, Q5_K: the 5th-bit test folded away).

    /// <summary>Shared by Q4_K (144-byte blocks, nibbles at 16) and Q5_K (176-byte blocks, qh at 16, nibbles at 48, 5th bits
    /// moved into bit 4 of each value).</summary>
    internal static float DotQ8_256(byte* w, sbyte* q, float* d8, short* sums, int n, bool fiveBits) =>
        fiveBits ? DotQ8_256(w, q, d8, sums, n, default(FiveBits)) : DotQ8_256(w, q, d8, sums, n, default(FourBits));

    /// <summary><see cref="DotQ8_256(byte*, sbyte*, float*, short*, int, bool)"/> for four activation rows, bit for bit per
    /// row (values, scales and mins unpacked once).</summary>
    internal static void DotQ8x4_256(byte* w, Q8Row* xs, int n, bool fiveBits, float* results)
    {
        if (fiveBits) DotQ8x4_256(w, xs, n, default(FiveBits), results);
        else DotQ8x4_256(w, xs, n, default(FourBits), results);
    }

    /// <summary>Q4_K or Q5_K, as a type argument (each gets its own compiled kernels).</summary>
    internal interface IBits { static abstract bool Five { get; } }
    internal readonly struct FourBits : IBits { public static bool Five => false; }
    internal readonly struct FiveBits : IBits { public static bool Five => true; }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier 1 from the first call (see Q4_0's DotQ8_256)
    private static float DotQ8_256<TBits>(byte* w, sbyte* q, float* d8, short* sums, int n, TBits _) where TBits : struct, IBits
    {
        Vector256<float> acc = default;
        var m4 = Vector256.Create((byte)0x0F);
        int blockBytes = TBits.Five ? 176 : 144;
        for (int b = 0; b < n / 256; b++, w += blockBytes, q += 256, sums += 16)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128);
            KQuants.ScalesMins256(w + 4, out var sc, out var minPairs);
            var hv = TBits.Five ? Vector256.Load(w + 16).AsUInt16() : default;
            var isum = Pair<TBits>(w, q, 0, sc, hv, m4) + Pair<TBits>(w, q, 1, sc, hv, m4);
            isum += Pair<TBits>(w, q, 2, sc, hv, m4) + Pair<TBits>(w, q, 3, sc, hv, m4);
            var dm = DMin(w);
            BlockEnd(ref acc, isum, dm, d8[b], minPairs, sums);
        }
        return Horizontal.Sum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // tier 1 from the first call (see Q4_0's DotQ8_256)
    private static void DotQ8x4_256<TBits>(byte* w, Q8Row* xs, int n, TBits _, float* results) where TBits : struct, IBits
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        sbyte* q0 = xs[0].Q, q1 = xs[1].Q, q2 = xs[2].Q, q3 = xs[3].Q;
        short* u0 = xs[0].Sums, u1 = xs[1].Sums, u2 = xs[2].Sums, u3 = xs[3].Sums;
        float* d0 = xs[0].D, d1 = xs[1].D, d2 = xs[2].D, d3 = xs[3].D;
        var m4 = Vector256.Create((byte)0x0F);
        int blockBytes = TBits.Five ? 176 : 144;
        for (int b = 0; b < n / 256; b++, w += blockBytes)
        {
            Prefetch(w); Prefetch(w + 64); Prefetch(w + 128);
            KQuants.ScalesMins256(w + 4, out var sc, out var minPairs);
            var hv = TBits.Five ? Vector256.Load(w + 16).AsUInt16() : default;
            int o = 256 * b;
            Vector256<int> i0 = default, i1 = default, i2 = default, i3 = default;
            Pair4<TBits>(w, 0, sc, hv, m4, q0 + o, q1 + o, q2 + o, q3 + o, ref i0, ref i1, ref i2, ref i3);
            Pair4<TBits>(w, 1, sc, hv, m4, q0 + o, q1 + o, q2 + o, q3 + o, ref i0, ref i1, ref i2, ref i3);
            Pair4<TBits>(w, 2, sc, hv, m4, q0 + o, q1 + o, q2 + o, q3 + o, ref i0, ref i1, ref i2, ref i3);
            Pair4<TBits>(w, 3, sc, hv, m4, q0 + o, q1 + o, q2 + o, q3 + o, ref i0, ref i1, ref i2, ref i3);
            var dm = DMin(w);
            BlockEnd(ref a0, i0, dm, d0[b], minPairs, u0 + 16 * b);
            BlockEnd(ref a1, i1, dm, d1[b], minPairs, u1 + 16 * b);
            BlockEnd(ref a2, i2, dm, d2[b], minPairs, u2 + 16 * b);
            BlockEnd(ref a3, i3, dm, d3[b], minPairs, u3 + 16 * b);
        }
        Horizontal.Sum4(a0, a1, a2, a3, results);
    }

    /// <summary>Sub-blocks 2g and 2g+1 of one row: their values (<see cref="Values{TBits}"/>) times q_x and the scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Pair<TBits>(byte* w, sbyte* q, int g, Vector256<short> sc, Vector256<ushort> hv, Vector256<byte> m4) where TBits : struct, IBits
    {
        Values<TBits>(w, g, hv, m4, out var lo, out var hi);
        return SubBlocks(lo, hi, q + 64 * g, KQuants.PickWords(sc, SubBlockWord(2 * g)), KQuants.PickWords(sc, SubBlockWord(2 * g + 1)));
    }

    /// <summary><see cref="Pair{TBits}"/> for four rows, the values and scales unpacked once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pair4<TBits>(byte* w, int g, Vector256<short> sc, Vector256<ushort> hv, Vector256<byte> m4, sbyte* q0, sbyte* q1, sbyte* q2, sbyte* q3,
                                     ref Vector256<int> i0, ref Vector256<int> i1, ref Vector256<int> i2, ref Vector256<int> i3) where TBits : struct, IBits
    {
        Values<TBits>(w, g, hv, m4, out var lo, out var hi);
        var sl = KQuants.PickWords(sc, SubBlockWord(2 * g));
        var sh = KQuants.PickWords(sc, SubBlockWord(2 * g + 1));
        i0 += SubBlocks(lo, hi, q0 + 64 * g, sl, sh);
        i1 += SubBlocks(lo, hi, q1 + 64 * g, sl, sh);
        i2 += SubBlocks(lo, hi, q2 + 64 * g, sl, sh);
        i3 += SubBlocks(lo, hi, q3 + 64 * g, sl, sh);
    }

    /// <summary>vpshufb indices that broadcast scale word j in both 128-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> SubBlockWord(int j) => Vector256.Create((ushort)(0x0100 + 0x0202 * j)).AsByte();

    /// <summary>The values of sub-blocks 2g (<paramref name="lo"/>) and 2g+1 of a Q4_K block (nibbles at 16), or of a Q5_K
    /// block (nibbles at 48, the 5th bits, bits 2g and 2g+1 of qh's bytes <paramref name="hv"/>, in bit 4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Values<TBits>(byte* w, int g, Vector256<ushort> hv, Vector256<byte> m4, out Vector256<byte> lo, out Vector256<byte> hi) where TBits : struct, IBits
    {
        var raw = Vector256.Load(w + (TBits.Five ? 48 : 16) + 32 * g);
        lo = raw & m4;
        hi = (raw.AsUInt16() >>> 4).AsByte() & m4;
        if (TBits.Five)
        {
            var m10 = Vector256.Create((byte)0x10);
            lo |= ShiftBits(hv, 4 - 2 * g).AsByte() & m10;
            hi |= ShiftBits(hv, 3 - 2 * g).AsByte() & m10;
        }
    }

    /// <summary>Word shift left by k (right by -k).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ushort> ShiftBits(Vector256<ushort> v, int k) => k >= 0 ? v << k : v >>> -k;

    /// <summary>sum sc_2g q q_x over sub-block 2g plus sum sc_2g+1 q q_x over 2g+1 (8 int32 lanes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> SubBlocks(Vector256<byte> lo, Vector256<byte> hi, sbyte* x, Vector256<short> sl, Vector256<short> sh) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(lo, Vector256.Load(x)), sl) +
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(hi, Vector256.Load(x + 32)), sh);

    /// <summary>The block's d and dmin (f16 at 0 and 2) as floats 0 and 1 (the other lanes: the scale bytes, unused).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> DMin(byte* w) => F16Type.ToSingle(Avx2.ConvertToVector256Int32((ushort*)w).AsUInt32()).GetLower();

    /// <summary>acc += d d_x isum - dmin d_x sum_j m_j (16-sums of q_x in sub-block j).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BlockEnd(ref Vector256<float> acc, Vector256<int> isum, Vector128<float> dm, float dx, Vector256<short> minPairs, short* sums)
    {
        var s = dm * Vector128.Create(dx);
        acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum), Vector256.Create(s.ToScalar()), acc);
        var ms = Avx2.MultiplyAddAdjacent(minPairs, Vector256.Load(sums));
        acc = Fma.MultiplyAddNegated(Avx.ConvertToVector256Single(ms), Vector256.Create(s.GetElement(1)), acc);
    }
}
