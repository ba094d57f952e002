
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

    public static double Clip(ParameterSet p, double maxNorm)
    {
        double norm = GlobalNorm(p.Grads);
        if (maxNorm > 0 && double.IsFinite(norm))
        {
            double coef = maxNorm / (norm + 1e-6);
            if (coef < 1)
            {
                float c = (float)coef;
                var g = p.Grads;
                for (int i = 0; i < g.Length; i++) g[i] *= c;
            }
        }
        return norm;
    }
}
