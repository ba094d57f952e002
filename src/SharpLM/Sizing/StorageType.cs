namespace SharpLM.Sizing;

/// <summary>How weights (or the KV cache) are stored: <see cref="BlockBytes"/> bytes per block of
/// <see cref="BlockElements"/> values (llama.cpp's block layouts for the quantised types).</summary>
internal sealed record StorageType(string Name, int BlockBytes, int BlockElements, string Description)
{
    public static readonly IReadOnlyList<StorageType> All =
    [
        new("f32", 4, 1, "32-bit float"),
        new("f16", 2, 1, "16-bit float"),
        new("bf16", 2, 1, "bfloat16"),
        new("q8_0", 34, 32, "8-bit blocks of 32 with an f16 scale (34 bytes / 32 values); 'int8' is an alias"),
        new("q6_k", 210, 256, "6-bit k-quant (210 bytes / 256 values)"),
        new("q5_k", 176, 256, "5-bit k-quant (176 bytes / 256 values)"),
        new("q5_0", 22, 32, "5-bit blocks of 32 (22 bytes / 32 values)"),
        new("q4_k", 144, 256, "4-bit k-quant (144 bytes / 256 values)"),
        new("q4_1", 20, 32, "4-bit blocks of 32 with scale and min (20 bytes / 32 values)"),
        new("q4_0", 18, 32, "4-bit blocks of 32 with an f16 scale (18 bytes / 32 values)"),
    ];

    public double BytesPerValue => (double)BlockBytes / BlockElements;

    /// <summary>Bytes for <paramref name="count"/> values, rounded up to whole bytes.</summary>
    public long Bytes(long count) => checked((long)(((Int128)count * BlockBytes + BlockElements - 1) / BlockElements));

    /// <summary>"2" or "34/32" bytes per value, for formulas.</summary>
    public string BytesText => BlockElements == 1 ? BlockBytes.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{BlockBytes}/{BlockElements}";

    public static StorageType Parse(string name, string option)
    {
        string n = name.Trim().ToLowerInvariant();
        if (n is "int8" or "i8") n = "q8_0";
        if (n is "fp16" or "float16" or "half") n = "f16";
        if (n is "fp32" or "float32" or "float") n = "f32";
        if (n is "q4_k_m" or "q4_k_s") n = "q4_k";
        return All.FirstOrDefault(t => t.Name == n)
               ?? throw new ArgumentException($"{option}: unknown type '{name}'. Known: {string.Join(", ", All.Select(t => t.Name))}, int8.");
    }
}
