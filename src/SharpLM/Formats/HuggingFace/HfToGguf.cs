using SharpLM.Formats.Gguf;
using SharpLM.Kernels.Naive;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;

namespace SharpLM.Formats.HuggingFace;

/// <summary>
/// Converts a Hugging Face llama / mistral / qwen2 folder to a GGUF file that llama.cpp loads, following
/// llama.cpp's convert_hf_to_gguf.py: tensor names from <see cref="TensorNames"/>, q/k projection rows permuted from
/// HF's rotate-half layout to GGUF's interleaved pairs for llama/mistral (<see cref="PermuteSourceRow"/>; qwen2 is
/// not permuted: llama.cpp uses NEOX rope for it), 1-D tensors (norms, biases) kept F32, hyperparameters and
/// tokenizer metadata written under llama.cpp's keys, Llama-3 rope scaling as a rope_freqs.weight tensor.
/// </summary>
internal static class HfToGguf
{
    /// <summary>A storage type for --type: one the reference quantizers write (f32, f16, bf16, q8_0, q4_0, q4_k, q6_k, ...).</summary>
    public static DType ParseType(string s) => DTypes.Parse(s, "--type", DTypes.Quantizable).Type;

    /// <summary>llama_ftype of a whole-file type (general.file_type).</summary>
    public static uint FileType(DType t) => DTypes.Of(t).FileType ?? throw new ArgumentOutOfRangeException(nameof(t), t, "no llama_ftype");

    /// <summary>
    /// convert_hf_to_gguf.py's permute(w, n_head, n_head_kv): w.reshape(nh, 2, rows/nh/2, ...).swapaxes(1, 2).
    /// Output row r = h*HS + 2i + j takes HF row h*HS + j*HS/2 + i, turning rotate-half pairs (i, i+HS/2) into
    /// adjacent pairs (2i, 2i+1). <paramref name="heads"/> is n_head for q and n_head_kv for k.
    /// </summary>
    public static int PermuteSourceRow(int outRow, int heads, int rows)
    {
        int hs = rows / heads, half = hs / 2;
        int h = outRow / hs, w = outRow % hs;
        int i = w / 2, j = w % 2;
        return h * hs + j * half + i;
    }

    /// <summary>The inverse of <see cref="PermuteSourceRow"/>: the GGUF row that holds HF row <paramref name="hfRow"/>.</summary>
    public static int UnpermuteSourceRow(int hfRow, int heads, int rows)
    {
        int hs = rows / heads, half = hs / 2;
        int h = hfRow / hs, w = hfRow % hs;
        int j = w / half, i = w % half;
        return h * hs + 2 * i + j;
    }

    public sealed record Options(DType Type = DType.F16, string? Name = null);

