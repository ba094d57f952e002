namespace SharpLM.Inference.Embeddings;

/// <summary>How token states become one sentence vector.</summary>
public enum EmbeddingPooling
{
    /// <summary>The first token's state ([CLS]).</summary>
    Cls,

    /// <summary>The mean over the real (unmasked) tokens: sentence-transformers' default.</summary>
    Mean,

    /// <summary>The element-wise max over the real tokens.</summary>
    Max,

    /// <summary>Mean and max concatenated (2H values).</summary>
    MeanMax,
}

/// <summary>Pooling kernels over last hidden states. hidden (B,T,H), mask (B,T) of 0/1 -> (B,D), D = H or 2H.</summary>
internal static class Pooling
{
    public static int Dimensions(EmbeddingPooling mode, int h) => mode == EmbeddingPooling.MeanMax ? 2 * h : h;

    /// <summary>One sequence: hidden (T,H), mask (T) -> dst (D). Padded positions never contribute.</summary>
    public static void Pool(ReadOnlySpan<float> hidden, ReadOnlySpan<int> mask, int h, EmbeddingPooling mode, Span<float> dst)
    {
        int t = mask.Length;
        if (dst.Length != Dimensions(mode, h)) throw new ArgumentException($"destination holds {dst.Length} floats, {mode} pooling of H={h} needs {Dimensions(mode, h)}", nameof(dst));
        int count = 0;
        for (int i = 0; i < t; i++) count += mask[i] != 0 ? 1 : 0;
        if (count == 0) throw new ArgumentException("the mask has no real token to pool", nameof(mask));
        switch (mode)
        {
            case EmbeddingPooling.Cls:
                hidden[..h].CopyTo(dst);
                break;
            case EmbeddingPooling.Mean:
                Mean(hidden, mask, h, count, dst);
                break;
            case EmbeddingPooling.Max:
                Max(hidden, mask, h, dst);
                break;
            case EmbeddingPooling.MeanMax:
                Mean(hidden, mask, h, count, dst[..h]);
                Max(hidden, mask, h, dst[h..]);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown pooling");
        }
    }

    private static void Mean(ReadOnlySpan<float> hidden, ReadOnlySpan<int> mask, int h, int count, Span<float> dst)
    {
        Span<double> acc = h <= 4096 ? stackalloc double[h] : new double[h];
        acc.Clear();
        for (int i = 0; i < mask.Length; i++)
        {
            if (mask[i] == 0) continue;
            var row = hidden.Slice(i * h, h);
            for (int j = 0; j < h; j++) acc[j] += row[j];
        }
        for (int j = 0; j < h; j++) dst[j] = (float)(acc[j] / count);
    }

    private static void Max(ReadOnlySpan<float> hidden, ReadOnlySpan<int> mask, int h, Span<float> dst)
    {
        dst.Fill(float.NegativeInfinity);
        for (int i = 0; i < mask.Length; i++)
        {
            if (mask[i] == 0) continue;
            var row = hidden.Slice(i * h, h);
            for (int j = 0; j < h; j++) dst[j] = Math.Max(dst[j], row[j]);
        }
    }

    /// <summary>
    /// The backward pass of <see cref="Pool"/> for one sequence (the classification heads of the trainer): dpooled (D),
    /// hidden (T,H), mask (T) -> dhidden (T,H) +=. CLS: the first row gets dpooled; mean: every real row gets
    /// dpooled / count; max: in each column, the first real row holding the maximum gets dpooled (the subgradient
    /// torch's max takes); mean+max: the two halves of dpooled, each by its rule. Padded rows get nothing.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> dpooled, ReadOnlySpan<float> hidden, ReadOnlySpan<int> mask, int h, EmbeddingPooling mode, Span<float> dhidden)
    {
        int t = mask.Length;
        if (dpooled.Length != Dimensions(mode, h)) throw new ArgumentException($"dpooled holds {dpooled.Length} floats, {mode} pooling of H={h} has {Dimensions(mode, h)}", nameof(dpooled));
        if (dhidden.Length < t * h || hidden.Length < t * h) throw new ArgumentException($"hidden and dhidden must hold T*H = {t * h} floats", nameof(dhidden));
        int count = 0;
        for (int i = 0; i < t; i++) count += mask[i] != 0 ? 1 : 0;
        if (count == 0) throw new ArgumentException("the mask has no real token to pool", nameof(mask));
        switch (mode)
        {
            case EmbeddingPooling.Cls:
                for (int j = 0; j < h; j++) dhidden[j] += dpooled[j];
                break;
            case EmbeddingPooling.Mean:
                MeanBackward(dpooled, mask, h, count, dhidden);
                break;
            case EmbeddingPooling.Max:
                MaxBackward(dpooled, hidden, mask, h, dhidden);
                break;
            case EmbeddingPooling.MeanMax:
                MeanBackward(dpooled[..h], mask, h, count, dhidden);
                MaxBackward(dpooled[h..], hidden, mask, h, dhidden);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown pooling");
        }
    }

    private static void MeanBackward(ReadOnlySpan<float> dpooled, ReadOnlySpan<int> mask, int h, int count, Span<float> dhidden)
    {
        float inv = 1f / count;
        for (int i = 0; i < mask.Length; i++)
        {
            if (mask[i] == 0) continue;
            var row = dhidden.Slice(i * h, h);
            for (int j = 0; j < h; j++) row[j] += dpooled[j] * inv;
        }
    }

    private static void MaxBackward(ReadOnlySpan<float> dpooled, ReadOnlySpan<float> hidden, ReadOnlySpan<int> mask, int h, Span<float> dhidden)
    {
        for (int j = 0; j < h; j++)
        {
            int at = -1;
            float best = float.NegativeInfinity;
            for (int i = 0; i < mask.Length; i++)
                if (mask[i] != 0 && (at < 0 || hidden[i * h + j] > best)) { best = hidden[i * h + j]; at = i; }
            dhidden[at * h + j] += dpooled[j];
        }
    }

    /// <summary>In place: v = v / ||v||2 (a zero vector stays zero).</summary>
    public static void L2Normalize(Span<float> v)
    {
        double ss = 0;
        foreach (var x in v) ss += (double)x * x;
        if (ss == 0) return;
        float inv = (float)(1.0 / Math.Sqrt(ss));
        for (int i = 0; i < v.Length; i++) v[i] *= inv;
    }

    /// <summary>cos(a, b) = a.b / (|a| |b|); 0 when either is the zero vector.</summary>
    public static float Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"vectors differ in length: {a.Length} vs {b.Length}", nameof(b));
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            ab += (double)a[i] * b[i];
            aa += (double)a[i] * a[i];
            bb += (double)b[i] * b[i];
        }
        return aa == 0 || bb == 0 ? 0 : (float)(ab / Math.Sqrt(aa * bb));
    }
}
