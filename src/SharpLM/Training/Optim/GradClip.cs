
namespace SharpLM.Training.Optim;

/// <summary>
/// Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_): norm = sqrt(sum over all gradients g^2);
/// when maxNorm &gt; 0 every gradient is multiplied by min(1, maxNorm / (norm + 1e-6)).
/// </summary>
internal static class GradClip
{
    /// <summary>Returns the norm before clipping (NaN or infinity when a gradient is not finite).</summary>
    public static double GlobalNorm(ReadOnlySpan<float> grads)
    {
        double ss = 0;
        foreach (var g in grads) ss += (double)g * g;
        return Math.Sqrt(ss);
    }

    /// <summary>The norm over the tensors the optimizers update (<see cref="ParameterSet.Trainable"/>; all of them unless some are frozen).</summary>
    public static double Clip(ParameterSet p, double maxNorm)
    {
        double norm;
        if (p.Trainable.Count == p.Infos.Count) norm = GlobalNorm(p.Grads);
        else
        {
            double ss = 0; // one sum of squares over the trainable tensors
            foreach (var info in p.Trainable)
                foreach (var g in p.G(info)) ss += (double)g * g;
            norm = Math.Sqrt(ss);
        }
        if (maxNorm > 0 && double.IsFinite(norm))
        {
            double coef = maxNorm / (norm + 1e-6);
            if (coef < 1)
            {
                float c = (float)coef;
                foreach (var info in p.Trainable)
                    foreach (ref var g in p.G(info)) g *= c;
            }
        }
        return norm;
    }
}
