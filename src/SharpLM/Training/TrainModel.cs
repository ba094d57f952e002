using SharpLM.Kernels;
using SharpLM.Models;

namespace SharpLM.Training;

/// <summary>
/// A model being trained: its parameters and gradients (<see cref="ParameterSet"/>), the model definition bound over
/// each (<see cref="Decoder"/> for LLaMA and GPT-2, <see cref="Encoder"/> with its masked-LM head for BERT), and the
/// activations of the last forward pass. Inference and training run the same definitions over the same kernels, so the
/// logits of a trained model are the logits generate computes from its checkpoint.
/// </summary>
internal sealed partial class TrainModel
{
    private readonly DecoderWeights? _dec, _decGrad;
    private readonly EncoderWeights? _enc, _encGrad;
    private DecoderBuffers? _dbuf;
    private DecoderGradBuffers? _dgrad;
    private EncoderBuffers? _ebuf;
    private Encoder.Grads? _egrad;
    private MlmBuffers? _mlm;
    private ForwardBatch? _batch;
    private int _b, _t, _count;
    private float[] _probs = [], _losses = [], _dlogits = [];
    private int[] _targets = [];
    private Memory<float> _logits;

    /// <summary>The Hugging Face class prefix of BERT's base-model parameters in checkpoints (BertForMaskedLM).</summary>
    public const string BertPrefix = "bert.";

    /// <summary>The architectures <c>sharplm train</c> builds.</summary>
    public static readonly string[] Archs = ["llama", "gpt2", "bert"];

    public TrainModel(ModelConfig config)
    {
        Config = config;
        if (config.Family == ArchFamily.Bert)
        {
            Parameters = new ParameterSet(config, BertPrefix, s => s.Decl.Role is "mlm_dense" or "mlm_dense.bias" or "mlm_norm" or "mlm_norm.bias" or "mlm_bias");
            _enc = EncoderWeights.Bind(BoundTensors.Bind(Parameters.ValueSource, config, TensorNaming.HuggingFace, BertPrefix), withMlmHead: true);
            _encGrad = EncoderWeights.Bind(BoundTensors.Bind(Parameters.GradSource, config, TensorNaming.HuggingFace, BertPrefix), withMlmHead: true);
        }
        else
        {
            Parameters = new ParameterSet(config);
            _dec = DecoderWeights.Bind(BoundTensors.Bind(Parameters.ValueSource, config, TensorNaming.HuggingFace));
            _decGrad = DecoderWeights.Bind(BoundTensors.Bind(Parameters.GradSource, config, TensorNaming.HuggingFace));
        }
    }

    /// <summary>
    /// The configuration of a model to train from the CLI's sizes: a LLaMA (rotate-half RoPE, RMSNorm, SwiGLU, tied or
    /// untied head), a GPT-2, or a BERT whose last vocabulary id is [MASK].
    /// </summary>
    public static ModelConfig NewConfig(string arch, int vocab, int dim, int layers, int heads, int kvHeads, int ffn, int context,
                                        bool tied = true, double ropeTheta = 10000, double normEps = 1e-5)
    {
        if (!Archs.Contains(arch)) throw new ArgumentException($"unknown architecture '{arch}': expected one of {string.Join(", ", Archs)}");
        if (vocab < 2 || dim < 2 || layers < 1 || heads < 1 || kvHeads < 1 || ffn < 1 || context < 1)
            throw new ArgumentException($"model sizes must be positive: vocab {vocab}, dim {dim}, layers {layers}, heads {heads}, kv heads {kvHeads}, ffn {ffn}, context {context}");
        if (dim % heads != 0) throw new ArgumentException($"dim {dim} must be a multiple of heads {heads}");
        if (arch == "llama" && heads % kvHeads != 0) throw new ArgumentException($"heads {heads} must be a multiple of kv heads {kvHeads}");
        if (arch == "llama" && dim / heads % 2 != 0) throw new ArgumentException($"head size dim/heads = {dim / heads} must be even for RoPE");
        int hs = dim / heads;
        var c = new ModelConfig
        {
            Architecture = arch,
            Vocab = vocab,
            Width = dim,
            Layers = layers,
            Heads = heads,
            KvHeads = arch == "llama" ? kvHeads : heads,
            HeadSize = hs,
            FfnWidth = ffn,
            Context = context,
            EmbeddingWidth = dim,
            LayerGroups = layers,
            TokenTypes = arch == "bert" ? 2 : 0,
            NormEps = (float)normEps,
            Activation = arch switch { "llama" => "silu", "gpt2" => "gelu_tanh", _ => "gelu" },
            RopeTheta = (float)ropeTheta,
            RopeDim = hs,
            RopeNeox = true, // Hugging Face's rotate-half layout (the GGUF export permutes q/k)
            QkvBias = arch != "llama",
            OutputBias = arch != "llama",
            MlpBias = arch != "llama",
            TiedEmbeddings = arch != "llama" || tied,
        };
        c.Validate("the model options");
        return c;
    }

