using SharpLM.Lab;
using SharpLM.Lab.Experiments;
using SharpLM.Models;
using SharpLM.Sizing;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;
using SharpLM.Testing;

namespace SharpLM.Tests.Lab;

/// <summary>memory: the peak counter sees what a run touches, the estimates are calc's own, and a training run's peak
/// holds at least its model states (16 bytes per parameter in f32 AdamW). The process's resident set is shared by every
/// test in it, so these run alone (a parallel test freeing memory during a run would hide what the run added).</summary>
[Collection(PeakRssCollection.Name)]
public class MemoryTests
{
    [PeakRssFact]
    public void The_peak_counter_sees_the_memory_a_run_touches()
    {
        const int Bytes = 96 << 20;
        var (peak, before) = PeakRss.During(() =>
        {
            var a = GC.AllocateUninitializedArray<byte>(Bytes);
            for (int i = 0; i < a.Length; i += 4096) a[i] = 1;
            GC.KeepAlive(a);
        });
        Assert.InRange(peak - before, Bytes * 0.95, Bytes * 2.0);
        // nothing touched: the peak stays near the resident set
        var (peak2, before2) = PeakRss.During(() => { });
        Assert.InRange(peak2 - before2, 0, 16 << 20);
    }

    [PeakRssFact]
    public void The_estimates_are_calcs_own_and_the_runs_are_measured()
    {
        var r = LabRegistry.Run(new Memory(), new LabOptions { Quick = true, Threads = SharpLM.Kernels.WorkerPool.Shared.Threads });
        var train = r.Data["training"]!.AsArray();
        Assert.Equal(2, train.Count);
        // what the runs added is checked in a fresh process (LabCommandTests): in this one, memory other tests left
        // (kernel scratch, pooled arrays) is reused by the run and hides part of what it needs
        foreach (var t in train)
        {
            int dim = (int)t!["width"]!, layers = (int)t["layers"]!, seq = (int)t["sequence"]!, batch = (int)t["batch"]!;
            var cfg = LabTraining.Llama(256, dim, layers, Math.Max(1, dim / 64), seq);
            var pc = new ParameterCount(cfg);
            Assert.Equal(pc.Total, (long)t["parameters"]!);
            var est = TrainingMemory.Estimate(pc, OptimizerKind.AdamW, Precision.Fp32, 0, 1, batch, seq, Recompute.None);
            Assert.Equal(est.ModelStates, (long)t["calc_model_states"]!);
            Assert.Equal(16 * pc.Total, est.ModelStates);   // f32 weights + grads + two moments: the note's 16 bytes
        }
        foreach (var s in r.Data["serving"]!.AsArray())
        {
            var type = (string)s!["type"]! == "F32" ? DType.F32 : DType.Q8_0;
            long n = (long)s["parameters"]!;
            Assert.Equal(DTypes.Of(type).BytesFor(n), (long)s["calc_weights"]!);
            Assert.True((long)s["file_bytes"]! >= (long)s["calc_weights"]! * 0.9);
            Assert.Equal(16, (int)s["generated_tokens"]!);
        }
    }
}

/// <summary>Tests that read the process's peak resident set: run after the parallel tests, one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PeakRssCollection
{
    public const string Name = "peak resident memory";
}
