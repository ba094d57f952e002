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
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
}

/// <summary>Block geometry of each <see cref="DType"/> (read from the dtype table, Tensors/Types).</summary>
public static class DTypeInfo
{
    /// <summary>Elements in one block (1 for plain types, 32 for Q8_0/Q4_0, 256 for k-quants).</summary>
    public static int BlockSize(DType t) => Types.DTypes.Of(t).BlockSize;

    /// <summary>Bytes in one block.</summary>
    public static int BlockBytes(DType t) => Types.DTypes.Of(t).BlockBytes;

    /// <summary>Bytes of a row of <paramref name="cols"/> elements; cols must be a multiple of the block size.</summary>
    public static long RowBytes(DType t, long cols) => Types.DTypes.Of(t).RowBytes(cols);

    /// <summary>True for a type id SharpLM knows (whether or not it can compute with it).</summary>
    public static bool IsSupported(DType t) => Types.DTypes.IsKnown(t);
}
