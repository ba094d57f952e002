// GGUF byte layout (little-endian), as ggml's include/gguf.h and docs/gguf.md define it:
//
//   u32    magic            "GGUF" (bytes 47 47 55 46)
//   u32    version          2 or 3 (1 used u32 counts and string lengths: rejected here)
//   u64    tensor_count
//   u64    metadata_kv_count
//   metadata_kv_count x {   key: gguf_string, u32 value_type, value }
//   tensor_count x {        name: gguf_string, u32 n_dims (1..4), u64 ne[n_dims] (innermost first),
//                           u32 ggml_type, u64 offset (relative to the data section, a multiple of the alignment) }
//   zero padding up to a multiple of `general.alignment` (u32 metadata, default 32)
//   data section: each tensor's bytes at its offset, padded to the alignment
//
//   gguf_string = u64 byte length + UTF-8 bytes (no terminator)
//   value types : 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (1 byte), 8 string,
//                 9 array = { u32 element_type, u64 count, count x element } (arrays may nest), 10 u64, 11 i64, 12 f64
//
// A tensor with ne = [ne0, ne1] holds ne1 rows of ne0 elements: the PyTorch weight W[out,in] is stored with
// ne = [in, out]. TensorInfo.Shape is row-major (outermost first), so the reader reverses ne.
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Text;
using SharpLM.Tensors;

namespace SharpLM.Formats.Gguf;

/// <summary>
/// A GGUF model file, memory-mapped: metadata (typed accessors) and tensors (pointing into the mapping, never
/// copied). Open with <see cref="Open"/>; dispose to unmap. Bad files throw <see cref="InvalidDataException"/>
/// naming the file and the byte offset, tensor or key.
/// </summary>
internal sealed unsafe class GgufFile : IWeightSource
{
    public const uint Magic = 0x46554747; // "GGUF" little-endian
    public const uint DefaultAlignment = 32;
    public const int MaxDims = 4;
    private const int MaxArrayDepth = 8;
    /// <summary>Limits that no real model reaches; beyond them a header is corrupt (and allocating would be huge).</summary>
    private const int MaxArrayCount = 64 << 20, MaxStringBytes = 64 << 20;

    private readonly MappedFile _map;
    private readonly Dictionary<string, GgufValue> _metadata;
    private readonly Dictionary<string, TensorInfo> _tensors;

    public string Path => _map.Path;
    public uint Version { get; }
    public uint Alignment { get; }

    /// <summary>File offset of the data section (after the header, aligned).</summary>
    public long DataOffset { get; }

    public long FileLength => _map.Length;

    /// <summary>Metadata in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> MetadataList { get; }
    public IReadOnlyDictionary<string, GgufValue> Metadata => _metadata;

    /// <summary>Tensors in file order.</summary>
    public IReadOnlyList<TensorInfo> TensorList { get; }
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;