    public ModelConfig Config { get; }
    public ParameterSet Parameters { get; }
    public int VocabSize => Config.Vocab;
    public int Context => Config.Context;

    /// <summary>BERT: the loss is masked-LM over the chosen positions; the last vocabulary id is [MASK].</summary>
    public bool IsMlm => Config.Family == ArchFamily.Bert && Head is null;

    /// <summary>
    /// Decoders: true (the default) for the causal mask, row t sees keys 0..t; false lets every row see its whole
    /// sequence, future tokens included: the leak the causal mask prevents (note 1 q; the lab's causal-vs-bidirectional).
    /// Inference always applies the causal mask, so a model trained with false is evaluated as it would be used.
    /// </summary>
    public bool Causal { get; set; } = true;

    /// <summary>(B,T,V) logits of the last <see cref="Forward"/>.</summary>
    public ReadOnlySpan<float> Logits => _logits.Span;

    /// <summary>
    /// Initial weights: N(0, 0.02) for matrices and embeddings (0.02/sqrt(2L) for the projections back into the residual
    /// stream of decoders, as GPT-2), 1 for norm weights, 0 for biases. <paramref name="queryInitScale"/> multiplies the
    /// standard deviation of the query projection: T5 trains without 1/sqrt(d_k) in attention and folds that factor
    /// into the query's initialisation instead (the study note's question 1d; the lab's attention-scale experiment).
    /// </summary>
    public void Initialize(ulong seed, double queryInitScale = 1.0)
    {
        var rng = new TrainRandom(seed);
        double resid = 0.02 / Math.Sqrt(2.0 * Config.Layers);
        foreach (var info in Parameters.Infos)
        {
            var s = Parameters.P(info);
            if (info.Shape.Length == 1) s.Fill(info.Role.EndsWith(".bias", StringComparison.Ordinal) || info.Role == "mlm_bias" ? 0f : 1f);
            else rng.FillNormal(s, (Config.Family != ArchFamily.Bert && Config.NormPlacement == NormPlacement.Pre && info.Role is "attn_output" or "ffn_down" ? resid : 0.02)
                                   * (info.Role == "attn_q" ? queryInitScale : 1.0) * DeepNormGain(info.Role));
        }
    }

    /// <summary>DeepNet's β = (8N)^(-1/4) for the value, output and MLP projections of a DeepNorm model (q and k keep gain 1);
    /// 1 otherwise. Post-norm and DeepNorm decoders start from N(0, 0.02) everywhere (BERT's initialisation), without
    /// GPT-2's 1/sqrt(2L) on the residual projections, which is a pre-norm remedy.</summary>
    private double DeepNormGain(string role) =>
        role is "attn_v" or "attn_output" or "ffn_up" or "ffn_gate" or "ffn_down" ? NormOptions.InitScale(Config) : 1.0;

