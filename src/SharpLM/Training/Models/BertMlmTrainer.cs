using System.Numerics;
using SharpLM.Training.Ops;

namespace SharpLM.Training.Models;

/// <summary>Shape of a trainable BERT encoder for masked-language modelling: V vocab (the last id is [MASK]),
/// C dim, L layers, NH heads, F intermediate size, T max positions.</summary>
internal sealed record BertMlmConfig(int Vocab, int Dim, int Layers, int Heads, int Ffn, int Context, double NormEps = 1e-12)
{
    public int HeadSize => Dim / Heads;
    public int MaskId => Vocab - 1;

    public void Validate()
    {
        if (Vocab < 3 || Dim < 2 || Layers < 1 || Heads < 1 || Ffn < 1 || Context < 1)
            throw new ArgumentException($"model sizes must be positive: {this}");
        if (Dim % Heads != 0) throw new ArgumentException($"dim {Dim} must be a multiple of heads {Heads}");
    }
}

/// <summary>
/// BERT (post-LayerNorm encoder, exact GELU, bidirectional attention) with the masked-LM head, hand-written backward
/// passes, Hugging Face BertForMaskedLM names: bert.embeddings.{word_embeddings (V,C), position_embeddings (T,C),
/// token_type_embeddings (2,C), LayerNorm}; bert.encoder.layer.{i}.attention.self.{query,key,value} (C,C)+bias,
/// attention.output.dense (C,C)+bias, attention.output.LayerNorm, intermediate.dense (F,C)+bias, output.dense (C,F)+bias,
/// output.LayerNorm; cls.predictions.transform.dense (C,C)+bias, cls.predictions.transform.LayerNorm,
/// cls.predictions.bias (V); the decoder is tied to the word embeddings. All token types are 0.
/// Layer: h = LN(x + attn(x)); x' = LN(h + out(gelu(inter(h)))). Head: logits = LN(gelu(dense(x))) wte^T + bias.
/// The loss counts only targets &gt;= 0 (the chosen positions, see <see cref="Data.MlmMasking"/>).
/// </summary>
internal sealed class BertMlmTrainer<T> : ITrainModel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private sealed class Layer
    {
        public required ParamInfo Qw, Qb, Kw, Kb, Vw, Vb, Ow, Ob, Ln1W, Ln1B, Iw, Ib, Dw, Db, Ln2W, Ln2B;
        public T[] X = [], Q = [], K = [], V = [], Att = [], Y = [], A = [], H1 = [], Mean1 = [], Rstd1 = [], Fi = [], G = [], B2 = [], Mean2 = [], Rstd2 = [];
    }

    private readonly Layer[] _layers;
    private readonly ParamInfo _wte, _wpe, _tte, _embLnW, _embLnB, _tW, _tB, _tLnW, _tLnB, _decB;
    private int _b, _t, _count;
    private T[] _e = [], _eMean = [], _eRstd = [], _xOut = [], _td = [], _tg = [], _tn = [], _tMean = [], _tRstd = [], _logits = [], _probs = [], _losses = [];
    private T[] _dx = [], _dtmp = [], _dq = [], _dk = [], _dv = [], _dy = [], _dfi = [], _dg = [], _dlogits = [];
    private int[] _inputs = [], _targets = [];

    public BertMlmConfig Config { get; }
    public ParameterSet<T> Parameters { get; } = new();
    public int VocabSize => Config.Vocab;
    public int Context => Config.Context;
    public ReadOnlySpan<T> Logits => _logits.AsSpan(0, _b * _t * Config.Vocab);

    public BertMlmTrainer(BertMlmConfig config)
    {
        config.Validate();
        Config = config;
        int c = config.Dim, f = config.Ffn;
        var p = Parameters;
        _wte = p.Add("bert.embeddings.word_embeddings.weight", config.Vocab, c);
        _wpe = p.Add("bert.embeddings.position_embeddings.weight", config.Context, c);
        _tte = p.Add("bert.embeddings.token_type_embeddings.weight", 2, c);
        _embLnW = p.Add("bert.embeddings.LayerNorm.weight", c);
        _embLnB = p.Add("bert.embeddings.LayerNorm.bias", c);
        _layers = new Layer[config.Layers];
        for (int i = 0; i < config.Layers; i++)
        {
            string pre = $"bert.encoder.layer.{i}.";
            _layers[i] = new Layer
            {
                Qw = p.Add(pre + "attention.self.query.weight", c, c), Qb = p.Add(pre + "attention.self.query.bias", c),
                Kw = p.Add(pre + "attention.self.key.weight", c, c), Kb = p.Add(pre + "attention.self.key.bias", c),
                Vw = p.Add(pre + "attention.self.value.weight", c, c), Vb = p.Add(pre + "attention.self.value.bias", c),
                Ow = p.Add(pre + "attention.output.dense.weight", c, c), Ob = p.Add(pre + "attention.output.dense.bias", c),
                Ln1W = p.Add(pre + "attention.output.LayerNorm.weight", c), Ln1B = p.Add(pre + "attention.output.LayerNorm.bias", c),
                Iw = p.Add(pre + "intermediate.dense.weight", f, c), Ib = p.Add(pre + "intermediate.dense.bias", f),
                Dw = p.Add(pre + "output.dense.weight", c, f), Db = p.Add(pre + "output.dense.bias", c),
                Ln2W = p.Add(pre + "output.LayerNorm.weight", c), Ln2B = p.Add(pre + "output.LayerNorm.bias", c),
            };
        }
        _tW = p.Add("cls.predictions.transform.dense.weight", c, c);
        _tB = p.Add("cls.predictions.transform.dense.bias", c);
        _tLnW = p.Add("cls.predictions.transform.LayerNorm.weight", c);
        _tLnB = p.Add("cls.predictions.transform.LayerNorm.bias", c);
        _decB = p.Add("cls.predictions.bias", config.Vocab);
    }

    /// <summary>BERT init: N(0, 0.02) matrices and embeddings, LayerNorm 1/0, biases 0.</summary>
    public void Initialize(ulong seed)
    {
        var rng = new TrainRandom(seed);
        foreach (var info in Parameters.Infos)
        {
            var s = Parameters.P(info);
            if (info.Shape.Length == 2) rng.FillNormal(s, 0.02);
            else s.Fill(info.Name.EndsWith("LayerNorm.weight", StringComparison.Ordinal) ? T.One : T.Zero);
        }
    }

    private void Ensure(int b, int t)
    {
        if (t > Config.Context) throw new ArgumentException($"sequence length {t} exceeds the model's {Config.Context} positions");
        if (b == _b && t == _t) return;
        _b = b; _t = t;
        int n = b * t, c = Config.Dim, f = Config.Ffn, v = Config.Vocab;
        foreach (var l in _layers)
        {
            l.X = new T[n * c]; l.Q = new T[n * c]; l.K = new T[n * c]; l.V = new T[n * c]; l.Att = new T[b * Config.Heads * t * t];
            l.Y = new T[n * c]; l.A = new T[n * c]; l.H1 = new T[n * c]; l.Mean1 = new T[n]; l.Rstd1 = new T[n];
            l.Fi = new T[n * f]; l.G = new T[n * f]; l.B2 = new T[n * c]; l.Mean2 = new T[n]; l.Rstd2 = new T[n];
        }
        _e = new T[n * c]; _eMean = new T[n]; _eRstd = new T[n]; _xOut = new T[n * c];
        _td = new T[n * c]; _tg = new T[n * c]; _tn = new T[n * c]; _tMean = new T[n]; _tRstd = new T[n];
        _logits = new T[n * v]; _probs = new T[n * v]; _losses = new T[n]; _dlogits = new T[n * v];
        _dx = new T[n * c]; _dtmp = new T[n * c]; _dq = new T[n * c]; _dk = new T[n * c]; _dv = new T[n * c]; _dy = new T[n * c];
        _dfi = new T[n * f]; _dg = new T[n * f];
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
        Embedding.Forward(inputs, p.P(_wte), _e, c);
        LearnedPositions.Forward<T>(_e, p.P(_wpe), b, t, c);
        var type0 = p.P(_tte)[..c];
        for (int r = 0; r < n; r++) TrainMath.Add<T>(type0, _e.AsSpan(r * c, c));
        LayerNorm.Forward<T>(_e, p.P(_embLnW), p.P(_embLnB), _layers[0].X, _eMean, _eRstd, n, c, eps);
        for (int li = 0; li < _layers.Length; li++)
        {
            var l = _layers[li];
            Linear.Forward<T>(l.X, p.P(l.Qw), p.P(l.Qb), l.Q, n, c, c);
            Linear.Forward<T>(l.X, p.P(l.Kw), p.P(l.Kb), l.K, n, c, c);
            Linear.Forward<T>(l.X, p.P(l.Vw), p.P(l.Vb), l.V, n, c, c);
            Attention.Forward<T>(l.Q, l.K, l.V, l.Att, l.Y, b, t, nh, nh, hs, causal: false);
            Linear.Forward<T>(l.Y, p.P(l.Ow), p.P(l.Ob), l.A, n, c, c);
            TrainMath.Add<T>(l.X, l.A);
            LayerNorm.Forward<T>(l.A, p.P(l.Ln1W), p.P(l.Ln1B), l.H1, l.Mean1, l.Rstd1, n, c, eps);
            Linear.Forward<T>(l.H1, p.P(l.Iw), p.P(l.Ib), l.Fi, n, c, f);
            GeluErf.Forward<T>(l.Fi, l.G);
            Linear.Forward<T>(l.G, p.P(l.Dw), p.P(l.Db), l.B2, n, f, c);
            TrainMath.Add<T>(l.H1, l.B2);
            var next = li + 1 < _layers.Length ? _layers[li + 1].X : _xOut;
            LayerNorm.Forward<T>(l.B2, p.P(l.Ln2W), p.P(l.Ln2B), next, l.Mean2, l.Rstd2, n, c, eps);
        }
        Linear.Forward<T>(_xOut, p.P(_tW), p.P(_tB), _td, n, c, c);
        GeluErf.Forward<T>(_td, _tg);
        LayerNorm.Forward<T>(_tg, p.P(_tLnW), p.P(_tLnB), _tn, _tMean, _tRstd, n, c, eps);
        Linear.Forward<T>(_tn, p.P(_wte), p.P(_decB), _logits, n, c, v);
        if (targets.IsEmpty) { _count = 0; return double.NaN; }
        if (targets.Length != n) throw new ArgumentException($"targets hold {targets.Length} ids, expected B*T = {n}");
        targets.CopyTo(_targets);
        (double mean, _count) = CrossEntropy.Forward<T>(_logits, targets, _probs, _losses, v);
        return _count == 0 ? 0 : mean;
    }

    public void Backward(double lossScale = 1.0)
    {
        if (_count == 0) return; // no chosen position in this batch: no gradient
        int b = _b, t = _t, n = b * t, c = Config.Dim, hs = Config.HeadSize, nh = Config.Heads, f = Config.Ffn, v = Config.Vocab;
        var p = Parameters;
        _dlogits.AsSpan().Clear();
        CrossEntropy.Backward<T>(_probs, _targets, _dlogits, v, T.CreateTruncating(lossScale / _count));
        _dtmp.AsSpan().Clear();
        Linear.Backward<T>(_dlogits, _tn, p.P(_wte), _dtmp, p.G(_wte), p.G(_decB), n, c, v);
        _dy.AsSpan().Clear();
        LayerNorm.Backward<T>(_dtmp, _tg, p.P(_tLnW), _tMean, _tRstd, _dy, p.G(_tLnW), p.G(_tLnB), n, c);
        _dq.AsSpan().Clear();
        GeluErf.Backward<T>(_dy, _td, _dq);
        _dx.AsSpan().Clear();
        Linear.Backward<T>(_dq, _xOut, p.P(_tW), _dx, p.G(_tW), p.G(_tB), n, c, c);
        for (int li = _layers.Length - 1; li >= 0; li--)
        {
            var l = _layers[li];
            // _dx: gradient of this layer's output LN(b2)
            _dtmp.AsSpan().Clear();
            LayerNorm.Backward<T>(_dx, l.B2, p.P(l.Ln2W), l.Mean2, l.Rstd2, _dtmp, p.G(l.Ln2W), p.G(l.Ln2B), n, c); // d b2
            _dg.AsSpan().Clear();
            Linear.Backward<T>(_dtmp, l.G, p.P(l.Dw), _dg, p.G(l.Dw), p.G(l.Db), n, f, c);
            _dfi.AsSpan().Clear();
            GeluErf.Backward<T>(_dg, l.Fi, _dfi);
            Linear.Backward<T>(_dfi, l.H1, p.P(l.Iw), _dtmp, p.G(l.Iw), p.G(l.Ib), n, c, f); // _dtmp = d h1 (residual + mlp)
            _dx.AsSpan().Clear();
            LayerNorm.Backward<T>(_dtmp, l.A, p.P(l.Ln1W), l.Mean1, l.Rstd1, _dx, p.G(l.Ln1W), p.G(l.Ln1B), n, c); // _dx = d a
            _dy.AsSpan().Clear();
            Linear.Backward<T>(_dx, l.Y, p.P(l.Ow), _dy, p.G(l.Ow), p.G(l.Ob), n, c, c);
            _dq.AsSpan().Clear(); _dk.AsSpan().Clear(); _dv.AsSpan().Clear();
            Attention.Backward<T>(_dy, l.Q, l.K, l.V, l.Att, _dq, _dk, _dv, b, t, nh, nh, hs, causal: false);
            // _dx (= d a) already holds the residual path to x; add the q/k/v paths
            Linear.Backward<T>(_dq, l.X, p.P(l.Qw), _dx, p.G(l.Qw), p.G(l.Qb), n, c, c);
            Linear.Backward<T>(_dk, l.X, p.P(l.Kw), _dx, p.G(l.Kw), p.G(l.Kb), n, c, c);
            Linear.Backward<T>(_dv, l.X, p.P(l.Vw), _dx, p.G(l.Vw), p.G(l.Vb), n, c, c);
        }
        _dtmp.AsSpan().Clear();
        LayerNorm.Backward<T>(_dx, _e, p.P(_embLnW), _eMean, _eRstd, _dtmp, p.G(_embLnW), p.G(_embLnB), n, c);
        var dType0 = p.G(_tte)[..c];
        for (int r = 0; r < n; r++) TrainMath.Add<T>(_dtmp.AsSpan(r * c, c), dType0);
        LearnedPositions.Backward<T>(_dtmp, p.G(_wpe), b, t, c);
        Embedding.Backward<T>(_dtmp, _inputs.AsSpan(0, n), p.G(_wte), c);
    }
}
