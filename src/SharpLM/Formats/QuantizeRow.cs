using System.Buffers.Binary;
using SharpLM.Tensors;

namespace SharpLM.Formats;

/// <summary>
/// f32 row -> bytes of a storage dtype, for the writers. F32, F16, BF16, Q8_0 and Q4_0 follow ggml's reference
/// quantizers (quantize_row_q8_0_ref / quantize_row_q4_0_ref, fp32_to_bf16 with round-to-nearest-even), which
/// gguf-py's converters reproduce bit for bit.
/// </summary>
internal static class QuantizeRow
{
    public static IReadOnlyList<DType> Supported { get; } = [DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0];

    public static bool CanConvert(DType t) => Supported.Contains(t);

    /// <summary>src (cols) f32 -> dst (RowBytes(type, cols)).</summary>
    public static void FromFloat(DType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        int n = src.Length;
        long need = DTypeInfo.RowBytes(type, n);
        if (dst.Length < need) throw new ArgumentException($"destination has {dst.Length} bytes, a {type} row of {n} needs {need}", nameof(dst));
        switch (type)
        {
            case DType.F32:
                for (int i = 0; i < n; i++) BinaryPrimitives.WriteSingleLittleEndian(dst[(4 * i)..], src[i]);
                break;
            case DType.F16:
                for (int i = 0; i < n; i++) BinaryPrimitives.WriteHalfLittleEndian(dst[(2 * i)..], (Half)src[i]);
                break;
            case DType.BF16:
                for (int i = 0; i < n; i++) BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], ToBf16(src[i]));
                break;
            case DType.Q8_0:
                for (int b = 0; b < n / 32; b++)
                {
                    var x = src.Slice(b * 32, 32);
                    var y = dst.Slice(b * 34, 34);
                    float amax = 0;
                    foreach (var v in x) amax = Math.Max(amax, Math.Abs(v));
                    float d = amax / 127f;
                    float id = d != 0 ? 1f / d : 0f;
                    BinaryPrimitives.WriteHalfLittleEndian(y, (Half)d);
                    for (int j = 0; j < 32; j++) y[2 + j] = unchecked((byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero));
                }
                break;
            case DType.Q4_0:
                for (int b = 0; b < n / 32; b++)
                {
                    var x = src.Slice(b * 32, 32);
                    var y = dst.Slice(b * 18, 18);
                    float amax = 0, max = 0;
                    foreach (var v in x)
                    {
                        if (amax < Math.Abs(v)) { amax = Math.Abs(v); max = v; }
                    }
                    float d = max / -8f;
                    float id = d != 0 ? 1f / d : 0f;
                    BinaryPrimitives.WriteHalfLittleEndian(y, (Half)d);
                    for (int j = 0; j < 16; j++)
                    {
                        int x0 = Math.Min(15, (int)(sbyte)(x[j] * id + 8.5f));
                        int x1 = Math.Min(15, (int)(sbyte)(x[16 + j] * id + 8.5f));
                        y[2 + j] = (byte)(x0 | (x1 << 4));
                    }
                }
                break;
            default:
                throw new NotSupportedException($"converting f32 to {type} is not supported; use one of {string.Join(", ", Supported)}");
        }
    }

    /// <summary>ggml_compute_fp32_to_bf16: round to nearest even, NaN stays a quiet NaN.</summary>
    public static ushort ToBf16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7fffffff) > 0x7f800000) return (ushort)((u >> 16) | 64);
        return (ushort)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
    }
}
