using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using SharpLM.Kernels;
using SharpLM.Tensors;

namespace SharpLM.Benchmarks.Kernels;

/// <summary>
/// Decode matvec y (1,OC) = x (1,C) W^T, bandwidth-bound: GB/s = weight bytes / mean time. The weight is replicated
/// into copies totalling >= 512 MB that are used in turn, so each call streams from DRAM, not cache.
/// Shape is OC x C. Run: dotnet run -c Release --project bench/SharpLM.Benchmarks -- --filter '*MatVecBenchmarks*'
/// </summary>
[Config(typeof(KernelBenchConfig))]
public unsafe class MatVecBenchmarks
{
    [Params(DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0, DType.Q4_K, DType.Q6_K)]
    public DType Type { get; set; }

    [Params("4096x4096", "2048x5632")]
    public string Shape { get; set; } = "4096x4096";

    [Params(1, 2)]
    public int Threads { get; set; }

    private byte* _weights;
    private long _bytes;
    private int _copies, _next, _rows, _cols;
    private float[] _x = [], _y = [];
    private WorkerPool _pool = null!;

    /// <summary>Bytes of one weight matrix (for GB/s).</summary>
    public long WeightBytes => _bytes;

    [GlobalSetup]
    public void Setup()
    {
        var parts = Shape.Split('x');
        _rows = int.Parse(parts[0]);
        _cols = int.Parse(parts[1]);
        long rowBytes = DTypeInfo.RowBytes(Type, _cols);
        _bytes = rowBytes * _rows;
        _copies = (int)Math.Clamp((512L << 20) / _bytes + 1, 1, 64);
        _weights = (byte*)NativeMemory.AlignedAlloc((nuint)(_bytes * _copies), 64);
        var rng = new Random(1);
        var src = new float[_cols];
        for (int r = 0; r < _rows; r++)
        {
            for (int i = 0; i < _cols; i++) src[i] = (float)(rng.NextDouble() - 0.5);
            SharpLM.Tensors.Types.DTypes.Of(Type).QuantizeRow(src, new Span<byte>(_weights + r * rowBytes, (int)rowBytes));
        }
        for (int c = 1; c < _copies; c++) Buffer.MemoryCopy(_weights, _weights + c * _bytes, _bytes, _bytes);
        _x = new float[_cols];
        for (int i = 0; i < _cols; i++) _x[i] = (float)(rng.NextDouble() - 0.5);
        _y = new float[_rows];
        _pool = new WorkerPool(Threads);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_weights);
        _pool.Dispose();
    }

    [Benchmark]
    public void MatVec()
    {
        var w = new WeightMatrix(Type, _weights + (_next++ % _copies) * _bytes, _rows, _cols);
        MatMul.Forward(_x, w, _y, 1, _pool, KernelIsaSelector.Best);
    }
}