    /// <summary>
    /// Encoder only: the real length of each of the B sequences of the following batches, or null (all T tokens real).
    /// Rows past a sequence's length are padding: no row attends to them (their own outputs are computed and ignored;
    /// give them target -1). Per-row norms then make a real token's output independent of the padding; BatchNorm's
    /// statistics include the padding rows (the study note's 1 f).
    /// </summary>
    public int[]? Lengths { get; set; }

    private void Ensure(int b, int t)
    {
        if (t > Config.Context) throw new ArgumentException($"sequence length {t} exceeds the model context {Config.Context}");
        if (b == _b && t == _t) return;
        _b = b;
        _t = t;
        int n = b * t, v = Config.Vocab;
        _batch = new ForwardBatch(n, b);
        if (IsMlm)
        {
            _ebuf = new EncoderBuffers(Config, n, perLayer: true);
            _egrad = new Encoder.Grads(Config, n);
            _mlm = new MlmBuffers(Config, n);
        }
        else
        {
            _dbuf = new DecoderBuffers(Config, n, perLayer: true);
            _dgrad = new DecoderGradBuffers(Config, n);
        }
        _probs = new float[n * v];
        _losses = new float[n];
        _dlogits = GC.AllocateArray<float>(n * v, pinned: true);
        _targets = new int[n];
    }

    /// <summary>inputs, targets (B*T) -> mean loss over targets &gt;= 0 (targets may be empty: logits only).</summary>
    public double Forward(ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets, int b, int t)
    {
        if (Head is not null) return ForwardHead(inputs, targets, b, t);
        Ensure(b, t);
        int n = b * t;
        if (inputs.Length != n) throw new ArgumentException($"inputs hold {inputs.Length} ids, expected B*T = {n}");
        var batch = _batch!;
        batch.SetTraining(inputs, b, t);
        Span<float> logits;
        if (IsMlm)
        {
            // bidirectional: every row sees its whole sequence
            for (int i = 0; i < n; i++) batch.KvEnd[i] = Lengths is { } len ? Math.Clamp(len[i / t], 1, t) : t;
            Encoder.Forward(_enc!, batch, _ebuf!);
            logits = Encoder.MlmForward(_enc!, batch, _ebuf!, _mlm!);
            _logits = new Memory<float>(_mlm!.Logits, 0, n * Config.Vocab);
        }
        else
        {
            var buf = _dbuf!;
            if (!Causal) for (int i = 0; i < n; i++) batch.KvEnd[i] = t;
            logits = Decoder.Forward(_dec!, batch, buf, new ActivationKv(l => buf.Layer(l).K, l => buf.Layer(l).V, batch, Config.KvWidth));
            _logits = buf.LogitsMemory(n);
        }
        if (targets.IsEmpty) { _count = 0; return double.NaN; }
        if (targets.Length != n) throw new ArgumentException($"targets hold {targets.Length} ids, expected B*T = {n}");
        targets.CopyTo(_targets);
        (double mean, _count) = CrossEntropy.Forward(logits, targets, _probs, _losses, Config.Vocab);
        return _count == 0 ? 0 : mean;
    }

    /// <summary>Adds d(lossScale * loss)/dparam to the gradients, for the last <see cref="Forward"/>.</summary>
    public void Backward(double lossScale = 1.0)
    {
        if (Head is not null) { BackwardHead(lossScale); return; }
        if (_count == 0)
        {
            if (IsMlm) return; // no chosen position in this batch: no gradient
            throw new InvalidOperationException("Backward needs a Forward with targets first");
        }
        int n = _b * _t, v = Config.Vocab;
        var dlogits = _dlogits.AsSpan(0, n * v);
        dlogits.Clear();
        CrossEntropy.Backward(_probs, _targets.AsSpan(0, n), dlogits, v, (float)(lossScale / _count));
        if (IsMlm) Encoder.Backward(_enc!, _encGrad!, _batch!, _ebuf!, _mlm!, _egrad!, dlogits);
        else Decoder.Backward(_dec!, _decGrad!, _batch!, _dbuf!, _dgrad!, dlogits);
    }
}
