using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using SharpLM.Tensors;

namespace SharpLM.Formats.Gguf;

/// <summary>
/// Builds a GGUF v3 file (layout: see the header of GgufFile.cs). Collect metadata with <see cref="Set"/> and tensors
/// with the AddTensor overloads, then <see cref="Write"/> streams everything to a temporary file beside the target
/// and renames it, so a crash never leaves a half-written model under the final name. Tensor data is produced
/// lazily during Write (from bytes, from a stream callback, or row by row from floats converted to the target dtype),
/// so converting a large model needs memory for one row, not the whole model.
/// </summary>
internal sealed class GgufWriter
{
    private readonly List<KeyValuePair<string, GgufValue>> _metadata = [];
    private readonly Dictionary<string, int> _keyIndex = new(StringComparer.Ordinal);
    private readonly List<PendingTensor> _tensors = [];
    private readonly HashSet<string> _tensorNames = new(StringComparer.Ordinal);

    /// <summary>Data alignment; written as <c>general.alignment</c> when not the default 32.</summary>
    public uint Alignment { get; }

    public GgufWriter(uint alignment = GgufFile.DefaultAlignment)
    {
        if (alignment == 0 || (alignment & (alignment - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "the GGUF alignment must be a power of two");
        Alignment = alignment;
        if (alignment != GgufFile.DefaultAlignment) Set("general.alignment", alignment);
    }

    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata => _metadata;

    public int TensorCount => _tensors.Count;

    /// <summary>Sets (or replaces, keeping its position) a metadata value. Use typed values: (uint)32, 1e-5f, "llama",
    /// GgufArray.Of(tokens), or <see cref="GgufValue"/>(type, value) for u8/i8/u16/i16.</summary>
    public GgufWriter Set(string key, GgufValue value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        Validate(key, value, 0);
        if (key == "general.alignment" && (value.Value is not uint a || a != Alignment))
            throw new ArgumentException($"general.alignment is set by the constructor ({Alignment}); got {value}", nameof(value));
        if (_keyIndex.TryGetValue(key, out int i)) _metadata[i] = new(key, value);
        else
        {
            _keyIndex[key] = _metadata.Count;
            _metadata.Add(new(key, value));
        }
        return this;
    }

    public bool Remove(string key)
    {
        if (!_keyIndex.Remove(key, out int i)) return false;
        _metadata.RemoveAt(i);
        for (int j = i; j < _metadata.Count; j++) _keyIndex[_metadata[j].Key] = j;
        return true;
    }

    /// <summary>A tensor whose bytes are already in <paramref name="type"/>'s layout. <paramref name="shape"/> is
    /// row-major (outermost first), e.g. [out, in] for a linear weight.</summary>
    public GgufWriter AddTensor(string name, DType type, long[] shape, ReadOnlyMemory<byte> data)
    {
        long bytes = ByteLength(name, type, shape);
        if (data.Length != bytes)
            throw new ArgumentException($"tensor '{name}' {type} [{string.Join(", ", shape)}] needs {bytes} bytes, got {data.Length}", nameof(data));
        return Add(new PendingTensor(name, type, (long[])shape.Clone(), bytes, s => s.Write(data.Span), null));
    }

    /// <summary>A tensor whose bytes (as many as its type and shape take) <paramref name="writeData"/> writes to the stream
    /// during <c>Write</c> (it must write exactly that many).</summary>
    public GgufWriter AddTensor(string name, DType type, long[] shape, Action<Stream> writeData)
    {
        ArgumentNullException.ThrowIfNull(writeData);
        long bytes = ByteLength(name, type, shape);
        return Add(new PendingTensor(name, type, (long[])shape.Clone(), bytes, writeData, null));
    }

    /// <summary>An f32 tensor stored as <paramref name="storeAs"/> (converted/quantized row by row).</summary>
    public GgufWriter AddTensor(string name, long[] shape, ReadOnlyMemory<float> data, DType storeAs = DType.F32)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        if (data.Length != n) throw new ArgumentException($"tensor '{name}' [{string.Join(", ", shape)}] has {n} elements, got {data.Length}", nameof(data));
        int cols = checked((int)shape[^1]);
        return AddTensor(name, shape, storeAs, (row, dst) => data.Span.Slice(checked(row * cols), cols).CopyTo(dst));
    }

    /// <summary>A tensor produced row by row in f32 (<paramref name="getRow"/>(row, destination of Shape[^1] floats))
    /// and stored as <paramref name="storeAs"/>. Rows are all dimensions but the last, flattened.</summary>
    public GgufWriter AddTensor(string name, long[] shape, DType storeAs, Action<int, Span<float>> getRow)
    {
        ArgumentNullException.ThrowIfNull(getRow);
        if (!Tensors.Types.DTypes.Of(storeAs).CanQuantize) throw new NotSupportedException($"tensor '{name}': converting f32 to {storeAs} is not supported; use one of {string.Join(", ", Tensors.Types.DTypes.Quantizable)}");
        long bytes = ByteLength(name, storeAs, shape);
        return Add(new PendingTensor(name, storeAs, (long[])shape.Clone(), bytes, null, getRow));
    }

    private GgufWriter Add(PendingTensor t)
    {
        if (!_tensorNames.Add(t.Name)) throw new ArgumentException($"tensor '{t.Name}' was added twice");
        _tensors.Add(t);
        return this;
    }

    private static long ByteLength(string name, DType type, long[] shape)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (!DTypeInfo.IsSupported(type)) throw new ArgumentException($"tensor '{name}': unknown dtype id {(int)type}");
        if (shape.Length is 0 or > GgufFile.MaxDims)
            throw new ArgumentException($"tensor '{name}' has {shape.Length} dimensions, GGUF allows 1..{GgufFile.MaxDims}");
        if (shape.Any(d => d <= 0)) throw new ArgumentException($"tensor '{name}' shape [{string.Join(", ", shape)}] has a non-positive dimension");
        long rows = 1;
        foreach (var d in shape.AsSpan(0, shape.Length - 1)) rows = checked(rows * d);
        return checked(rows * DTypeInfo.RowBytes(type, shape[^1]));
    }

