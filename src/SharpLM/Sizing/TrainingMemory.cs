namespace SharpLM.Sizing;

internal enum OptimizerKind { Adam, AdamW, Sgd }

internal enum Precision
{
    /// <summary>fp16/bf16 weights and gradients, fp32 master weights in the optimizer (the ZeRO paper's setting).</summary>
    Mixed,
    /// <summary>fp32 everything.</summary>
    Fp32,
}

internal enum Recompute { None, Selective, Full }

/// <summary>
/// Memory per GPU to train a model, in bytes: model states (weights, gradients, optimizer states) as in the ZeRO
/// paper (Rajbhandari et al. 2020, section 3 and figure 1) plus activations as in Korthikanti et al. 2022
/// ("Reducing Activation Recomputation in Large Transformer Models", section 4, no tensor/sequence parallelism).
/// <para>Bytes per parameter: mixed-precision Adam 2 (fp16 weights) + 2 (fp16 grads) + K = 12 (fp32 master weights,
/// momentum, variance) = 16; fp32 Adam 4 + 4 + K = 8 (momentum, variance); SGD with momentum 4 + 4 + 4 (fp32) or
/// 2 + 2 + 8 (mixed: master + momentum).</para>
/// <para>ZeRO over N GPUs, Ψ parameters: stage 0 (p + g + K)Ψ; stage 1 (p + g)Ψ + KΨ/N; stage 2 pΨ + (g + K)Ψ/N;
/// stage 3 (p + g + K)Ψ/N.</para>
/// <para>Activations per layer s·b·h·(34 + 5·a·s/h) bytes (2-byte activations; ×2 for fp32); selective recomputation
/// keeps 34·s·b·h; full recomputation keeps the layer input 2·s·b·h per layer plus one layer's full set while it is
/// recomputed. Decoders add 4·s·b·V for the f32 logits of the loss. b is the micro-batch on each GPU.</para>
/// </summary>
internal sealed record TrainingMemory(
    OptimizerKind Optimizer, Precision Precision, int ZeroStage, int Gpus, long Batch, long Sequence, Recompute Recompute,
    int ParamBytes, int GradBytes, int OptimizerBytes,
    long Weights, long Gradients, long OptimizerStates, long Activations, string ModelStatesFormula, string ActivationsFormula)
{
    public long ModelStates => Weights + Gradients + OptimizerStates;

    /// <summary>Per GPU.</summary>
    public long Total => ModelStates + Activations;

    public static TrainingMemory Estimate(ParameterCount p, OptimizerKind optimizer, Precision precision, int zeroStage, int gpus,
        long batch, long sequence, Recompute recompute)
    {
        if (zeroStage is < 0 or > 3) throw new ArgumentOutOfRangeException(nameof(zeroStage), zeroStage, "ZeRO stage must be 0, 1, 2 or 3.");
        if (gpus <= 0) throw new ArgumentOutOfRangeException(nameof(gpus), gpus, "the number of GPUs must be positive.");
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be positive.");
        if (sequence <= 0) throw new ArgumentOutOfRangeException(nameof(sequence), sequence, "sequence length must be positive.");
        var a = p.Config;
        int pb = precision == Precision.Mixed ? 2 : 4;
        int gb = pb;
        int state = optimizer == OptimizerKind.Sgd ? 4 : 8;
        int k = state + (precision == Precision.Mixed ? 4 : 0);
        long psi = p.Total;
        long Shard(long bytes) => (bytes + gpus - 1) / gpus;
        long w = zeroStage >= 3 ? Shard(checked(pb * psi)) : pb * psi;
        long g = zeroStage >= 2 ? Shard(checked(gb * psi)) : gb * psi;
        long o = zeroStage >= 1 ? Shard(checked(k * psi)) : k * psi;
        string f = zeroStage switch
        {
            0 => $"(p + g + K)Ψ = ({pb} + {gb} + {k}) × {psi:N0}",
            1 => $"(p + g)Ψ + KΨ/N = ({pb} + {gb}) × {psi:N0} + {k} × {psi:N0} / {gpus}",
            2 => $"pΨ + (g + K)Ψ/N = {pb} × {psi:N0} + ({gb} + {k}) × {psi:N0} / {gpus}",
            _ => $"(p + g + K)Ψ/N = ({pb} + {gb} + {k}) × {psi:N0} / {gpus}",
        };

        long s = sequence, b = batch, h = a.Width, heads = a.Heads;
        long full = checked(34 * s * b * h + 5 * heads * s * s * b);
        long layers = a.Layers;
        long act = recompute switch
        {
            Recompute.None => checked(layers * full),
            Recompute.Selective => checked(layers * 34 * s * b * h),
            _ => checked(layers * 2 * s * b * h + full),
        };
        string af = recompute switch
        {
            Recompute.None => "L × s·b·h·(34 + 5·a·s/h)",
            Recompute.Selective => "L × 34·s·b·h (selective recomputation of attention)",
            _ => "L × 2·s·b·h + s·b·h·(34 + 5·a·s/h) (full recomputation: layer inputs plus one layer)",
        };
        if (precision == Precision.Fp32) { act = checked(act * 2); af += " × 2 (fp32 activations)"; }
        if (p.HasLmHead) { act = checked(act + 4 * s * b * a.Vocab); af += " + 4·s·b·V (f32 logits)"; }
        af += $", s = {s}, b = {b}, h = {h}, a = {heads}, L = {layers}";
        return new TrainingMemory(optimizer, precision, zeroStage, gpus, batch, sequence, recompute, pb, gb, k, w, g, o, act, f, af);
    }
}
