// safetensors byte layout (https://github.com/huggingface/safetensors, README "Format"):
//
//   u64 (little-endian)  N = header byte length (at most 100 MB)
//   N bytes              UTF-8 JSON object (writers pad it with spaces to a multiple of 8):
//                          { "__metadata__": { "key": "value", ... },                 (optional, strings only)
//                            "name": { "dtype": "F32", "shape": [d0, d1, ...],          (row-major, outermost first)
//                                      "data_offsets": [begin, end] }, ... }           (relative to the data section)
//   rest                 data section: each tensor's bytes, C order, little-endian, at [begin, end)
//
//   dtypes: BOOL U8 I8 F8_E5M2 F8_E4M3 I16 U16 F16 BF16 I32 U32 F32 F64 I64 U64
//   end - begin must equal prod(shape) * sizeof(dtype); tensors may not overlap.
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using SharpLM.Tensors;

namespace SharpLM.Formats.Safetensors;

/// <summary>One entry of a safetensors header. <see cref="Type"/> is null for dtypes SharpLM has no
/// <see cref="DType"/> for (BOOL, U8, U16, U32, U64, F8_*): they are listed but not in <see cref="IWeightSource.Tensors"/>.</summary>
internal sealed record SafetensorsEntry(string Name, string DTypeName, DType? Type, long[] Shape, long Begin, long End, nint Data)
{
    public long ByteLength => End - Begin;
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// A memory-mapped .safetensors file: tensors point into the mapping (never copied); <see cref="Metadata"/> is the
/// <c>__metadata__</c> object. Bad files throw <see cref="InvalidDataException"/> naming the file, the byte offset or
/// the tensor and JSON field.
/// </summary>
internal sealed unsafe class SafetensorsFile : IWeightSource
{
    public const long MaxHeaderBytes = 100_000_000;

    private readonly MappedFile _map;

    public string Path => _map.Path;
    public long FileLength => _map.Length;

    /// <summary>File offset of the data section (8 + header length).</summary>
    public long DataOffset { get; }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>All entries in header order, including dtypes without a <see cref="DType"/>.</summary>
    public IReadOnlyList<SafetensorsEntry> Entries { get; }

    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }

