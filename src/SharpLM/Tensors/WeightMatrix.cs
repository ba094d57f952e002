namespace SharpLM.Tensors;

/// <summary>
/// A weight matrix W (Rows = OC output features, Cols = C input features), row-major, each row stored as
/// <see cref="DTypeInfo.RowBytes"/> bytes of its <see cref="DType"/>. It does not own its memory: <see cref="Data"/>
/// points into a memory-mapped file or a pinned buffer that outlives the view.
/// </summary>
internal readonly unsafe struct WeightMatrix
{
    public readonly DType Type;
    public readonly byte* Data;
    public readonly int Rows;
    public readonly int Cols;

    /// <summary>The same weights as f32 panels for the packed GEMM (<see cref="Kernels.Gemm.Pack"/>), or null. Set only
    /// where the weights never change after loading (inference); the owner keeps the panels alive.</summary>
    public readonly float* Packed;

    public WeightMatrix(DType type, byte* data, int rows, int cols, float* packed = null)
    {
        Type = type;
        Data = data;
        Rows = rows;
        Cols = cols;
        Packed = packed;
    }

    public long RowBytes => DTypeInfo.RowBytes(Type, Cols);

    public ReadOnlySpan<byte> Row(int r) => new(Data + r * RowBytes, checked((int)RowBytes));

    /// <summary>The elements of an F32 matrix (Rows*Cols), writable (parameters and their gradients in training).</summary>
    public Span<float> Span => Type == DType.F32 ? new Span<float>(Data, checked(Rows * Cols))
        : throw new InvalidOperationException($"a {Type} matrix has no f32 span");
}
