using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>
/// IQ4_NL: blocks of 32 values in 18 bytes: f16 d, 16 bytes of nibbles (element j in the low nibble of byte j, element
/// j + 16 in the high nibble); x = d * kvalues[q], where the 16 kvalues are a non-linear grid denser near 0 (the shape of
/// trained weights). The fallback llama.cpp's quantizer uses for IQ4_XS rows that are not whole super-blocks.
/// </summary>
internal static unsafe class IQ4_NLType
{
    public static readonly TypeTraits Traits = new(DType.IQ4_NL, "iq4_nl", 32, 18, "4-bit non-linear blocks of 32 (18 bytes / 32 values)", 25u)
    {
        Quantize = &Quantize,
        DequantizeNaive = &DequantizeNaive,
        Dequantize = &Dequantize,
        Dot = &Dot,
        Dot4 = &Dot4,
    };

    /// <summary>ggml's kvalues_iq4nl: the 16 levels of IQ4_NL and IQ4_XS.</summary>
    public static ReadOnlySpan<sbyte> Values => [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

    /// <summary>Reference quantizer (ggml quantize_iq4_nl without an importance matrix).</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        Span<float> scales = stackalloc float[1];
        Span<float> weight = stackalloc float[32];
        Span<byte> L = stackalloc byte[32];
        for (int b = 0; b < src.Length / 32; b++)
        {
            var y = dst.Slice(b * 18, 18);
            IQ4.QuantizeSuperBlock(32, 32, src.Slice(b * 32, 32), y[..2], y.Slice(2, 16), default, default, scales, weight, L);
        }
    }

    /// <summary>The readable oracle (ggml dequantize_row_iq4_nl): src (RowBytes(n)) -> dst (n) f32.</summary>
    public static void DequantizeNaive(ReadOnlySpan<byte> src, Span<float> dst)
    {
        for (int b = 0; b < dst.Length / 32; b++)
        {
            var blk = src.Slice(b * 18, 18);
            float d = H(blk, 0);
            for (int j = 0; j < 16; j++)
            {
                dst[b * 32 + j] = d * Values[blk[2 + j] & 0xF];
                dst[b * 32 + j + 16] = d * Values[blk[2 + j] >> 4];
            }
        }
    }

    /// <summary>Fast dequantization (bit-identical to the oracle).</summary>
    public static void Dequantize(byte* src, float* dst, int n, KernelIsa isa)
    {
        if (isa == KernelIsa.Scalar)
        {
            DequantizeNaive(new ReadOnlySpan<byte>(src, checked((int)Traits.RowBytes(n))), new Span<float>(dst, n));
            return;
        }
        BlockDecoders.Dequantize<IQ4>(DType.IQ4_NL, src, dst, n, isa);
    }

    /// <summary>Fused dot: each block decoded in registers and multiplied into x.</summary>
    public static float Dot(byte* w, float* x, int n, KernelIsa isa, float* rowBuf) => BlockDecoders.Dot<IQ4>(DType.IQ4_NL, w, x, n, isa, rowBuf);

    /// <summary>Four f32 rows against one weight row, decoded once (<see cref="BlockDecoders.Dot4{TDecoder}"/>).</summary>
    public static bool Dot4(byte* w, float** xs, int n, KernelIsa isa, float* results) => BlockDecoders.Dot4<IQ4>(DType.IQ4_NL, w, xs, n, isa, results);
}

/// <summary>
/// IQ4_XS: super-blocks of 256 values in 136 bytes: f16 d, u16 scales_h, u8 scales_l[4], u8 qs[128]: eight blocks of 32
/// with 6-bit scales (low 4 bits in scales_l, high 2 in scales_h, bias 32) and IQ4_NL's non-linear levels;
/// x = d * (scale - 32) * kvalues[q].
/// </summary>
internal static unsafe class IQ4_XSType
{
    public static readonly TypeTraits Traits = new(DType.IQ4_XS, "iq4_xs", 256, 136, "4.25-bit non-linear k-quant (136 bytes / 256 values)", 30u)
    {
        Quantize = &Quantize,
        DequantizeNaive = &DequantizeNaive,
        Dequantize = &Dequantize,
        Dot = &Dot,
        Dot4 = &Dot4,
    };

