using SharpLM.Formats;
using SharpLM.Kernels;
using SharpLM.Models;

namespace SharpLM.Training;

/// <summary>
/// The trainer's encoder classifiers: a BERT-family encoder with a sequence- or token-classification head
/// (<see cref="EncoderHead"/>, <see cref="EncoderHeads"/>) instead of the masked-LM head, fine-tuned from pretrained
/// weights (<see cref="LoadPretrained"/>) with a frozen (<see cref="FreezeBody"/>) or trainable body. The loss is the
/// same <see cref="CrossEntropy"/> over the K labels; <see cref="TrainStep"/> and the optimizers drive it unchanged.
/// Targets stay B*T: token classification labels every row (&lt; 0: not counted, e.g. [CLS] and the later pieces of
/// a word); sequence classification reads the label of sequence s from targets[s*T] (the [CLS] row) and ignores the rest.
/// </summary>
internal sealed partial class TrainModel
{
    private LinearWeights _head, _headGrad;
    private EncoderHeadBuffers? _hb;
    private int _hbB, _hbT;

    /// <summary>The classification head, or null (language modelling: the decoder's next token, BERT's masked LM).</summary>
    public EncoderHead? Head { get; }

    /// <summary>True when the encoder's layers and embeddings are frozen: the backward pass stops at the head.</summary>
    public bool BodyFrozen { get; private set; }

    /// <summary>A BERT-family encoder (e.g. <paramref name="config"/> read from all-MiniLM-L6-v2) with a classification head.</summary>
    public TrainModel(ModelConfig config, EncoderHead head)
    {
        if (config.Family != ArchFamily.Bert) throw new ArgumentException($"classification heads sit on BERT-family encoders, not {config.Architecture}", nameof(config));
        Config = config;
        Head = head;
        Parameters = new ParameterSet(config, BertPrefix, extra: head.Tensors(config));
        _enc = EncoderWeights.Bind(BoundTensors.Bind(Parameters.ValueSource, config, TensorNaming.HuggingFace, BertPrefix, allowExtra: true), withMlmHead: false);
        _encGrad = EncoderWeights.Bind(BoundTensors.Bind(Parameters.GradSource, config, TensorNaming.HuggingFace, BertPrefix, allowExtra: true), withMlmHead: false);
        _head = EncoderHeads.Bind(Parameters.ValueSource, head, config);
        _headGrad = EncoderHeads.Bind(Parameters.GradSource, head, config);
    }

    /// <summary>Freezes (or thaws) every parameter but the head's: the optimizers skip them and <see cref="Backward"/>
    /// computes the head's gradients only.</summary>
    public void FreezeBody(bool frozen)
    {
        if (Head is null) throw new InvalidOperationException("only a model with a classification head has a body to freeze");
        BodyFrozen = frozen;
        Parameters.Freeze(frozen ? i => i.Role is not (EncoderHead.Role or EncoderHead.Role + ".bias") : null);
    }

    /// <summary>
    /// Copies every parameter of the encoder body from <paramref name="src"/> (an ONNX export read by
    /// <see cref="Formats.Onnx.OnnxBert"/>, a safetensors file or a Hugging Face folder), matching names after the class
    /// prefix ("", "bert.", ...) the source uses; the head keeps its initial values. Throws listing every body tensor the
    /// source lacks or holds in another shape; returns how many tensors were copied.
    /// </summary>
    public unsafe int LoadPretrained(IWeightSource src)
    {
        string prefix = EncoderWeights.DetectPrefix(src, Config.Arch);
        var problems = new List<string>();
        int copied = 0;
        foreach (var info in Parameters.Infos)
        {
            if (!info.Name.StartsWith(BertPrefix, StringComparison.Ordinal)) continue; // the head
            string name = prefix + info.Name[BertPrefix.Length..];
            if (!src.Tensors.TryGetValue(name, out var t)) { problems.Add($"'{name}' is missing"); continue; }
            if (t.Type != Tensors.DType.F32 || t.ElementCount != info.Length || !t.Shape.SequenceEqual(info.Shape.Select(d => (long)d)))
            {
                problems.Add($"'{name}' is {t.Type} ({string.Join(",", t.Shape)}), expected F32 ({string.Join(",", info.Shape)})");
                continue;
            }
            new ReadOnlySpan<float>((void*)t.Data, info.Length).CopyTo(Parameters.P(info));
            copied++;
        }
        if (problems.Count > 0)
            throw new InvalidDataException($"{src.Path}: cannot load the encoder ({Config}) from it: {string.Join("; ", problems)}");
        return copied;
    }

    private double ForwardHead(ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets, int b, int t)
    {
        var head = Head!;
        EnsureHead(b, t);
        int n = b * t, k = head.Labels;
        if (inputs.Length != n) throw new ArgumentException($"inputs hold {inputs.Length} ids, expected B*T = {n}");
        var batch = _batch!;
        batch.SetTraining(inputs, b, t);
        for (int i = 0; i < n; i++) batch.KvEnd[i] = t; // bidirectional: every row sees its whole sequence
        Encoder.Forward(_enc!, batch, _ebuf!);
        var logits = EncoderHeads.Forward(_head, head, Config, batch, _ebuf!, _hb!, b, t);
        _logits = new Memory<float>(_hb!.Logits, 0, logits.Length);
        if (targets.IsEmpty) { _count = 0; return double.NaN; }
        if (targets.Length != n) throw new ArgumentException($"targets hold {targets.Length} ids, expected B*T = {n}");
        int rows = logits.Length / k;
        if (head.Kind == EncoderHeadKind.SequenceClassification)
            for (int s = 0; s < b; s++) _targets[s] = targets[s * t];
        else targets.CopyTo(_targets);
        (double mean, _count) = CrossEntropy.Forward(logits, _targets.AsSpan(0, rows), _probs, _losses, k);
        return _count == 0 ? 0 : mean;
    }

    private void BackwardHead(double lossScale)
    {
        if (_count == 0) return; // no labelled row in this batch: no gradient
        var head = Head!;
        int k = head.Labels, rows = _logits.Length / k;
        var dlogits = _dlogits.AsSpan(0, rows * k);
        dlogits.Clear();
        CrossEntropy.Backward(_probs, _targets.AsSpan(0, rows), dlogits, k, (float)(lossScale / _count));
        EncoderHeads.Backward(_head, _headGrad, head, Config, _ebuf!, _hb!, dlogits, _egrad!.DX, _b, _t);
        if (!BodyFrozen) Encoder.BackwardBody(_enc!, _encGrad!, _batch!, _ebuf!, _egrad!);
    }

    private void EnsureHead(int b, int t)
    {
        if (t > Config.Context) throw new ArgumentException($"sequence length {t} exceeds the model context {Config.Context}");
        if (b == _hbB && t == _hbT) return;
        _b = _hbB = b;
        _t = _hbT = t;
        int n = b * t, k = Head!.Labels;
        _batch = new ForwardBatch(n, b);
        _ebuf = new EncoderBuffers(Config, n, perLayer: true);
        _egrad = new Encoder.Grads(Config, n);
        _hb = new EncoderHeadBuffers(Config, Head, b, t);
        _probs = new float[n * k];
        _losses = new float[n];
        _dlogits = GC.AllocateArray<float>(n * k, pinned: true);
        _targets = new int[n];
    }
}
