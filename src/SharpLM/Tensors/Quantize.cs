using System.Buffers.Binary;
using SharpLM.Kernels;
using SharpLM.Kernels.Naive;

namespace SharpLM.Tensors;

/// <summary>
/// Quantizers: one f32 row -> the bytes of <see cref="DType"/> blocks in ggml's layouts (used by the GGUF writer and
/// <c>sharplm convert</c>). They follow ggml's reference quantizers (quantize_row_*_ref in ggml-quants.c): the same
/// scale search (make_qkx2_quants for Q4_K, make_qx_quants with rmse_type 1 for Q6_K), the same rounding
/// (nearest_int, round half to even) and the same packing, so the bytes are identical to ggml's (the tests check this against libggml-base).
/// </summary>
internal static class Quantize
{
    /// <summary>Types <see cref="Row"/> can write.</summary>
    public static bool CanQuantize(DType type) => type is DType.F32 or DType.F16 or DType.BF16 or DType.Q8_0 or DType.Q4_0 or DType.Q4_K or DType.Q6_K;

    /// <summary>src (n) f32 -> dst (RowBytes(type, n) bytes). n must be a multiple of the type's block size.</summary>
    public static void Row(DType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        int n = src.Length;
        if (!CanQuantize(type)) throw new NotSupportedException($"quantizing to {type} is not implemented; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K");
        long need = DTypeInfo.RowBytes(type, n);
        if (dst.Length < need) throw new ArgumentException($"{type} row of {n} elements needs {need} bytes, dst holds {dst.Length}", nameof(dst));
        switch (type)
        {
            case DType.F32:
                for (int i = 0; i < n; i++) BinaryPrimitives.WriteSingleLittleEndian(dst[(4 * i)..], src[i]);
                break;
            case DType.F16:
                HalfConvert.FromSingle(src, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(dst[..(2 * n)]), KernelIsaSelector.Current);
                break;
            case DType.BF16:
                for (int i = 0; i < n; i++) BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], ToBf16(src[i]));
                break;
            case DType.Q8_0:
                for (int b = 0; b < n / 32; b++) Q8_0(src.Slice(b * 32, 32), dst.Slice(b * 34, 34));
                break;
            case DType.Q4_0:
                for (int b = 0; b < n / 32; b++) Q4_0(src.Slice(b * 32, 32), dst.Slice(b * 18, 18));
                break;
            case DType.Q4_K:
                for (int b = 0; b < n / 256; b++) Q4_K(src.Slice(b * 256, 256), dst.Slice(b * 144, 144));
                break;
            case DType.Q6_K:
                for (int b = 0; b < n / 256; b++) Q6_K(src.Slice(b * 256, 256), dst.Slice(b * 210, 210));
                break;
        }
    }

    /// <summary>float -> bfloat16 bits, round to nearest even; NaN stays a quiet NaN (as ggml_compute_fp32_to_bf16).</summary>
    public static ushort ToBf16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7FFFFFFF) > 0x7F800000) return (ushort)((u >> 16) | 64);
        return (ushort)((u + (0x7FFF + ((u >> 16) & 1))) >> 16);
    }

    /// <summary>ggml's nearest_int: round half to even (the 1.5*2^23 trick), valid for |x| &lt;= 2^22.</summary>
    private static int NearestInt(float x) => (int)MathF.Round(x, MidpointRounding.ToEven);

    private static void WriteHalf(Span<byte> dst, float v) => BinaryPrimitives.WriteUInt16LittleEndian(dst, HalfConvert.FromSingle(v));

    private static float ReadHalf(ReadOnlySpan<byte> src) => HalfConvert.ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src));

    private static void Q8_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0;
        foreach (var v in x) amax = Math.Max(amax, Math.Abs(v));
        float d = amax / 127;
        float id = d != 0 ? 1 / d : 0;
        WriteHalf(y, d);
        for (int j = 0; j < 32; j++) y[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero); // roundf
    }

    private static void Q4_0(ReadOnlySpan<float> x, Span<byte> y)
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

    private static void Q4_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<byte> L = stackalloc byte[256];
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
            for (int l = 0; l < 32; l++) weights[l] = avX + Math.Abs(xs[l]);
            scales[j] = MakeQkx2Quants(32, 15, xs, weights, L.Slice(32 * j, 32), out mins[j], laux, -1f, 0.1f, 20);
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        var sc = y.Slice(4, 12);
        sc.Clear();
        for (int j = 0; j < 8; j++)
        {
            int ls = Math.Min(63, NearestInt(invScale * scales[j]));
            int lm = Math.Min(63, NearestInt(invMin * mins[j]));
            if (j < 4)
            {
                sc[j] = (byte)ls;
                sc[j + 4] = (byte)lm;
            }
            else
            {
                sc[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                sc[j - 4] |= (byte)((ls >> 4) << 6);
                sc[j] |= (byte)((lm >> 4) << 6);
            }
        }
        WriteHalf(y, maxScale / 63f);
        WriteHalf(y[2..], maxMin / 63f);
        float d = ReadHalf(y), dmin = ReadHalf(y[2..]);
        for (int j = 0; j < 8; j++)
        {
            NaiveDequant.ScaleMinK4(j, sc, out int s, out int m);
            float dd = d * s;
            if (dd == 0) continue;
            float dm = dmin * m;
            for (int ii = 0; ii < 32; ii++)
                L[32 * j + ii] = (byte)Math.Clamp(NearestInt((x[32 * j + ii] + dm) / dd), 0, 15);
        }
        var q = y.Slice(16, 128);
        for (int j = 0, qi = 0; j < 256; j += 64, qi += 32)
            for (int l = 0; l < 32; l++) q[qi + l] = (byte)(L[j + l] | (L[j + l + 32] << 4));
    }

    private static float MakeQkx2Quants(int n, int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Span<byte> L,
        out float theMin, Span<byte> laux, float rmin, float rdelta, int nstep)
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
            bestError += weights[i] * diff * diff;
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
                    curError += weights[i] * diff * diff;
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

    private static void Q6_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<sbyte> L = stackalloc sbyte[256];
        Span<float> scales = stackalloc float[16];
        float maxScale = 0, maxAbsScale = 0;
        for (int ib = 0; ib < 16; ib++)
        {
            float scale = MakeQxQuants(16, 32, x.Slice(16 * ib, 16), L.Slice(16 * ib, 16));
            scales[ib] = scale;
            if (Math.Abs(scale) > maxAbsScale) { maxAbsScale = Math.Abs(scale); maxScale = scale; }
        }
        y[..210].Clear();
        if (maxAbsScale < 1e-15f) return; // all (near) zero: an all-zero block, d = 0
        float iscale = -128f / maxScale;
        WriteHalf(y[208..], 1 / iscale);
        for (int ib = 0; ib < 16; ib++) y[192 + ib] = (byte)(sbyte)Math.Min(127, NearestInt(iscale * scales[ib]));
        float d0 = ReadHalf(y[208..]);
        for (int j = 0; j < 16; j++)
        {
            float d = d0 * (sbyte)y[192 + j];
            if (d == 0) continue;
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (sbyte)(Math.Clamp(NearestInt(x[16 * j + ii] / d), -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++)
        {
            int j = 128 * h;
            for (int l = 0; l < 32; l++)
            {
                int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                y[64 * h + l] = (byte)(q1 | (q3 << 4));
                y[64 * h + l + 32] = (byte)(q2 | (q4 << 4));
                y[128 + 32 * h + l] = (byte)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
        }
    }

    /// <summary>ggml make_qx_quants with rmse_type 1 (weights x^2) and no importance weights.</summary>
    private static float MakeQxQuants(int n, int nmax, ReadOnlySpan<float> x, Span<sbyte> L)
    {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = Math.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < 1e-15f)
        {
            L[..n].Clear();
            return 0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
            L[i] = (sbyte)(l + nmax);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0f;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
                float w = x[i] * x[i];
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < n; i++) L[i] = (sbyte)(nmax + Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1));
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }
}