    private static void Validate(string key, GgufValue v, int depth)
    {
        bool ok = v.Type switch
        {
            GgufType.UInt8 => v.Value is byte,
            GgufType.Int8 => v.Value is sbyte,
            GgufType.UInt16 => v.Value is ushort,
            GgufType.Int16 => v.Value is short,
            GgufType.UInt32 => v.Value is uint,
            GgufType.Int32 => v.Value is int,
            GgufType.Float32 => v.Value is float,
            GgufType.Bool => v.Value is bool,
            GgufType.String => v.Value is string,
            GgufType.Array => v.Value is GgufArray,
            GgufType.UInt64 => v.Value is ulong,
            GgufType.Int64 => v.Value is long,
            GgufType.Float64 => v.Value is double,
            _ => false,
        };
        if (!ok) throw new ArgumentException($"metadata '{key}': a {v.Type} value cannot hold a {v.Value?.GetType().Name ?? "null"}");
        if (v.Value is GgufArray a && a.ElementType == GgufType.Array)
        {
            if (depth >= 7) throw new ArgumentException($"metadata '{key}': arrays nest too deep");
            foreach (var inner in (GgufArray[])a.Items) Validate(key, new GgufValue(GgufType.Array, inner), depth + 1);
        }
        if (v.Value is GgufArray s && s.Items is string[] strs && strs.Any(x => x is null))
            throw new ArgumentException($"metadata '{key}': string arrays cannot hold null");
    }

