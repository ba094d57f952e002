namespace SharpLM.Tensors;

/// <summary>
/// Element types of weights. The numeric values are GGML's type ids (as stored in GGUF tensor infos),
/// so a GGUF reader casts directly.
/// </summary>
public enum DType
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    BF16 = 30,
}

/// <summary>Block geometry of each <see cref="DType"/>: elements per block and bytes per block.</summary>
public static class DTypeInfo
{
    /// <summary>Elements in one block (1 for plain types, 32 for Q8_0/Q4_0, 256 for k-quants).</summary>
    public static int BlockSize(DType t) => t switch
    {
        DType.F32 or DType.F16 or DType.BF16 or DType.I8 or DType.I16 or DType.I32 or DType.I64 or DType.F64 => 1,
        DType.Q4_0 or DType.Q4_1 or DType.Q5_0 or DType.Q5_1 or DType.Q8_0 or DType.Q8_1 => 32,
        DType.Q2_K or DType.Q3_K or DType.Q4_K or DType.Q5_K or DType.Q6_K or DType.Q8_K => 256,
        _ => throw new NotSupportedException($"unknown dtype id {(int)t}"),
    };

    /// <summary>Bytes in one block.</summary>
    public static int BlockBytes(DType t) => t switch
    {
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 or DType.I16 => 2,
        DType.I8 => 1,
        DType.I64 or DType.F64 => 8,
        DType.Q4_0 => 18,   // f16 d + 16 bytes of nibbles
        DType.Q4_1 => 20,   // f16 d, f16 m + 16 bytes
        DType.Q5_0 => 22,   // f16 d + 4 bytes high bits + 16 bytes
        DType.Q5_1 => 24,
        DType.Q8_0 => 34,   // f16 d + 32 int8
        DType.Q8_1 => 36,   // f16 d, f16 s + 32 int8
        DType.Q2_K => 84,
        DType.Q3_K => 110,
        DType.Q4_K => 144,  // f16 d, f16 dmin, 12 bytes scales, 128 bytes nibbles
        DType.Q5_K => 176,
        DType.Q6_K => 210,  // 128 ql, 64 qh, 16 int8 scales, f16 d
        DType.Q8_K => 292,
        _ => throw new NotSupportedException($"unknown dtype id {(int)t}"),
    };

    /// <summary>Bytes of a row of <paramref name="cols"/> elements; cols must be a multiple of the block size.</summary>
    public static long RowBytes(DType t, long cols)
    {
        int bs = BlockSize(t);
        if (cols % bs != 0) throw new ArgumentException($"{t} rows need a multiple of {bs} elements, got {cols}", nameof(cols));
        return cols / bs * BlockBytes(t);
    }

    public static bool IsSupported(DType t) => Enum.IsDefined(t);
}
