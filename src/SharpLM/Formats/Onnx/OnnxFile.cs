// ONNX model file reader: the weights (graph.initializer) and the node list, never executing the graph.
//
// An .onnx file is one protobuf ModelProto (onnx/onnx.proto). The fields read here:
//   ModelProto      1 ir_version (varint)   2 producer_name   7 graph (GraphProto)        others skipped
//   GraphProto      1 node (NodeProto, repeated)   5 initializer (TensorProto, repeated)
//                   11 input / 12 output (ValueInfoProto: 1 name)                         others skipped
//   NodeProto       1 input (string, repeated)   2 output (repeated)   3 name   4 op_type   5 attribute
//   AttributeProto  1 name   5 t (TensorProto; the 'value' of a Constant node)   20 type
//   TensorProto     1 dims (int64, packed or not)   2 data_type   4 float_data (packed fixed32)
//                   5 int32_data (varints)   7 int64_data (varints)   8 name   9 raw_data (little-endian bytes)
//                   10 double_data   13 external_data (StringStringEntryProto: 1 key, 2 value;
//                   keys location/offset/length)   14 data_location (1 = EXTERNAL)
//   data_type       1 FLOAT  3 INT8  6 INT32  7 INT64  10 FLOAT16  11 DOUBLE  16 BFLOAT16  (others: not loaded)
// raw_data and packed float_data are used in place from the memory-mapped file (no copy); varint-encoded data is
// decoded into native memory owned by this object. External data files are memory-mapped too.
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using SharpLM.Tensors;

namespace SharpLM.Formats.Onnx;

/// <summary>One graph node: its operator, inputs and outputs by value name.</summary>
internal sealed record OnnxNode(string OpType, string Name, string[] Inputs, string[] Outputs);

/// <summary>
/// An ONNX model's initializers as an <see cref="IWeightSource"/> (shapes as stored, row-major), plus its nodes and the
/// tensors held by Constant nodes (<see cref="Constants"/>, keyed by the Constant's output name).
/// </summary>
internal sealed unsafe class OnnxFile : IWeightSource
{
    private readonly List<MemoryMappedFile> _maps = [];
    private readonly List<MemoryMappedViewAccessor> _views = [];
    private readonly List<nint> _owned = [];
    private readonly Dictionary<string, TensorInfo> _tensors = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TensorInfo> _constants = new(StringComparer.Ordinal);
    private readonly List<OnnxNode> _nodes = [];
    private readonly List<string> _inputs = [], _outputs = [];
    private readonly List<string> _skipped = [];

    public string Path { get; }
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;
    public IReadOnlyDictionary<string, TensorInfo> Constants => _constants;
    public IReadOnlyList<OnnxNode> Nodes => _nodes;
    public IReadOnlyList<string> GraphInputs => _inputs;
    public IReadOnlyList<string> GraphOutputs => _outputs;
    public string ProducerName { get; private set; } = "";

    /// <summary>Initializers that were not loaded (unsupported data type), as "name (reason)".</summary>
    public IReadOnlyList<string> Skipped => _skipped;

    private OnnxFile(string path) => Path = path;

    public static OnnxFile Open(string path)
    {
        var f = new OnnxFile(System.IO.Path.GetFullPath(path));
        try
        {
            f.Load();
            return f;
        }
        catch
        {
            f.Dispose();
            throw;
        }
    }

    private void Load()
    {
        if (!File.Exists(Path)) throw new FileNotFoundException($"ONNX model file not found: {Path}", Path);
        var (basePtr, length) = Map(Path);
        if (length == 0) throw new InvalidDataException($"{Path}: the file is empty, expected an ONNX ModelProto");
        var model = new ProtoReader((byte*)basePtr, 0, length, Path);
        bool sawGraph = false;
        while (model.Next())
        {
            switch (model.Field)
            {
                case 2 when model.WireType == 2: ProducerName = model.ReadString(); break;
                case 7 when model.WireType == 2: ReadGraph(model.ReadMessage(), (byte*)basePtr); sawGraph = true; break;
                default: model.Skip(); break;
            }
        }
        if (!sawGraph) throw new InvalidDataException($"{Path}: no graph (ModelProto field 7) found; this is not an ONNX model file");
    }

