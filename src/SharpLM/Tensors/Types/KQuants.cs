using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpLM.Kernels;
using static SharpLM.Tensors.Types.BlockMath;

namespace SharpLM.Tensors.Types;

/// <summary>Helpers shared by the k-quants: ggml's scale search (make_qkx2_quants), the 6-bit scale/min unpacking of Q4_K
/// and Q5_K, and the SIMD decoder of the low-bit types (Q2_K, Q3_K): their fast dequantizer and their fused dot.</summary>
internal static unsafe class KQuants
{
    /// <summary>The block decoder of Q2_K and Q3_K (<see cref="DecodeLowBit"/>).</summary>
    public readonly struct LowBit : IBlockDecoder
    {
        public static void Decode<TSink>(DType type, byte* src, int n, KernelIsa isa, ref TSink sink) where TSink : struct, IRowSink =>
            DecodeLowBit(type, src, n, isa, ref sink);
    }

    /// <summary>ggml's make_q3_quants (do_rmse): a signed scale for n values on -nmax..nmax-1, refined by coordinate descent
    /// on the x^2-weighted error; L gets the values + nmax.</summary>
    public static float MakeQ3Quants(int n, int nmax, ReadOnlySpan<float> x, Span<sbyte> L)
    {
        float max = SignedMax(x, n);
        if (max == 0)
        {
            L[..n].Clear();
            return 0f;
        }
        var (sumlx, suml2) = WeightedFit(n, nmax, x, -nmax / max, L, 0);
        for (int itry = 0; itry < 5; itry++)
        {
            int changed = 0;
            for (int i = 0; i < n; i++)
            {
                float w = x[i] * x[i];
                float slx = sumlx - w * x[i] * L[i];
                if (slx > 0)
                {
                    float sl2 = suml2 - w * L[i] * L[i];
                    int newL = Math.Clamp(NearestInt(x[i] * sl2 / slx), -nmax, nmax - 1);
                    if (newL != L[i])
                    {
                        slx += w * x[i] * newL;
                        sl2 += w * newL * newL;
                        if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2)
                        {
                            L[i] = (sbyte)newL;
                            sumlx = slx;
                            suml2 = sl2;
                            changed++;
                        }
                    }
                }
            }
            if (changed == 0) break;
        }
        for (int i = 0; i < n; i++) L[i] += (sbyte)nmax;
        return suml2 > 0 ? sumlx / suml2 : 0f;
    }

    /// <summary>ggml's make_qx_quants with rmse_type 1 (weights x^2) and no importance weights: the best of a sweep of
    /// signed scales around nmax / max; L gets the values + nmax.</summary>
    public static float MakeQxQuants(int n, int nmax, ReadOnlySpan<float> x, Span<sbyte> L)
    {
        float max = SignedMax(x, n);
        if (max == 0)
        {
            L[..n].Clear();
            return 0f;
        }
        var (sumlx, suml2) = WeightedFit(n, nmax, x, -nmax / max, L, nmax);
        float scale = suml2 != 0 ? sumlx / suml2 : 0f;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            float iscale = -(nmax + 0.1f * step) / max;
            (sumlx, suml2) = WeightedFit(n, nmax, x, iscale, default, 0);
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                WeightedFit(n, nmax, x, iscale, L, nmax);
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /// <summary>The value of largest magnitude among x's first n (0 when every magnitude is below 1e-15).</summary>
    private static float SignedMax(ReadOnlySpan<float> x, int n)
    {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        return amax < 1e-15f ? 0f : max;
    }

    /// <summary>x quantized at <paramref name="iscale"/> onto -nmax..nmax-1 (written to L plus <paramref name="offset"/>
    /// unless L is empty) and the x^2-weighted sums of x*l and l*l.</summary>
    private static (float SumLx, float SumL2) WeightedFit(int n, int nmax, ReadOnlySpan<float> x, float iscale, Span<sbyte> L, int offset)
    {
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
            if (!L.IsEmpty) L[i] = (sbyte)(l + offset);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        return (sumlx, suml2);
    }

    /// <summary>ggml's make_qkx2_quants: the scale and min of n values on 0..nmax (weighted least squares over a sweep of
    /// nstep + 1 scales), as Q2_K, Q4_K and Q5_K's reference quantizers find them; |error| instead of error^2 with useMad.</summary>
    public static float MakeQkx2Quants(int n, int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Span<byte> L,
        out float theMin, Span<byte> laux, float rmin, float rdelta, int nstep, bool useMad)
    {
        float min = x[0], max = x[0];
        float sumW = weights[0], sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0) min = 0;
        if (max == min)
        {
            L[..n].Clear();
            theMin = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
            L[i] = (byte)l;
            float diff = scale * L[i] + min - x[i];
            diff = useMad ? MathF.Abs(diff) : diff * diff;
            bestError += weights[i] * diff;
        }
        if (nstep < 1)
        {
            theMin = -min;
            return scale;
        }
        for (int step = 0; step <= nstep; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
                laux[i] = (byte)l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[i];
            }
            float D = sumW * sumL2 - sumL * sumL;
            if (D > 0)
            {
                float thisScale = (sumW * sumXL - sumX * sumL) / D;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / D;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float curError = 0;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * laux[i] + thisMin - x[i];
                    diff = useMad ? MathF.Abs(diff) : diff * diff;
                    curError += weights[i] * diff;
                }
                if (curError < bestError)
                {
                    laux[..n].CopyTo(L);
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    /// <summary>
    /// What Q4_K's and Q5_K's reference quantizers share (ggml quantize_row_q4_K_ref / q5_K_ref): per 32 values a scale
    /// and a min on 0..nmax (make_qkx2_quants weighted by rms(x) + |x|), both coded on 6 bits against the super-block's
    /// d and dmin (f16 at y[0] and y[2], the 12 scale bytes at y[4..16]); L (256) gets each value's level.
    /// </summary>
    public static void QuantizeScalesMins(ReadOnlySpan<float> x, Span<byte> y, Span<byte> L, int nmax, float rmin, float rdelta, int nstep)
    {
        Span<byte> laux = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> mins = stackalloc float[8];
        Span<float> scales = stackalloc float[8];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++)
        {
            var xs = x.Slice(32 * j, 32);
            float sumX2 = 0;
            for (int l = 0; l < 32; l++) sumX2 += xs[l] * xs[l];
            float avX = MathF.Sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = avX + MathF.Abs(xs[l]);
            scales[j] = MakeQkx2Quants(32, nmax, xs, weights, L.Slice(32 * j, 32), out mins[j], laux, rmin, rdelta, nstep, useMad: false);
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        var sc = y.Slice(4, 12);
        sc.Clear();
        for (int j = 0; j < 8; j++)
        {
            int ls = Math.Min(63, (int)(byte)NearestInt(invScale * scales[j]));
            int lm = Math.Min(63, (int)(byte)NearestInt(invMin * mins[j]));
            PackScaleMin(sc, j, ls, lm);
        }
        WriteHalf(y, maxScale / 63f);
        WriteHalf(y[2..], maxMin / 63f);
        float d = ReadHalf(y), dmin = ReadHalf(y[2..]);
        for (int j = 0; j < 8; j++)
        {
            ScaleMinK4(j, sc, out int s, out int m);
            float dd = d * s;
            if (dd == 0) continue;
            float dm = dmin * m;
            for (int ii = 0; ii < 32; ii++) L[32 * j + ii] = (byte)Math.Clamp(NearestInt((x[32 * j + ii] + dm) / dd), 0, nmax);
        }
    }

    /// <summary>Writes the j-th (0..7) 6-bit scale and min into a Q4_K/Q5_K block's 12 scale bytes, which start cleared (the
    /// inverse of <see cref="ScaleMinK4"/>: the 12 bytes hold the 16 six-bit values and nothing else).</summary>
    public static void PackScaleMin(Span<byte> sc, int j, int scale, int min)
    {
        if (j < 4)
        {
            sc[j] |= (byte)scale;
            sc[j + 4] |= (byte)min;
        }
        else
        {
            sc[j + 4] = (byte)((scale & 0xF) | ((min & 0xF) << 4));
            sc[j - 4] |= (byte)((scale >> 4) << 6);
            sc[j] |= (byte)((min >> 4) << 6);
        }
    }

    /// <summary>The j-th (0..7) 6-bit scale and min of a Q4_K/Q5_K block's 12 scale bytes (ggml get_scale_min_k4).</summary>
    public static void ScaleMinK4(int j, ReadOnlySpan<byte> q, out int scale, out int min)
    {
        if (j < 4)
        {
            scale = q[j] & 63;
            min = q[j + 4] & 63;
        }
        else
        {
            scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }

    /// <summary>The 6-bit scale and min j (0..7) of a Q4_K block from its 12 scale bytes (ggml get_scale_min_k4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ScaleMin(byte* q, int j, out int sc, out int m)
    {
        if (j < 4)
        {
            sc = q[j] & 63;
            m = q[j + 4] & 63;
        }
        else
        {
            sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }

    /// <summary>
    /// Unpacks a Q4_K/Q5_K block's 12 scale bytes into 8 scales (bytes 0-7 of <paramref name="sc"/>) and 8 mins
    /// (bytes 0-7 of <paramref name="mn"/>) with a few 32-bit operations (the same bits as get_scale_min_k4).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ScalesMins(byte* q, out ulong sc, out ulong mn)
    {
        uint u0 = *(uint*)q, u1 = *(uint*)(q + 4), u2 = *(uint*)(q + 8);
        const uint k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
        sc = (u0 & k1) | ((ulong)((u2 & k2) | (((u0 >> 6) & k3) << 4)) << 32);
        mn = (u1 & k1) | ((ulong)(((u2 >> 4) & k2) | (((u1 >> 6) & k3) << 4)) << 32);
    }

    /// <summary>
    /// <see cref="ScalesMins"/> in a vector: the 8 scales in bytes 0-7 and the 8 mins in bytes 8-15 (reads 16 bytes at
    /// <paramref name="q"/>, the 12 scale bytes and 4 beyond).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> ScalesMinsVector(byte* q)
    {
        // the tables are constants in the code, not static readonly fields: the kernels that inline this are compiled fully
        // optimized before this class may be initialized, and a static read there puts a class-initialization check (and
        // spills) in their loops (the AVX-512 Q4_K dot kept every vector on the stack that way)
        var v = Vector128.Load(q);
        // low bits: q[j] (scales 0-3), q[j+4] (scales 4-7, low nibble), q[j+4] (mins 0-3), q[j+4] (mins 4-7, high nibble)
        var lo = Ssse3.Shuffle(v, Vector128.Create((byte)0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
        lo = Vector128.ConditionalSelect(Vector128.Create(0, 0, 0, uint.MaxValue).AsByte(), (lo.AsUInt16() >>> 4).AsByte(), lo)
             & Vector128.Create((byte)63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15);
        // high bits of scales and mins 4-7: the top 2 bits of q[j-4] and q[j], to bits 4-5
        var hi = Ssse3.Shuffle(v, Vector128.Create((byte)0x80, 0x80, 0x80, 0x80, 0, 1, 2, 3, 0x80, 0x80, 0x80, 0x80, 4, 5, 6, 7));
        return lo | ((hi & Vector128.Create((byte)0xC0)).AsUInt16() >>> 2).AsByte();
    }

    /// <summary>
    /// The AVX2 integer dots' view of a Q4_K/Q5_K block's scale bytes (at <paramref name="q"/>, as
    /// <see cref="ScalesMinsVector"/>): <paramref name="scales"/> holds the 8 scales as words in both 128-bit lanes (so
    /// <see cref="PickWords"/> broadcasts any of them), <paramref name="minPairs"/> each min twice, [m0 m0 m1 m1 ... m7 m7],
    /// the words that meet the activations' 16-sums in one vpmaddwd.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ScalesMins256(byte* q, out Vector256<short> scales, out Vector256<short> minPairs)
    {
        var v = ScalesMinsVector(q);
        scales = Avx2.ConvertToVector256Int16(Sse2.UnpackLow(v.AsUInt64(), v.AsUInt64()).AsByte());
        minPairs = Avx2.ConvertToVector256Int16(Sse2.UnpackHigh(v, v));
    }

    /// <summary>Within each 128-bit lane of <paramref name="v"/>, the word that <paramref name="idx"/> names, in every word
    /// of the lane (one vpshufb: how the AVX2 k-quant dots give each sub-block its scale, as llama.cpp's get_scale_shuffle).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> PickWords(Vector256<short> v, Vector256<byte> idx) => Avx2.Shuffle(v.AsByte(), idx).AsInt16();

    /// <summary>
    /// Q2_K and Q3_K: 16 consecutive elements share one sub-block scale, one byte offset pattern in qs (2-bit field
    /// 2*((e%128)/32)) and, for Q3_K, one hmask bit (e/32).
    /// </summary>
    public static void DecodeLowBit<TSink>(DType type, byte* src, int n, KernelIsa isa, ref TSink sink) where TSink : struct, IRowSink
    {
        bool q3 = type == DType.Q3_K;
        int bb = q3 ? 110 : 84;
        for (int b = 0, row = 0; b < n / 256; b++, src += bb, row += 256)
        {
            byte* qs = src + (q3 ? 32 : 16);
            float d = q3 ? Half(src + 108) : Half(src + 80), min = q3 ? 0f : Half(src + 82);
            for (int j = 0; j < 16; j++)
            {
                int e0 = 16 * j;
                int shift = 2 * (e0 % 128 / 32), hbit = e0 / 32;
                byte* q = qs + 32 * (e0 / 128) + e0 % 32;
                float dl, ml = 0f;
                if (q3)
                {
                    byte* scales = src + 96;
                    int sc = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
                    sc = (sc | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
                    dl = d * sc;
                }
                else
                {
                    int sc = src[j];
                    dl = d * (sc & 0xF);
                    ml = min * (sc >> 4);
                }
                byte* hm = src + e0 % 32;
                int at = row + e0;
                if (isa == KernelIsa.Avx512)
                {
                    var v = (Avx512F.ConvertToVector512Int32(Vector128.Load(q)) >>> shift) & Vector512.Create(3);
                    if (q3)
                    {
                        var h = (Avx512F.ConvertToVector512Int32(Vector128.Load(hm)) >>> hbit) & Vector512<int>.One;
                        sink.Put(at, Vector512.Create(dl) * Avx512F.ConvertToVector512Single(v - Vector512.Create(4) + (h << 2)));
                    }
                    else
                    {
                        sink.Put(at, Vector512.Create(dl) * Avx512F.ConvertToVector512Single(v) - Vector512.Create(ml));
                    }
                }
                else
                {
                    for (int l = 0; l < 16; l += 8)
                    {
                        var v = (Avx2.ConvertToVector256Int32(q + l) >>> shift) & Vector256.Create(3);
                        if (q3)
                        {
                            var h = (Avx2.ConvertToVector256Int32(hm + l) >>> hbit) & Vector256<int>.One;
                            sink.Put(at + l, Vector256.Create(dl) * Avx.ConvertToVector256Single(v - Vector256.Create(4) + (h << 2)));
                        }
                        else
                        {
                            sink.Put(at + l, Vector256.Create(dl) * Avx.ConvertToVector256Single(v) - Vector256.Create(ml));
                        }
                    }
                }
            }
        }
    }
}
