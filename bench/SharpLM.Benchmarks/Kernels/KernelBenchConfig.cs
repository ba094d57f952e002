using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace SharpLM.Benchmarks.Kernels;

/// <summary>
/// Short in-process runs: the kernels are steady after warm-up, and the shared machine makes long runs no more exact.
/// </summary>
public sealed class KernelBenchConfig : ManualConfig
{
    public KernelBenchConfig()
    {
        AddJob(Job.Default.WithWarmupCount(2).WithIterationCount(7).WithLaunchCount(1).WithToolchain(InProcessEmitToolchain.Instance).WithId("kernels"));
        WithOptions(ConfigOptions.DisableOptimizationsValidator);
    }
}
