namespace SharpLM.Models.Llama;

/// <summary>The tensor names of a LLaMA-family checkpoint in one file convention.</summary>
internal sealed record LlamaTensorNames(
    string Embedding, string OutputNorm, string Output,
    string AttnNorm, string Q, string K, string V, string O, string QBias, string KBias, string VBias,
    string FfnNorm, string Gate, string Up, string Down, string? RopeFreqs)
{
    /// <summary>GGUF (llama.cpp's names; blocks are <c>blk.N.</c>).</summary>
    public static readonly LlamaTensorNames Gguf = new(
        "token_embd.weight", "output_norm.weight", "output.weight",
        "blk.{0}.attn_norm.weight", "blk.{0}.attn_q.weight", "blk.{0}.attn_k.weight", "blk.{0}.attn_v.weight", "blk.{0}.attn_output.weight",
        "blk.{0}.attn_q.bias", "blk.{0}.attn_k.bias", "blk.{0}.attn_v.bias",
        "blk.{0}.ffn_norm.weight", "blk.{0}.ffn_gate.weight", "blk.{0}.ffn_up.weight", "blk.{0}.ffn_down.weight", "rope_freqs.weight");

    /// <summary>Hugging Face transformers (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM).</summary>
    public static readonly LlamaTensorNames HuggingFace = new(
        "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
        "model.layers.{0}.input_layernorm.weight", "model.layers.{0}.self_attn.q_proj.weight", "model.layers.{0}.self_attn.k_proj.weight",
        "model.layers.{0}.self_attn.v_proj.weight", "model.layers.{0}.self_attn.o_proj.weight",
        "model.layers.{0}.self_attn.q_proj.bias", "model.layers.{0}.self_attn.k_proj.bias", "model.layers.{0}.self_attn.v_proj.bias",
        "model.layers.{0}.post_attention_layernorm.weight", "model.layers.{0}.mlp.gate_proj.weight", "model.layers.{0}.mlp.up_proj.weight",
        "model.layers.{0}.mlp.down_proj.weight", null);

    public static string Block(string pattern, int layer) => string.Format(System.Globalization.CultureInfo.InvariantCulture, pattern, layer);

    /// <summary>
    /// Every tensor of <paramref name="c"/> with its row-major shape. Biases are required when the config says so
    /// and optional otherwise; the output head is optional when the embedding may be tied.
    /// </summary>
    public IEnumerable<TensorSpec> Declare(LlamaConfig c)
    {
        long dim = c.Dim, qDim = (long)c.Heads * c.HeadDim, kvDim = (long)c.KvHeads * c.HeadDim;
        yield return new(Embedding, [c.VocabSize, dim]);
        yield return new(OutputNorm, [dim]);
        yield return new(Output, [c.VocabSize, dim], Optional: true);
        if (RopeFreqs != null) yield return new(RopeFreqs, [c.RopeDim / 2], Optional: true);
        for (int l = 0; l < c.Layers; l++)
        {
            yield return new(Block(AttnNorm, l), [dim]);
            yield return new(Block(Q, l), [qDim, dim]);
            yield return new(Block(K, l), [kvDim, dim]);
            yield return new(Block(V, l), [kvDim, dim]);
            yield return new(Block(O, l), [dim, qDim]);
            yield return new(Block(QBias, l), [qDim], Optional: !c.AttentionBias);
            yield return new(Block(KBias, l), [kvDim], Optional: !c.AttentionBias);
            yield return new(Block(VBias, l), [kvDim], Optional: !c.AttentionBias);
            yield return new(Block(FfnNorm, l), [dim]);
            yield return new(Block(Gate, l), [c.FfnDim, dim]);
            yield return new(Block(Up, l), [c.FfnDim, dim]);
            yield return new(Block(Down, l), [dim, c.FfnDim]);
        }
    }

    /// <summary>Tensors that may sit in a checkpoint without being used (precomputed RoPE tables).</summary>
    public static bool Ignorable(string name) => name.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal);
}
