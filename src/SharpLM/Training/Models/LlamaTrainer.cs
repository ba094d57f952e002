using System.Numerics;
using SharpLM.Training.Ops;

namespace SharpLM.Training.Models;

/// <summary>Shape of a trainable LLaMA: V vocab, C dim, L layers, NH heads, KVH kv heads, F ffn, T max context.</summary>
internal sealed record LlamaTrainConfig(int Vocab, int Dim, int Layers, int Heads, int KvHeads, int Ffn, int Context,
                                        double RopeTheta = 10000, double NormEps = 1e-5, bool TiedEmbeddings = true)
{
    public int HeadSize => Dim / Heads;

    public void Validate()
    {
        if (Vocab < 2 || Dim < 2 || Layers < 1 || Heads < 1 || KvHeads < 1 || Ffn < 1 || Context < 1)
            throw new ArgumentException($"model sizes must be positive: {this}");
        if (Dim % Heads != 0) throw new ArgumentException($"dim {Dim} must be a multiple of heads {Heads}");
        if (HeadSize % 2 != 0) throw new ArgumentException($"head size dim/heads = {HeadSize} must be even for RoPE");
        if (Heads % KvHeads != 0) throw new ArgumentException($"heads {Heads} must be a multiple of kv heads {KvHeads}");
    }
}

