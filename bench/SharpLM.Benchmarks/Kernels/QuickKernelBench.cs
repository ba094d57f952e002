using System.Diagnostics;
using System.Runtime.InteropServices;
using SharpLM.Kernels;
using SharpLM.Tensors;

namespace SharpLM.Benchmarks.Kernels;

/// <summary>
/// A fast Stopwatch sweep of the matvec (GB/s) and GEMM (GFLOP/s) kernels, for quick checks while tuning; the
/// committed figures come from the BenchmarkDotNet classes. Run:
/// dotnet run -c Release --project bench/SharpLM.Benchmarks -- kernels-quick [threads]
/// </summary>
public static unsafe class QuickKernelBench
{
    public static void Run(string[] args)
    {
        int threads = args.Length > 0 ? int.Parse(args[0]) : 1;
        using var pool = new WorkerPool(threads);
        var isa = KernelIsaSelector.Current;
        Console.WriteLine($"isa {isa}, threads {threads}");
        foreach (var type in new[] { DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0, DType.Q4_K, DType.Q6_K })
        {
            int rows = 4096, cols = 4096;
            long rb = DTypeInfo.RowBytes(type, cols), bytes = rb * rows;
            int copies = (int)Math.Clamp((512L << 20) / bytes + 1, 1, 64);
            byte* w = (byte*)NativeMemory.AlignedAlloc((nuint)(bytes * copies), 64);
            var src = new float[cols];
            var rng = new Random(1);
            for (int r = 0; r < rows; r++)
            {
                if (r < 64) for (int i = 0; i < cols; i++) src[i] = (float)(rng.NextDouble() - 0.5);
                Quantize.Row(type, src, new Span<byte>(w + r * rb, (int)rb));
            }
            for (int c = 1; c < copies; c++) Buffer.MemoryCopy(w, w + c * bytes, bytes, bytes);
            var x = new float[cols];
            var y = new float[rows];
            double best = double.MaxValue;
            for (int rep = 0; rep < 5; rep++)
            {
                var sw = Stopwatch.StartNew();
                for (int c = 0; c < copies; c++) MatMul.Forward(x, new WeightMatrix(type, w + c * bytes, rows, cols), y, 1, pool, isa);
                best = Math.Min(best, sw.Elapsed.TotalSeconds / copies);
            }
            Console.WriteLine($"matvec {type,-5} 4096x4096: {best * 1e3,7:F3} ms  {bytes / best / 1e9,6:F1} GB/s");
            // GEMM 1024^3 on the first 1024 rows
            int t = 1024, oc = 1024, k = 1024;
            var w2 = new byte[DTypeInfo.RowBytes(type, k) * oc];
            var s2 = new float[k];
            for (int r = 0; r < oc; r++)
            {
                for (int i = 0; i < k; i++) s2[i] = (float)(rng.NextDouble() - 0.5);
                Quantize.Row(type, s2, w2.AsSpan((int)(r * DTypeInfo.RowBytes(type, k)), (int)DTypeInfo.RowBytes(type, k)));
            }
            var xx = new float[t * k];
            var yy = new float[t * oc];
            best = double.MaxValue;
            fixed (byte* pw = w2)
                for (int rep = 0; rep < 4; rep++)
                {
                    var sw = Stopwatch.StartNew();
                    MatMul.Forward(xx, new WeightMatrix(type, pw, oc, k), yy, t, pool, isa);
                    best = Math.Min(best, sw.Elapsed.TotalSeconds);
                }
            Console.WriteLine($"gemm   {type,-5} 1024^3:    {best * 1e3,7:F2} ms  {2.0 * t * oc * k / best / 1e9,6:F1} GFLOP/s");
            NativeMemory.AlignedFree(w);
        }
    }
}