    private SafetensorsFile(MappedFile map, long dataOffset, Dictionary<string, string> metadata, List<SafetensorsEntry> entries)
    {
        _map = map;
        DataOffset = dataOffset;
        Metadata = metadata;
        Entries = entries;
        var t = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var e in entries)
            if (e.Type is { } dt) t[e.Name] = new TensorInfo(e.Name, dt, e.Shape, e.Data, e.ByteLength);
        Tensors = t;
    }

    /// <summary>Opens and parses a .safetensors file, mapped or read into memory (<see cref="MappedFile.Open(string, bool)"/>).</summary>
    public static SafetensorsFile Open(string path, bool inMemory = false)
    {
        var map = MappedFile.Open(path, inMemory);
        try
        {
            return Parse(map);
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    public void Dispose() => _map.Dispose();

    /// <summary>The safetensors dtype name of a <see cref="DType"/> ("F32", "BF16", ...), or null if it has none.</summary>
    public static string? DTypeName(DType t) => t switch
    {
        DType.F32 => "F32",
        DType.F16 => "F16",
        DType.BF16 => "BF16",
        DType.F64 => "F64",
        DType.I8 => "I8",
        DType.I16 => "I16",
        DType.I32 => "I32",
        DType.I64 => "I64",
        _ => null,
    };

    /// <summary>Element size and SharpLM dtype of a safetensors dtype name; false if the name is unknown.</summary>
    public static bool TryParseDType(string name, out int elementBytes, out DType? type)
    {
        (elementBytes, type) = name switch
        {
            "F32" => (4, DType.F32),
            "F16" => (2, DType.F16),
            "BF16" => (2, DType.BF16),
            "F64" => (8, DType.F64),
            "I8" => (1, DType.I8),
            "I16" => (2, DType.I16),
            "I32" => (4, DType.I32),
            "I64" => (8, DType.I64),
            "BOOL" or "U8" or "F8_E5M2" or "F8_E4M3" => (1, (DType?)null),
            "U16" => (2, null),
            "U32" => (4, null),
            "U64" => (8, null),
            _ => (0, null),
        };
        return elementBytes != 0;
    }

    private static SafetensorsFile Parse(MappedFile map)
    {
        string file = map.Path;
        if (map.Length < 8) Fail(file, $"at byte 0: the file is {map.Length} bytes, too short for the 8-byte header length (truncated?)");
        ulong n = *(ulong*)map.Pointer;
        if (n < 2 || n > MaxHeaderBytes) Fail(file, $"at byte 0: header length {n} is invalid, expected 2..{MaxHeaderBytes} (not a safetensors file?)");
        if ((long)n > map.Length - 8) Fail(file, $"at byte 0: header length {n} runs past the end of the file ({map.Length} bytes; truncated?)");
        long dataOffset = 8 + (long)n;
        long dataLength = map.Length - dataOffset;
        var headerBytes = new ReadOnlySpan<byte>(map.Pointer + 8, (int)n);

        if (!System.Text.Unicode.Utf8.IsValid(headerBytes)) Fail(file, $"the JSON header (bytes 8..{dataOffset}) is not valid UTF-8 (corrupt file?)");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(headerBytes.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            Fail(file, $"the JSON header (bytes 8..{dataOffset}) is invalid: {e.Message}");
            return null;
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) Fail(file, $"the JSON header is a {root.ValueKind}, expected an object");
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var entries = new List<SafetensorsEntry>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in root.EnumerateObject())
            {
                if (!names.Add(prop.Name)) Fail(file, $"the JSON header has the key '{prop.Name}' twice");
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) Fail(file, $"__metadata__ is a {prop.Value.ValueKind}, expected an object of strings");
                    foreach (var m in prop.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()!
                            : Fail<string>(file, $"__metadata__.{m.Name} is a {m.Value.ValueKind}, expected a string");
                    continue;
                }
                entries.Add(ParseEntry(file, prop.Name, prop.Value, dataLength, map.Pointer + dataOffset));
            }
            var sorted = entries.Where(e => e.ByteLength > 0).OrderBy(e => e.Begin).ToList();
            for (int i = 1; i < sorted.Count; i++)
                if (sorted[i].Begin < sorted[i - 1].End)
                    Fail(file, $"tensor '{sorted[i].Name}' data_offsets [{sorted[i].Begin}, {sorted[i].End}] overlap tensor '{sorted[i - 1].Name}' [{sorted[i - 1].Begin}, {sorted[i - 1].End}]");
            return new SafetensorsFile(map, dataOffset, metadata, entries);
        }
    }

    private static SafetensorsEntry ParseEntry(string file, string name, JsonElement e, long dataLength, byte* data)
    {
        if (e.ValueKind != JsonValueKind.Object) Fail(file, $"tensor '{name}' is a {e.ValueKind} in the JSON header, expected an object with dtype, shape, data_offsets");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) Fail(file, $"tensor '{name}': 'dtype' is missing or not a string");
        string dtype = dt.GetString()!;
        if (!TryParseDType(dtype, out int size, out var type)) Fail(file, $"tensor '{name}': unknown dtype '{dtype}', expected one of F32 F16 BF16 F64 I8 I16 I32 I64 U8 U16 U32 U64 BOOL F8_E4M3 F8_E5M2");
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) Fail(file, $"tensor '{name}': 'shape' is missing or not an array");
        var shape = new long[sh.GetArrayLength()];
        if (shape.Length > 8) Fail(file, $"tensor '{name}': shape has {shape.Length} dimensions, expected at most 8");
        long elements = 1;
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            long v = d.ValueKind == JsonValueKind.Number && d.TryGetInt64(out long x) ? x : -1;
            if (v < 0) Fail(file, $"tensor '{name}': shape[{i}] = {d.GetRawText()} is not a non-negative integer");
            shape[i++] = v;
            if (v != 0 && elements > long.MaxValue / 16 / v) Fail(file, $"tensor '{name}': shape [{string.Join(", ", shape.Take(i))}] is absurdly large");
            elements *= v;
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            Fail(file, $"tensor '{name}': 'data_offsets' is missing or not [begin, end]");
        long begin = off[0].ValueKind == JsonValueKind.Number && off[0].TryGetInt64(out long b0) ? b0 : -1;
        long end = off[1].ValueKind == JsonValueKind.Number && off[1].TryGetInt64(out long e0) ? e0 : -1;
        if (begin < 0 || end < begin)
            Fail(file, $"tensor '{name}': data_offsets {off.GetRawText()} are not 0 <= begin <= end");
        if (end > dataLength) Fail(file, $"tensor '{name}': data_offsets [{begin}, {end}] run past the data section ({dataLength} bytes; truncated?)");
        if (end - begin != elements * size)
            Fail(file, $"tensor '{name}': data_offsets [{begin}, {end}] hold {end - begin} bytes, but {dtype} [{string.Join(", ", shape)}] needs {elements * size}");
        return new SafetensorsEntry(name, dtype, type, shape, begin, end, (nint)(data + begin));
    }

    [DoesNotReturn]
    private static void Fail(string file, string message) => throw new InvalidDataException($"{file}: {message}");

    [DoesNotReturn]
    private static T Fail<T>(string file, string message) => throw new InvalidDataException($"{file}: {message}");
}