    /// <summary>Reference quantizer (ggml quantize_iq4_xs without an importance matrix).</summary>
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst)
    {
        Span<float> scales = stackalloc float[8];
        Span<float> weight = stackalloc float[32];
        Span<byte> L = stackalloc byte[256];
        for (int b = 0; b < src.Length / 256; b++)
        {
            var y = dst.Slice(b * 136, 136);
            IQ4.QuantizeSuperBlock(256, 32, src.Slice(b * 256, 256), y[..2], y.Slice(8, 128), y.Slice(2, 2), y.Slice(4, 4), scales, weight, L);
        }
    }


    /// <summary>The readable oracle (ggml dequantize_row_iq4_xs): src (RowBytes(n)) -> dst (n) f32.</summary>
    public static void DequantizeNaive(ReadOnlySpan<byte> src, Span<float> dst)
    {
        for (int b = 0; b < dst.Length / 256; b++)
        {
            var blk = src.Slice(b * 136, 136);
            float d = H(blk, 0);
            int scalesH = blk[2] | (blk[3] << 8);
            for (int ib = 0; ib < 8; ib++)
            {
                int ls = ((blk[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((scalesH >> (2 * ib)) & 3) << 4);
                float dl = d * (ls - 32);
                for (int j = 0; j < 16; j++)
                {
                    byte q = blk[8 + 16 * ib + j];
                    dst[b * 256 + 32 * ib + j] = dl * IQ4_NLType.Values[q & 0xF];
                    dst[b * 256 + 32 * ib + j + 16] = dl * IQ4_NLType.Values[q >> 4];
                }
            }
        }
    }

    /// <summary>Fast dequantization (bit-identical to the oracle).</summary>
    public static void Dequantize(byte* src, float* dst, int n, KernelIsa isa)
    {
        if (isa == KernelIsa.Scalar)
        {
            DequantizeNaive(new ReadOnlySpan<byte>(src, checked((int)Traits.RowBytes(n))), new Span<float>(dst, n));
            return;
        }
        BlockDecoders.Dequantize<IQ4>(DType.IQ4_XS, src, dst, n, isa);
    }

    /// <summary>Fused dot: each block decoded in registers and multiplied into x.</summary>
    public static float Dot(byte* w, float* x, int n, KernelIsa isa, float* rowBuf) => BlockDecoders.Dot<IQ4>(DType.IQ4_XS, w, x, n, isa, rowBuf);

    /// <summary>Four f32 rows against one weight row, decoded once (<see cref="BlockDecoders.Dot4{TDecoder}"/>).</summary>
    public static bool Dot4(byte* w, float** xs, int n, KernelIsa isa, float* results) => BlockDecoders.Dot4<IQ4>(DType.IQ4_XS, w, xs, n, isa, results);
}

/// <summary>What IQ4_NL and IQ4_XS share: ggml's quantize_row_iq4_nl_impl and the SIMD block decoder.</summary>
internal readonly unsafe struct IQ4 : IBlockDecoder
{
    /// <summary>IQ4_NL: blocks of 32 with an f16 d; IQ4_XS: super-blocks of 256 whose eight blocks have 6-bit scales.</summary>
    public static void Decode<TSink>(DType type, byte* src, int n, KernelIsa isa, ref TSink sink) where TSink : struct, IRowSink
    {
        if (type == DType.IQ4_NL)
        {
            for (int b = 0; b < n / 32; b++, src += 18) Block32(src + 2, Half(src), 32 * b, isa, ref sink);
            return;
        }
        for (int b = 0; b < n / 256; b++, src += 136)
        {
            float d = Half(src);
            int scalesH = *(ushort*)(src + 2);
            for (int ib = 0; ib < 8; ib++)
            {
                // the block's 6-bit scale (low 4 bits in scales_l, high 2 in scales_h), minus its bias 32
                int ls = ((src[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((scalesH >> (2 * ib)) & 3) << 4);
                Block32(src + 8 + 16 * ib, d * (ls - 32), 256 * b + 32 * ib, isa, ref sink);
            }
        }
    }

    /// <summary>32 values from 16 nibble bytes, at element <paramref name="at"/>: d * kvalues[low nibble of q[j]] for
    /// j &lt; 16, then the high nibbles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Block32<TSink>(byte* q, float d, int at, KernelIsa isa, ref TSink sink) where TSink : struct, IRowSink
    {
        var table = Vector128.Create(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, (sbyte)113);
        var bytes = Vector128.Load(q);
        var lo = Ssse3.Shuffle(table, (bytes & Vector128.Create((byte)0xF)).AsSByte());
        var hi = Ssse3.Shuffle(table, (bytes >>> 4).AsSByte());
        if (isa == KernelIsa.Avx512)
        {
            var vd = Vector512.Create(d);
            sink.Put(at, Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(lo)) * vd);
            sink.Put(at + 16, Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(hi)) * vd);
        }
        else
        {
            var vd = Vector256.Create(d);
            sink.Put(at, Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(lo)) * vd);
            sink.Put(at + 8, Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(lo, 8))) * vd);
            sink.Put(at + 16, Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(hi)) * vd);
            sink.Put(at + 24, Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(hi, 8))) * vd);
        }
    }

    /// <summary>ggml's best_index_int8: the level of <paramref name="values"/> (sorted) nearest to x, ties upward.</summary>
    private static int BestIndex(ReadOnlySpan<sbyte> values, float x)
    {
        int n = values.Length;
        if (x <= values[0]) return 0;
        if (x >= values[n - 1]) return n - 1;
        int ml = 0, mu = n - 1;
        while (mu - ml > 1)
        {
            int mav = (ml + mu) / 2;
            if (x < values[mav]) mu = mav;
            else ml = mav;
        }
        return x - values[mu - 1] < values[mu] - x ? mu - 1 : mu;
    }

    /// <summary>
    /// ggml's quantize_row_iq4_nl_impl without an importance matrix (weights x^2, 7 tries each way): per block of
    /// <paramref name="blockSize"/> the scale that best fits the non-linear levels; with several blocks (IQ4_XS) their
    /// scales coded on 6 bits against d = -max / 32, with one (IQ4_NL) d is the block's scale.
    /// </summary>
    public static void QuantizeSuperBlock(int superBlockSize, int blockSize, ReadOnlySpan<float> x, Span<byte> dh, Span<byte> q4,
                                          Span<byte> scalesH, Span<byte> scalesL, Span<float> scales, Span<float> weight, Span<byte> L)
    {
        const int Ntry = 7;
        var values = IQ4_NLType.Values;
        q4[..(superBlockSize / 2)].Clear();
        WriteHalf(dh, 0f);
        float maxScale = 0, amaxScale = 0;
        for (int ib = 0; ib < superBlockSize / blockSize; ib++)
        {
            var xb = x.Slice(ib * blockSize, blockSize);
            var lb = L.Slice(ib * blockSize, blockSize);
            for (int j = 0; j < blockSize; j++) weight[j] = xb[j] * xb[j];
            float amax = 0, max = 0;
            for (int j = 0; j < blockSize; j++)
            {
                float ax = MathF.Abs(xb[j]);
                if (ax > amax) { amax = ax; max = xb[j]; }
            }
            if (amax < 1e-15f)
            {
                scales[ib] = 0;
                continue;
            }
            float d = -max / values[0];
            float id = 1 / d;
            float sumqx = 0, sumq2 = 0;
            for (int j = 0; j < blockSize; j++)
            {
                int l = BestIndex(values, id * xb[j]);
                lb[j] = (byte)l;
                float q = values[l], w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            d = sumqx / sumq2;
            float best = d * sumqx;
            for (int itry = -Ntry; itry <= Ntry; itry++)
            {
                id = (itry + values[0]) / max;
                sumqx = sumq2 = 0;
                for (int j = 0; j < blockSize; j++)
                {
                    int l = BestIndex(values, id * xb[j]);
                    float q = values[l], w = weight[j];
                    sumqx += w * q * xb[j];
                    sumq2 += w * q * q;
                }
                if (sumq2 > 0 && sumqx * sumqx > best * sumq2)
                {
                    d = sumqx / sumq2;
                    best = d * sumqx;
                }
            }
            scales[ib] = d;
            float absD = MathF.Abs(d);
            if (absD > amaxScale) { amaxScale = absD; maxScale = d; }
        }

        if (superBlockSize / blockSize > 1)
        {
            scalesH.Clear();
            float d = -maxScale / 32;
            WriteHalf(dh, d);
            float id = d != 0 ? 1 / d : 0f;
            int h = 0;
            for (int ib = 0; ib < superBlockSize / blockSize; ib++)
            {
                int l = Math.Clamp(NearestInt(id * scales[ib]), -32, 31);
                float dl = d * l;
                float idl = dl != 0 ? 1 / dl : 0f;
                var lb = L.Slice(ib * blockSize, blockSize);
                var xb = x.Slice(ib * blockSize, blockSize);
                for (int j = 0; j < blockSize; j++) lb[j] = (byte)BestIndex(values, idl * xb[j]);
                l += 32;
                byte lowBits = (byte)(l & 0xF);
                if (ib % 2 == 0) scalesL[ib / 2] = lowBits;
                else scalesL[ib / 2] |= (byte)(lowBits << 4);
                h |= (l >> 4) << (2 * (ib % 8));
            }
            scalesH[0] = (byte)h;
            scalesH[1] = (byte)(h >> 8);
        }
        else
        {
            WriteHalf(dh, scales[0]);
            float id = scales[0] != 0 ? 1 / scales[0] : 0;
            for (int j = 0; j < superBlockSize; j++) L[j] = (byte)BestIndex(values, id * x[j]);
        }
        for (int i = 0; i < superBlockSize / 32; i++)
            for (int j = 0; j < 16; j++) q4[16 * i + j] = (byte)(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
    }
}
