using SharpLM.Models.Llama;

namespace SharpLM.Tests.Models;

public sealed class LlamaConfigTests
{
    [Fact]
    public void Hf_llama3_rope_scaling_follows_the_transformers_formula()
    {
        // Llama-3.2-1B's config.json values
        var cfg = LlamaConfig.FromHfJson("""
            {"architectures": ["LlamaForCausalLM"], "hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32,
             "num_key_value_heads": 8, "intermediate_size": 8192, "vocab_size": 128256, "max_position_embeddings": 131072,
             "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "head_dim": 64, "tie_word_embeddings": true,
             "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                              "original_max_position_embeddings": 8192, "rope_type": "llama3"},
             "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]}
            """, "config.json");
        Assert.Equal(RopeScalingType.Llama3, cfg.RopeScaling);
        Assert.Equal([128001, 128008, 128009], cfg.EosTokenIds);
        Assert.True(cfg.TiedEmbeddings);
        Assert.Equal(4, cfg.Heads / cfg.KvHeads);
        var inv = cfg.InverseFrequencies();
        // reference: transformers' _compute_llama3_parameters written out independently here
        for (int i = 0; i < inv.Length; i++)
        {
            double f = Math.Pow(500000.0, -2.0 * i / 64), wl = 2 * Math.PI / f, want;
            if (wl < 8192 / 4.0) want = f;
            else if (wl > 8192 / 1.0) want = f / 32;
            else { double sm = (8192 / wl - 1) / (4 - 1); want = (1 - sm) * f / 32 + sm * f; }
            Assert.Equal(want, inv[i], want * 1e-6);
        }
        Assert.Equal(1.0f, inv[0]);          // highest frequency untouched
        Assert.Equal(Math.Pow(500000.0, -62.0 / 64) / 32, inv[31], 1e-12); // lowest divided by the factor
    }

    [Fact]
    public void Gguf_metadata_reads_qwen2_as_neox_and_llama_as_adjacent_pairs()
    {
        Dictionary<string, object> md = new()
        {
            ["general.architecture"] = "qwen2", ["qwen2.context_length"] = 32768u, ["qwen2.embedding_length"] = 896u,
            ["qwen2.block_count"] = 24u, ["qwen2.feed_forward_length"] = 4864u, ["qwen2.attention.head_count"] = 14u,
            ["qwen2.attention.head_count_kv"] = 2u, ["qwen2.rope.freq_base"] = 1000000f, ["qwen2.attention.layer_norm_rms_epsilon"] = 1e-6f,
            ["tokenizer.ggml.eos_token_id"] = 151645u,
        };
        var q = LlamaConfig.FromGguf(md, "x.gguf", 151936);
        Assert.True(q.RopeNeox);
        Assert.Equal(64, q.HeadDim);
        Assert.Equal(151936, q.VocabSize);
        Assert.Equal([151645], q.EosTokenIds);
        md["general.architecture"] = "llama";
        foreach (var key in md.Keys.Where(k => k.StartsWith("qwen2.", StringComparison.Ordinal)).ToList())
        {
            md["llama." + key[6..]] = md[key];
            md.Remove(key);
        }
        Assert.False(LlamaConfig.FromGguf(md, "x.gguf", 151936).RopeNeox);
    }

    [Fact]
    public void Gguf_rope_freqs_divide_the_frequencies()
    {
        var cfg = new LlamaConfig
        {
            Architecture = "llama", Dim = 8, Layers = 1, Heads = 1, KvHeads = 1, HeadDim = 8, FfnDim = 8, VocabSize = 4, ContextLength = 8,
            RopeDim = 8, RopeTheta = 10000f,
        };
        var plain = cfg.InverseFrequencies();
        var scaled = cfg.InverseFrequencies([1f, 2f, 4f, 8f]);
        for (int i = 0; i < 4; i++) Assert.Equal(plain[i] / (1 << i), scaled[i], 1e-7);
    }
}
