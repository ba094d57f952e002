namespace SharpLM.Training.Optim;

/// <summary>How the learning rate decays after warmup.</summary>
internal enum LrDecay { Cosine, Linear, Constant }

/// <summary>
/// Linear warmup to <see cref="MaxLr"/> over <see cref="Warmup"/> steps, then decay to <see cref="MinLr"/> at
/// <see cref="TotalSteps"/>. Step s is 0-based:
///   s &lt; W: lr = MaxLr (s+1)/W;  else p = (s-W)/max(1, N-W) clamped to [0,1],
///   cosine: Min + (Max-Min) (1 + cos(pi p))/2;  linear: Max - (Max-Min) p;  constant: Max.
/// </summary>
internal sealed record LrSchedule(double MaxLr, double MinLr, int Warmup, int TotalSteps, LrDecay Decay = LrDecay.Cosine)
{
    public double At(int step)
    {
        if (step < Warmup) return MaxLr * (step + 1) / Warmup;
        if (Decay == LrDecay.Constant) return MaxLr;
        double p = Math.Clamp((double)(step - Warmup) / Math.Max(1, TotalSteps - Warmup), 0, 1);
        return Decay == LrDecay.Cosine
            ? MinLr + (MaxLr - MinLr) * 0.5 * (1 + Math.Cos(Math.PI * p))
            : MaxLr - (MaxLr - MinLr) * p;
    }

    public static LrDecay ParseDecay(string s) => s.ToLowerInvariant() switch
    {
        "cosine" => LrDecay.Cosine,
        "linear" => LrDecay.Linear,
        "constant" => LrDecay.Constant,
        _ => throw new ArgumentException($"unknown schedule '{s}': expected cosine, linear or constant"),
    };
}