    /// <summary>Builds the writer (metadata + lazy tensors reading from the memory-mapped folder, which must stay
    /// open until Write finishes).</summary>
    public static GgufWriter Build(HfModelFolder folder, Options options)
    {
        var c = folder.Config;
        string arch = c.GgufArchitecture;
        var table = TensorNames.For(arch)!;
        var w = new GgufWriter();
        w.Set(GgufKeys.Architecture, arch)
         .Set(GgufKeys.Name, options.Name ?? Path.GetFileName(folder.Path.TrimEnd(Path.DirectorySeparatorChar)))
         .Set(GgufKeys.ContextLength(arch), (uint)c.MaxPositionEmbeddings)
         .Set(GgufKeys.EmbeddingLength(arch), (uint)c.HiddenSize)
         .Set(GgufKeys.BlockCount(arch), (uint)c.NumHiddenLayers)
         .Set(GgufKeys.FeedForwardLength(arch), (uint)c.IntermediateSize)
         .Set(GgufKeys.HeadCount(arch), (uint)c.NumAttentionHeads)
         .Set(GgufKeys.HeadCountKv(arch), (uint)c.NumKeyValueHeads)
         .Set(GgufKeys.RopeFreqBase(arch), c.RopeTheta)
         .Set(GgufKeys.RmsEpsilon(arch), c.RmsNormEps)
         .Set(GgufKeys.FileType, FileType(options.Type))
         .Set(GgufKeys.VocabSize(arch), (uint)c.VocabSize)
         .Set(GgufKeys.RopeDimensionCount(arch), (uint)c.HeadSize);
        if (c.HeadDim is { } hd && hd != c.HiddenSize / c.NumAttentionHeads)
        {
            w.Set(GgufKeys.KeyLength(arch), (uint)hd);
            w.Set(GgufKeys.ValueLength(arch), (uint)hd);
        }
        if (DTypes.Of(options.Type).BlockSize > 1) w.Set(GgufKeys.QuantizationVersion, 2u);
        if (c.RopeScaling is { Type: "linear" } lin)
        {
            w.Set(GgufKeys.RopeScalingType(arch), "linear");
            w.Set(GgufKeys.RopeScalingFactor(arch), lin.Factor);
        }

        WriteTokenizer(folder, w);

        var src = folder.Weights.Tensors;
        var used = new HashSet<string>(StringComparer.Ordinal);
        var missing = new List<string>();
        void Add(TensorName tn, int layer)
        {
            string hf = tn.HfFor(layer), gg = tn.GgufFor(layer);
            if (!src.TryGetValue(hf, out var t))
            {
                if (!tn.Optional) missing.Add(hf);
                return;
            }
            used.Add(hf);
            AddTensor(w, gg, t, c, arch, options.Type);
        }
        foreach (var tn in table.Where(t => !t.PerLayer && t.Gguf == "token_embd.weight")) Add(tn, 0);
        for (int l = 0; l < c.NumHiddenLayers; l++)
            foreach (var tn in table.Where(t => t.PerLayer)) Add(tn, l);
        foreach (var tn in table.Where(t => !t.PerLayer && t.Gguf != "token_embd.weight")) Add(tn, 0);
        if (c.TieWordEmbeddings && src.ContainsKey("lm_head.weight")) used.Add("lm_head.weight");
        if (missing.Count > 0)
            throw new InvalidDataException($"{folder.Weights.Path}: {missing.Count} tensor(s) a {c.ModelType} model needs are missing: {string.Join(", ", missing.Take(8))}{(missing.Count > 8 ? ", ..." : "")}");
        var unused = src.Keys.Where(k => !used.Contains(k) && !k.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal)).ToList();
        if (unused.Count > 0)
            throw new InvalidDataException($"{folder.Weights.Path}: {unused.Count} tensor(s) have no GGUF name for {arch}: {string.Join(", ", unused.Take(8))}");

