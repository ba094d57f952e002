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

    /// <summary>Rows [0, GroupedRows) are stored in groups of eight (<see cref="Types.RowGroups"/>: a loaded model's quantized
    /// matrices, regrouped in place for the matvec); the rows after them as usual. 0 for a plain matrix.</summary>
    public readonly int GroupedRows;

    public WeightMatrix(DType type, byte* data, int rows, int cols, float* packed = null, bool grouped = false)
    {
        Type = type;
        Data = data;
        Rows = rows;
        Cols = cols;
        Packed = packed;
        GroupedRows = grouped ? rows / Types.RowGroups.Size * Types.RowGroups.Size : 0;
    }

    public long RowBytes => DTypeInfo.RowBytes(Type, Cols);

    /// <summary>Row r's bytes in the plain layout (a plain matrix's own row; a grouped row copied out).</summary>
    public ReadOnlySpan<byte> Row(int r)
    {
        if (r >= GroupedRows) return new(Data + r * RowBytes, checked((int)RowBytes));
        var copy = new byte[RowBytes];
        fixed (byte* c = copy) PlainRow(r, c);
        return copy;
    }

    /// <summary>A pointer to row r in the plain layout: into the matrix, or (a grouped row) <paramref name="scratch"/>
    /// (RowBytes long) after copying the row out of its group.</summary>
    public byte* PlainRow(int r, byte* scratch) => Types.RowGroups.PlainRow(Type, Data, RowBytes, GroupedRows, Cols, r, scratch);

    /// <summary>The elements of an F32 matrix (Rows*Cols), writable (parameters and their gradients in training).</summary>
    public Span<float> Span => Type == DType.F32 ? new Span<float>(Data, checked(Rows * Cols))
        : throw new InvalidOperationException($"a {Type} matrix has no f32 span");
}
