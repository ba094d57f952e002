using SharpLM.Formats.Gguf;
using SharpLM.Tensors;

namespace SharpLM.Tests.Models;

/// <summary>The shape of a tiny random LLaMA-family model for tests.</summary>
internal sealed record TinySpec(string Arch, int Dim, int Layers, int Heads, int KvHeads, int Ffn, int Vocab, int Ctx = 256,
                                float Theta = 10000f, bool Bias = false, bool Tied = false, float Eps = 1e-5f)
{
    public int HeadDim => Dim / Heads;
    public override string ToString() => $"{Arch} C{Dim} L{Layers} NH{Heads} KVH{KvHeads} HS{HeadDim} F{Ffn} V{Vocab}{(Bias ? " bias" : "")}{(Tied ? " tied" : "")}";
}

/// <summary>
/// Random weights in Hugging Face layout and names (q/k rows in rotate-half order), row-major, and writers that
/// save them as GGUF the way llama.cpp's converter does (LLaMA q/k rows permuted to adjacent-pair order).
/// </summary>
internal sealed class TinyLlama
{
    public TinySpec Spec { get; }
    /// <summary>HF name -> (row-major shape, data).</summary>
    public Dictionary<string, (long[] Shape, float[] Data)> Tensors { get; } = new(StringComparer.Ordinal);

    private TinyLlama(TinySpec spec) => Spec = spec;