/// <summary>
/// A LLaMA decoder with hand-written backward passes. Parameters use the Hugging Face LlamaForCausalLM names:
/// model.embed_tokens.weight (V,C); model.layers.{i}.input_layernorm.weight (C), self_attn.{q,k,v,o}_proj.weight
/// (NH*HS,C) (KVH*HS,C) (KVH*HS,C) (C,NH*HS), post_attention_layernorm.weight (C), mlp.{gate,up}_proj.weight (F,C),
/// mlp.down_proj.weight (C,F); model.norm.weight (C); lm_head.weight (V,C) unless tied to the embedding.
/// Block: x2 = x + o(attn(rope(q(rms(x))), rope(k(..)), v(..))); x3 = x2 + down(silu(gate(rms(x2))) * up(rms(x2))).
/// </summary>
internal sealed class LlamaTrainer<T> : ITrainModel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private sealed class Layer
    {
        public required ParamInfo Norm1, Wq, Wk, Wv, Wo, Norm2, Wg, Wu, Wd;
        // activations (N = B*T rows)
        public T[] X = [], Ln1 = [], Rstd1 = [], Q = [], K = [], V = [], Att = [], Y = [], X2 = [], Ln2 = [], Rstd2 = [], Gate = [], Up = [], H = [];
    }

    private readonly Layer[] _layers;
    private readonly ParamInfo _wte, _norm, _head;
    private int _b, _t;
    private T[] _xOut = [], _lnf = [], _rstdf = [], _logits = [], _probs = [], _losses = [];
    private T[] _dres = [], _dln = [], _dq = [], _dk = [], _dv = [], _dy = [], _dgate = [], _dup = [], _dh = [], _dlogits = [];
    private T[] _cos = [], _sin = [];
    private int[] _inputs = [], _targets = [];
    private int _count;

    public LlamaTrainConfig Config { get; }
    public ParameterSet<T> Parameters { get; } = new();
    public int VocabSize => Config.Vocab;
    public int Context => Config.Context;
    public ReadOnlySpan<T> Logits => _logits.AsSpan(0, _b * _t * Config.Vocab);

    public LlamaTrainer(LlamaTrainConfig config)
    {
        config.Validate();
        Config = config;
        int c = config.Dim, hs = config.HeadSize;
        var p = Parameters;
        _wte = p.Add("model.embed_tokens.weight", config.Vocab, c);
        _layers = new Layer[config.Layers];
        for (int i = 0; i < config.Layers; i++)
        {
            string pre = $"model.layers.{i}.";
            _layers[i] = new Layer
            {
                Norm1 = p.Add(pre + "input_layernorm.weight", c),
                Wq = p.Add(pre + "self_attn.q_proj.weight", config.Heads * hs, c),
                Wk = p.Add(pre + "self_attn.k_proj.weight", config.KvHeads * hs, c),
                Wv = p.Add(pre + "self_attn.v_proj.weight", config.KvHeads * hs, c),
                Wo = p.Add(pre + "self_attn.o_proj.weight", c, config.Heads * hs),
                Norm2 = p.Add(pre + "post_attention_layernorm.weight", c),
                Wg = p.Add(pre + "mlp.gate_proj.weight", config.Ffn, c),
                Wu = p.Add(pre + "mlp.up_proj.weight", config.Ffn, c),
                Wd = p.Add(pre + "mlp.down_proj.weight", c, config.Ffn),
            };
        }
        _norm = p.Add("model.norm.weight", c);
        _head = config.TiedEmbeddings ? _wte : p.Add("lm_head.weight", config.Vocab, c);
    }

    /// <summary>Initial weights: N(0, 0.02) for matrices (0.02/sqrt(2L) for o_proj and down_proj), 1 for norms.</summary>
    public void Initialize(ulong seed)
    {
        var rng = new TrainRandom(seed);
        double resid = 0.02 / Math.Sqrt(2.0 * Config.Layers);
        foreach (var info in Parameters.Infos)
        {
            var s = Parameters.P(info);
            if (info.Shape.Length == 1) s.Fill(T.One);
            else rng.FillNormal(s, info.Name.EndsWith("o_proj.weight", StringComparison.Ordinal) || info.Name.EndsWith("down_proj.weight", StringComparison.Ordinal) ? resid : 0.02);
        }
    }

    private void Ensure(int b, int t)
    {
        if (t > Config.Context) throw new ArgumentException($"sequence length {t} exceeds the model context {Config.Context}");
        if (b == _b && t == _t) return;
        _b = b; _t = t;
        int n = b * t, c = Config.Dim, hs = Config.HeadSize, qd = Config.Heads * hs, kd = Config.KvHeads * hs, f = Config.Ffn, v = Config.Vocab;
        foreach (var l in _layers)
        {
            l.X = new T[n * c]; l.Ln1 = new T[n * c]; l.Rstd1 = new T[n];
            l.Q = new T[n * qd]; l.K = new T[n * kd]; l.V = new T[n * kd]; l.Att = new T[b * Config.Heads * t * t]; l.Y = new T[n * qd];
            l.X2 = new T[n * c]; l.Ln2 = new T[n * c]; l.Rstd2 = new T[n]; l.Gate = new T[n * f]; l.Up = new T[n * f]; l.H = new T[n * f];
        }
        _xOut = new T[n * c]; _lnf = new T[n * c]; _rstdf = new T[n];
        _logits = new T[n * v]; _probs = new T[n * v]; _losses = new T[n]; _dlogits = new T[n * v];
        _dres = new T[n * c]; _dln = new T[n * c]; _dq = new T[n * qd]; _dk = new T[n * kd]; _dv = new T[n * kd]; _dy = new T[n * qd];
        _dgate = new T[n * f]; _dup = new T[n * f]; _dh = new T[n * f];
        (_cos, _sin) = Rope.Tables<T>(t, hs, Config.RopeTheta);
        _inputs = new int[n]; _targets = new int[n];
    }

    public double Forward(ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets, int b, int t)
    {
        Ensure(b, t);
        int n = b * t, c = Config.Dim, hs = Config.HeadSize, nh = Config.Heads, kvh = Config.KvHeads, f = Config.Ffn, v = Config.Vocab;
        if (inputs.Length != n) throw new ArgumentException($"inputs hold {inputs.Length} ids, expected B*T = {n}");
        inputs.CopyTo(_inputs);
        T eps = T.CreateTruncating(Config.NormEps);
        var p = Parameters;
        Embedding.Forward(inputs, p.P(_wte), _layers[0].X, c);
        for (int li = 0; li < _layers.Length; li++)
        {
            var l = _layers[li];
            RmsNorm.Forward<T>(l.X, p.P(l.Norm1), l.Ln1, l.Rstd1, n, c, eps);
            Linear.Forward<T>(l.Ln1, p.P(l.Wq), default, l.Q, n, c, nh * hs);
            Linear.Forward<T>(l.Ln1, p.P(l.Wk), default, l.K, n, c, kvh * hs);
            Linear.Forward<T>(l.Ln1, p.P(l.Wv), default, l.V, n, c, kvh * hs);
            Rope.Forward<T>(l.Q, _cos, _sin, b, t, nh, hs);
            Rope.Forward<T>(l.K, _cos, _sin, b, t, kvh, hs);
            Attention.Forward<T>(l.Q, l.K, l.V, l.Att, l.Y, b, t, nh, kvh, hs, causal: true);
            Linear.Forward<T>(l.Y, p.P(l.Wo), default, l.X2, n, nh * hs, c);
            TrainMath.Add<T>(l.X, l.X2);
            RmsNorm.Forward<T>(l.X2, p.P(l.Norm2), l.Ln2, l.Rstd2, n, c, eps);
            Linear.Forward<T>(l.Ln2, p.P(l.Wg), default, l.Gate, n, c, f);
            Linear.Forward<T>(l.Ln2, p.P(l.Wu), default, l.Up, n, c, f);
            SwiGlu.Forward<T>(l.Gate, l.Up, l.H);
            var next = li + 1 < _layers.Length ? _layers[li + 1].X : _xOut;
            Linear.Forward<T>(l.H, p.P(l.Wd), default, next, n, f, c);
            TrainMath.Add<T>(l.X2, next);
        }
        RmsNorm.Forward<T>(_xOut, p.P(_norm), _lnf, _rstdf, n, c, eps);
        Linear.Forward<T>(_lnf, p.P(_head), default, _logits, n, c, v);
        if (targets.IsEmpty) { _count = 0; return double.NaN; }
        if (targets.Length != n) throw new ArgumentException($"targets hold {targets.Length} ids, expected B*T = {n}");
        targets.CopyTo(_targets);
        (double mean, _count) = CrossEntropy.Forward<T>(_logits, targets, _probs, _losses, v);
        return mean;
    }

    public void Backward(double lossScale = 1.0)
    {
        if (_count == 0) throw new InvalidOperationException("Backward needs a Forward with targets first");
        int b = _b, t = _t, n = b * t, c = Config.Dim, hs = Config.HeadSize, nh = Config.Heads, kvh = Config.KvHeads, f = Config.Ffn, v = Config.Vocab;
        var p = Parameters;
        _dlogits.AsSpan().Clear();
        CrossEntropy.Backward<T>(_probs, _targets, _dlogits, v, T.CreateTruncating(lossScale / _count));
        _dln.AsSpan().Clear();
        Linear.Backward<T>(_dlogits, _lnf, p.P(_head), _dln, p.G(_head), default, n, c, v);
        _dres.AsSpan().Clear();
        RmsNorm.Backward<T>(_dln, _xOut, p.P(_norm), _rstdf, _dres, p.G(_norm), n, c);
        for (int li = _layers.Length - 1; li >= 0; li--)
        {
            var l = _layers[li];
            // _dres: gradient of this layer's output x3 = x2 + down(h)
            _dh.AsSpan().Clear();
            Linear.Backward<T>(_dres, l.H, p.P(l.Wd), _dh, p.G(l.Wd), default, n, f, c);
            _dgate.AsSpan().Clear(); _dup.AsSpan().Clear();
            SwiGlu.Backward<T>(_dh, l.Gate, l.Up, _dgate, _dup);
            _dln.AsSpan().Clear();
            Linear.Backward<T>(_dgate, l.Ln2, p.P(l.Wg), _dln, p.G(l.Wg), default, n, c, f);
            Linear.Backward<T>(_dup, l.Ln2, p.P(l.Wu), _dln, p.G(l.Wu), default, n, c, f);
            RmsNorm.Backward<T>(_dln, l.X2, p.P(l.Norm2), l.Rstd2, _dres, p.G(l.Norm2), n, c); // _dres = d x2
            _dy.AsSpan().Clear();
            Linear.Backward<T>(_dres, l.Y, p.P(l.Wo), _dy, p.G(l.Wo), default, n, nh * hs, c);
            _dq.AsSpan().Clear(); _dk.AsSpan().Clear(); _dv.AsSpan().Clear();
            Attention.Backward<T>(_dy, l.Q, l.K, l.V, l.Att, _dq, _dk, _dv, b, t, nh, kvh, hs, causal: true);
            Rope.Backward<T>(_dq, _cos, _sin, b, t, nh, hs);
            Rope.Backward<T>(_dk, _cos, _sin, b, t, kvh, hs);
            _dln.AsSpan().Clear();
            Linear.Backward<T>(_dq, l.Ln1, p.P(l.Wq), _dln, p.G(l.Wq), default, n, c, nh * hs);
            Linear.Backward<T>(_dk, l.Ln1, p.P(l.Wk), _dln, p.G(l.Wk), default, n, c, kvh * hs);
            Linear.Backward<T>(_dv, l.Ln1, p.P(l.Wv), _dln, p.G(l.Wv), default, n, c, kvh * hs);
            RmsNorm.Backward<T>(_dln, l.X, p.P(l.Norm1), l.Rstd1, _dres, p.G(l.Norm1), n, c); // _dres = d x
        }
        Embedding.Backward<T>(_dres, _inputs.AsSpan(0, n), p.G(_wte), c);
    }
}
