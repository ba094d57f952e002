using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using SharpLM.Inference;
using SharpLM.Kernels;
using SharpLM.Models;
using SharpLM.Tensors;

namespace SharpLM.Benchmarks.Inference;

/// <summary>
/// matrix-profile MODEL [threads] [passes]: the decode matvec (one activation row) over every weight matrix of a model,
/// timed per role (q, k, v, o, gate, up, down, output) and reported as GB/s of weights, first on the model's own bytes,
/// then on a fresh copy of them, alternated. A role far below the others points at its data or its shape (it found
/// subnormal f16 block scales in a Q4_K ffn_down, a third of the speed of every other matrix); the model against its
/// copy separates the memory the weights sit in from the kernel.
/// </summary>
internal static unsafe class MatrixProfile
{
    private static readonly string[] Roles = ["q", "k", "v", "o", "gate", "up", "down", "output"];

    public static void Run(string[] args)
    {
        int threads = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1;
        int passes = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 5;
        using var model = LanguageModel.Load(args[0], new ModelLoadOptions { ContextSize = 16, BatchSize = 1, Threads = threads });
        var w = model.Weights;
        var mats = new List<(int Role, WeightMatrix W)>();
        foreach (var l in w.Layers)
        {
            mats.Add((0, l.Q.W)); mats.Add((1, l.K.W)); mats.Add((2, l.V.W)); mats.Add((3, l.O.W));
            if (l.Gate is { } g) mats.Add((4, g.W));
            mats.Add((5, l.Up.W)); mats.Add((6, l.Down.W));
        }
        mats.Add((7, w.Output.W));
        long total = mats.Sum(m => m.W.RowBytes * m.W.Rows);
        byte* copy = (byte*)NativeMemory.AlignedAlloc((nuint)total, 64);
        try
        {
            var copies = new List<(int Role, WeightMatrix W)>();
            long o = 0;
            foreach (var (role, m) in mats)
            {
                long b = m.RowBytes * m.Rows;
                Buffer.MemoryCopy(m.Data, copy + o, b, b);
                copies.Add((role, new WeightMatrix(m.Type, copy + o, m.Rows, m.Cols)));
                o += b;
            }
            int maxCols = mats.Max(m => m.W.Cols), maxRows = mats.Max(m => m.W.Rows);
            var x = new float[maxCols];
            var y = new float[maxRows];
            var rng = new Random(1);
            for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() - 0.5);
            using var pool = new WorkerPool(threads);
            var isa = KernelIsaSelector.Current;
            Console.WriteLine($"{DecodeRace.Cpu()}, ISA {isa}, {threads} thread(s), {mats.Count} matrices, {total / 1e9:F2} GB, {string.Join(",", mats.Select(m => m.W.Type).Distinct())}; GB/s per role, {passes} passes each");
            Console.WriteLine($"| bytes | all | {string.Join(" | ", Roles)} |");
            Console.WriteLine($"|---|---|{string.Concat(Roles.Select(_ => "---|"))}");
            for (int rep = 0; rep < 3; rep++)
                foreach (var (name, set) in new[] { ("model", mats), ("copy", copies) })
                {
                    var seconds = new double[Roles.Length];
                    var bytes = new double[Roles.Length];
                    var all = Stopwatch.StartNew();
                    for (int p = 0; p < passes; p++)
                        foreach (var (role, m) in set)
                        {
                            long t0 = Stopwatch.GetTimestamp();
                            MatMul.Forward(x.AsSpan(0, m.Cols), m, y.AsSpan(0, m.Rows), 1, pool, isa);
                            seconds[role] += Stopwatch.GetElapsedTime(t0).TotalSeconds;
                            bytes[role] += m.RowBytes * m.Rows;
                        }
                    double gbs = passes * (double)total / all.Elapsed.TotalSeconds / 1e9;
                    Console.WriteLine($"| {name} | {gbs:F1} | {string.Join(" | ", Roles.Select((_, r) => seconds[r] > 0 ? (bytes[r] / seconds[r] / 1e9).ToString("F1", CultureInfo.InvariantCulture) : "-"))} |");
                }
        }
        finally { NativeMemory.AlignedFree(copy); }
    }
}
