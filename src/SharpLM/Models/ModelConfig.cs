using System.Globalization;

namespace SharpLM.Models;

/// <summary>How a family wires its blocks.</summary>
public enum ArchFamily
{
    /// <summary>Pre-norm decoder with rotary positions (LLaMA, Mistral, Qwen2, Qwen3, Mixtral).</summary>
    Llama,
    /// <summary>Pre-norm decoder with learned positions, LayerNorm and biases, GELU MLP, tied head (GPT-2).</summary>
    Gpt2,
    /// <summary>Post-norm bidirectional encoder with learned positions and token types (BERT, MiniLM, DistilBERT, ALBERT).</summary>
    Bert,
}

/// <summary>How RoPE frequencies are rescaled for long contexts.</summary>
public enum RopeScalingType
{
    None,
    /// <summary>Positions divided by <see cref="ModelConfig.RopeScalingFactor"/>.</summary>
    Linear,
    /// <summary>LLaMA-3.1 per-frequency smoothing (factor, low/high frequency factors, original context).</summary>
    Llama3,
    /// <summary>Phi-3's LongRoPE ("su"): per-frequency divisors, the long set when the context exceeds the original one,
    /// and the cos/sin scaled by <see cref="ModelConfig.RopeAttnFactor"/>.</summary>
    LongRope,
}