    public static TinyLlama Random(TinySpec s, int seed)
    {
        var m = new TinyLlama(s);
        var rng = new Random(seed);
        int qDim = s.Heads * s.HeadDim, kvDim = s.KvHeads * s.HeadDim;
        void Mat(string name, int rows, int cols, float scale)
        {
            var d = new float[rows * cols];
            for (int i = 0; i < d.Length; i++) d[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
            m.Tensors[name] = ([rows, cols], d);
        }
        void Vec(string name, int n, float center, float spread)
        {
            var d = new float[n];
            for (int i = 0; i < n; i++) d[i] = center + (float)(rng.NextDouble() * 2 - 1) * spread;
            m.Tensors[name] = ([n], d);
        }
        float ws(int fanIn) => 1.7f / MathF.Sqrt(fanIn);
        Mat("model.embed_tokens.weight", s.Vocab, s.Dim, s.Tied ? 0.25f : 1f); // tied: a small embedding so the output is not just the input token
        for (int l = 0; l < s.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            Vec(p + "input_layernorm.weight", s.Dim, 1f, 0.2f);
            Mat(p + "self_attn.q_proj.weight", qDim, s.Dim, ws(s.Dim) * 2);
            Mat(p + "self_attn.k_proj.weight", kvDim, s.Dim, ws(s.Dim) * 2);
            Mat(p + "self_attn.v_proj.weight", kvDim, s.Dim, ws(s.Dim));
            Mat(p + "self_attn.o_proj.weight", s.Dim, qDim, ws(qDim));
            if (s.Bias)
            {
                Vec(p + "self_attn.q_proj.bias", qDim, 0f, 0.3f);
                Vec(p + "self_attn.k_proj.bias", kvDim, 0f, 0.3f);
                Vec(p + "self_attn.v_proj.bias", kvDim, 0f, 0.3f);
            }
            Vec(p + "post_attention_layernorm.weight", s.Dim, 1f, 0.2f);
            Mat(p + "mlp.gate_proj.weight", s.Ffn, s.Dim, ws(s.Dim));
            Mat(p + "mlp.up_proj.weight", s.Ffn, s.Dim, ws(s.Dim));
            Mat(p + "mlp.down_proj.weight", s.Dim, s.Ffn, ws(s.Ffn));
        }
        Vec("model.norm.weight", s.Dim, 1f, 0.2f);
        if (!s.Tied) Mat("lm_head.weight", s.Vocab, s.Dim, ws(s.Dim) * 3);
        return m;
    }

    /// <summary>HF -> GGUF names (llama.cpp's tensor table).</summary>
    public static string GgufName(string hf)
    {
        if (hf == "model.embed_tokens.weight") return "token_embd.weight";
        if (hf == "model.norm.weight") return "output_norm.weight";
        if (hf == "lm_head.weight") return "output.weight";
        var parts = hf.Split('.');
        string l = parts[2], rest = string.Join('.', parts[3..]);
        string mapped = rest switch
        {
            "input_layernorm.weight" => "attn_norm.weight",
            "self_attn.q_proj.weight" => "attn_q.weight",
            "self_attn.k_proj.weight" => "attn_k.weight",
            "self_attn.v_proj.weight" => "attn_v.weight",
            "self_attn.o_proj.weight" => "attn_output.weight",
            "self_attn.q_proj.bias" => "attn_q.bias",
            "self_attn.k_proj.bias" => "attn_k.bias",
            "self_attn.v_proj.bias" => "attn_v.bias",
            "post_attention_layernorm.weight" => "ffn_norm.weight",
            "mlp.gate_proj.weight" => "ffn_gate.weight",
            "mlp.up_proj.weight" => "ffn_up.weight",
            "mlp.down_proj.weight" => "ffn_down.weight",
            _ => throw new ArgumentException(hf),
        };
        return $"blk.{l}.{mapped}";
    }

    /// <summary>
    /// llama.cpp's converter permutation for LLaMA q/k: within each head, row a*HS/2+i (rotate-half order) moves to
    /// row 2i+a (adjacent pairs). Works on weight rows (rows x cols) and on biases (cols = 1).
    /// </summary>
    public static float[] PermuteRows(float[] w, int heads, int headDim, int cols)
    {
        var r = new float[w.Length];
        int half = headDim / 2;
        for (int h = 0; h < heads; h++)
            for (int a = 0; a < 2; a++)
                for (int i = 0; i < half; i++)
                    Array.Copy(w, (long)(h * headDim + a * half + i) * cols, r, (long)(h * headDim + 2 * i + a) * cols, cols);
        return r;
    }

    /// <summary>
    /// Writes a GGUF model llama.cpp can load: arch metadata, a synthetic SentencePiece-style vocabulary
    /// (&lt;unk&gt; &lt;s&gt; &lt;/s&gt;, 256 byte tokens, then "▁tokN" pieces up to V), weight matrices stored as
    /// <paramref name="type"/>, norms as F32.
    /// </summary>
    public void WriteGguf(string path, DType type = DType.F32, DType? embeddingType = null, Action<GgufWriter>? tweak = null, bool vocab = true)
    {
        var s = Spec;
        var w = new GgufWriter();
        string a = s.Arch;
        w.Set("general.architecture", a)
         .Set("general.name", "tiny-test")
         .Set($"{a}.context_length", (uint)s.Ctx)
         .Set($"{a}.embedding_length", (uint)s.Dim)
         .Set($"{a}.block_count", (uint)s.Layers)
         .Set($"{a}.feed_forward_length", (uint)s.Ffn)
         .Set($"{a}.attention.head_count", (uint)s.Heads)
         .Set($"{a}.attention.head_count_kv", (uint)s.KvHeads)
         .Set($"{a}.rope.dimension_count", (uint)s.HeadDim)
         .Set($"{a}.rope.freq_base", s.Theta)
         .Set($"{a}.attention.layer_norm_rms_epsilon", s.Eps);
        if (vocab) WriteVocab(w, s.Vocab);
        tweak?.Invoke(w);
        bool permute = a != "qwen2";
        foreach (var (name, (shape, data)) in Tensors)
        {
            var d = data;
            if (permute && name.EndsWith("q_proj.weight", StringComparison.Ordinal)) d = PermuteRows(d, s.Heads, s.HeadDim, s.Dim);
            if (permute && name.EndsWith("k_proj.weight", StringComparison.Ordinal)) d = PermuteRows(d, s.KvHeads, s.HeadDim, s.Dim);
            if (permute && name.EndsWith("q_proj.bias", StringComparison.Ordinal)) d = PermuteRows(d, s.Heads, s.HeadDim, 1);
            if (permute && name.EndsWith("k_proj.bias", StringComparison.Ordinal)) d = PermuteRows(d, s.KvHeads, s.HeadDim, 1);
            var store = shape.Length == 1 ? DType.F32 : name == "model.embed_tokens.weight" ? embeddingType ?? type : type;
            if (SharpLM.Tensors.Types.DTypes.Of(store).CanQuantize) w.AddTensor(GgufName(name), shape, d, store);
            else
            {
                // k-quants: the kernels' quantizer (matches ggml's reference quantization)
                int cols = (int)shape[^1], rows = d.Length / cols;
                long rowBytes = DTypeInfo.RowBytes(store, cols);
                var bytes = new byte[rowBytes * rows];
                for (int r = 0; r < rows; r++) SharpLM.Tensors.Types.DTypes.Of(store).QuantizeRow(d.AsSpan(r * cols, cols), bytes.AsSpan((int)(r * rowBytes), (int)rowBytes));
                w.AddTensor(GgufName(name), store, shape, bytes);
            }
        }
        w.Write(path);
    }

    /// <summary>
    /// A synthetic SentencePiece-style vocabulary of <paramref name="v"/> tokens llama.cpp loads: &lt;unk&gt; &lt;s&gt;
    /// &lt;/s&gt;, 256 byte tokens, then "▁tokN" pieces.
    /// </summary>
    public static void WriteVocab(GgufWriter w, int v)
    {
        var tokens = new string[v];
        var scores = new float[v];
        var types = new int[v];
        tokens[0] = "<unk>"; types[0] = 2;
        tokens[1] = "<s>"; types[1] = 3;
        tokens[2] = "</s>"; types[2] = 3;
        for (int b = 0; b < 256 && b + 3 < v; b++) { tokens[b + 3] = $"<0x{b:X2}>"; types[b + 3] = 6; }
        for (int i = 259; i < v; i++) { tokens[i] = "\u2581tok" + i.ToString(System.Globalization.CultureInfo.InvariantCulture); types[i] = 1; scores[i] = -i; }
        w.Set("tokenizer.ggml.model", "llama")
         .Set("tokenizer.ggml.tokens", GgufArray.Of(tokens))
         .Set("tokenizer.ggml.scores", GgufArray.Of(scores))
         .Set("tokenizer.ggml.token_type", GgufArray.Of(types))
         .Set("tokenizer.ggml.bos_token_id", 1u)
         .Set("tokenizer.ggml.eos_token_id", 2u)
         .Set("tokenizer.ggml.unknown_token_id", 0u);
    }

    /// <summary>Deterministic pseudo-random prompt ids in [3, V).</summary>
    public int[] RandomPrompt(int n, int seed)
    {
        var rng = new Random(seed);
        var ids = new int[n];
        ids[0] = 1;
        for (int i = 1; i < n; i++) ids[i] = rng.Next(3, Spec.Vocab);
        return ids;
    }
}
