
namespace SharpLM.Training.Optim;

/// <summary>An optimizer over a flat <see cref="ParameterSet"/>; its state is a few named arrays (for checkpoints).</summary>
internal interface IOptimizer
{
    string Name { get; }
    /// <summary>Steps taken so far.</summary>
    int Step { get; }
    void Update(ParameterSet p, double lr);
    /// <summary>State arrays by name (same layout as the parameters), for saving and restoring.</summary>
    IReadOnlyDictionary<string, float[]> State { get; }
    void Restore(int step, IReadOnlyDictionary<string, float[]> state);
}

/// <summary>
/// AdamW exactly as torch.optim.AdamW computes it: p *= 1 - lr wd (decoupled; wd = 0 for norms, biases and other
/// 1-D parameters); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= (lr / (1-b1^t)) m / (sqrt(v)/sqrt(1-b2^t) + eps).
/// Memory: two floats per parameter (m, v) besides the weights and gradients. Frozen tensors
/// (<see cref="ParameterSet.Freeze"/>) are left as they are, as are those of <see cref="Sgd"/>.
/// </summary>
internal sealed class AdamW(int count, double weightDecay = 0.0, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8) : IOptimizer
{
    private float[] _m = new float[count], _v = new float[count];
    public string Name => "adamw";
    public int Step { get; private set; }
    public double WeightDecay { get; } = weightDecay;

    public IReadOnlyDictionary<string, float[]> State => new Dictionary<string, float[]> { ["m"] = _m, ["v"] = _v };

    public void Restore(int step, IReadOnlyDictionary<string, float[]> state)
    {
        if (state["m"].Length != _m.Length || state["v"].Length != _v.Length)
            throw new InvalidDataException($"optimizer state holds {state["m"].Length} values, the model has {_m.Length} parameters");
        Step = step; _m = state["m"]; _v = state["v"];
    }

    public void Update(ParameterSet p, double lr)
    {
        Step++;
        double bc1 = 1 - Math.Pow(beta1, Step), bc2 = 1 - Math.Pow(beta2, Step);
        float stepSize = (float)(lr / bc1), sqrtBc2 = (float)Math.Sqrt(bc2);
        float b1 = (float)beta1, b2 = (float)beta2, omb1 = (float)(1 - beta1), omb2 = (float)(1 - beta2), e = (float)eps;
        var w = p.Values; var g = p.Grads;
        foreach (var info in p.Trainable)
        {
            float decay = info.Decay ? (float)(1 - lr * WeightDecay) : 1f;
            int end = info.Offset + info.Length;
            for (int i = info.Offset; i < end; i++)
            {
                float gi = g[i];
                float wi = w[i] * decay;
                float m = _m[i] = b1 * _m[i] + omb1 * gi;
                float v = _v[i] = b2 * _v[i] + omb2 * gi * gi;
                w[i] = wi - stepSize * (m / (MathF.Sqrt(v) / sqrtBc2 + e));
            }
        }
    }
}

/// <summary>
/// SGD with momentum as torch.optim.SGD (dampening 0, no Nesterov): g += wd p (matrices only);
/// buf = momentum buf + g (buf = g on the first step); p -= lr buf.
/// </summary>
internal sealed class Sgd(int count, double momentum = 0.9, double weightDecay = 0.0) : IOptimizer
{
    private float[] _buf = new float[count];
    public string Name => "sgd";
    public int Step { get; private set; }

    public IReadOnlyDictionary<string, float[]> State => new Dictionary<string, float[]> { ["momentum"] = _buf };

    public void Restore(int step, IReadOnlyDictionary<string, float[]> state)
    {
        if (state["momentum"].Length != _buf.Length)
            throw new InvalidDataException($"optimizer state holds {state["momentum"].Length} values, the model has {_buf.Length} parameters");
        Step = step; _buf = state["momentum"];
    }

    public void Update(ParameterSet p, double lr)
    {
        bool first = Step == 0;
        Step++;
        float mu = (float)momentum, l = (float)lr;
        var w = p.Values; var g = p.Grads;
        foreach (var info in p.Trainable)
        {
            float wd = info.Decay ? (float)weightDecay : 0f;
            int end = info.Offset + info.Length;
            for (int i = info.Offset; i < end; i++)
            {
                float gi = g[i] + wd * w[i];
                float b = _buf[i] = first ? gi : mu * _buf[i] + gi;
                w[i] -= l * b;
            }
        }
    }
}
