using SharpLM.Formats;
using SharpLM.Models;
using SharpLM.Tensors;

namespace SharpLM.Training;

/// <summary>One named parameter tensor: a slice [Offset, Offset+Length) of the flat parameter array.</summary>
/// <param name="Name">its name (Hugging Face naming).</param>
/// <param name="Shape">row-major shape, e.g. (OC,C) for a linear weight.</param>
/// <param name="Offset">where it starts in the flat array.</param>
/// <param name="Length">its element count.</param>
/// <param name="Role">its role in the architecture table ("attn_q", "token_embd").</param>
internal sealed record ParamInfo(string Name, int[] Shape, int Offset, int Length, string Role)
{
    /// <summary>Weight decay applies to matrices only: never to norms, biases or other 1-D parameters.</summary>
    public bool Decay => Shape.Length >= 2;

    public override string ToString() => $"{Name} ({string.Join(",", Shape)})";
}

/// <summary>
/// All trainable parameters of a model in one flat pinned array (llm.c style), with a gradient array of the same layout.
/// The tensors are the architecture table's (<see cref="TensorTable"/>) under Hugging Face names, so the parameters and
/// the gradients are each an <see cref="IWeightSource"/> that the model definitions bind exactly as they bind a file.
/// </summary>
internal sealed class ParameterSet
{
    private readonly List<ParamInfo> _infos = [];
    private readonly Dictionary<string, ParamInfo> _byName = new(StringComparer.Ordinal);

    /// <summary>The parameters of <paramref name="config"/>: every tensor the configuration requires (under
    /// <paramref name="hfPrefix"/> for "{P}"), plus the optional ones <paramref name="include"/> accepts (BERT's MLM head),
    /// then <paramref name="extra"/> tensors outside the architecture table (an encoder's classification head).</summary>
    public ParameterSet(ModelConfig config, string hfPrefix = "", Func<TensorSpec, bool>? include = null,
                        IEnumerable<(string Name, int[] Shape, string Role)>? extra = null)
        : this(TensorTable.Expand(config, TensorNaming.HuggingFace)
                   .Where(s => !s.Decl.NotAParameter && s.Need != TensorNeed.Unused && (s.Need != TensorNeed.Optional || (include?.Invoke(s) ?? false)))
                   .Select(s => (s.Name.Replace("{P}", hfPrefix, StringComparison.Ordinal), Array.ConvertAll(s.Shape, d => (int)d), s.Decl.Role))
                   .Concat(extra ?? []))
    {
    }

    /// <summary>Named tensors of the given shapes (the optimizer tests build small sets by hand).</summary>
    public ParameterSet(IEnumerable<(string Name, int[] Shape)> tensors) : this(tensors.Select(t => (t.Name, t.Shape, t.Name)))
    {
    }

    private ParameterSet(IEnumerable<(string Name, int[] Shape, string Role)> tensors)
    {
        int count = 0;
        foreach (var (name, shape, role) in tensors)
        {
            int len = 1;
            foreach (var d in shape) len = checked(len * d);
            var info = new ParamInfo(name, shape, count, len, role);
            count = checked(count + len);
            _infos.Add(info);
            _byName.Add(name, info);
        }
        Count = count;
        Values = GC.AllocateArray<float>(Math.Max(count, 1), pinned: true);
        Grads = GC.AllocateArray<float>(Math.Max(count, 1), pinned: true);
        Trainable = _infos;
        ValueSource = new Source(this, Values, "parameters");
        GradSource = new Source(this, Grads, "gradients");
    }

    public IReadOnlyList<ParamInfo> Infos => _infos;
    public int Count { get; }

    public float[] Values { get; }
    public float[] Grads { get; }

    /// <summary>The parameters as a weight source (Hugging Face names).</summary>
    public IWeightSource ValueSource { get; }

    /// <summary>The gradients as a weight source, laid out as the parameters.</summary>
    public IWeightSource GradSource { get; }

    public ParamInfo this[string name] => _byName.TryGetValue(name, out var i) ? i
        : throw new KeyNotFoundException($"no parameter named '{name}'. Known: {string.Join(", ", _infos.Select(x => x.Name))}");

    public bool TryGet(string name, out ParamInfo info) => _byName.TryGetValue(name, out info!);

    public Span<float> P(ParamInfo p) => Values.AsSpan(p.Offset, p.Length);
    public Span<float> G(ParamInfo p) => Grads.AsSpan(p.Offset, p.Length);

    /// <summary>Clears the gradients of the trainable tensors (those of frozen ones are never read).</summary>
    public void ZeroGrad()
    {
        if (_frozen is null) Grads.AsSpan().Clear();
        else foreach (var info in Trainable) G(info).Clear();
    }

    private HashSet<ParamInfo>? _frozen;

    /// <summary>The tensors the optimizers update: all of them, less the frozen ones (<see cref="Freeze"/>).</summary>
    public IReadOnlyList<ParamInfo> Trainable { get; private set; } = [];

    /// <summary>Freezes the tensors <paramref name="frozen"/> picks (null: none): the optimizers leave their values as they
    /// are (fine-tuning a head over a frozen pretrained body).</summary>
    public void Freeze(Func<ParamInfo, bool>? frozen)
    {
        _frozen = frozen is null ? null : [.. _infos.Where(frozen)];
        Trainable = _frozen is null ? _infos : [.. _infos.Where(i => !_frozen.Contains(i))];
    }

    public bool IsFrozen(ParamInfo info) => _frozen?.Contains(info) ?? false;

    private sealed unsafe class Source : IWeightSource
    {
        public Source(ParameterSet set, float[] data, string what)
        {
            Path = $"the model's {what}";
            var d = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
            fixed (float* p = data)
                foreach (var i in set._infos)
                    d[i.Name] = new TensorInfo(i.Name, DType.F32, Array.ConvertAll(i.Shape, x => (long)x), (nint)(p + i.Offset), 4L * i.Length);
            Tensors = d;
        }

        public string Path { get; }
        public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }
        public bool HfConv1DLayout => false;
        public void Dispose() { }
    }
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

    public void FillNormal(Span<float> s, double std)
    {
        for (int i = 0; i < s.Length; i++) s[i] = (float)(NextGaussian() * std);
    }

    /// <summary>p = a uniform random permutation of 0..p.Length−1 (Fisher–Yates, from the last place down).</summary>
    public void Permutation(Span<int> p)
    {
        for (int i = 0; i < p.Length; i++) p[i] = i;
        for (int i = p.Length - 1; i > 0; i--)
        {
            int j = Next(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
    }
}
