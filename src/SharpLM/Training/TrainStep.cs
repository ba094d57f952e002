using SharpLM.Training.Optim;

namespace SharpLM.Training;

/// <summary>What one optimizer step did: the mean micro-batch loss, the gradient norm before clipping, the learning rate.</summary>
internal readonly record struct TrainStepResult(double Loss, double GradNorm, double Lr);

/// <summary>
/// One optimizer step over a model, the unit <see cref="Trainer"/> repeats and the lab's experiments drive directly:
/// zero the gradients, forward and backward over <c>accum</c> micro-batches (each scaled 1/accum), clip the global
/// gradient norm, update with the scheduled learning rate. A non-finite micro-batch loss or gradient norm stops the
/// step before the update (the result carries it; the caller decides what divergence means).
/// </summary>
internal sealed class TrainStep(TrainModel model, IOptimizer optimizer, LrSchedule schedule, double gradClip)
{
    public TrainModel Model { get; } = model;

    /// <summary>Runs step <paramref name="step"/> (0-based); <paramref name="fill"/> writes micro-batch m's inputs and
    /// targets (B*T each; targets &lt; 0 are ignored).</summary>
    public TrainStepResult Run(int step, int accum, int b, int t, int[] x, int[] y, Action<int, int[], int[]> fill)
    {
        var p = Model.Parameters;
        p.ZeroGrad();
        double loss = 0;
        for (int m = 0; m < accum; m++)
        {
            fill(m, x, y);
            double l = Model.Forward(x, y, b, t);
            if (!double.IsFinite(l)) return new TrainStepResult(l, double.NaN, schedule.At(step));
            Model.Backward(1.0 / accum);
            loss += l / accum;
        }
        double norm = GradClip.Clip(p, gradClip);
        double lr = schedule.At(step);
        if (!double.IsFinite(norm)) return new TrainStepResult(loss, norm, lr);
        optimizer.Update(p, lr);
        return new TrainStepResult(loss, norm, lr);
    }
}
