using System.Numerics;

namespace SharpLM.Training.Models;

/// <summary>One named parameter tensor: a slice [Offset, Offset+Length) of the flat parameter array.</summary>
/// <param name="Shape">row-major shape, e.g. (OC,C) for a linear weight.</param>
internal sealed record ParamInfo(string Name, int[] Shape, int Offset, int Length)
{
    /// <summary>Weight decay applies to matrices only: never to norms, biases or other 1-D parameters.</summary>
    public bool Decay => Shape.Length >= 2;

    public override string ToString() => $"{Name} ({string.Join(",", Shape)})";
}

/// <summary>
/// All parameters of a model in one flat array (llm.c style), with a gradient array of the same layout.
/// Declare tensors with <see cref="Add"/> before the first access to <see cref="Values"/>.
/// </summary>
internal sealed class ParameterSet<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly List<ParamInfo> _infos = [];
    private readonly Dictionary<string, ParamInfo> _byName = new(StringComparer.Ordinal);
    private T[]? _values, _grads;
    private int _count;

    public IReadOnlyList<ParamInfo> Infos => _infos;
    public int Count => _count;

    public ParamInfo Add(string name, params int[] shape)
    {
        if (_values != null) throw new InvalidOperationException("parameters are already allocated");
        int len = 1;
        foreach (var d in shape) len = checked(len * d);
        var info = new ParamInfo(name, shape, _count, len);
        _count = checked(_count + len);
        _infos.Add(info);
        _byName.Add(name, info);
        return info;
    }

    public T[] Values => _values ??= new T[_count];
    public T[] Grads => _grads ??= new T[_count];

    public ParamInfo this[string name] => _byName.TryGetValue(name, out var i) ? i
        : throw new KeyNotFoundException($"no parameter named '{name}'. Known: {string.Join(", ", _infos.Select(x => x.Name))}");

    public bool TryGet(string name, out ParamInfo info) => _byName.TryGetValue(name, out info!);

    public Span<T> P(ParamInfo p) => Values.AsSpan(p.Offset, p.Length);
    public Span<T> G(ParamInfo p) => Grads.AsSpan(p.Offset, p.Length);

    public void ZeroGrad() => Grads.AsSpan().Clear();
}

/// <summary>A model the trainer can run: forward with loss, backward into <see cref="Parameters"/>' gradients.</summary>
internal interface ITrainModel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    ParameterSet<T> Parameters { get; }
    int VocabSize { get; }
    int Context { get; }

    /// <summary>inputs, targets (B*T) -> mean loss over targets &gt;= 0 (targets may be empty: no loss, logits only).</summary>
    double Forward(ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets, int b, int t);

    /// <summary>Adds d(lossScale * loss)/dparam to the gradients, for the last <see cref="Forward"/>.</summary>
    void Backward(double lossScale = 1.0);

    /// <summary>(B,T,V) logits of the last <see cref="Forward"/>.</summary>
    ReadOnlySpan<T> Logits { get; }
}

/// <summary>Deterministic random numbers (SplitMix64), the same on every platform and .NET version.</summary>
internal sealed class TrainRandom(ulong seed)
{
    private ulong _state = seed;

    public ulong State { get => _state; set => _state = value; }

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n).</summary>
    public int Next(int n) => (int)(NextDouble() * n);

    /// <summary>Standard normal (Box-Muller).</summary>
    public double NextGaussian()
    {
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    public void FillNormal<T>(Span<T> s, double std) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < s.Length; i++) s[i] = T.CreateTruncating(NextGaussian() * std);
    }
}
