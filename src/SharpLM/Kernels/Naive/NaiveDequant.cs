using System.Buffers.Binary;
using SharpLM.Tensors;

namespace SharpLM.Kernels.Naive;

/// <summary>
/// Readable dequantization of one row, the oracle for the fast paths. Block layouts and the order of float operations
/// follow ggml's dequantize_row_* (ggml-quants.c), so results are bit-identical to ggml's reference.
/// </summary>
internal static class NaiveDequant
{
    /// <summary>src: one row of <paramref name="type"/> blocks -> dst (cols) float32.</summary>
    public static void Row(DType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = dst.Length;
        switch (type)
        {
            case DType.F32:
                for (int i = 0; i < n; i++) dst[i] = BinaryPrimitives.ReadSingleLittleEndian(src[(4 * i)..]);
                break;
            case DType.F16:
                for (int i = 0; i < n; i++) dst[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(src[(2 * i)..]);
                break;
            case DType.BF16:
                for (int i = 0; i < n; i++) dst[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]) << 16);
                break;
            case DType.Q8_0:
                // block (34 bytes): f16 d, int8 q[32]; x = d * q
                for (int b = 0; b < n / 32; b++)
                {
                    var blk = src.Slice(b * 34, 34);
                    float d = H(blk, 0);
                    for (int j = 0; j < 32; j++) dst[b * 32 + j] = (sbyte)blk[2 + j] * d;
                }
                break;
            case DType.Q4_0:
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
                break;
            case DType.Q4_1:
                // block (20 bytes): f16 d, f16 m, 16 bytes of nibbles as Q4_0; x = d * q + m
                for (int b = 0; b < n / 32; b++)
                {
                    var blk = src.Slice(b * 20, 20);
                    float d = H(blk, 0), m = H(blk, 2);
                    for (int j = 0; j < 16; j++)
                    {
                        dst[b * 32 + j] = (blk[4 + j] & 0x0F) * d + m;
                        dst[b * 32 + j + 16] = (blk[4 + j] >> 4) * d + m;
                    }
                }
                break;
            case DType.Q5_0:
                // block (22 bytes): f16 d, u32 qh (bit j = 5th bit of element j), 16 bytes nibbles; x = d * (q - 16)
                for (int b = 0; b < n / 32; b++)
                {
                    var blk = src.Slice(b * 22, 22);
                    float d = H(blk, 0);
                    uint qh = BinaryPrimitives.ReadUInt32LittleEndian(blk[2..]);
                    for (int j = 0; j < 16; j++)
                    {
                        int x0 = (blk[6 + j] & 0x0F) | (int)(((qh >> j) << 4) & 0x10);
                        int x1 = (blk[6 + j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
                        dst[b * 32 + j] = (x0 - 16) * d;
                        dst[b * 32 + j + 16] = (x1 - 16) * d;
                    }
                }
                break;
            case DType.Q5_1:
                // block (24 bytes): f16 d, f16 m, u32 qh, 16 bytes nibbles; x = d * q + m
                for (int b = 0; b < n / 32; b++)
                {
                    var blk = src.Slice(b * 24, 24);
                    float d = H(blk, 0), m = H(blk, 2);
                    uint qh = BinaryPrimitives.ReadUInt32LittleEndian(blk[4..]);
                    for (int j = 0; j < 16; j++)
                    {
                        int x0 = (blk[8 + j] & 0x0F) | (int)(((qh >> j) << 4) & 0x10);
                        int x1 = (blk[8 + j] >> 4) | (int)((qh >> (j + 12)) & 0x10);
                        dst[b * 32 + j] = x0 * d + m;
                        dst[b * 32 + j + 16] = x1 * d + m;
                    }
                }
                break;
            case DType.Q2_K:
                // block (84 bytes): u8 scales[16] (low nibble scale, high nibble min), u8 qs[64], f16 d, f16 dmin.
                // 2-bit q of element 128*h + 32*s + l is bits 2s..2s+1 of qs[32h + l]; sub-block = element / 16.
                for (int b = 0; b < n / 256; b++)
                {
                    var blk = src.Slice(b * 84, 84);
                    float d = H(blk, 80), min = H(blk, 82);
                    for (int e = 0; e < 256; e++)
                    {
                        int sc = blk[e / 16];
                        int q = (blk[16 + 32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3;
                        float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                        dst[b * 256 + e] = dl * q - ml;
                    }
                }
                break;
            case DType.Q3_K:
                // block (110 bytes): u8 hmask[32], u8 qs[64], u8 scales[12] (16 6-bit signed scales, bias 32), f16 d.
                // q = 2 low bits as Q2_K, minus 4 unless bit (e/32) of hmask[e%32] is set.
                for (int b = 0; b < n / 256; b++)
                {
                    var blk = src.Slice(b * 110, 110);
                    float d = H(blk, 108);
                    var scales = blk.Slice(96, 12);
                    for (int e = 0; e < 256; e++)
                    {
                        int j = e / 16;
                        int sc = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
                        sc = (sc | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
                        int q = (blk[32 + 32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3;
                        int h = (blk[e % 32] >> (e / 32)) & 1;
                        float dl = d * sc;
                        dst[b * 256 + e] = dl * (q - (h != 0 ? 0 : 4));
                    }
                }
                break;
            case DType.Q4_K:
                // block (144 bytes): f16 d, f16 dmin, u8 scales[12] (8 6-bit scales and mins), u8 qs[128].
                // elements 64g..64g+31 = low nibbles of qs[32g..32g+31] (sub-block 2g), the next 32 = high nibbles (2g+1).
                for (int b = 0; b < n / 256; b++)
                {
                    var blk = src.Slice(b * 144, 144);
                    float d = H(blk, 0), min = H(blk, 2);
                    var scales = blk.Slice(4, 12);
                    for (int g = 0; g < 4; g++)
                    {
                        ScaleMinK4(2 * g, scales, out int sc1, out int m1);
                        ScaleMinK4(2 * g + 1, scales, out int sc2, out int m2);
                        float d1 = d * sc1, mm1 = min * m1, d2 = d * sc2, mm2 = min * m2;
                        for (int l = 0; l < 32; l++)
                        {
                            byte q = blk[16 + 32 * g + l];
                            dst[b * 256 + 64 * g + l] = d1 * (q & 0xF) - mm1;
                            dst[b * 256 + 64 * g + 32 + l] = d2 * (q >> 4) - mm2;
                        }
                    }
                }
                break;
            case DType.Q5_K:
                // block (176 bytes): f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128]; as Q4_K plus a 5th bit:
                // bit (e/32) of qh[e%32].
                for (int b = 0; b < n / 256; b++)
                {
                    var blk = src.Slice(b * 176, 176);
                    float d = H(blk, 0), min = H(blk, 2);
                    var scales = blk.Slice(4, 12);
                    for (int g = 0; g < 4; g++)
                    {
                        ScaleMinK4(2 * g, scales, out int sc1, out int m1);
                        ScaleMinK4(2 * g + 1, scales, out int sc2, out int m2);
                        float d1 = d * sc1, mm1 = min * m1, d2 = d * sc2, mm2 = min * m2;
                        for (int l = 0; l < 32; l++)
                        {
                            byte q = blk[48 + 32 * g + l], qh = blk[16 + l];
                            dst[b * 256 + 64 * g + l] = d1 * ((q & 0xF) + (((qh >> (2 * g)) & 1) << 4)) - mm1;
                            dst[b * 256 + 64 * g + 32 + l] = d2 * ((q >> 4) + (((qh >> (2 * g + 1)) & 1) << 4)) - mm2;
                        }
                    }
                }
                break;
            case DType.Q6_K:
                // block (210 bytes): u8 ql[128], u8 qh[64], int8 scales[16], f16 d. For half h (128 elements) and l < 32:
                // element 128h+l    = low nibble ql[64h+l]    | bits 0-1 of qh[32h+l] << 4
                // element 128h+l+32 = low nibble ql[64h+l+32] | bits 2-3
                // element 128h+l+64 = high nibble ql[64h+l]   | bits 4-5
                // element 128h+l+96 = high nibble ql[64h+l+32]| bits 6-7;  x = d * scale[element/16] * (q - 32)
                for (int b = 0; b < n / 256; b++)
                {
                    var blk = src.Slice(b * 210, 210);
                    float d = H(blk, 208);
                    for (int h = 0; h < 2; h++)
                        for (int l = 0; l < 32; l++)
                        {
                            int ql0 = blk[64 * h + l], ql1 = blk[64 * h + l + 32], qh = blk[128 + 32 * h + l];
                            int q1 = ((ql0 & 0xF) | (((qh >> 0) & 3) << 4)) - 32;
                            int q2 = ((ql1 & 0xF) | (((qh >> 2) & 3) << 4)) - 32;
                            int q3 = ((ql0 >> 4) | (((qh >> 4) & 3) << 4)) - 32;
                            int q4 = ((ql1 >> 4) | (((qh >> 6) & 3) << 4)) - 32;
                            int e = 128 * h + l;
                            dst[b * 256 + e] = d * (sbyte)blk[192 + e / 16] * q1;
                            dst[b * 256 + e + 32] = d * (sbyte)blk[192 + (e + 32) / 16] * q2;
                            dst[b * 256 + e + 64] = d * (sbyte)blk[192 + (e + 64) / 16] * q3;
                            dst[b * 256 + e + 96] = d * (sbyte)blk[192 + (e + 96) / 16] * q4;
                        }
                }
                break;
            default:
                throw new NotSupportedException($"dequantization of {type} is not implemented");
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

    private static float H(ReadOnlySpan<byte> b, int offset) => (float)BinaryPrimitives.ReadHalfLittleEndian(b[offset..]);
}
