using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using SharpLM.Kernels;
using SharpLM.Tensors;

namespace SharpLM.Benchmarks.Kernels;

/// <summary>
/// Prefill matmul y (T,OC) = x (T,C) W^T, compute-bound: GFLOP/s = 2 T OC C / mean time. 1024^3 for F32 is the
/// SGEMM figure in MACHINE-NOTES; the other types measure the dequantize-a-panel path on the same shape.
/// Run: dotnet run -c Release --project bench/SharpLM.Benchmarks -- --filter '*GemmBenchmarks*'
/// </summary>
[Config(typeof(KernelBenchConfig))]
public unsafe class GemmBenchmarks
{
    [Params(DType.F32, DType.F16, DType.Q8_0, DType.Q4_K, DType.Q6_K)]
    public DType Type { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; }

    public const int T = 1024, OC = 1024, C = 1024;

    private byte* _weights;
    private float[] _x = [], _y = [];
    private WorkerPool _pool = null!;

    [GlobalSetup]
    public void Setup()
    {
        long rowBytes = DTypeInfo.RowBytes(Type, C);
        _weights = (byte*)NativeMemory.AlignedAlloc((nuint)(rowBytes * OC), 64);
        var rng = new Random(1);
        var src = new float[C];
        for (int r = 0; r < OC; r++)
        {
            for (int i = 0; i < C; i++) src[i] = (float)(rng.NextDouble() - 0.5);
            SharpLM.Tensors.Types.DTypes.Of(Type).QuantizeRow(src, new Span<byte>(_weights + r * rowBytes, (int)rowBytes));
        }
        _x = new float[T * C];
        for (int i = 0; i < _x.Length; i++) _x[i] = (float)(rng.NextDouble() - 0.5);
        _y = new float[T * OC];
        _pool = new WorkerPool(Threads);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_weights);
        _pool.Dispose();
    }

    [Benchmark]
    public void MatMulT1024() => MatMul.Forward(_x, new WeightMatrix(Type, _weights, OC, C), _y, T, _pool, KernelIsaSelector.Best);
}
