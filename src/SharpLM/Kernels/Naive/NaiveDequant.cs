using System.Buffers.Binary;
using SharpLM.Tensors;

namespace SharpLM.Kernels.Naive;

/// <summary>Readable dequantization of one row, the oracle for the fast paths. Block layouts follow ggml.</summary>
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
                // block: f16 d, int8 q[32]; x = d * q
                for (int b = 0; b < n / 32; b++)
                {
                    var blk = src.Slice(b * 34, 34);
                    float d = (float)BinaryPrimitives.ReadHalfLittleEndian(blk);
                    for (int j = 0; j < 32; j++) dst[b * 32 + j] = d * (sbyte)blk[2 + j];
                }
                break;
            default:
                throw new NotSupportedException($"dequantization of {type} is not implemented");
        }
    }
}
