using SharpLM.Tensors;

namespace SharpLM.Formats;

/// <summary>
/// One tensor of a model file. <see cref="Shape"/> is row-major, outermost first, as PyTorch writes it: a linear
/// weight W[out,in] has Shape [out, in]. (GGUF lists dimensions innermost first; the GGUF reader reverses them.)
/// <see cref="Data"/> points into the memory-mapped file and stays valid while the source is open.
/// </summary>
internal sealed record TensorInfo(string Name, DType Type, long[] Shape, nint Data, long ByteLength)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>A tensor stored as several (a Hugging Face checkpoint's experts, stacked on the first dimension), or null.</summary>
    public TensorInfo[]? Parts { get; init; }

    /// <summary>A 2-D view as a <see cref="WeightMatrix"/> (rows = Shape[0], cols = Shape[1]); a 1-D tensor is one row.</summary>
    public unsafe WeightMatrix AsMatrix() => Shape.Length switch
    {
        1 => new WeightMatrix(Type, (byte*)Data, 1, checked((int)Shape[0])),
        2 => new WeightMatrix(Type, (byte*)Data, checked((int)Shape[0]), checked((int)Shape[1])),
        _ => throw new InvalidOperationException($"tensor '{Name}' has {Shape.Length} dimensions [{string.Join(", ", Shape)}], expected a matrix"),
    };

    /// <summary>An F32 tensor's elements (norm weights, biases).</summary>
    public unsafe ReadOnlySpan<float> AsFloats() => Type == DType.F32
        ? new ReadOnlySpan<float>((void*)Data, checked((int)ElementCount))
        : throw new InvalidOperationException($"tensor '{Name}' is {Type}, expected F32");
}

/// <summary>
/// A set of named tensors backed by one or more memory-mapped files (a GGUF file, a safetensors file or a sharded
/// Hugging Face folder). Weights are never copied on load.
/// </summary>
internal interface IWeightSource : IDisposable
{
    /// <summary>The file or folder this came from, for error messages.</summary>
    string Path { get; }

    IReadOnlyDictionary<string, TensorInfo> Tensors { get; }

    /// <summary>Matrices are laid out as their format stores them: Hugging Face GPT-2's Conv1D weights (in, out). False for
    /// SharpLM's own training parameters, which keep every matrix (out, in) under Hugging Face names.</summary>
    bool HfConv1DLayout => true;
}