/// <summary>
/// The hyper-parameters of a transformer, for every architecture SharpLM knows, with one name per quantity (the README's
/// dimension letters in brackets). It is read from a Hugging Face config.json or GGUF metadata by one reader
/// (<see cref="Formats.ModelConfigReader"/>), built by <c>sharplm train</c>, and used by inference, training, convert,
/// inspect and calc alike. Each architecture's defaults are stated once, in its <see cref="Architecture"/> entry.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>The architecture name as SharpLM and GGUF spell it: llama, mistral, qwen2, qwen3, mixtral, gpt2, bert,
    /// distilbert, albert, roberta, xlm-roberta.</summary>
    public required string Architecture { get; init; }

    /// <summary>[V] vocabulary size (rows of the token embedding).</summary>
    public required int Vocab { get; init; }

    /// <summary>[C] model width (hidden_size, n_embd, dim).</summary>
    public required int Width { get; init; }

    /// <summary>[L] number of blocks.</summary>
    public required int Layers { get; init; }

    /// <summary>[NH] attention (query) heads.</summary>
    public required int Heads { get; init; }

    /// <summary>[KVH] key/value heads (GQA when smaller than NH; NH must be a multiple).</summary>
    public required int KvHeads { get; init; }

    /// <summary>[HS] head size (C / NH unless the file says otherwise).</summary>
    public required int HeadSize { get; init; }

    /// <summary>[F] feed-forward (MLP) width.</summary>
    public required int FfnWidth { get; init; }

    /// <summary>[P] the longest context the model was trained for (rows of a learned position table).</summary>
    public required int Context { get; init; }

    /// <summary>[E] width of the embedding tables; ALBERT factorises them (E &lt; C), everyone else has E = C.</summary>
    public int EmbeddingWidth { get; init; }

    /// <summary>Distinct sets of layer weights stored (ALBERT shares one set across all layers); L for everyone else.</summary>
    public int LayerGroups { get; init; }

    /// <summary>[T] rows of BERT's token-type (segment) table; 0 when there is none.</summary>
    public int TokenTypes { get; init; }

    public float NormEps { get; init; } = 1e-5f;

    /// <summary>The MLP activation: silu (gated, LLaMA), gelu (erf), gelu_tanh, relu.</summary>
    public string Activation { get; init; } = "silu";

    public float RopeTheta { get; init; } = 10000f;

    /// <summary>Rotated dimensions per head (= HS normally).</summary>
    public int RopeDim { get; init; }

    /// <summary>Rotate-half pairs (i, i+HS/2) as Hugging Face and Qwen2 do; false = adjacent pairs (GGUF LLaMA, whose
    /// q/k rows the converter permuted).</summary>
    public bool RopeNeox { get; init; }

    public RopeScalingType RopeScaling { get; init; }
    public float RopeScalingFactor { get; init; } = 1f;
    public float RopeLowFreqFactor { get; init; } = 1f;
    public float RopeHighFreqFactor { get; init; } = 4f;
    public int RopeOriginalContext { get; init; } = 8192;

    /// <summary>Q/K/V projections carry biases.</summary>
    public bool QkvBias { get; init; }

    /// <summary>The attention output projection carries a bias.</summary>
    public bool OutputBias { get; init; }

    /// <summary>The MLP projections carry biases.</summary>
    public bool MlpBias { get; init; }

    /// <summary>RMSNorm over each head of q and k before RoPE (Qwen3).</summary>
    public bool QkNorm { get; init; }

    /// <summary>The output head is the token embedding (no separate output weight).</summary>
    public bool TiedEmbeddings { get; init; }

    /// <summary>The sliding attention window in tokens (a row at position p sees keys p-W+1..p), or null for full attention.</summary>
    public int? SlidingWindow { get; init; }

    /// <summary>Which layers slide, as llama.cpp's swa pattern N: layer l uses the window when l % N &lt; N - 1, so the last
    /// of every N layers sees the whole context (Gemma 2: 2, Gemma 3: 6); 1 = every layer slides (Mistral).</summary>
    public int SlidingWindowPattern { get; init; } = 1;

    /// <summary>RoPE base of the sliding-window layers, which then use no RoPE scaling (Gemma 3: 10000 locally while
    /// <see cref="RopeTheta"/> serves the global layers); null = as every other layer.</summary>
    public float? RopeThetaSliding { get; init; }

    /// <summary>LongRoPE's per-frequency divisors (R/2 each) for contexts beyond / within <see cref="RopeOriginalContext"/>.</summary>
    public IReadOnlyList<float>? RopeLongFactors { get; init; }
    public IReadOnlyList<float>? RopeShortFactors { get; init; }

    /// <summary>Scale of RoPE's cos and sin (LongRoPE's attention factor), so q.k is scaled by its square; 1 = none.</summary>
    public float RopeAttnFactor { get; init; } = 1f;

    /// <summary>The token embedding is multiplied by this before the first block (Gemma: sqrt(C)); 1 for everyone else.</summary>
    public float EmbeddingScale { get; init; } = 1f;

    /// <summary>The scale of the attention scores q.k (Gemma: query_pre_attn_scalar^-1/2); null = 1/sqrt(HS).</summary>
    public float? AttentionScale { get; init; }

    /// <summary>Gemma 2's soft cap of the attention scores, cap * tanh(score / cap); 0 = none.</summary>
    public float AttnLogitSoftcap { get; init; }

    /// <summary>Gemma 2's soft cap of the output logits, cap * tanh(logit / cap); 0 = none.</summary>
    public float FinalLogitSoftcap { get; init; }

    /// <summary>RMSNorms of the attention output and of the MLP output before each residual add (Gemma 2 and 3).</summary>
    public bool PostNorms { get; init; }

    /// <summary>Mixture of experts: experts per layer (0 = dense) and how many each token uses.</summary>
    public int Experts { get; init; }
    public int ExpertsPerToken { get; init; }

    /// <summary>[FE] an expert's FFN width (Qwen MoE's moe_intermediate_size; Mixtral's experts are F wide); 0 = F.</summary>
    public int ExpertFfnWidth { get; init; }

    /// <summary>[FS] the shared expert's FFN width (Qwen2-MoE), gated per token by sigmoid(h . w); 0 = none.</summary>
    public int SharedExpertFfnWidth { get; init; }

    /// <summary>The chosen experts' softmax weights are renormalised to sum to 1 (Mixtral, Qwen3-MoE; not Qwen2-MoE).</summary>
    public bool ExpertWeightsNorm { get; init; } = true;

    /// <summary>BERT's pooler (dense C -> C with tanh) is part of the checkpoint.</summary>
    public bool Pooler { get; init; }

    /// <summary>A feature of this configuration the engine lacks (e.g. an unknown rope_scaling type), or null. calc
    /// sizes such a model; loading it for inference or training fails with this reason.</summary>
    public string? Unsupported { get; init; }

    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }

    /// <summary>The normalisation every norm of the model computes (the lab's <c>norms</c> experiment); null = the
    /// architecture's own (LayerNorm where the table has a norm bias, RMSNorm otherwise).</summary>
    public NormKind? Norm { get; init; }

    /// <summary>Where the decoder's norms sit: pre-norm (the default), post-norm or DeepNorm (the lab's <c>norm-placement</c>
    /// experiment). The encoder is post-norm whatever this says.</summary>
    public NormPlacement NormPlacement { get; init; }

    /// <summary>How a decoder encodes positions (<see cref="PositionEncoding"/> resolves <see cref="PositionKind.Default"/>):
    /// a LLaMA-family decoder can be trained with learned, sinusoidal or no positions instead of RoPE.</summary>
    public PositionKind Positions { get; init; }

    /// <summary>Sparse attention in every layer of a LLaMA-family decoder (local window, stride, global tokens; the lab's
    /// <c>sparse-attention</c> experiment): which keys of its causal range each row keeps. Dense by default.</summary>
    public Kernels.SparsePattern Sparse { get; init; }

    /// <summary>One projection serves as query, key and value (the attention_q weight, and bias, used three times); attn_k
    /// and attn_v are absent. Needs KVH = NH.</summary>
    public bool SharedQkv { get; init; }

    /// <summary>The position encoding in effect: <see cref="Positions"/>, or the family's own (RoPE for LLaMA, learned otherwise).</summary>
    public PositionKind PositionEncoding => Positions != PositionKind.Default ? Positions : Family == ArchFamily.Llama ? PositionKind.Rotary : PositionKind.Learned;

    /// <summary>The architecture's entry in the table: family, tensor table, defaults.</summary>
    public Architecture Arch => Architectures.Get(Architecture);

    public ArchFamily Family => Arch.Family;

    /// <summary>NH*HS: width of the query projection.</summary>
    public int QueryWidth => Heads * HeadSize;

    /// <summary>KVH*HS: width of the key and value projections (floats per position per layer in the KV cache).</summary>
    public int KvWidth => KvHeads * HeadSize;

    /// <summary>Whether layer <paramref name="layer"/> attends through the sliding window (see <see cref="SlidingWindowPattern"/>).</summary>
    public bool IsSlidingLayer(int layer) =>
        SlidingWindow is > 0 && (SlidingWindowPattern <= 1 || layer % SlidingWindowPattern < SlidingWindowPattern - 1);

    /// <summary>The scale of q.k in attention: <see cref="AttentionScale"/> (or 1/sqrt(HS)) times the square of RoPE's
    /// attention factor (which llama.cpp and transformers apply to both q and k).</summary>
    public float ScoreScale => (AttentionScale ?? 1f / MathF.Sqrt(HeadSize)) * RopeAttnFactor * RopeAttnFactor;

    /// <summary>
    /// The dimension letters of this configuration, for the tensor tables' shapes: V, C, L, NH, KVH, HS, F, P, E, T, X.
    /// </summary>
    public long Dim(string letter) => letter switch
    {
        "V" => Vocab,
        "C" => Width,
        "L" => Layers,
        "NH" => Heads,
        "KVH" => KvHeads,
        "HS" => HeadSize,
        "F" => FfnWidth,
        "P" => Context,
        "E" => EmbeddingWidth,
        "T" => TokenTypes,
        "X" => Experts,
        "FE" => ExpertFfnWidth > 0 ? ExpertFfnWidth : FfnWidth,
        "FS" => SharedExpertFfnWidth,
        "R" => RopeDim,
        _ => throw new ArgumentException($"unknown dimension letter '{letter}'", nameof(letter)),
    };

    /// <summary>Checks the numbers fit together; throws naming <paramref name="source"/>, the field, the value and what was expected.</summary>
    public void Validate(string source)
    {
        void Need(bool ok, string what)
        {
            if (!ok) throw new InvalidDataException($"{source}: {what}");
        }
        void Positive(string name, long v) => Need(v > 0, $"{name} = {v}, expected a positive number");
        Positive("vocab size (V)", Vocab);
        Positive("width (C)", Width);
        Positive("layers (L)", Layers);
        Positive("attention heads (NH)", Heads);
        Positive("key/value heads (KVH)", KvHeads);
        Positive("head size (HS)", HeadSize);
        Positive("feed-forward width (F)", FfnWidth);
        Positive("context length (P)", Context);
        Positive("embedding width (E)", EmbeddingWidth);
        Need(Heads % KvHeads == 0, $"{Heads} attention heads is not a multiple of {KvHeads} key/value heads");
        // Sizes a model could never have: they would only overflow an index or run a loop for hours.
        const long Big = 1L << 31;
        Need((long)Vocab * EmbeddingWidth < Big * 64 && (long)Layers * Width < Big && (long)Heads * HeadSize < Big / 16 && Layers <= 100_000,
            $"the sizes (V {Vocab}, C {Width}, L {Layers}, NH {Heads}, HS {HeadSize}, F {FfnWidth}) are too large for any real model");
        Need(LayerGroups > 0 && Layers % LayerGroups == 0, $"{LayerGroups} layer groups do not divide {Layers} layers");
        Need(TokenTypes >= 0, $"token types = {TokenTypes}, expected 0 or more");
        Need(NormEps > 0 && float.IsFinite(NormEps), $"norm epsilon {NormEps.ToString(CultureInfo.InvariantCulture)} must be a positive number");
        Need(Activation is "silu" or "gelu" or "gelu_tanh" or "relu", $"activation '{Activation}' is not supported (silu, gelu, gelu_tanh, relu)");
        if (Family != ArchFamily.Bert && Family != ArchFamily.Gpt2)
        {
            Need(RopeTheta > 0 && float.IsFinite(RopeTheta), $"rope theta {RopeTheta.ToString(CultureInfo.InvariantCulture)} must be positive");
            Need(HeadSize % 2 == 0 && RopeDim % 2 == 0 && RopeDim > 0 && RopeDim <= HeadSize,
                $"head size {HeadSize} / rope dim {RopeDim} must be even with 0 < rope dim <= head size");
        }
        Need(Experts >= 0 && (Experts == 0 || (ExpertsPerToken >= 1 && ExpertsPerToken <= Experts)),
            $"{ExpertsPerToken} experts per token do not fit {Experts} experts");
        Need(SlidingWindow is null or > 0, $"sliding window {SlidingWindow} must be a positive number of tokens");
        Need(SlidingWindowPattern >= 1, $"sliding window pattern {SlidingWindowPattern} must be 1 or more");
        Need(EmbeddingScale > 0 && float.IsFinite(EmbeddingScale), $"embedding scale {EmbeddingScale.ToString(CultureInfo.InvariantCulture)} must be a positive number");
        Need(AttnLogitSoftcap >= 0 && FinalLogitSoftcap >= 0, "soft caps must be 0 (none) or positive");
        Need(Positions == PositionKind.Default || Family == ArchFamily.Llama, $"position kind {Positions} is an option of the LLaMA-family decoder, not of {Architecture}");
        Need(Sparse.IsDense || (Family == ArchFamily.Llama && SlidingWindow is null && Sparse.Window >= 0 && Sparse.Stride >= 0 && Sparse.Global >= 0),
            $"sparse attention ({Sparse}) is an option of the LLaMA-family decoder without a sliding window, with sizes of 0 or more (got {Architecture})");
        Need(!SharedQkv || (Family == ArchFamily.Llama && KvHeads == Heads), $"shared q/k/v projections need a LLaMA-family decoder with as many key/value heads as heads (got {Architecture}, {KvHeads} and {Heads})");
        foreach (var (name, f) in new[] { ("long", RopeLongFactors), ("short", RopeShortFactors) })
            Need(f is null || f.Count == RopeDim / 2, $"{name} RoPE factors hold {f?.Count} values, expected rope dim / 2 = {RopeDim / 2}");
    }

    /// <summary>
    /// Inverse RoPE frequencies (RopeDim/2): invFreq[i] = theta^(-2i/RopeDim), then the scaling of <see cref="RopeScaling"/>,
    /// then divided by per-frequency factors (GGUF <c>rope_freqs.weight</c>) when given.
    /// </summary>
    internal float[] InverseFrequencies(ReadOnlySpan<float> freqFactors = default, bool sliding = false)
    {
        int half = RopeDim / 2;
        var inv = new float[half];
        // Gemma 3's local layers: their own base and no scaling (llama.cpp's rope_freq_base/scale_train_swa)
        bool local = sliding && RopeThetaSliding is not null;
        float theta = local ? RopeThetaSliding!.Value : RopeTheta;
        var scaling = local ? RopeScalingType.None : RopeScaling;
        var factors = scaling == RopeScalingType.Llama3 && freqFactors.IsEmpty ? Llama3RopeFactors() : null;
        if (local) freqFactors = default;
        for (int i = 0; i < half; i++)
        {
            double f = 1.0 / Math.Pow(theta, 2.0 * i / RopeDim);
            if (scaling == RopeScalingType.Linear) f /= RopeScalingFactor;
            if (factors != null) f /= factors[i];
            if (!freqFactors.IsEmpty) f /= freqFactors[i];
            inv[i] = (float)f;
        }
        return inv;
    }

    /// <summary>LongRoPE's divisors for a context of <paramref name="contextSize"/> positions per sequence: the long set
    /// beyond the original context, else the short one (llama.cpp's choice, by the context rather than the prompt); null
    /// without LongRoPE.</summary>
    internal float[]? LongRopeFactors(int contextSize) =>
        RopeScaling != RopeScalingType.LongRope ? null
        : (contextSize > RopeOriginalContext ? RopeLongFactors : RopeShortFactors)?.ToArray();

    /// <summary>
    /// LLaMA-3.1 rope scaling as per-frequency divisors (what convert_hf_to_gguf.py writes as rope_freqs.weight and
    /// llama.cpp divides by): 1 for high frequencies, the factor for low ones, a smooth blend between.
    /// </summary>
    internal float[] Llama3RopeFactors()
    {
        float factor = RopeScalingFactor, low = RopeLowFreqFactor, high = RopeHighFreqFactor;
        float oldCtx = RopeOriginalContext;
        double lowWavelen = oldCtx / low, highWavelen = oldCtx / high;
        var r = new float[RopeDim / 2];
        for (int i = 0; i < r.Length; i++)
        {
            float freq = 1f / MathF.Pow(RopeTheta, 2f * i / RopeDim);
            double wavelen = 2 * Math.PI / freq;
            if (wavelen < highWavelen) r[i] = 1f;
            else if (wavelen > lowWavelen) r[i] = factor;
            else
            {
                double smooth = (oldCtx / wavelen - low) / (high - low);
                r[i] = (float)(1 / ((1 - smooth) / factor + smooth));
            }
        }
        return r;
    }

    /// <summary>The widest MLP activation a layer computes (dense F, expert FE, shared FS): the MLP buffers' width.</summary>
    public int MaxFfnWidth => Math.Max(FfnWidth, Math.Max(ExpertFfnWidth, SharedExpertFfnWidth));

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Architecture} V={Vocab} C={Width} L={Layers} NH={Heads} KVH={KvHeads} HS={HeadSize} F={FfnWidth} P={Context}{(EmbeddingWidth != Width ? $" E={EmbeddingWidth}" : "")}{(TokenTypes > 0 ? $" T={TokenTypes}" : "")} act={Activation}");
}