        if (c.RopeScaling is { Type: "llama3" } l3)
        {
            var factors = Llama3RopeFactors(c.HeadSize, c.RopeTheta, l3);
            w.AddTensor("rope_freqs.weight", [factors.Length], factors);
        }
        return w;
    }

    /// <summary>convert_hf_to_gguf.py's Llama-3 rope_freqs: per frequency pair, the divisor llama.cpp applies.</summary>
    public static float[] Llama3RopeFactors(int headDim, float ropeTheta, HfRopeScaling s)
    {
        float factor = s.Factor;
        float low = s.LowFreqFactor ?? 1f, high = s.HighFreqFactor ?? 4f;
        float oldCtx = s.OriginalMaxPositionEmbeddings ?? 8192;
        double lowWavelen = oldCtx / low, highWavelen = oldCtx / high;
        var r = new float[headDim / 2];
        for (int i = 0; i < r.Length; i++)
        {
            float freq = 1f / MathF.Pow(ropeTheta, 2f * i / headDim);
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

    /// <summary>The type a matrix named <paramref name="name"/> with rows of <paramref name="cols"/> is stored as when
    /// the file type is <paramref name="type"/>: the output matrix is the most sensitive, so 4-bit files keep it at
    /// Q8_0 (Q4_0) or Q6_K (Q4_K) as llama-quantize does; rows that do not fill whole blocks fall back (k-quants to
    /// Q8_0, then F16), as llama.cpp falls back.</summary>
    public static DType StorageType(string name, DType type, long cols)
    {
        DType store = type;
        if (store is DType.Q4_0 && name == "output.weight") store = DType.Q8_0;
        if (store is DType.Q4_K && name == "output.weight") store = DType.Q6_K;
        if (cols % DTypes.Of(store).BlockSize != 0 && DTypes.Of(store).BlockSize == 256) store = DType.Q8_0;
        if (cols % DTypes.Of(store).BlockSize != 0) store = DType.F16;
        return store;
    }

    private static void AddTensor(GgufWriter w, string name, TensorInfo t, HfConfig c, string arch, DType type)
    {
        if (DTypes.Of(t.Type).BlockSize != 1 || !DTypes.Of(t.Type).CanDequantize)
            throw new InvalidDataException($"tensor '{t.Name}' is {t.Type}; only F32, F16 and BF16 checkpoints convert");
        if (t.Shape.Length is 0 or > 2) throw new InvalidDataException($"tensor '{t.Name}' has shape [{string.Join(", ", t.Shape)}], expected 1 or 2 dimensions");
        int rows = t.Shape.Length == 1 ? 1 : checked((int)t.Shape[0]);
        int cols = checked((int)t.Shape[^1]);
        DType store = t.Shape.Length == 1 ? DType.F32 : StorageType(name, type, cols);

        int heads = 0;
        if (arch == "llama" && (name.EndsWith("attn_q.weight", StringComparison.Ordinal) || name.EndsWith("attn_q.bias", StringComparison.Ordinal))) heads = c.NumAttentionHeads;
        if (arch == "llama" && (name.EndsWith("attn_k.weight", StringComparison.Ordinal) || name.EndsWith("attn_k.bias", StringComparison.Ordinal))) heads = c.NumKeyValueHeads;
        int permRows = t.Shape.Length == 1 ? cols : rows;
        if (heads > 0 && permRows % (heads * 2) != 0) throw new InvalidDataException($"tensor '{t.Name}' has {permRows} rows, not a multiple of 2 x {heads} heads");

        long srcRowBytes = DTypes.Of(t.Type).RowBytes(cols);
        unsafe
        {
            byte* basePtr = (byte*)t.Data;
            if (t.Shape.Length == 1 && heads > 0)
            {
                // A bias: permute its elements like rows.
                var bias = new float[cols];
                Tensors.Types.DTypes.Of(t.Type).DequantizeRow(new ReadOnlySpan<byte>(basePtr, (int)srcRowBytes), bias);
                var perm = new float[cols];
                for (int r = 0; r < cols; r++) perm[r] = bias[PermuteSourceRow(r, heads, cols)];
                w.AddTensor(name, t.Shape, perm, DType.F32);
                return;
            }
            var shape = t.Shape;
            w.AddTensor(name, shape, store, (r, dst) =>
            {
                int s = heads > 0 ? PermuteSourceRow(r, heads, rows) : r;
                Tensors.Types.DTypes.Of(t.Type).DequantizeRow(new ReadOnlySpan<byte>(basePtr + s * srcRowBytes, checked((int)srcRowBytes)), dst);
            });
        }
    }

    private static void WriteTokenizer(HfModelFolder folder, GgufWriter w)
    {
        if (folder.TokenizerJsonPath is null) return;
        var c = folder.Config;
        var vocab = HfVocab.Load(folder.TokenizerJsonPath, c.VocabSize);
        if (vocab.Tokens.Length > c.VocabSize)
            throw new InvalidDataException($"{folder.TokenizerJsonPath}: {vocab.Tokens.Length} tokens, more than config.json vocab_size {c.VocabSize}");
        vocab.WriteTo(w);
        var tc = folder.TokenizerConfig;
        var gen = folder.GenerationConfig;
        int? bos = vocab.IdOf(tc?.BosToken) ?? c.BosTokenId ?? gen?.BosTokenId;
        int? eos = vocab.IdOf(tc?.EosToken) ?? (c.EosTokenIds.Count > 0 ? c.EosTokenIds[0] : (int?)null) ?? (gen?.EosTokenIds.Count > 0 ? gen.EosTokenIds[0] : (int?)null);
        int? unk = vocab.IdOf(tc?.UnkToken);
        int? pad = vocab.IdOf(tc?.PadToken) ?? c.PadTokenId;
        if (bos is { } b) w.Set(GgufKeys.BosId, (uint)b);
        if (eos is { } e) w.Set(GgufKeys.EosId, (uint)e);
        if (unk is { } u) w.Set(GgufKeys.UnkId, (uint)u);
        if (pad is { } p) w.Set(GgufKeys.PadId, (uint)p);
        if (tc?.AddBosToken is { } ab) w.Set(GgufKeys.AddBos, ab);
        else if (vocab.AddBos is { } pb) w.Set(GgufKeys.AddBos, pb);
        else if (vocab.Model == "llama") w.Set(GgufKeys.AddBos, true);
        if (tc?.AddEosToken is { } ae) w.Set(GgufKeys.AddEos, ae);
        if (vocab.Model == "llama") w.Set(GgufKeys.AddSpacePrefix, true);
        if (tc?.ChatTemplate is { } tpl) w.Set(GgufKeys.ChatTemplate, tpl);
    }
}
