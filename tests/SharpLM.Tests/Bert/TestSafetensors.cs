using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using SharpLM.Formats;
using SharpLM.Tensors;

namespace SharpLM.Tests.Bert;

/// <summary>
/// A test-only safetensors reader for the small golden fixtures (whole file in pinned native memory), so the BERT
/// tests do not depend on the engine's own reader. Format: u64 LE header length, JSON header, raw LE data.
/// </summary>
internal sealed unsafe class TestSafetensors : IWeightSource
{
    private readonly byte* _data;
    private readonly Dictionary<string, TensorInfo> _tensors = new(StringComparer.Ordinal);

    public string Path { get; }
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;
    public Dictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);

    public TestSafetensors(string path)
    {
        Path = path;
        var bytes = File.ReadAllBytes(path);
        long hlen = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)hlen));
        _data = (byte*)NativeMemory.AlignedAlloc((nuint)(bytes.Length - 8 - hlen + 1), 64);
        bytes.AsSpan((int)(8 + hlen)).CopyTo(new Span<byte>(_data, (int)(bytes.Length - 8 - hlen)));
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__")
            {
                foreach (var m in p.Value.EnumerateObject()) Metadata[m.Name] = m.Value.GetString()!;
                continue;
            }
            var type = p.Value.GetProperty("dtype").GetString() switch
            {
                "F32" => DType.F32, "F16" => DType.F16, "BF16" => DType.BF16, "I64" => DType.I64, "I32" => DType.I32,
                var s => throw new InvalidDataException($"{path}: dtype {s}"),
            };
            var shape = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var off = p.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            _tensors[p.Name] = new TensorInfo(p.Name, type, shape, (nint)(_data + off[0]), off[1] - off[0]);
        }
    }

    public float[] Floats(string name) => _tensors[name].AsFloats().ToArray();

    public int[] Ints(string name)
    {
        var t = _tensors[name];
        var r = new int[t.ElementCount];
        for (int i = 0; i < r.Length; i++) r[i] = t.Type == DType.I64 ? (int)((long*)t.Data)[i] : ((int*)t.Data)[i];
        return r;
    }

    public void Dispose() => NativeMemory.AlignedFree(_data);
}
