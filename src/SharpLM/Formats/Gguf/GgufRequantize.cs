using SharpLM.Formats.HuggingFace;
using SharpLM.Tensors;

namespace SharpLM.Formats.Gguf;

/// <summary>
/// GGUF -> GGUF with the matrices stored as another type (e.g. F32 -> Q8_0): metadata is copied (general.file_type
/// updated), 1-D tensors stay as they are, 2-D+ tensors are dequantized row by row and re-quantized with the same
/// rules as <see cref="HfToGguf"/> (output.weight kept at Q8_0/Q6_K for 4-bit types, F16 when rows do not fill blocks).
/// </summary>
internal static class GgufRequantize
{
    /// <summary>The writer reads lazily from <paramref name="src"/>, which must stay open until Write finishes.</summary>
    public static GgufWriter Build(GgufFile src, DType type)
    {
        var w = new GgufWriter(src.Alignment);
        foreach (var (k, v) in src.MetadataList)
        {
            if (k == GgufKeys.Alignment) continue;
            w.Set(k, v);
        }
        w.Set(GgufKeys.FileType, HfToGguf.FileType(type));
        if (Tensors.Types.DTypes.Of(type).BlockSize > 1) w.Set(GgufKeys.QuantizationVersion, 2u);
        foreach (var t in src.TensorList)
        {
            if (t.Shape.Length < 2 || !Tensors.Types.DTypes.Of(t.Type).CanDequantize)
            {
                CopyAsIs(w, t);
                continue;
            }
            DType store = HfToGguf.StorageType(t.Name, type, t.Shape[^1]);
            if (store == t.Type)
            {
                CopyAsIs(w, t);
                continue;
            }
            int cols = checked((int)t.Shape[^1]);
            long srcRowBytes = DTypeInfo.RowBytes(t.Type, cols);
            var tt = t;
            w.AddTensor(t.Name, t.Shape, store, (r, dst) =>
            {
                unsafe
                {
                    Tensors.Types.DTypes.Of(tt.Type).DequantizeRow(new ReadOnlySpan<byte>((byte*)tt.Data + r * srcRowBytes, checked((int)srcRowBytes)), dst);
                }
            });
        }
        return w;
    }

    private static unsafe void CopyAsIs(GgufWriter w, TensorInfo t)
    {
        var tt = t;
        w.AddTensor(t.Name, t.Type, t.Shape, s =>
        {
            byte* p = (byte*)tt.Data;
            long left = tt.ByteLength;
            while (left > 0)
            {
                int n = (int)Math.Min(left, 1 << 20);
                s.Write(new ReadOnlySpan<byte>(p, n));
                p += n;
                left -= n;
            }
        });
    }
}