    private (nint Base, long Length) Map(string file)
    {
        long len = new FileInfo(file).Length;
        if (len == 0) return (0, 0);
        var mmf = MemoryMappedFile.CreateFromFile(file, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _maps.Add(mmf);
        var view = mmf.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        _views.Add(view);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        return ((nint)(p + view.PointerOffset), len);
    }

    private void ReadGraph(ProtoReader g, byte* basePtr)
    {
        while (g.Next())
        {
            switch (g.Field)
            {
                case 1 when g.WireType == 2: ReadNode(g.ReadMessage(), basePtr); break;
                case 5 when g.WireType == 2:
                    {
                        var t = ReadTensor(g.ReadMessage(), basePtr, null);
                        if (t is not null) _tensors[t.Name] = t;
                        break;
                    }
                case 11 when g.WireType == 2: _inputs.Add(ReadValueInfoName(g.ReadMessage())); break;
                case 12 when g.WireType == 2: _outputs.Add(ReadValueInfoName(g.ReadMessage())); break;
                default: g.Skip(); break;
            }
        }
    }

    private static string ReadValueInfoName(ProtoReader v)
    {
        string name = "";
        while (v.Next())
        {
            if (v.Field == 1 && v.WireType == 2) name = v.ReadString();
            else v.Skip();
        }
        return name;
    }

    private void ReadNode(ProtoReader n, byte* basePtr)
    {
        List<string> inputs = [], outputs = [];
        string name = "", op = "";
        long valueAttrStart = -1, valueAttrEnd = -1;
        while (n.Next())
        {
            switch (n.Field)
            {
                case 1 when n.WireType == 2: inputs.Add(n.ReadString()); break;
                case 2 when n.WireType == 2: outputs.Add(n.ReadString()); break;
                case 3 when n.WireType == 2: name = n.ReadString(); break;
                case 4 when n.WireType == 2: op = n.ReadString(); break;
                case 5 when n.WireType == 2:
                    {
                        var a = n.ReadMessage();
                        string aname = "";
                        long ts = -1, te = -1;
                        while (a.Next())
                        {
                            if (a.Field == 1 && a.WireType == 2) aname = a.ReadString();
                            else if (a.Field == 5 && a.WireType == 2) (ts, te) = a.ReadLengthDelimited();
                            else a.Skip();
                        }
                        if (aname == "value" && ts >= 0) (valueAttrStart, valueAttrEnd) = (ts, te);
                        break;
                    }
                default: n.Skip(); break;
            }
        }
        _nodes.Add(new OnnxNode(op, name, [.. inputs], [.. outputs]));
        if (op == "Constant" && valueAttrStart >= 0 && outputs.Count == 1)
        {
            var t = ReadTensor(new ProtoReader(basePtr, valueAttrStart, valueAttrEnd, Path), basePtr, outputs[0]);
            if (t is not null) _constants[outputs[0]] = t;
        }
    }

    private TensorInfo? ReadTensor(ProtoReader t, byte* basePtr, string? nameOverride)
    {
        List<long> dims = [];
        int dataType = 0;
        string name = "";
        long rawStart = -1, rawEnd = -1, floatStart = -1, floatEnd = -1;
        List<long> ints = [];
        List<float> looseFloats = [];
        bool external = false;
        Dictionary<string, string> ext = new(StringComparer.Ordinal);
        while (t.Next())
        {
            switch (t.Field)
            {
                case 1: t.ReadRepeatedInt64(dims); break;
                case 2 when t.WireType == 0: dataType = (int)t.ReadVarint(); break;
                case 4 when t.WireType == 2: (floatStart, floatEnd) = t.ReadLengthDelimited(); break;
                case 4 when t.WireType == 5: looseFloats.Add(t.ReadFixed32Float()); break;
                case 5 or 7: t.ReadRepeatedInt64(ints); break;
                case 8 when t.WireType == 2: name = t.ReadString(); break;
                case 9 when t.WireType == 2: (rawStart, rawEnd) = t.ReadLengthDelimited(); break;
                case 13 when t.WireType == 2:
                    {
                        var e = t.ReadMessage();
                        string k = "", v = "";
                        while (e.Next())
                        {
                            if (e.Field == 1 && e.WireType == 2) k = e.ReadString();
                            else if (e.Field == 2 && e.WireType == 2) v = e.ReadString();
                            else e.Skip();
                        }
                        ext[k] = v;
                        break;
                    }
                case 14 when t.WireType == 0: external = t.ReadVarint() == 1; break;
                default: t.Skip(); break;
            }
        }
        name = nameOverride ?? name;
        DType? type = dataType switch
        {
            1 => DType.F32, 3 => DType.I8, 6 => DType.I32, 7 => DType.I64, 10 => DType.F16, 11 => DType.F64, 16 => DType.BF16,
            _ => null,
        };
        if (type is not DType dt)
        {
            _skipped.Add($"{name} (ONNX data_type {dataType} not supported)");
            return null;
        }
        long count = 1;
        foreach (var d in dims)
        {
            if (d < 0 || d > int.MaxValue) throw new InvalidDataException($"{Path}: tensor '{name}' has dimension {d}, outside [0, {int.MaxValue}]");
            count = count * d;
            if (count > long.MaxValue / 16) throw new InvalidDataException($"{Path}: tensor '{name}' has shape [{string.Join(", ", dims)}], too many elements");
        }
        long bytes = count * DTypeInfo.BlockBytes(dt);
        var shape = dims.ToArray();
        nint data;
        if (external)
        {
            data = ExternalData(name, ext, bytes);
        }
        else if (rawStart >= 0)
        {
            if (rawEnd - rawStart != bytes)
                throw new InvalidDataException($"{Path}: tensor '{name}' raw_data at byte {rawStart} holds {rawEnd - rawStart} bytes, expected {bytes} for {dt}[{string.Join(", ", shape)}]");
            data = (nint)(basePtr + rawStart);
        }
        else if (dt == DType.F32 && floatStart >= 0)
        {
            if (floatEnd - floatStart != bytes)
                throw new InvalidDataException($"{Path}: tensor '{name}' float_data at byte {floatStart} holds {(floatEnd - floatStart) / 4} floats, expected {count}");
            data = (nint)(basePtr + floatStart);
        }
        else if (dt == DType.F32 && looseFloats.Count == count)
        {
            data = Alloc(bytes);
            looseFloats.ToArray().AsSpan().CopyTo(new Span<float>((void*)data, (int)count));
        }
        else if (dt is DType.I64 or DType.I32 && ints.Count == count)
        {
            data = Alloc(bytes);
            for (int i = 0; i < count; i++)
                if (dt == DType.I64) ((long*)data)[i] = ints[i];
                else ((int*)data)[i] = (int)ints[i];
        }
        else if (count == 0)
        {
            data = 0;
        }
        else
        {
            throw new InvalidDataException($"{Path}: tensor '{name}' ({dt}[{string.Join(", ", shape)}]) has no data in raw_data, float_data or int64_data");
        }
        return new TensorInfo(name, dt, shape, data, bytes);
    }

    private nint ExternalData(string name, Dictionary<string, string> ext, long bytes)
    {
        if (!ext.TryGetValue("location", out var loc) || loc.Length == 0)
            throw new InvalidDataException($"{Path}: tensor '{name}' is stored externally but has no 'location'");
        var dir = System.IO.Path.GetDirectoryName(Path)!;
        var file = System.IO.Path.GetFullPath(System.IO.Path.Combine(dir, loc));
        if (!File.Exists(file))
            throw new FileNotFoundException($"{Path}: tensor '{name}' lives in external data file '{loc}', which is missing (looked for {file}). Keep it beside the .onnx file.", file);
        long Number(string key, long fallback) =>
            !ext.TryGetValue(key, out var v) ? fallback
            : long.TryParse(v, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out long r) ? r
            : throw new InvalidDataException($"{Path}: tensor '{name}' external data '{key}' is '{v}', expected an integer");
        long offset = Number("offset", 0);
        long length = Number("length", bytes);
        var (b, flen) = Map(file);
        if (length != bytes || offset < 0 || offset + length > flen)
            throw new InvalidDataException($"{file}: external data for tensor '{name}' at offset {offset} length {length} does not fit the file ({flen} bytes) or the tensor ({bytes} bytes)");
        return b + (nint)offset;
    }

    private nint Alloc(long bytes)
    {
        var p = (nint)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);
        _owned.Add(p);
        return p;
    }

    public void Dispose()
    {
        foreach (var v in _views)
        {
            v.SafeMemoryMappedViewHandle.ReleasePointer();
            v.Dispose();
        }
        foreach (var m in _maps) m.Dispose();
        foreach (var p in _owned) NativeMemory.AlignedFree((void*)p);
        _views.Clear();
        _maps.Clear();
        _owned.Clear();
    }
}
