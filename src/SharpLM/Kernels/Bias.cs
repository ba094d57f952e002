namespace SharpLM.Kernels;

/// <summary>
/// A bias added to every row: y (N, C) += b (C). Backward: db (C) += sum over rows of dy (rows in order, so deterministic);
/// the gradient of y passes to its input unchanged.
/// </summary>
internal static class Bias
{
    public static void Forward(Span<float> y, ReadOnlySpan<float> b)
    {
        int c = b.Length;
        for (int r = 0; r < y.Length / c; r++) Add.InPlace(b, y.Slice(r * c, c));
    }

    public static void Backward(ReadOnlySpan<float> dy, Span<float> db)
    {
        int c = db.Length;
        for (int r = 0; r < dy.Length / c; r++) Add.InPlace(dy.Slice(r * c, c), db);
    }
}
