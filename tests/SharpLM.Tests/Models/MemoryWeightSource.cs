using System.Runtime.InteropServices;
using SharpLM.Formats;
using SharpLM.Tensors;

namespace SharpLM.Tests.Models;

/// <summary>An F32 <see cref="IWeightSource"/> over native copies of float arrays (for tests without files).</summary>
internal sealed unsafe class MemoryWeightSource : IWeightSource
{
    private readonly List<nint> _blocks = [];
    private readonly Dictionary<string, TensorInfo> _tensors = new(StringComparer.Ordinal);

    public MemoryWeightSource(string path, IEnumerable<KeyValuePair<string, (long[] Shape, float[] Data)>> tensors)
    {
        Path = path;
        foreach (var (name, (shape, data)) in tensors)
        {
            var p = (nint)NativeMemory.AlignedAlloc((nuint)(data.Length * 4 + 64), 64);
            _blocks.Add(p);
            data.AsSpan().CopyTo(new Span<float>((void*)p, data.Length));
            _tensors[name] = new TensorInfo(name, DType.F32, shape, p, data.Length * 4L);
        }
    }

    public string Path { get; }

    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;

    public void Dispose()
    {
        foreach (var p in _blocks) NativeMemory.AlignedFree((void*)p);
        _blocks.Clear();
    }
}
