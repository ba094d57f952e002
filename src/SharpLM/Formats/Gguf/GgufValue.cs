using System.Globalization;

namespace SharpLM.Formats.Gguf;

/// <summary>GGUF metadata value types, with the ids the file stores (gguf_type in ggml's gguf.h).</summary>
internal enum GgufType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>
/// An array metadata value. <see cref="Items"/> is a typed CLR array matching <see cref="ElementType"/>:
/// byte[], sbyte[], ushort[], short[], uint[], int[], float[], bool[], string[], GgufArray[] (nested), ulong[],
/// long[], double[].
/// </summary>
internal sealed class GgufArray
{
    public GgufType ElementType { get; }
    public Array Items { get; }
    public int Count => Items.Length;

    public GgufArray(GgufType elementType, Array items)
    {
        ArgumentNullException.ThrowIfNull(items);
        var expected = GgufValue.ClrArrayType(elementType);
        if (items.GetType() != expected)
            throw new ArgumentException($"a GGUF {elementType} array needs a {expected.Name}, got {items.GetType().Name}", nameof(items));
        ElementType = elementType;
        Items = items;
    }

    public static GgufArray Of(string[] items) => new(GgufType.String, items);
    public static GgufArray Of(float[] items) => new(GgufType.Float32, items);
    public static GgufArray Of(int[] items) => new(GgufType.Int32, items);
    public static GgufArray Of(uint[] items) => new(GgufType.UInt32, items);
    public static GgufArray Of(long[] items) => new(GgufType.Int64, items);
    public static GgufArray Of(bool[] items) => new(GgufType.Bool, items);

    public override string ToString() => $"[{ElementType} x {Count}]";
}

/// <summary>One metadata value: its GGUF type and the CLR value (byte, sbyte, ushort, short, uint, int, float, bool,
/// string, <see cref="GgufArray"/>, ulong, long, double).</summary>
internal readonly record struct GgufValue(GgufType Type, object Value)
{
    public static implicit operator GgufValue(string v) => new(GgufType.String, v);
    public static implicit operator GgufValue(uint v) => new(GgufType.UInt32, v);
    public static implicit operator GgufValue(int v) => new(GgufType.Int32, v);
    public static implicit operator GgufValue(float v) => new(GgufType.Float32, v);
    public static implicit operator GgufValue(bool v) => new(GgufType.Bool, v);
    public static implicit operator GgufValue(ulong v) => new(GgufType.UInt64, v);
    public static implicit operator GgufValue(long v) => new(GgufType.Int64, v);
    public static implicit operator GgufValue(double v) => new(GgufType.Float64, v);
    public static implicit operator GgufValue(GgufArray v) => new(GgufType.Array, v);

    /// <summary>Wraps a CLR value, inferring its GGUF type.</summary>
    public static GgufValue From(object value) => value switch
    {
        byte v => new(GgufType.UInt8, v),
        sbyte v => new(GgufType.Int8, v),
        ushort v => new(GgufType.UInt16, v),
        short v => new(GgufType.Int16, v),
        uint v => new(GgufType.UInt32, v),
        int v => new(GgufType.Int32, v),
        float v => new(GgufType.Float32, v),
        bool v => new(GgufType.Bool, v),
        string v => new(GgufType.String, v),
        GgufArray v => new(GgufType.Array, v),
        ulong v => new(GgufType.UInt64, v),
        long v => new(GgufType.Int64, v),
        double v => new(GgufType.Float64, v),
        _ => throw new ArgumentException($"no GGUF type for a {value?.GetType().Name ?? "null"}", nameof(value)),
    };

    internal static Type ClrArrayType(GgufType t) => t switch
    {
        GgufType.UInt8 => typeof(byte[]),
        GgufType.Int8 => typeof(sbyte[]),
        GgufType.UInt16 => typeof(ushort[]),
        GgufType.Int16 => typeof(short[]),
        GgufType.UInt32 => typeof(uint[]),
        GgufType.Int32 => typeof(int[]),
        GgufType.Float32 => typeof(float[]),
        GgufType.Bool => typeof(bool[]),
        GgufType.String => typeof(string[]),
        GgufType.Array => typeof(GgufArray[]),
        GgufType.UInt64 => typeof(ulong[]),
        GgufType.Int64 => typeof(long[]),
        GgufType.Float64 => typeof(double[]),
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown GGUF value type"),
    };

    internal static bool IsInteger(GgufType t) => t is GgufType.UInt8 or GgufType.Int8 or GgufType.UInt16 or GgufType.Int16
        or GgufType.UInt32 or GgufType.Int32 or GgufType.UInt64 or GgufType.Int64;

    /// <summary>Short text for inspect output: scalars as text, arrays as "[type x n]".</summary>
    public override string ToString() => Value switch
    {
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => Value.ToString() ?? "",
    };
}
