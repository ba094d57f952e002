using System.Buffers;
using System.Buffers.Binary;
using System.Text.Json;
using SharpLM.Tensors;

namespace SharpLM.Formats.Safetensors;

/// <summary>
/// Builds a .safetensors file (layout: see SafetensorsFile.cs): tensors are laid out contiguously in the order
/// added, the JSON header is padded with spaces to a multiple of 8, and the file is written to a temporary name then
/// renamed. <see cref="WriteSharded"/> splits into model-0000k-of-0000n.safetensors plus model.safetensors.index.json.
/// </summary>
internal sealed class SafetensorsWriter
{
    private readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal);
    private readonly List<Pending> _tensors = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public IReadOnlyDictionary<string, string> Metadata => _metadata;

    public int TensorCount => _tensors.Count;

    public SafetensorsWriter SetMetadata(string key, string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        _metadata[key] = value;
        return this;
    }

    /// <summary>A tensor already in its dtype's bytes (little-endian, C order); <paramref name="dtype"/> is the
    /// safetensors name ("F32", "BF16", "U8", ...).</summary>
    public SafetensorsWriter Add(string name, string dtype, long[] shape, ReadOnlyMemory<byte> data)
    {
        long bytes = Bytes(name, dtype, shape);
        if (data.Length != bytes) throw new ArgumentException($"tensor '{name}' {dtype} [{string.Join(", ", shape)}] needs {bytes} bytes, got {data.Length}", nameof(data));
        return Add(new Pending(name, dtype, (long[])shape.Clone(), bytes, s => s.Write(data.Span)));
    }

    public SafetensorsWriter Add(string name, DType type, long[] shape, ReadOnlyMemory<byte> data) =>
        Add(name, SafetensorsFile.DTypeName(type) ?? throw new NotSupportedException($"tensor '{name}': safetensors has no {type} dtype"), shape, data);

    /// <summary>A tensor whose bytes <paramref name="writeData"/> writes during <c>Write</c>.</summary>
    public SafetensorsWriter Add(string name, string dtype, long[] shape, Action<Stream> writeData)
    {
        ArgumentNullException.ThrowIfNull(writeData);
        return Add(new Pending(name, dtype, (long[])shape.Clone(), Bytes(name, dtype, shape), writeData));
    }

    /// <summary>An f32 tensor stored as F32, F16 or BF16.</summary>
    public SafetensorsWriter Add(string name, long[] shape, ReadOnlyMemory<float> data, DType storeAs = DType.F32)
    {
        if (storeAs is not (DType.F32 or DType.F16 or DType.BF16)) throw new NotSupportedException($"tensor '{name}': store f32 data as F32, F16 or BF16, not {storeAs}");
        string dtype = SafetensorsFile.DTypeName(storeAs)!;
        long bytes = Bytes(name, dtype, shape);
        if (data.Length * (long)(storeAs == DType.F32 ? 4 : 2) != bytes)
            throw new ArgumentException($"tensor '{name}' [{string.Join(", ", shape)}] has {bytes / (storeAs == DType.F32 ? 4 : 2)} elements, got {data.Length}", nameof(data));
        return Add(new Pending(name, dtype, (long[])shape.Clone(), bytes, s =>
        {
            const int Chunk = 4096;
            var buf = ArrayPool<byte>.Shared.Rent(Chunk * 4);
            try
            {
                for (int i = 0; i < data.Length; i += Chunk)
                {
                    var src = data.Span.Slice(i, Math.Min(Chunk, data.Length - i));
                    int nb = (int)DTypeInfo.RowBytes(storeAs, src.Length);
                    Tensors.Types.DTypes.Of(storeAs).QuantizeRow(src, buf.AsSpan(0, nb));
                    s.Write(buf, 0, nb);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buf);
            }
        }));
    }

    private SafetensorsWriter Add(Pending p)
    {
        if (p.Name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved and cannot name a tensor");
        if (!_names.Add(p.Name)) throw new ArgumentException($"tensor '{p.Name}' was added twice");
        _tensors.Add(p);
        return this;
    }

    private static long Bytes(string name, string dtype, long[] shape)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (!SafetensorsFile.TryParseDType(dtype, out int size, out _)) throw new ArgumentException($"tensor '{name}': unknown safetensors dtype '{dtype}'");
        if (shape.Any(d => d < 0)) throw new ArgumentException($"tensor '{name}': negative dimension in [{string.Join(", ", shape)}]");
        return checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * size);
    }

    /// <summary>Total tensor bytes.</summary>
    public long DataBytes => _tensors.Sum(t => t.Bytes);

    public void Write(string path, Action<long, long>? progress = null) => Write(path, _tensors, _metadata, progress);

    private static void Write(string path, IReadOnlyList<Pending> tensors, IReadOnlyDictionary<string, string> metadata, Action<long, long>? progress)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
                WriteTo(fs, tensors, metadata, progress);
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    private static void WriteTo(Stream s, IReadOnlyList<Pending> tensors, IReadOnlyDictionary<string, string> metadata, Action<long, long>? progress)
    {
        var header = new ArrayBufferWriter<byte>();
        using (var j = new Utf8JsonWriter(header))
        {
            j.WriteStartObject();
            if (metadata.Count > 0)
            {
                j.WriteStartObject("__metadata__");
                foreach (var kv in metadata) j.WriteString(kv.Key, kv.Value);
                j.WriteEndObject();
            }
            long off = 0;
            foreach (var t in tensors)
            {
                j.WriteStartObject(t.Name);
                j.WriteString("dtype", t.DType);
                j.WriteStartArray("shape");
                foreach (var d in t.Shape) j.WriteNumberValue(d);
                j.WriteEndArray();
                j.WriteStartArray("data_offsets");
                j.WriteNumberValue(off);
                j.WriteNumberValue(off + t.Bytes);
                j.WriteEndArray();
                j.WriteEndObject();
                off += t.Bytes;
            }
            j.WriteEndObject();
        }
        int pad = (8 - header.WrittenCount % 8) % 8;
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)(header.WrittenCount + pad));
        s.Write(len);
        s.Write(header.WrittenSpan);
        for (int i = 0; i < pad; i++) s.WriteByte((byte)' ');
        long total = tensors.Sum(t => t.Bytes), done = 0;
        foreach (var t in tensors)
        {
            long at = s.Position;
            t.WriteData(s);
            if (s.Position - at != t.Bytes) throw new InvalidOperationException($"tensor '{t.Name}' wrote {s.Position - at} bytes, expected {t.Bytes}");
            done += t.Bytes;
            progress?.Invoke(done, total);
        }
    }

    /// <summary>
    /// Writes the tensors into shards of at most <paramref name="maxShardBytes"/> data bytes each (a bigger tensor gets
    /// a shard of its own) named <c>{baseName}-00001-of-0000n.safetensors</c>, plus <c>{baseName}.safetensors.index.json</c>
    /// with total_size and the weight_map, as Hugging Face's save_pretrained does. Returns the index path.
    /// </summary>
    public string WriteSharded(string folder, long maxShardBytes, string baseName = "model")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxShardBytes, 1);
        var shards = new List<List<Pending>>();
        long cur = 0;
        foreach (var t in _tensors)
        {
            if (shards.Count == 0 || (cur + t.Bytes > maxShardBytes && cur > 0)) { shards.Add([]); cur = 0; }
            shards[^1].Add(t);
            cur += t.Bytes;
        }
        if (shards.Count == 0) shards.Add([]);
        Directory.CreateDirectory(folder);
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < shards.Count; i++)
        {
            var name = $"{baseName}-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            Write(Path.Combine(folder, name), shards[i], _metadata, null);
            foreach (var t in shards[i]) map[t.Name] = name;
        }
        var indexPath = Path.Combine(folder, baseName + ".safetensors.index.json");
        using (var fs = File.Create(indexPath))
        using (var j = new Utf8JsonWriter(fs, new JsonWriterOptions { Indented = true }))
        {
            j.WriteStartObject();
            j.WriteStartObject("metadata");
            j.WriteNumber("total_size", DataBytes);
            j.WriteEndObject();
            j.WriteStartObject("weight_map");
            foreach (var kv in map) j.WriteString(kv.Key, kv.Value);
            j.WriteEndObject();
            j.WriteEndObject();
        }
        return indexPath;
    }

    private sealed record Pending(string Name, string DType, long[] Shape, long Bytes, Action<Stream> WriteData);
}