    private GgufFile(MappedFile map, uint version, uint alignment, long dataOffset,
        List<KeyValuePair<string, GgufValue>> metadata, List<TensorInfo> tensors)
    {
        _map = map;
        Version = version;
        Alignment = alignment;
        DataOffset = dataOffset;
        MetadataList = metadata;
        TensorList = tensors;
        _metadata = new Dictionary<string, GgufValue>(StringComparer.Ordinal);
        foreach (var kv in metadata) _metadata[kv.Key] = kv.Value;
        _tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var t in tensors) _tensors[t.Name] = t;
    }

    /// <summary>Maps (or, with <paramref name="inMemory"/>, reads into memory: <see cref="MappedFile.Open(string, bool)"/>)
    /// and parses a GGUF file (v2 or v3).</summary>
    public static GgufFile Open(string path, bool inMemory = false)
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

    // ---------------------------------------------------------------- metadata accessors

    public bool Contains(string key) => _metadata.ContainsKey(key);

    public bool TryGet(string key, out GgufValue value) => _metadata.TryGetValue(key, out value);

    public GgufValue Get(string key) => _metadata.TryGetValue(key, out var v) ? v
        : throw new KeyNotFoundException($"{Path}: metadata key '{key}' is missing");

    /// <summary>A string value.</summary>
    public string GetString(string key) => Get(key).Value as string ?? throw WrongType(key, "string");

    public string? GetStringOrNull(string key) => TryGet(key, out var v) ? v.Value as string ?? throw WrongType(key, "string") : null;

    /// <summary>Any integer type, as a long (a u64 above long.MaxValue is an error).</summary>
    public long GetLong(string key) => ToLong(key, Get(key));

    public long GetLong(string key, long fallback) => TryGet(key, out var v) ? ToLong(key, v) : fallback;

    /// <summary>Any integer type that fits an int.</summary>
    public int GetInt(string key) => ToInt(key, GetLong(key));

    public int GetInt(string key, int fallback) => TryGet(key, out var v) ? ToInt(key, ToLong(key, v)) : fallback;

    /// <summary>An f32 or f64 value (integers are accepted too).</summary>
    public float GetFloat(string key) => ToFloat(key, Get(key));

    public float GetFloat(string key, float fallback) => TryGet(key, out var v) ? ToFloat(key, v) : fallback;

    public bool GetBool(string key) => Get(key).Value is bool b ? b : throw WrongType(key, "bool");

    public bool GetBool(string key, bool fallback) => TryGet(key, out var v) ? v.Value is bool b ? b : throw WrongType(key, "bool") : fallback;

    public GgufArray GetArray(string key) => Get(key).Value as GgufArray ?? throw WrongType(key, "array");

    public GgufArray? GetArrayOrNull(string key) => TryGet(key, out var v) ? v.Value as GgufArray ?? throw WrongType(key, "array") : null;

    public string[] GetStringArray(string key) => GetArray(key).Items as string[] ?? throw WrongType(key, "array of string");

    /// <summary>An array of f32 (or f64, converted).</summary>
    public float[] GetFloatArray(string key) => GetArray(key).Items switch
    {
        float[] f => f,
        double[] d => Array.ConvertAll(d, x => (float)x),
        _ => throw WrongType(key, "array of float32"),
    };

    /// <summary>An array of any integer type, as ints.</summary>
    public int[] GetIntArray(string key)
    {
        var a = GetArray(key);
        if (a.Items is int[] ints) return ints;
        if (!GgufValue.IsInteger(a.ElementType)) throw WrongType(key, "array of integers");
        var r = new int[a.Count];
        for (int i = 0; i < r.Length; i++)
        {
            long v = ToLong(key, GgufValue.From(a.Items.GetValue(i)!));
            r[i] = v is >= int.MinValue and <= int.MaxValue ? (int)v
                : throw new InvalidDataException($"{Path}: metadata '{key}'[{i}] = {v} does not fit a 32-bit int");
        }
        return r;
    }

    /// <summary><c>general.architecture</c> (e.g. "llama", "qwen2").</summary>
    public string Architecture => GetString("general.architecture");

    private InvalidDataException WrongType(string key, string expected) =>
        new($"{Path}: metadata '{key}' is {Describe(Get(key))}, expected {expected}");

    private static string Describe(GgufValue v) => v.Value is GgufArray a ? $"an array of {a.ElementType}" : $"a {v.Type} ({v})";

    private long ToLong(string key, GgufValue v) => v.Value switch
    {
        byte x => x,
        sbyte x => x,
        ushort x => x,
        short x => x,
        uint x => x,
        int x => x,
        long x => x,
        ulong x when x <= long.MaxValue => (long)x,
        _ => throw WrongType(key, "an integer"),
    };

    private int ToInt(string key, long v) => v is >= int.MinValue and <= int.MaxValue ? (int)v
        : throw new InvalidDataException($"{Path}: metadata '{key}' = {v} does not fit a 32-bit int");

    private float ToFloat(string key, GgufValue v) => v.Value switch
    {
        float f => f,
        double d => (float)d,
        _ when GgufValue.IsInteger(v.Type) => ToLong(key, v),
        _ => throw WrongType(key, "a float"),
    };

    // ---------------------------------------------------------------- parsing

    private static GgufFile Parse(MappedFile map)
    {
        var r = new Reader(map);
        if (map.Length < 4) r.Fail(0, $"the file is {map.Length} bytes, too short for a GGUF header (expected the magic \"GGUF\")");
        uint magic = r.U32();
        if (magic != Magic)
            r.Fail(0, $"bad magic 0x{magic:X8} ({Printable(magic)}), expected \"GGUF\": this is not a GGUF file");
        uint version = r.U32();
        if (version == 1) r.Fail(4, "GGUF version 1 is unsupported (it is obsolete); re-convert the model with a current llama.cpp");
        if (version is 0x02000000 or 0x03000000) r.Fail(4, "this GGUF file is big-endian; only little-endian files are supported (convert it with gguf_convert_endian.py)");
        if (version is not (2 or 3)) r.Fail(4, $"unsupported GGUF version {version}, expected 2 or 3");
        long tensorsAt = r.Pos;
        ulong nTensors = r.U64();
        long kvAt = r.Pos;
        ulong nKv = r.U64();
        // Each tensor info takes >= 8+4+8+4+8 bytes, each kv >= 8+4+1: counts beyond what the file can hold are corrupt.
        if (nTensors > (ulong)(map.Length / 32)) r.Fail(tensorsAt, $"tensor count {nTensors} is impossible for a {map.Length}-byte file (truncated or corrupt)");
        if (nKv > (ulong)(map.Length / 13)) r.Fail(kvAt, $"metadata count {nKv} is impossible for a {map.Length}-byte file (truncated or corrupt)");

        var metadata = new List<KeyValuePair<string, GgufValue>>((int)Math.Min(nKv, 1024));
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < nKv; i++)
        {
            long at = r.Pos;
            string key = r.String("metadata key");
            if (!seen.Add(key)) r.Fail(at, $"duplicate metadata key '{key}'");
            long typeAt = r.Pos;
            uint type = r.U32();
            var value = r.Value(type, key, typeAt, 0);
            metadata.Add(new(key, value));
        }

        uint alignment = DefaultAlignment;
        foreach (var kv in metadata)
        {
            if (kv.Key != "general.alignment") continue;
            if (kv.Value.Value is not uint a) { r.Fail(-1, $"metadata 'general.alignment' is a {kv.Value.Type}, expected uint32"); break; }
            if (a == 0 || (a & (a - 1)) != 0) r.Fail(-1, $"metadata 'general.alignment' = {a}, expected a power of two");
            alignment = a;
        }

        var raw = new List<(string Name, DType Type, long[] Shape, ulong Offset, long Bytes, long At)>((int)Math.Min(nTensors, 4096));
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < nTensors; i++)
        {
            long at = r.Pos;
            string name = r.String("tensor name");
            if (!names.Add(name)) r.Fail(at, $"duplicate tensor name '{name}'");
            long dimsAt = r.Pos;
            uint nDims = r.U32();
            if (nDims is 0 or > MaxDims) r.Fail(dimsAt, $"tensor '{name}' has {nDims} dimensions, expected 1..{MaxDims}");
            var ne = new long[nDims];
            long elements = 1;
            for (int d = 0; d < nDims; d++)
            {
                long neAt = r.Pos;
                ulong n = r.U64();
                if (n == 0 || n > long.MaxValue / 8) r.Fail(neAt, $"tensor '{name}' dimension {d} is {n}, expected 1..2^60");
                ne[d] = (long)n;
                if (elements > long.MaxValue / (long)n) r.Fail(neAt, $"tensor '{name}' shape [{string.Join(", ", ne.Take(d + 1))}] overflows");
                elements *= (long)n;
            }
            long typeAt = r.Pos;
            uint typeId = r.U32();
            var dtype = (DType)typeId;
            if (!DTypeInfo.IsSupported(dtype)) r.Fail(typeAt, $"tensor '{name}' has unknown ggml type id {typeId}");
            int bs = DTypeInfo.BlockSize(dtype);
            if (ne[0] % bs != 0) r.Fail(dimsAt, $"tensor '{name}' is {dtype} with rows of {ne[0]} elements, not a multiple of its block size {bs}");
            long bytes = elements / bs;
            if (bytes > long.MaxValue / DTypeInfo.BlockBytes(dtype)) r.Fail(dimsAt, $"tensor '{name}' size overflows");
            bytes *= DTypeInfo.BlockBytes(dtype);
            long offAt = r.Pos;
            ulong offset = r.U64();
            if (offset % alignment != 0) r.Fail(offAt, $"tensor '{name}' data offset {offset} is not a multiple of the alignment {alignment}");
            Array.Reverse(ne);
            raw.Add((name, dtype, ne, offset, bytes, offAt));
        }

        long dataOffset = AlignUp(r.Pos, alignment);
        if (nTensors > 0 && dataOffset > map.Length) r.Fail(r.Pos, $"the file ends at {map.Length} before the aligned data section at {dataOffset} (truncated?)");
        long dataLength = map.Length - dataOffset;

        var tensors = new List<TensorInfo>(raw.Count);
        foreach (var t in raw)
        {
            if (t.Offset > (ulong)dataLength || (ulong)t.Bytes > (ulong)dataLength - t.Offset)
                r.Fail(t.At, $"tensor '{t.Name}' data [{t.Offset}, {t.Offset + (ulong)t.Bytes}) of the data section at {dataOffset} goes past the end of the file ({map.Length} bytes; truncated?)");
            tensors.Add(new TensorInfo(t.Name, t.Type, t.Shape, (nint)(map.Pointer + dataOffset + (long)t.Offset), t.Bytes));
        }
        // No two tensors may share bytes.
        var sorted = raw.Where(t => t.Bytes > 0).OrderBy(t => t.Offset).ToList();
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i - 1].Offset + (ulong)sorted[i - 1].Bytes > sorted[i].Offset)
                r.Fail(sorted[i].At, $"tensor '{sorted[i].Name}' at data offset {sorted[i].Offset} overlaps tensor '{sorted[i - 1].Name}' [{sorted[i - 1].Offset}, {sorted[i - 1].Offset + (ulong)sorted[i - 1].Bytes})");

        return new GgufFile(map, version, alignment, dataOffset, metadata, tensors);
    }

    internal static long AlignUp(long x, long alignment) => (x + alignment - 1) / alignment * alignment;

    private static string Printable(uint magic)
    {
        Span<char> c = stackalloc char[4];
        for (int i = 0; i < 4; i++)
        {
            var b = (byte)(magic >> (8 * i));
            c[i] = b is >= 32 and < 127 ? (char)b : '.';
        }
        return "\"" + new string(c) + "\"";
    }

    /// <summary>A bounds-checked cursor over the mapped header.</summary>
    private sealed class Reader(MappedFile map)
    {
        private static readonly UTF8Encoding Utf8 = new(false, true);
        public long Pos;

        [DoesNotReturn]
        public void Fail(long at, string message) =>
            throw new InvalidDataException(at >= 0 ? $"{map.Path}: at byte {at}: {message}" : $"{map.Path}: {message}");

        private byte* Take(long n, string what)
        {
            if (n < 0 || n > map.Length - Pos)
                Fail(Pos, $"the file ends at {map.Length} while reading {what} ({n} bytes needed; truncated?)");
            byte* p = map.Pointer + Pos;
            Pos += n;
            return p;
        }

        public uint U32() => Unsafe.ReadUnaligned<uint>(Take(4, "a u32"));

        public ulong U64() => Unsafe.ReadUnaligned<ulong>(Take(8, "a u64"));

        public string String(string what)
        {
            long at = Pos;
            ulong len = U64();
            if (len > (ulong)(map.Length - Pos)) Fail(at, $"{what} length {len} runs past the end of the file ({map.Length} bytes; truncated?)");
            if (len > MaxStringBytes) Fail(at, $"{what} length {len} exceeds the {MaxStringBytes}-byte limit (corrupt header?)");
            byte* p = Take((long)len, what);
            try
            {
                return Utf8.GetString(p, (int)len);
            }
            catch (ArgumentException)
            {
                Fail(at, $"{what} is not valid UTF-8");
                return "";
            }
        }

        public GgufValue Value(uint type, string key, long typeAt, int depth)
        {
            switch ((GgufType)type)
            {
                case GgufType.UInt8: return new(GgufType.UInt8, *Take(1, key));
                case GgufType.Int8: return new(GgufType.Int8, (sbyte)*Take(1, key));
                case GgufType.UInt16: return new(GgufType.UInt16, Unsafe.ReadUnaligned<ushort>(Take(2, key)));
                case GgufType.Int16: return new(GgufType.Int16, Unsafe.ReadUnaligned<short>(Take(2, key)));
                case GgufType.UInt32: return new(GgufType.UInt32, Unsafe.ReadUnaligned<uint>(Take(4, key)));
                case GgufType.Int32: return new(GgufType.Int32, Unsafe.ReadUnaligned<int>(Take(4, key)));
                case GgufType.Float32: return new(GgufType.Float32, Unsafe.ReadUnaligned<float>(Take(4, key)));
                case GgufType.UInt64: return new(GgufType.UInt64, Unsafe.ReadUnaligned<ulong>(Take(8, key)));
                case GgufType.Int64: return new(GgufType.Int64, Unsafe.ReadUnaligned<long>(Take(8, key)));
                case GgufType.Float64: return new(GgufType.Float64, Unsafe.ReadUnaligned<double>(Take(8, key)));
                case GgufType.Bool:
                    {
                        long at = Pos;
                        byte b = *Take(1, key);
                        if (b > 1) Fail(at, $"metadata '{key}' bool is {b}, expected 0 or 1");
                        return new(GgufType.Bool, b == 1);
                    }
                case GgufType.String: return new(GgufType.String, String($"metadata '{key}' string"));
                case GgufType.Array: return new(GgufType.Array, Array(key, depth));
                default:
                    Fail(typeAt, $"metadata '{key}' has unknown value type {type}, expected 0..12");
                    return default;
            }
        }

        private GgufArray Array(string key, int depth)
        {
            if (depth >= MaxArrayDepth) Fail(Pos, $"metadata '{key}' nests arrays deeper than {MaxArrayDepth}");
            long typeAt = Pos;
            uint et = U32();
            long countAt = Pos;
            ulong count = U64();
            if (et > (uint)GgufType.Float64) Fail(typeAt, $"metadata '{key}' is an array of unknown type {et}, expected 0..12");
            var t = (GgufType)et;
            long minSize = t switch
            {
                GgufType.UInt8 or GgufType.Int8 or GgufType.Bool => 1,
                GgufType.UInt16 or GgufType.Int16 => 2,
                GgufType.UInt32 or GgufType.Int32 or GgufType.Float32 => 4,
                GgufType.Array => 12,
                _ => 8,
            };
            if (count > (ulong)((map.Length - Pos) / minSize))
                Fail(countAt, $"metadata '{key}' array of {count} {t} cannot fit in the {map.Length - Pos} bytes left in the file (truncated or corrupt)");
            if (count > MaxArrayCount) Fail(countAt, $"metadata '{key}' array of {count} items exceeds the {MaxArrayCount}-item limit (corrupt header?)");
            int n = (int)count;
            switch (t)
            {
                case GgufType.String:
                    {
                        // Grown as parsed, so a corrupt count fails at the end of the file before a big allocation.
                        var a = new List<string>(Math.Min(n, 1 << 16));
                        for (int i = 0; i < n; i++) a.Add(String($"metadata '{key}'[{i}]"));
                        return new GgufArray(t, a.ToArray());
                    }
                case GgufType.Array:
                    {
                        var a = new List<GgufArray>(Math.Min(n, 1 << 12));
                        // gguf-py writes each inner array as {u32 type, u64 count, items}, without a value-type tag.
                        for (int i = 0; i < n; i++) a.Add(Array(key, depth + 1));
                        return new GgufArray(t, a.ToArray());
                    }
                case GgufType.Bool:
                    {
                        long at = Pos;
                        var src = new ReadOnlySpan<byte>(Take(n, key), n);
                        var a = new bool[n];
                        for (int i = 0; i < n; i++)
                        {
                            if (src[i] > 1) Fail(at + i, $"metadata '{key}'[{i}] bool is {src[i]}, expected 0 or 1");
                            a[i] = src[i] == 1;
                        }
                        return new GgufArray(t, a);
                    }
                default:
                    {
                        Array a = t switch
                        {
                            GgufType.UInt8 => new byte[n],
                            GgufType.Int8 => new sbyte[n],
                            GgufType.UInt16 => new ushort[n],
                            GgufType.Int16 => new short[n],
                            GgufType.UInt32 => new uint[n],
                            GgufType.Int32 => new int[n],
                            GgufType.Float32 => new float[n],
                            GgufType.UInt64 => new ulong[n],
                            GgufType.Int64 => new long[n],
                            _ => new double[n],
                        };
                        int bytes = checked(n * (int)minSize);
                        var src = new ReadOnlySpan<byte>(Take(bytes, key), bytes);
                        src.CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(AsSpan(a)));
                        return new GgufArray(t, a);
                    }
            }
        }

        private static Span<byte> AsSpan(Array a) => a switch
        {
            byte[] x => x,
            sbyte[] x => System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan()),
            ushort[] x => System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan()),
            short[] x => System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan()),
            uint[] x => System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan()),
            int[] x => System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan()),
            float[] x => System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan()),
            ulong[] x => System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan()),
            long[] x => System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan()),
            double[] x => System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.AsSpan()),
            _ => throw new InvalidOperationException(a.GetType().Name),
        };
    }
}
