using SharpLM.Quantization;
using SharpLM.Tensors;

namespace SharpLM.Formats.Gguf;

/// <summary>
/// GGUF -> GGUF in another file type, as llama-quantize does it: metadata is copied (general.file_type and
/// general.quantization_version updated), tensors llama.cpp does not quantize are copied, the others get the type
/// <see cref="QuantMix"/> chooses (the file type's mix and fallbacks) and are dequantized row by row and re-quantized.
/// </summary>
internal static class GgufRequantize
{
    /// <summary>The writer reads lazily from <paramref name="src"/>, which must stay open until Write finishes.</summary>
    public static GgufWriter Build(GgufFile src, QuantFileType fileType)
    {
        var config = ModelConfigReader.FromGguf(src);
        var w = new GgufWriter(src.Alignment);
        foreach (var (k, v) in src.MetadataList)
        {
            if (k == GgufKeys.Alignment) continue;
            w.Set(k, v);
        }
        w.Set(GgufKeys.FileType, fileType.Id);
        w.Set(GgufKeys.QuantizationVersion, 2u);
        var mix = new QuantMix(fileType, config, src.TensorList.Select(t => t.Name));
        var types = new Dictionary<string, DType>(StringComparer.Ordinal);
        foreach (var t in src.TensorList.OrderBy(t => t.Name, Comparer<string>.Create(QuantMix.Order)))
            types[t.Name] = mix.TypeFor(t.Name, t.Shape, t.Type);
        foreach (var t in src.TensorList)
        {
            DType store = types[t.Name];
            if (store == t.Type || !Tensors.Types.DTypes.Of(t.Type).CanDequantize)
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
