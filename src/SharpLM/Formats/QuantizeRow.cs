using SharpLM.Tensors;

namespace SharpLM.Formats;

/// <summary>f32 row -> bytes of a storage dtype, for the writers: delegates to <see cref="Quantize.Row"/> (ggml's
/// reference quantizers), listing what it supports for error messages.</summary>
internal static class QuantizeRow
{
    public static IReadOnlyList<DType> Supported { get; } = [.. Enum.GetValues<DType>().Where(Quantize.CanQuantize)];

    public static bool CanConvert(DType t) => Quantize.CanQuantize(t);

    /// <summary>src (cols) f32 -> dst (RowBytes(type, cols)).</summary>
    public static void FromFloat(DType type, ReadOnlySpan<float> src, Span<byte> dst) => Quantize.Row(type, src, dst);
}
