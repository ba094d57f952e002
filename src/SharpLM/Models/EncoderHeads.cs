using SharpLM.Formats;
using SharpLM.Inference.Embeddings;
using SharpLM.Tensors;

namespace SharpLM.Models;

/// <summary>What an encoder head predicts: one label per sequence, or one label per token.</summary>
internal enum EncoderHeadKind
{
    /// <summary>One label per sequence from its pooled last hidden states (Hugging Face's *ForSequenceClassification,
    /// without the pooler's dense + tanh: the classifier reads the pooled vector itself).</summary>
    SequenceClassification,

    /// <summary>One label per row from its last hidden state (*ForTokenClassification).</summary>
    TokenClassification,
}

/// <summary>
/// A classification head on a BERT-family encoder (<see cref="Encoder"/>), trained by the one trainer
/// (<see cref="Training.TrainModel"/>): <paramref name="Labels"/> classes [K], and for sequence classification how the
/// rows of a sequence become one vector (<see cref="EmbeddingPooling"/>: [CLS], mean, max, or mean and max
/// concatenated: D = C or 2C).
/// </summary>
internal sealed record EncoderHead(EncoderHeadKind Kind, int Labels, EmbeddingPooling Pooling = EmbeddingPooling.Cls)
{
    /// <summary>The head's weight and bias, under the names Hugging Face's classification models give them.</summary>
    public const string WeightName = "classifier.weight", BiasName = "classifier.bias";

    /// <summary>Their roles (<see cref="Training.ParamInfo.Role"/>): a matrix and its bias, initialised as every other.</summary>
    public const string Role = "classifier";

    /// <summary>[D] the classifier's input width: C, or 2C for mean+max pooling.</summary>
    public int InputWidth(ModelConfig c) =>
        Kind == EncoderHeadKind.TokenClassification ? c.Width : Inference.Embeddings.Pooling.Dimensions(Pooling, c.Width);

    /// <summary>The head's tensors: classifier.weight (K, D) and classifier.bias (K).</summary>
    public IEnumerable<(string Name, int[] Shape, string Role)> Tensors(ModelConfig c)
    {
        if (Labels < 2) throw new ArgumentOutOfRangeException(nameof(Labels), Labels, "a classifier needs at least 2 labels");
        yield return (WeightName, [Labels, InputWidth(c)], Role);
        yield return (BiasName, [Labels], Role + ".bias");
    }
}

/// <summary>The activations of a classification head (B sequences or N rows).</summary>
internal sealed class EncoderHeadBuffers
{
    private static float[] A(long len) => GC.AllocateArray<float>(checked((int)Math.Max(len, 1)), pinned: true);

    public EncoderHeadBuffers(ModelConfig c, EncoderHead head, int b, int t)
    {
        int d = head.InputWidth(c), rows = head.Kind == EncoderHeadKind.SequenceClassification ? b : b * t;
        Pooled = A((long)b * d);
        DPooled = A((long)b * d);
        Logits = A((long)rows * head.Labels);
        Mask = [.. Enumerable.Repeat(1, t)];
    }

    /// <summary>(B, D) pooled vectors (sequence classification).</summary>
    public float[] Pooled { get; }
    public float[] DPooled { get; }

    /// <summary>(B, K) or (N, K).</summary>
    public float[] Logits { get; }

    /// <summary>T ones: training rows hold no padding.</summary>
    public int[] Mask { get; }
}

/// <summary>
/// The classification heads of the encoder, forward and backward:
/// <code>
/// sequence:  p_s = pool(x[rows of s])   (D)     logits_s = W p_s + b   (K)     W (K, D), b (K)
/// token:     logits_i = W x_i + b        (K)     W (K, C)
/// </code>
/// x (N, C) are the last hidden states (<see cref="EncoderBuffers.XOut"/>); a training batch is B slots of T rows.
/// The backward pass writes d x (N, C) into the encoder's gradient buffer (<c>Encoder.Grads.DX</c>), from which
/// <see cref="Encoder.BackwardBody"/> continues through the layers.
/// </summary>
internal static class EncoderHeads
{
    /// <summary>The head's weight and bias in <paramref name="src"/> (the trainer's parameters or gradients, F32).</summary>
    public static unsafe LinearWeights Bind(IWeightSource src, EncoderHead head, ModelConfig c)
    {
        var w = src.Tensors.TryGetValue(EncoderHead.WeightName, out var wi) ? wi : throw new InvalidDataException($"{src.Path}: no '{EncoderHead.WeightName}'");
        var b = src.Tensors.TryGetValue(EncoderHead.BiasName, out var bi) ? bi : throw new InvalidDataException($"{src.Path}: no '{EncoderHead.BiasName}'");
        int d = head.InputWidth(c);
        if (w.Type != DType.F32 || b.Type != DType.F32 || w.Shape is not [var k, var dd] || k != head.Labels || dd != d || b.Shape is not [var kb] || kb != head.Labels)
            throw new InvalidDataException($"{src.Path}: the classifier is {w.Type} ({string.Join(",", w.Shape)}) + {b.Type} ({string.Join(",", b.Shape)}), expected F32 ({head.Labels},{d}) + ({head.Labels})");
        return new LinearWeights(new WeightMatrix(DType.F32, (byte*)w.Data, head.Labels, d), new FloatView((float*)b.Data, head.Labels));
    }

    /// <summary>Logits of the last <see cref="Encoder.Forward"/>: (B, K) for sequences, (N, K) for tokens.</summary>
    public static Span<float> Forward(LinearWeights w, EncoderHead head, ModelConfig c, ForwardBatch batch, EncoderBuffers buf, EncoderHeadBuffers hb, int b, int t)
    {
        int dim = c.Width, k = head.Labels;
        if (head.Kind == EncoderHeadKind.TokenClassification)
        {
            int n = batch.Rows;
            w.Forward(buf.XOut.AsSpan(0, n * dim), hb.Logits, n);
            return hb.Logits.AsSpan(0, n * k);
        }
        int d = head.InputWidth(c);
        for (int s = 0; s < b; s++)
            Pooling.Pool(buf.XOut.AsSpan(s * t * dim, t * dim), hb.Mask.AsSpan(0, t), dim, head.Pooling, hb.Pooled.AsSpan(s * d, d));
        w.Forward(hb.Pooled.AsSpan(0, b * d), hb.Logits, b);
        return hb.Logits.AsSpan(0, b * k);
    }

    /// <summary>dlogits -> the head's gradients (+=, into <paramref name="g"/>) and d x (N, C), written to <paramref name="dx"/>.</summary>
    public static void Backward(LinearWeights w, LinearWeights g, EncoderHead head, ModelConfig c, EncoderBuffers buf, EncoderHeadBuffers hb,
                                ReadOnlySpan<float> dlogits, Span<float> dx, int b, int t)
    {
        int dim = c.Width, n = b * t;
        dx[..(n * dim)].Clear();
        if (head.Kind == EncoderHeadKind.TokenClassification)
        {
            w.Backward(g, dlogits, buf.XOut.AsSpan(0, n * dim), dx, n);
            return;
        }
        int d = head.InputWidth(c);
        var dp = hb.DPooled.AsSpan(0, b * d);
        dp.Clear();
        w.Backward(g, dlogits, hb.Pooled.AsSpan(0, b * d), dp, b);
        for (int s = 0; s < b; s++)
            Pooling.Backward(dp.Slice(s * d, d), buf.XOut.AsSpan(s * t * dim, t * dim), hb.Mask.AsSpan(0, t), dim, head.Pooling, dx.Slice(s * t * dim, t * dim));
    }
}
