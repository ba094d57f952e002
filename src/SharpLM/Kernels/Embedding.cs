using SharpLM.Tensors;
using SharpLM.Tensors.Types;

namespace SharpLM.Kernels;

/// <summary>
/// Table lookups: the token embedding, learned positions and token types. Forward: ids (N) in [0, rows), table (rows, C)
/// of any dtype -> y (N, C) = table[ids] (or y += table[ids] with <see cref="AddRows"/>). Backward (accumulating, f32
/// tables): dtable[ids[n]] += dy[n], in order of n (deterministic).
/// </summary>
internal static unsafe class Embedding
{
    /// <summary>y (N, C) = table[ids]; <paramref name="what"/> names the table in errors ("token id", "position").</summary>
    public static void Forward(in WeightMatrix table, ReadOnlySpan<int> ids, Span<float> y, string what = "token id")
    {
        int c = table.Cols;
        var t = DTypes.Of(table.Type);
        var isa = KernelIsaSelector.Current;
        byte* plain = table.GroupedRows > 0 ? RowGroups.RowBuffer(table.RowBytes) : null;
        fixed (float* py = y)
            for (int n = 0; n < ids.Length; n++)
            {
                Check(ids[n], n, table.Rows, what);
                t.DequantizeRow(table.PlainRow(ids[n], plain), py + (long)n * c, c, isa);
            }
    }

    /// <summary>y (N, C) += table[ids].</summary>
    public static void AddRows(in WeightMatrix table, ReadOnlySpan<int> ids, Span<float> y, string what)
    {
        int c = table.Cols;
        var t = DTypes.Of(table.Type);
        var isa = KernelIsaSelector.Current;
        float* row = Scratch.Get(Scratch.Row, c);
        byte* plain = table.GroupedRows > 0 ? RowGroups.RowBuffer(table.RowBytes) : null;
        for (int n = 0; n < ids.Length; n++)
        {
            Check(ids[n], n, table.Rows, what);
            t.DequantizeRow(table.PlainRow(ids[n], plain), row, c, isa);
            Add.InPlace(new ReadOnlySpan<float>(row, c), y.Slice(n * c, c));
        }
    }

    /// <summary>dtable (rows, C) += dy[n] at row ids[n].</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<int> ids, Span<float> dtable, int c)
    {
        for (int n = 0; n < ids.Length; n++)
            Add.InPlace(dy.Slice(n * c, c), dtable.Slice(ids[n] * c, c));
    }

    private static void Check(int id, int n, int rows, string what)
    {
        if ((uint)id >= (uint)rows)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"{what} {id} at row {n} is outside the table's {rows} rows");
    }
}
