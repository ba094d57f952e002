using System.Numerics;
using SharpLM.Training.Ops;

namespace SharpLM.Training.Models;

/// <summary>Shape of a trainable GPT-2: V vocab, C dim, L layers, NH heads, F ffn (4C in GPT-2), T max context.</summary>
internal sealed record Gpt2TrainConfig(int Vocab, int Dim, int Layers, int Heads, int Ffn, int Context, double NormEps = 1e-5)
{
    public int HeadSize => Dim / Heads;

    public void Validate()
    {
        if (Vocab < 2 || Dim < 2 || Layers < 1 || Heads < 1 || Ffn < 1 || Context < 1)
            throw new ArgumentException($"model sizes must be positive: {this}");
        if (Dim % Heads != 0) throw new ArgumentException($"dim {Dim} must be a multiple of heads {Heads}");
    }
}

/// <summary>
/// GPT-2 with hand-written backward passes, in nanoGPT's layout (nn.Linear weights (OC,C); Hugging Face's GPT-2
/// Conv1D stores the transpose): transformer.wte.weight (V,C), transformer.wpe.weight (T,C);
/// transformer.h.{i}.ln_1.{weight,bias} (C), attn.c_attn.{weight (3C,C), bias (3C)} (rows q, k, v),
/// attn.c_proj.{weight (C,C), bias}, ln_2, mlp.c_fc.{weight (F,C), bias (F)}, mlp.c_proj.{weight (C,F), bias (C)};
/// transformer.ln_f.{weight,bias}. The LM head is tied to wte.
/// Block: x2 = x + proj(attn(ln_1 x)); x3 = x2 + mlp_proj(gelu_tanh(fc(ln_2 x2))).
/// </summary>
internal sealed class Gpt2Trainer<T> : ITrainModel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private sealed class Layer
    {
        public required ParamInfo Ln1W, Ln1B, AttnW, AttnB, ProjW, ProjB, Ln2W, Ln2B, FcW, FcB, Proj2W, Proj2B;
        public T[] X = [], Ln1 = [], Mean1 = [], Rstd1 = [], Q = [], K = [], V = [], Att = [], Y = [], X2 = [], Ln2 = [], Mean2 = [], Rstd2 = [], Fc = [], Gl = [];
    }

    private readonly Layer[] _layers;
    private readonly ParamInfo _wte, _wpe, _lnfW, _lnfB;
    private int _b, _t, _count;
    private T[] _xOut = [], _lnf = [], _meanf = [], _rstdf = [], _logits = [], _probs = [], _losses = [];
    private T[] _dres = [], _dln = [], _dq = [], _dk = [], _dv = [], _dy = [], _dfc = [], _dgl = [], _dlogits = [];
    private int[] _inputs = [], _targets = [];

    public Gpt2TrainConfig Config { get; }
    public ParameterSet<T> Parameters { get; } = new();
    public int VocabSize => Config.Vocab;
    public int Context => Config.Context;
    public ReadOnlySpan<T> Logits => _logits.AsSpan(0, _b * _t * Config.Vocab);

    public Gpt2Trainer(Gpt2TrainConfig config)
    {
        config.Validate();
        Config = config;
        int c = config.Dim, f = config.Ffn;
        var p = Parameters;
        _wte = p.Add("transformer.wte.weight", config.Vocab, c);
        _wpe = p.Add("transformer.wpe.weight", config.Context, c);
        _layers = new Layer[config.Layers];
        for (int i = 0; i < config.Layers; i++)
        {
            string pre = $"transformer.h.{i}.";
            _layers[i] = new Layer
            {
                Ln1W = p.Add(pre + "ln_1.weight", c), Ln1B = p.Add(pre + "ln_1.bias", c),
                AttnW = p.Add(pre + "attn.c_attn.weight", 3 * c, c), AttnB = p.Add(pre + "attn.c_attn.bias", 3 * c),
                ProjW = p.Add(pre + "attn.c_proj.weight", c, c), ProjB = p.Add(pre + "attn.c_proj.bias", c),
                Ln2W = p.Add(pre + "ln_2.weight", c), Ln2B = p.Add(pre + "ln_2.bias", c),
                FcW = p.Add(pre + "mlp.c_fc.weight", f, c), FcB = p.Add(pre + "mlp.c_fc.bias", f),
                Proj2W = p.Add(pre + "mlp.c_proj.weight", c, f), Proj2B = p.Add(pre + "mlp.c_proj.bias", c),
            };
        }
        _lnfW = p.Add("transformer.ln_f.weight", c);
        _lnfB = p.Add("transformer.ln_f.bias", c);
    }

    /// <summary>GPT-2 init: N(0, 0.02) matrices (0.02/sqrt(2L) for the c_proj ones), LayerNorm 1/0, biases 0.</summary>
    public void Initialize(ulong seed)
    {
        var rng = new TrainRandom(seed);
        double resid = 0.02 / Math.Sqrt(2.0 * Config.Layers);
        foreach (var info in Parameters.Infos)
        {
            var s = Parameters.P(info);
            if (info.Shape.Length == 1) s.Fill(info.Name.EndsWith(".weight", StringComparison.Ordinal) ? T.One : T.Zero);
            else rng.FillNormal(s, info.Name.EndsWith("c_proj.weight", StringComparison.Ordinal) ? resid : 0.02);
        }
    }

    private void Ensure(int b, int t)
    {
        if (t > Config.Context) throw new ArgumentException($"sequence length {t} exceeds the model context {Config.Context}");
        if (b == _b && t == _t) return;
        _b = b; _t = t;
        int n = b * t, c = Config.Dim, f = Config.Ffn, v = Config.Vocab;
        foreach (var l in _layers)
        {
            l.X = new T[n * c]; l.Ln1 = new T[n * c]; l.Mean1 = new T[n]; l.Rstd1 = new T[n];
            l.Q = new T[n * c]; l.K = new T[n * c]; l.V = new T[n * c]; l.Att = new T[b * Config.Heads * t * t]; l.Y = new T[n * c];
            l.X2 = new T[n * c]; l.Ln2 = new T[n * c]; l.Mean2 = new T[n]; l.Rstd2 = new T[n]; l.Fc = new T[n * f]; l.Gl = new T[n * f];
        }
        _xOut = new T[n * c]; _lnf = new T[n * c]; _meanf = new T[n]; _rstdf = new T[n];
        _logits = new T[n * v]; _probs = new T[n * v]; _losses = new T[n]; _dlogits = new T[n * v];
        _dres = new T[n * c]; _dln = new T[n * c]; _dq = new T[n * c]; _dk = new T[n * c]; _dv = new T[n * c]; _dy = new T[n * c];
        _dfc = new T[n * f]; _dgl = new T[n * f];
        _inputs = new int[n]; _targets = new int[n];
    }

    public double Forward(ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets, int b, int t)
    {
        Ensure(b, t);
        int n = b * t, c = Config.Dim, hs = Config.HeadSize, nh = Config.Heads, f = Config.Ffn, v = Config.Vocab;
        if (inputs.Length != n) throw new ArgumentException($"inputs hold {inputs.Length} ids, expected B*T = {n}");
        inputs.CopyTo(_inputs);
        T eps = T.CreateTruncating(Config.NormEps);
        var p = Parameters;
        Embedding.Forward(inputs, p.P(_wte), _layers[0].X, c);
        LearnedPositions.Forward<T>(_layers[0].X, p.P(_wpe), b, t, c);
        for (int li = 0; li < _layers.Length; li++)
        {
            var l = _layers[li];
            LayerNorm.Forward<T>(l.X, p.P(l.Ln1W), p.P(l.Ln1B), l.Ln1, l.Mean1, l.Rstd1, n, c, eps);
            var aw = p.P(l.AttnW); var ab = p.P(l.AttnB);
            Linear.Forward<T>(l.Ln1, aw[..(c * c)], ab[..c], l.Q, n, c, c);
            Linear.Forward<T>(l.Ln1, aw.Slice(c * c, c * c), ab.Slice(c, c), l.K, n, c, c);
            Linear.Forward<T>(l.Ln1, aw.Slice(2 * c * c, c * c), ab.Slice(2 * c, c), l.V, n, c, c);
            Attention.Forward<T>(l.Q, l.K, l.V, l.Att, l.Y, b, t, nh, nh, hs, causal: true);
            Linear.Forward<T>(l.Y, p.P(l.ProjW), p.P(l.ProjB), l.X2, n, c, c);
            TrainMath.Add<T>(l.X, l.X2);
            LayerNorm.Forward<T>(l.X2, p.P(l.Ln2W), p.P(l.Ln2B), l.Ln2, l.Mean2, l.Rstd2, n, c, eps);
            Linear.Forward<T>(l.Ln2, p.P(l.FcW), p.P(l.FcB), l.Fc, n, c, f);
            GeluTanh.Forward<T>(l.Fc, l.Gl);
            var next = li + 1 < _layers.Length ? _layers[li + 1].X : _xOut;
            Linear.Forward<T>(l.Gl, p.P(l.Proj2W), p.P(l.Proj2B), next, n, f, c);
            TrainMath.Add<T>(l.X2, next);
        }
        LayerNorm.Forward<T>(_xOut, p.P(_lnfW), p.P(_lnfB), _lnf, _meanf, _rstdf, n, c, eps);
        Linear.Forward<T>(_lnf, p.P(_wte), default, _logits, n, c, v);
        if (targets.IsEmpty) { _count = 0; return double.NaN; }
        if (targets.Length != n) throw new ArgumentException($"targets hold {targets.Length} ids, expected B*T = {n}");
        targets.CopyTo(_targets);
        (double mean, _count) = CrossEntropy.Forward<T>(_logits, targets, _probs, _losses, v);
        return mean;
    }

    public void Backward(double lossScale = 1.0)
    {
        if (_count == 0) throw new InvalidOperationException("Backward needs a Forward with targets first");
        int b = _b, t = _t, n = b * t, c = Config.Dim, hs = Config.HeadSize, nh = Config.Heads, f = Config.Ffn, v = Config.Vocab;
        var p = Parameters;
        _dlogits.AsSpan().Clear();
        CrossEntropy.Backward<T>(_probs, _targets, _dlogits, v, T.CreateTruncating(lossScale / _count));
        _dln.AsSpan().Clear();
        Linear.Backward<T>(_dlogits, _lnf, p.P(_wte), _dln, p.G(_wte), default, n, c, v);
        _dres.AsSpan().Clear();
        LayerNorm.Backward<T>(_dln, _xOut, p.P(_lnfW), _meanf, _rstdf, _dres, p.G(_lnfW), p.G(_lnfB), n, c);
        for (int li = _layers.Length - 1; li >= 0; li--)
        {
            var l = _layers[li];
            _dgl.AsSpan().Clear();
            Linear.Backward<T>(_dres, l.Gl, p.P(l.Proj2W), _dgl, p.G(l.Proj2W), p.G(l.Proj2B), n, f, c);
            _dfc.AsSpan().Clear();
            GeluTanh.Backward<T>(_dgl, l.Fc, _dfc);
            _dln.AsSpan().Clear();
            Linear.Backward<T>(_dfc, l.Ln2, p.P(l.FcW), _dln, p.G(l.FcW), p.G(l.FcB), n, c, f);
            LayerNorm.Backward<T>(_dln, l.X2, p.P(l.Ln2W), l.Mean2, l.Rstd2, _dres, p.G(l.Ln2W), p.G(l.Ln2B), n, c);
            _dy.AsSpan().Clear();
            Linear.Backward<T>(_dres, l.Y, p.P(l.ProjW), _dy, p.G(l.ProjW), p.G(l.ProjB), n, c, c);
            _dq.AsSpan().Clear(); _dk.AsSpan().Clear(); _dv.AsSpan().Clear();
            Attention.Backward<T>(_dy, l.Q, l.K, l.V, l.Att, _dq, _dk, _dv, b, t, nh, nh, hs, causal: true);
            var aw = p.P(l.AttnW); var gw = p.G(l.AttnW); var gb = p.G(l.AttnB);
            _dln.AsSpan().Clear();
            Linear.Backward<T>(_dq, l.Ln1, aw[..(c * c)], _dln, gw[..(c * c)], gb[..c], n, c, c);
            Linear.Backward<T>(_dk, l.Ln1, aw.Slice(c * c, c * c), _dln, gw.Slice(c * c, c * c), gb.Slice(c, c), n, c, c);
            Linear.Backward<T>(_dv, l.Ln1, aw.Slice(2 * c * c, c * c), _dln, gw.Slice(2 * c * c, c * c), gb.Slice(2 * c, c), n, c, c);
            LayerNorm.Backward<T>(_dln, l.X, p.P(l.Ln1W), l.Mean1, l.Rstd1, _dres, p.G(l.Ln1W), p.G(l.Ln1B), n, c);
        }
        LearnedPositions.Backward<T>(_dres, p.G(_wpe), b, t, c);
        Embedding.Backward<T>(_dres, _inputs.AsSpan(0, n), p.G(_wte), c);
    }
}