    /// <summary>Writes the file: header, metadata, tensor infos, aligned data. <paramref name="progress"/> gets
    /// (bytes of tensor data written, total) after each tensor.</summary>
    public void Write(string path, Action<long, long>? progress = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, "." + Path.GetFileName(full) + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                WriteTo(fs, progress, ct);
                fs.Flush(flushToDisk: false);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>Writes the whole file to a stream positioned at its start.</summary>
    public void WriteTo(Stream s, Action<long, long>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(s);
        long start = s.Position;
        var offsets = new long[_tensors.Count];
        long off = 0, total = 0;
        for (int i = 0; i < _tensors.Count; i++)
        {
            offsets[i] = off;
            off = GgufFile.AlignUp(off + _tensors[i].Bytes, Alignment);
            total += _tensors[i].Bytes;
        }

        var h = new HeaderWriter(s);
        h.U32(GgufFile.Magic);
        h.U32(3);
        h.U64((ulong)_tensors.Count);
        h.U64((ulong)_metadata.Count);
        foreach (var kv in _metadata)
        {
            h.Str(kv.Key);
            h.U32((uint)kv.Value.Type);
            h.Value(kv.Value.Type, kv.Value.Value);
        }
        for (int i = 0; i < _tensors.Count; i++)
        {
            var t = _tensors[i];
            h.Str(t.Name);
            h.U32((uint)t.Shape.Length);
            for (int d = t.Shape.Length - 1; d >= 0; d--) h.U64((ulong)t.Shape[d]);
            h.U32((uint)t.Type);
            h.U64((ulong)offsets[i]);
        }
        Pad(s, start);
        long dataStart = s.Position;

        long done = 0;
        for (int i = 0; i < _tensors.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            var t = _tensors[i];
            long at = s.Position;
            if (at - dataStart != offsets[i]) throw new InvalidOperationException($"internal error: tensor '{t.Name}' at {at - dataStart}, expected {offsets[i]}");
            if (t.WriteData is not null) t.WriteData(s);
            else WriteRows(s, t, ct);
            long wrote = s.Position - at;
            if (wrote != t.Bytes) throw new InvalidOperationException($"tensor '{t.Name}' wrote {wrote} bytes, expected {t.Bytes} ({t.Type} [{string.Join(", ", t.Shape)}])");
            Pad(s, dataStart);
            done += t.Bytes;
            progress?.Invoke(done, total);
        }
    }

    /// <summary>Quantizes the rows of a lazily produced tensor in chunks of about 1 MB, the rows of a chunk in parallel on
    /// the worker pool (each row's bytes do not depend on the others), and writes the chunks in order.</summary>
    private static void WriteRows(Stream s, PendingTensor t, CancellationToken ct)
    {
        int cols = checked((int)t.Shape[^1]);
        long rows = t.Shape.Aggregate(1L, (a, b) => a * b) / cols;
        int rowBytes = checked((int)DTypeInfo.RowBytes(t.Type, cols));
        var traits = Tensors.Types.DTypes.Of(t.Type);
        int chunk = (int)Math.Clamp((1 << 20) / Math.Max(rowBytes, cols * 4), 1, rows);
        var b = ArrayPool<byte>.Shared.Rent(chunk * rowBytes);
        try
        {
            for (long r0 = 0; r0 < rows; r0 += chunk)
            {
                ct.ThrowIfCancellationRequested();
                int n = (int)Math.Min(chunk, rows - r0);
                long first = r0;
                Kernels.WorkerPool.Shared.For(n, i =>
                {
                    var f = ArrayPool<float>.Shared.Rent(cols);
                    try
                    {
                        var row = f.AsSpan(0, cols);
                        t.GetRow!(checked((int)(first + i)), row);
                        traits.QuantizeRow(row, b.AsSpan(i * rowBytes, rowBytes));
                    }
                    finally
                    {
                        ArrayPool<float>.Shared.Return(f);
                    }
                });
                s.Write(b, 0, n * rowBytes);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(b);
        }
    }

    private void Pad(Stream s, long origin)
    {
        long rel = s.Position - origin;
        long pad = GgufFile.AlignUp(rel, Alignment) - rel;
        Span<byte> zeros = stackalloc byte[64];
        zeros.Clear();
        while (pad > 0)
        {
            int n = (int)Math.Min(pad, zeros.Length);
            s.Write(zeros[..n]);
            pad -= n;
        }
    }

    private sealed record PendingTensor(string Name, DType Type, long[] Shape, long Bytes, Action<Stream>? WriteData, Action<int, Span<float>>? GetRow);

    private sealed class HeaderWriter(Stream s)
    {
        private readonly byte[] _buf = new byte[8];

        public void U32(uint v) { BinaryPrimitives.WriteUInt32LittleEndian(_buf, v); s.Write(_buf, 0, 4); }

        public void U64(ulong v) { BinaryPrimitives.WriteUInt64LittleEndian(_buf, v); s.Write(_buf, 0, 8); }

        public void Str(string v)
        {
            var bytes = Encoding.UTF8.GetBytes(v);
            U64((ulong)bytes.Length);
            s.Write(bytes);
        }

        public void Value(GgufType type, object v)
        {
            switch (type)
            {
                case GgufType.UInt8: s.WriteByte((byte)v); break;
                case GgufType.Int8: s.WriteByte(unchecked((byte)(sbyte)v)); break;
                case GgufType.UInt16: BinaryPrimitives.WriteUInt16LittleEndian(_buf, (ushort)v); s.Write(_buf, 0, 2); break;
                case GgufType.Int16: BinaryPrimitives.WriteInt16LittleEndian(_buf, (short)v); s.Write(_buf, 0, 2); break;
                case GgufType.UInt32: U32((uint)v); break;
                case GgufType.Int32: U32(unchecked((uint)(int)v)); break;
                case GgufType.Float32: BinaryPrimitives.WriteSingleLittleEndian(_buf, (float)v); s.Write(_buf, 0, 4); break;
                case GgufType.Bool: s.WriteByte((bool)v ? (byte)1 : (byte)0); break;
                case GgufType.String: Str((string)v); break;
                case GgufType.UInt64: U64((ulong)v); break;
                case GgufType.Int64: U64(unchecked((ulong)(long)v)); break;
                case GgufType.Float64: BinaryPrimitives.WriteDoubleLittleEndian(_buf, (double)v); s.Write(_buf, 0, 8); break;
                case GgufType.Array: Array((GgufArray)v); break;
                default: throw new ArgumentOutOfRangeException(nameof(type), type, "unknown GGUF value type");
            }
        }

        private void Array(GgufArray a)
        {
            U32((uint)a.ElementType);
            U64((ulong)a.Count);
            switch (a.Items)
            {
                case string[] strs: foreach (var x in strs) Str(x); break;
                case GgufArray[] arrs: foreach (var x in arrs) Array(x); break; // nested: no per-element type tag (as gguf-py)
                case bool[] bools: foreach (var x in bools) s.WriteByte(x ? (byte)1 : (byte)0); break;
                case byte[] bytes: s.Write(bytes); break;
                case sbyte[] x: s.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                case ushort[] x: s.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                case short[] x: s.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                case uint[] x: s.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                case int[] x: s.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                case float[] x: s.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                case ulong[] x: s.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                case long[] x: s.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                case double[] x: s.Write(MemoryMarshal.AsBytes(x.AsSpan())); break;
                default: throw new ArgumentException($"unsupported GGUF array item type {a.Items.GetType().Name}");
            }
        }
    }
}
