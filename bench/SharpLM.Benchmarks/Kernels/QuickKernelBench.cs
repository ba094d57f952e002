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
        Calibrate(pool);
        WarmUp(pool, isa);
        var types = args.Length > 1 ? args[1].Split(',').Select(Enum.Parse<DType>).ToArray() : [DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0, DType.Q4_K, DType.Q6_K];
        string what = args.Length > 2 ? args[2] : "all";
        foreach (var type in types)
        {
            int rows = 4096, cols = 4096;
            var rng = new Random(1);
            byte* w = WeightCopies(type, rows, cols, rng, out long rb, out long bytes, out int copies);
            var x = new float[cols];
            var y = new float[rows];
            double best = double.MaxValue;
            if (what != "gemm")
            {
            for (int rep = 0; rep < 5; rep++)
            {
                var sw = Stopwatch.StartNew();
                for (int c = 0; c < copies; c++) MatMul.Forward(x, new WeightMatrix(type, w + c * bytes, rows, cols), y, 1, pool, isa);
                best = Math.Min(best, sw.Elapsed.TotalSeconds / copies);
            }
            Console.WriteLine($"matvec {type,-5} 4096x4096: {best * 1e3,7:F3} ms  {bytes / best / 1e9,6:F1} GB/s");
            // the same kernel on 256 rows that stay in L2: its compute rate, without DRAM
            best = double.MaxValue;
            var yc = new float[256];
            for (int rep = 0; rep < 50; rep++)
            {
                var sw = Stopwatch.StartNew();
                MatMul.Forward(x, new WeightMatrix(type, w, 256, cols), yc, 1, pool, isa);
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            Console.WriteLine($"       {type,-5} in cache:  {256.0 * cols / best / 1e9,6:F2} G weights/s ({256 * rb / best / 1e9,5:F1} GB/s)");
            }
            if (what == "matvec") { NativeMemory.AlignedFree(w); continue; }
            // GEMM 1024^3 on the first 1024 rows
            int t = 1024, oc = 1024, k = 1024;
            var w2 = new byte[DTypeInfo.RowBytes(type, k) * oc];
            var s2 = new float[k];
            for (int r = 0; r < oc; r++)
            {
                for (int i = 0; i < k; i++) s2[i] = (float)(rng.NextDouble() - 0.5);
                SharpLM.Tensors.Types.DTypes.Of(type).QuantizeRow(s2, w2.AsSpan((int)(r * DTypeInfo.RowBytes(type, k)), (int)DTypeInfo.RowBytes(type, k)));
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

    private struct ReadJob : IParallelJob
    {
        public float* P;
        public long N;
        public int Tasks;
        public float* Out;

        // the widest vector the machine has (AVX-512 or AVX2): a Vector512 sum emulated on AVX2 is not a read limit
        public readonly void Execute(int task)
        {
            long s = N * task / Tasks, e = N * (task + 1) / Tasks;
            if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated)
            {
                System.Runtime.Intrinsics.Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (long i = s; i + 64 <= e; i += 64)
                {
                    a0 += System.Runtime.Intrinsics.Vector512.Load(P + i);
                    a1 += System.Runtime.Intrinsics.Vector512.Load(P + i + 16);
                    a2 += System.Runtime.Intrinsics.Vector512.Load(P + i + 32);
                    a3 += System.Runtime.Intrinsics.Vector512.Load(P + i + 48);
                }
                Out[task * 16] = System.Runtime.Intrinsics.Vector512.Sum(a0 + a1 + a2 + a3);
            }
            else
            {
                System.Runtime.Intrinsics.Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (long i = s; i + 32 <= e; i += 32)
                {
                    a0 += System.Runtime.Intrinsics.Vector256.Load(P + i);
                    a1 += System.Runtime.Intrinsics.Vector256.Load(P + i + 8);
                    a2 += System.Runtime.Intrinsics.Vector256.Load(P + i + 16);
                    a3 += System.Runtime.Intrinsics.Vector256.Load(P + i + 24);
                }
                Out[task * 16] = System.Runtime.Intrinsics.Vector256.Sum(a0 + a1 + a2 + a3);
            }
        }
    }

    /// <summary>Lanes of the widest FMA the machine has: 16 with AVX-512, 8 with AVX2.</summary>
    private static int FmaLanes => System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? 16 : 8;

    private struct FmaJob : IParallelJob
    {
        public float* Out;
        public int Iters;

        public readonly void Execute(int task)
        {
            if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported) Execute512(task); else Execute256(task);
        }

        private readonly void Execute512(int task)
        {
            var b = System.Runtime.Intrinsics.Vector512.Create(1.0000001f);
            var c = System.Runtime.Intrinsics.Vector512.Create(1e-7f);
            System.Runtime.Intrinsics.Vector512<float> a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b, a7 = b, a8 = b, a9 = b, a10 = b, a11 = b;
            for (int i = 0; i < Iters; i++)
            {
                a0 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a0, b, c); a1 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a1, b, c);
                a2 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a2, b, c); a3 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a3, b, c);
                a4 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a4, b, c); a5 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a5, b, c);
                a6 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a6, b, c); a7 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a7, b, c);
                a8 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a8, b, c); a9 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a9, b, c);
                a10 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a10, b, c); a11 = System.Runtime.Intrinsics.X86.Avx512F.FusedMultiplyAdd(a11, b, c);
            }
            Out[task * 16] = System.Runtime.Intrinsics.Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
        }

        private readonly void Execute256(int task)
        {
            var b = System.Runtime.Intrinsics.Vector256.Create(1.0000001f);
            var c = System.Runtime.Intrinsics.Vector256.Create(1e-7f);
            System.Runtime.Intrinsics.Vector256<float> a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b, a7 = b, a8 = b, a9 = b, a10 = b, a11 = b;
            for (int i = 0; i < Iters; i++)
            {
                a0 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a0, b, c); a1 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a1, b, c);
                a2 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a2, b, c); a3 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a3, b, c);
                a4 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a4, b, c); a5 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a5, b, c);
                a6 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a6, b, c); a7 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a7, b, c);
                a8 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a8, b, c); a9 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a9, b, c);
                a10 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a10, b, c); a11 = System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a11, b, c);
            }
            Out[task * 16] = System.Runtime.Intrinsics.Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
        }
    }

    /// <summary>The machine's limits measured in the same run (the peer for the ratios): DRAM read GB/s and FMA GFLOP/s.</summary>
    private static void Calibrate(WorkerPool pool)
    {
        long n = 256L << 20; // 1 GiB of floats
        float* p = (float*)NativeMemory.AlignedAlloc((nuint)(n * 4), 64);
        new Span<float>(p, 1 << 20).Fill(1f);
        for (long i = 1 << 20; i < n; i += 1 << 20) Buffer.MemoryCopy(p, p + i, 4L << 20, 4L << 20);
        float* outp = stackalloc float[16 * 64];
        double best = double.MaxValue;
        for (int rep = 0; rep < 3; rep++)
        {
            var sw = Stopwatch.StartNew();
            pool.Run(pool.Threads, new ReadJob { P = p, N = n, Tasks = pool.Threads, Out = outp });
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        Console.WriteLine($"limit  read 1 GiB (widest-vector sum):   {n * 4 / best / 1e9,6:F1} GB/s");
        NativeMemory.AlignedFree(p);
        best = double.MaxValue;
        for (int rep = 0; rep < 3; rep++)
        {
            var sw = Stopwatch.StartNew();
            pool.Run(pool.Threads, new FmaJob { Out = outp, Iters = 10_000_000 });
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        Console.WriteLine($"limit  FMA peak (12 vector chains):     {pool.Threads * 10_000_000.0 * 12 * 2 * FmaLanes / best / 1e9,6:F1} GFLOP/s");
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec { public long Sec, Nsec; }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec ts);

    /// <summary>This thread's CPU seconds (CLOCK_THREAD_CPUTIME_ID): robust to being descheduled on a shared machine.</summary>
    internal static double ThreadCpu()
    {
        ClockGetTime(3, out var ts);
        return ts.Sec + ts.Nsec * 1e-9;
    }

    /// <summary>DRAM read limit (GB/s): a sum in the widest vectors over 512 MB split across the pool's threads, best of <paramref name="reps"/>.</summary>
    internal static double ReadLimit(WorkerPool pool, int reps = 5)
    {
        long n = 128L << 20;
        float* p = (float*)NativeMemory.AlignedAlloc((nuint)(n * 4), 64);
        try
        {
            new Span<float>(p, 1 << 20).Fill(1f);
            for (long i = 1 << 20; i < n; i += 1 << 20) Buffer.MemoryCopy(p, p + i, 4L << 20, 4L << 20);
            float* outp = stackalloc float[16 * 64];
            double best = double.MaxValue;
            for (int rep = 0; rep < reps; rep++)
            {
                var sw = Stopwatch.StartNew();
                pool.Run(pool.Threads, new ReadJob { P = p, N = n, Tasks = pool.Threads, Out = outp });
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            return n * 4 / best / 1e9;
        }
        finally { NativeMemory.AlignedFree(p); }
    }

    /// <summary>FMA peak (GFLOP/s) over a short loop: best of <paramref name="reps"/>.</summary>
    internal static double FmaPeak(WorkerPool pool, int reps = 5)
    {
        float* outp = stackalloc float[16 * 64];
        double best = double.MaxValue;
        for (int rep = 0; rep < reps; rep++)
        {
            var sw = Stopwatch.StartNew();
            pool.Run(pool.Threads, new FmaJob { Out = outp, Iters = 500_000 });
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return pool.Threads * 500_000.0 * 12 * 2 * FmaLanes / best / 1e9;
    }

    /// <summary>gemm-small threads [rounds]: the F32 GEMM at encoder shapes (all-MiniLM-L6-v2: OC x C = 384x384, 1536x384,
    /// 384x1536; T = 6..56 rows of one sentence, and 1109 rows of a packed batch of 32), weights packed at load
    /// (<see cref="Gemm.Pack"/>) against the same weights unpacked (the matvec below 16 rows, the blocked GEMM above), and
    /// both against the FMA peak measured between them. 1 thread: thread CPU time; more: wall time. Medians.</summary>
    public static void GemmSmall(string[] args)
    {
        int threads = args.Length > 0 ? int.Parse(args[0]) : 1;
        int rounds = args.Length > 1 ? int.Parse(args[1]) : 7;
        using var pool = new WorkerPool(threads);
        var isa = KernelIsaSelector.Current;
        double Clock() => threads == 1 ? ThreadCpu() : Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
        double Peak()
        {
            float* outp = stackalloc float[16 * 64];
            double c0 = Clock();
            pool.Run(pool.Threads, new FmaJob { Out = outp, Iters = 500_000 });
            return pool.Threads * 500_000.0 * 12 * 2 * FmaLanes / (Clock() - c0) / 1e9;
        }
        Console.WriteLine($"isa {isa}, threads {threads}, {rounds} rounds, medians; load average {File.ReadAllText("/proc/loadavg").Trim()}");
        Console.WriteLine("| OC x C | T | packed GFLOP/s | unpacked GFLOP/s | packed / unpacked | FMA peak GFLOP/s | packed / peak |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        var rng = new Random(3);
        foreach (var (oc, c) in new[] { (384, 384), (1536, 384), (384, 1536) })
        {
            var wf = new float[oc * c];
            for (int i = 0; i < wf.Length; i++) wf[i] = (float)(rng.NextDouble() - 0.5);
            fixed (float* pw = wf)
            {
                var w = new WeightMatrix(DType.F32, (byte*)pw, oc, c);
                var keep = Gemm.Pack(w, out float* panels);
                var wp = new WeightMatrix(DType.F32, (byte*)pw, oc, c, panels);
                foreach (int t in new[] { 6, 13, 24, 41, 56, 1109 })
                {
                    var x = new float[t * c];
                    for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() - 0.5);
                    var y = new float[t * oc];
                    int reps = Math.Max(1, 200_000_000 / (2 * t * oc * c));
                    double Run(in WeightMatrix m)
                    {
                        double c0 = Clock();
                        for (int r = 0; r < reps; r++) MatMul.Forward(x, m, y, t, pool, isa);
                        return 2.0 * t * oc * c * reps / (Clock() - c0) / 1e9;
                    }
                    Run(wp); Run(w);
                    var a = new List<double>(); var b = new List<double>(); var pk = new List<double>();
                    for (int r = 0; r < rounds; r++) { a.Add(Run(wp)); pk.Add(Peak()); b.Add(Run(w)); }
                    double ma = Median(a), mb = Median(b), mp = Median(pk);
                    Console.WriteLine($"| {oc}x{c} | {t} | {ma:F1} | {mb:F1} | {ma / mb:F2} | {mp:F1} | {ma / mp:F2} |");
                }
                GC.KeepAlive(keep);
            }
        }
        static double Median(List<double> v) { var s = v.Order().ToArray(); return s[s.Length / 2]; }
    }

    /// <summary>matvec-tune threads [types] [f32]: matvec GB/s (DRAM) and G weights/s (in cache) against the read limit,
    /// thread CPU time at 1 thread, best of 9 interleaved with the limit.</summary>
    public static void MatVecTune(string[] args)
    {
        int threads = int.Parse(args[0]);
        var types = args.Length > 1 ? args[1].Split(',').Select(Enum.Parse<DType>).ToArray() : [DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0, DType.Q4_K, DType.Q6_K];
        bool exact = args.Length > 2 && args[2] == "f32";
        using var pool = new WorkerPool(threads);
        var isa = KernelIsaSelector.Current;
        long n = 128L << 20; // 512 MB of floats for the read limit
        float* big = (float*)NativeMemory.AlignedAlloc((nuint)(n * 4), 64);
        new Span<float>(big, 1 << 20).Fill(1f);
        for (long i = 1 << 20; i < n; i += 1 << 20) Buffer.MemoryCopy(big, big + i, 4L << 20, 4L << 20);
        float* outp = stackalloc float[16 * 64];
        double Time(Action a) { var sw = Stopwatch.StartNew(); double c0 = ThreadCpu(); a(); return threads == 1 ? ThreadCpu() - c0 : sw.Elapsed.TotalSeconds; }
        using var scope = MatMul.ExactActivations(exact);
        foreach (var type in types)
        {
            int rows = 4096, cols = 4096;
            var rng = new Random(1);
            byte* w = WeightCopies(type, rows, cols, rng, out long rb, out long bytes, out int copies);
            var x = new float[cols];
            for (int i = 0; i < cols; i++) x[i] = (float)(rng.NextDouble() - 0.5);
            var y = new float[rows];
            double best = double.MaxValue, limit = double.MaxValue, cache = double.MaxValue;
            for (int rep = 0; rep < 9; rep++)
            {
                limit = Math.Min(limit, Time(() => pool.Run(pool.Threads, new ReadJob { P = big, N = n, Tasks = pool.Threads, Out = outp })));
                best = Math.Min(best, Time(() => { for (int c = 0; c < copies; c++) MatMul.Forward(x, new WeightMatrix(type, w + c * bytes, rows, cols), y, 1, pool, isa); }) / copies);
                cache = Math.Min(cache, Time(() => { for (int it = 0; it < 20; it++) MatMul.Forward(x, new WeightMatrix(type, w, 256, cols), y, 1, pool, isa); }) / 20);
            }
            double gbs = bytes / best / 1e9, lim = n * 4 / limit / 1e9;
            Console.WriteLine($"matvec {type,-5} {(exact ? "f32" : "q8 ")} threads {threads}: {gbs,6:F1} GB/s of read limit {lim,5:F1} ({gbs / lim:P0}); in cache {256.0 * cols / cache / 1e9,6:F2} G weights/s ({256 * rb / cache / 1e9,5:F1} GB/s)");
            NativeMemory.AlignedFree(w);
        }
        NativeMemory.AlignedFree(big);
    }

    /// <summary>rows-tune [types] [threads] [OCxC] [Ts] [grouped]: the matmul of T = 1..16 activation rows against an OC x C weight (4096 x 4096; out of
    /// cache: copies rotate), with the four-row kernels on and off alternately; prints the cost per row relative to T = 1
    /// (1.00 = an extra row costs a whole matvec; 1/T = free) and the aggregate speed-up T * time(1) / time(T). One thread
    /// is timed in thread CPU time (steadier on a shared machine), more in wall time. <c>grouped</c>: the weights regrouped as
    /// a model read into memory has them (<see cref="SharpLM.Tensors.Types.RowGroups"/>, where the machine does it).</summary>
    public static void RowsTune(string[] args)
    {
        bool grouped = args.Contains("grouped");
        args = args.Where(a => a != "grouped").ToArray();
        var types = args.Length > 0 ? args[0].Split(',').Select(Enum.Parse<DType>).ToArray() : [DType.Q8_0, DType.Q4_K, DType.Q6_K, DType.Q5_0, DType.Q4_1, DType.F16];
        int threads = args.Length > 1 ? int.Parse(args[1]) : 1;
        var shape = (args.Length > 2 ? args[2] : "4096x4096").Split('x').Select(int.Parse).ToArray();
        using var pool = new WorkerPool(threads);
        var isa = KernelIsaSelector.Current;
        double Time(Action a) { var sw = Stopwatch.StartNew(); double c0 = ThreadCpu(); a(); return threads == 1 ? ThreadCpu() - c0 : sw.Elapsed.TotalSeconds; }
        int[] ts = args.Length > 3 ? args[3].Split(',').Select(int.Parse).ToArray() : [1, 2, 4, 8, 12, 15];
        Console.WriteLine($"{Inference.DecodeRace.Cpu()}, ISA {isa}, {threads} thread(s), weight {shape[0]}x{shape[1]}{(grouped ? " (row groups where the type has them)" : "")}, load average {File.ReadAllText("/proc/loadavg")[..14]}");
        Console.WriteLine("| weights | T | four-row kernels: time / T=1 | speed-up T*t1/tT | row by row: time / T=1 | speed-up | four-row / row-by-row | four-row us |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var type in types)
        {
            int rows = shape[0], cols = shape[1];
            long rb = DTypeInfo.RowBytes(type, cols), bytes = rb * rows;
            int copies = (int)Math.Clamp((256L << 20) / bytes + 1, 1, 64);
            byte* w = (byte*)NativeMemory.AlignedAlloc((nuint)(bytes * copies), 64);
            var src = new float[cols];
            var rng = new Random(1);
            for (int r = 0; r < rows; r++)
            {
                if (r < 64) for (int i = 0; i < cols; i++) src[i] = (float)(rng.NextDouble() - 0.5);
                SharpLM.Tensors.Types.DTypes.Of(type).QuantizeRow(src, new Span<byte>(w + r * rb, (int)rb));
            }
            bool regroup = grouped && SharpLM.Tensors.Types.RowGroups.Regroups(type);
            if (regroup) SharpLM.Tensors.Types.RowGroups.RegroupInPlace(type, w, rows, cols);
            for (int c = 1; c < copies; c++) Buffer.MemoryCopy(w, w + c * bytes, bytes, bytes);
            var x = new float[16 * cols];
            for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() - 0.5);
            var y = new float[16 * rows];
            var on = new Dictionary<int, List<double>>();
            var off = new Dictionary<int, List<double>>();
            foreach (int t in ts) { on[t] = []; off[t] = []; }
            double Run(int t) => Time(() => { for (int c = 0; c < copies; c++) MatMul.Forward(x, new WeightMatrix(type, w + c * bytes, rows, cols, grouped: regroup), y, t, pool, isa); }) / copies;
            for (int rep = 0; rep < 7; rep++)
                foreach (int t in ts)
                {
                    bool first = rep % 2 == 0;
                    MatMul.FourRowKernels = first; (first ? on : off)[t].Add(Run(t));
                    MatMul.FourRowKernels = !first; (first ? off : on)[t].Add(Run(t));
                }
            MatMul.FourRowKernels = true;
            double on1 = Inference.DecodeRace.Median(on[1]), off1 = Inference.DecodeRace.Median(off[1]);
            foreach (int t in ts)
            {
                double a = Inference.DecodeRace.Median(on[t]), b = Inference.DecodeRace.Median(off[t]);
                Console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"| {type} | {t} | {a / on1:F2} | {t * on1 / a:F2} | {b / off1:F2} | {t * off1 / b:F2} | {b / a:F2}x | {a * 1e6:F0} |"));
            }
            NativeMemory.AlignedFree(w);
        }
    }

    /// <summary>dot-tune [types] [cols]: one weight row in L1, the fused dots (f32 and 8-bit) alone, G weights/s.</summary>
    public static void DotTune(string[] args)
    {
        var types = args.Length > 0 ? args[0].Split(',').Select(Enum.Parse<DType>).ToArray() : [DType.Q8_0, DType.Q4_0, DType.Q4_K, DType.Q6_K];
        int cols = args.Length > 1 ? int.Parse(args[1]) : 4096;
        var isa = KernelIsaSelector.Current;
        foreach (var type in types)
        {
            var t = SharpLM.Tensors.Types.DTypes.Of(type);
            var w = new byte[t.RowBytes(cols)];
            var src = new float[cols];
            var rng = new Random(1);
            for (int i = 0; i < cols; i++) src[i] = (float)(rng.NextDouble() - 0.5);
            t.QuantizeRow(src, w);
            int block = Math.Max(32, t.DotQ8Block);
            var buf = new byte[SharpLM.Tensors.Types.Q8Activations.RowStride(cols, block) + 64];
            var rowBuf = new float[cols];
            fixed (byte* pw = w, pb = buf)
            fixed (float* px = src, pr = rowBuf)
            {
                var row = SharpLM.Tensors.Types.Q8Activations.At((byte*)(((nint)pb + 63) & ~(nint)63), cols, block);
                SharpLM.Tensors.Types.Q8Activations.Quantize(px, cols, block, row, isa);
                double bf = double.MaxValue, bq = double.MaxValue, bz = double.MaxValue;
                float sink = 0;
                var warm = Stopwatch.StartNew();
                while (warm.ElapsedMilliseconds < 400)
                {
                    sink += t.DotRow(pw, px, cols, isa, pr);
                    if (t.HasDotQ8) sink += t.DotQ8(pw, row, cols, isa, pr);
                    SharpLM.Tensors.Types.Q8Activations.Quantize(px, cols, block, row, isa);
                }
                for (int rep = 0; rep < 30; rep++)
                {
                    double c0 = ThreadCpu();
                    for (int i = 0; i < 2000; i++) sink += t.DotRow(pw, px, cols, isa, pr);
                    bf = Math.Min(bf, ThreadCpu() - c0);
                    if (t.HasDotQ8)
                    {
                        c0 = ThreadCpu();
                        for (int i = 0; i < 2000; i++) sink += t.DotQ8(pw, row, cols, isa, pr);
                        bq = Math.Min(bq, ThreadCpu() - c0);
                    }
                    c0 = ThreadCpu();
                    for (int i = 0; i < 200; i++) SharpLM.Tensors.Types.Q8Activations.Quantize(px, cols, block, row, isa);
                    bz = Math.Min(bz, (ThreadCpu() - c0) * 10);
                }
                // the four-row dot: the same row against 4 activation rows, G weight-row products/s (4 per weight)
                double b4 = double.NaN;
                if (t.DotQ8x4 != null)
                {
                    var xs = stackalloc SharpLM.Tensors.Types.Q8Row[4];
                    for (int j = 0; j < 4; j++) xs[j] = row;
                    float* res = stackalloc float[4];
                    if (t.DotQ8x4(pw, xs, cols, isa, res))
                    {
                        b4 = double.MaxValue;
                        for (int rep = 0; rep < 30; rep++)
                        {
                            double c0 = ThreadCpu();
                            for (int i = 0; i < 2000; i++) { t.DotQ8x4(pw, xs, cols, isa, res); sink += res[3]; }
                            b4 = Math.Min(b4, ThreadCpu() - c0);
                        }
                    }
                }
                Console.WriteLine($"dot {type,-5} C{cols}: f32 {2000.0 * cols / bf / 1e9,6:F2}, 8-bit {2000.0 * cols / bq / 1e9,6:F2}, 8-bit x4 {4 * 2000.0 * cols / b4 / 1e9,6:F2} G weights/s; quantize x {2000.0 * cols / bz / 1e9,6:F2} G values/s ({sink:E1})");
            }
        }
    }

    /// <summary>attn-tune T NH KVH HS S: one attention pass (T rows at the end of S keys), thread CPU time, 1 thread.</summary>
    public static void AttnTune(string[] args)
    {
        int t = int.Parse(args[0]), nh = int.Parse(args[1]), kvh = int.Parse(args[2]), hs = int.Parse(args[3]), s = int.Parse(args[4]);
        using var pool = new WorkerPool(1);
        var rng = new Random(1);
        float[] R(int n) { var a = new float[n]; for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() - 0.5); return a; }
        var q = R(t * nh * hs); var k = R(s * kvh * hs); var v = R(s * kvh * hs); var y = new float[t * nh * hs];
        var slot = new int[t]; var end = new int[t];
        for (int i = 0; i < t; i++) end[i] = s - t + i + 1;
        // K and V where the KV cache keeps them: 64-byte aligned, or ATTN_OFFSET bytes past that (a misaligned cache)
        int offset = int.TryParse(Environment.GetEnvironmentVariable("ATTN_OFFSET"), out int off) ? off : 0;
        var kbuf = new AlignedBytes(4L * k.Length + offset); var vbuf = new AlignedBytes(4L * v.Length + offset);
        k.AsSpan().CopyTo(MemoryMarshal.Cast<byte, float>(kbuf.Span[offset..])); v.AsSpan().CopyTo(MemoryMarshal.Cast<byte, float>(vbuf.Span[offset..]));
        float* pk = (float*)(kbuf.Pointer + offset), pv = (float*)(vbuf.Pointer + offset);
        fixed (int* ps = slot, pe = end)
        {
            nint kb = (nint)pk, vb = (nint)pv;
            var rows = new AttentionRows { Slot = ps, KvEnd = pe, KBase = &kb, VBase = &vb };
            var warm = Stopwatch.StartNew();
            int warmMs = int.TryParse(Environment.GetEnvironmentVariable("WARM_MS"), out int wm) ? wm : 300;
            while (warm.ElapsedMilliseconds < warmMs) Attention.Forward(q, y, default, t, nh, kvh, hs, rows, pool);
            double best = double.MaxValue;
            int iters = Math.Max(1, (int)(2e8 / ((double)t * s * nh * hs)));
            for (int rep = 0; rep < 10; rep++)
            {
                double c0 = ThreadCpu();
                for (int it = 0; it < iters; it++) Attention.Forward(q, y, default, t, nh, kvh, hs, rows, pool);
                best = Math.Min(best, (ThreadCpu() - c0) / iters);
            }
            double flops = 4.0 * nh * hs * end.Sum(e => (double)e);
            Console.WriteLine($"attention T{t} NH{nh} KVH{kvh} HS{hs} S{s}: {best * 1e6,8:F1} us, {flops / best / 1e9,6:F1} GFLOP/s, K+V {2.0 * s * kvh * hs * 4 / best / 1e9,6:F1} GB/s");
        }
    }

    /// <summary>The 8x32 micro-kernel alone on L1-resident operands.</summary>
    public static void MicroTune()
    {
        int kc = int.Parse(Environment.GetEnvironmentVariable("KC") ?? "256");
        float* w = (float*)NativeMemory.AlignedAlloc(8 * 256 * 4, 64);
        float* b = (float*)NativeMemory.AlignedAlloc(256 * 32 * 4, 64);
        float* acc = (float*)NativeMemory.AlignedAlloc(8 * 32 * 4, 64);
        new Span<float>(w, 8 * 256).Fill(0.001f); new Span<float>(b, 256 * 32).Fill(0.001f); new Span<float>(acc, 256).Clear();
        for (int rep = 0; rep < 10; rep++)
        {
            double c0 = ThreadCpu();
            for (int i = 0; i < 20000; i++) Gemm.Micro8x32(w, 256, b, kc, acc, 32, false);
            double s = ThreadCpu() - c0;
            Console.WriteLine($"micro 8x32 kc {kc}: {20000.0 * 2 * 8 * 32 * kc / s / 1e9:F1} GFLOP/s");
        }
    }

    /// <summary>gemm-tune threads T OC C [types]: GEMM GFLOP/s against the FMA peak, interleaved, best of 15.</summary>
    public static void GemmTune(string[] args)
    {
        int threads = int.Parse(args[0]);
        int t = int.Parse(args[1]), oc = int.Parse(args[2]), k = int.Parse(args[3]);
        var types = args.Length > 4 ? args[4].Split(',').Select(Enum.Parse<DType>).ToArray() : [DType.F32];
        if (args.Length > 5) MatMul.GemmMinRows = int.Parse(args[5]); // rows from which the GEMM replaces the matvec
        using var pool = new WorkerPool(threads);
        var isa = KernelIsaSelector.Current;
        var rng = new Random(1);
        foreach (var type in types)
        {
            long rb = DTypeInfo.RowBytes(type, k);
            var w2 = new byte[rb * oc];
            var s2 = new float[k];
            for (int r = 0; r < oc; r++)
            {
                for (int i = 0; i < k; i++) s2[i] = (float)(rng.NextDouble() - 0.5);
                SharpLM.Tensors.Types.DTypes.Of(type).QuantizeRow(s2, w2.AsSpan((int)(r * rb), (int)rb));
            }
            var xx = new float[t * k];
            for (int i = 0; i < xx.Length; i++) xx[i] = (float)(rng.NextDouble() - 0.5);
            var yy = new float[t * oc];
            // the quantized types with an integer form run both GEMMs: integer, then their rows dequantized to f32
            foreach (bool integer in SharpLM.Tensors.Types.DTypes.Of(type).Unpack32 != null ? new[] { true, false } : [true])
            {
            MatMul.IntegerGemm = integer;
            double best = double.MaxValue, peak = 0;
            int iters = (int)Math.Max(1, 2e9 / (2.0 * t * oc * k)); // >= ~10 ms per measurement
            fixed (byte* pw = w2)
                for (int rep = 0; rep < 15; rep++)
                {
                    peak = Math.Max(peak, FmaPeak(pool, 1));
                    var sw = Stopwatch.StartNew();
                    double c0 = ThreadCpu();
                    for (int it = 0; it < iters; it++) MatMul.Forward(xx, new WeightMatrix(type, pw, oc, k), yy, t, pool, isa);
                    best = Math.Min(best, (threads == 1 ? ThreadCpu() - c0 : sw.Elapsed.TotalSeconds) / iters);
                }
            double gf = 2.0 * t * oc * k / best / 1e9;
            Console.WriteLine($"gemm {type,-5}{(SharpLM.Tensors.Types.DTypes.Of(type).Unpack32 == null ? "     " : integer ? " int8" : " f32 ")} T{t} OC{oc} C{k} threads {threads}: {best * 1e3,7:F2} ms {gf,6:F1} GFLOP/s, peak {peak,6:F1}: {gf / peak:P0}");
            }
            MatMul.IntegerGemm = true;
        }
    }

    /// <summary>Runs every kernel until tier-1 JIT code is in place (the first timed type would otherwise pay for it).</summary>
    private static void WarmUp(WorkerPool pool, KernelIsa isa)
    {
        var sw = Stopwatch.StartNew();
        var x = new float[32 * 256];
        var y = new float[32 * 64];
        while (sw.ElapsedMilliseconds < 1500)
            foreach (var type in new[] { DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0, DType.Q4_K, DType.Q6_K })
            {
                var w = new byte[DTypeInfo.RowBytes(type, 256) * 64];
                fixed (byte* pw = w)
                {
                    MatMul.Forward(x, new WeightMatrix(type, pw, 64, 256), y, 32, pool, isa);
                    MatMul.Forward(x, new WeightMatrix(type, pw, 64, 256), y, 1, pool, isa);
                }
            }
    }

    /// <summary>A rows x cols matrix of <paramref name="type"/> (64 distinct random rows, repeated) copied until the
    /// copies exceed 512 MB, so that passing over them reads DRAM rather than cache; free with NativeMemory.AlignedFree.</summary>
    private static byte* WeightCopies(DType type, int rows, int cols, Random rng, out long rb, out long bytes, out int copies)
    {
        rb = DTypeInfo.RowBytes(type, cols);
        bytes = rb * rows;
        copies = (int)Math.Clamp((512L << 20) / bytes + 1, 1, 64);
        byte* w = (byte*)NativeMemory.AlignedAlloc((nuint)(bytes * copies), 64);
        var src = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            if (r < 64) for (int i = 0; i < cols; i++) src[i] = (float)(rng.NextDouble() - 0.5);
            SharpLM.Tensors.Types.DTypes.Of(type).QuantizeRow(src, new Span<byte>(w + r * rb, (int)rb));
        }
        for (int c = 1; c < copies; c++) Buffer.MemoryCopy(w, w + c * bytes, bytes, bytes);
        return w;
    }
}
