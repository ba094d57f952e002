using System.Text.Json;
using SharpLM.Formats.Safetensors;
using SharpLM.Tensors;
using SharpLM.Testing;

namespace SharpLM.Tests.Formats;

/// <summary>A tiny random Hugging Face folder (config.json, tokenizer files copied from a real tokenizer, safetensors).</summary>
internal static class TinyHf
{
    public const int C = 64, L = 2, NH = 4, KVH = 2, F = 96;

    /// <summary>modelType "llama"/"mistral" (with the Mistral tokenizer.json) or "qwen2" (with the Llama-3 one, byte-level).
    /// <paramref name="llama3Tokenizer"/>: a tokenizer.json of the Llama-3 family to use instead (e.g. Llama 3.1's), with
    /// the Llama-3 vocabulary size and ids; <paramref name="eos"/>: config.json's eos_token_id list instead of the
    /// tokenizer's usual one.</summary>
    public static string Create(string dir, string modelType, DType weights = DType.BF16, bool tied = false, int shards = 1, bool llama3Rope = false, bool attentionBias = false,
        string? llama3Tokenizer = null, int[]? eos = null)
    {
        Directory.CreateDirectory(dir);
        bool spm = modelType != "qwen2" && llama3Tokenizer is null;
        var tokJson = llama3Tokenizer ?? (spm ? TestPaths.Asset("npm", "tokenizer-llama2", "models", "tokenizer.json") : TestPaths.Asset("npm", "tokenizer-llama3", "models", "tokenizer.json"));
        File.Copy(tokJson, Path.Combine(dir, "tokenizer.json"), overwrite: true);
        int vocab = spm ? 32000 : 128256;
        var tc = spm
            ? new Dictionary<string, object> { ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["unk_token"] = "<unk>", ["add_bos_token"] = true, ["chat_template"] = "{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}" }
            : new Dictionary<string, object> { ["bos_token"] = "<|begin_of_text|>", ["eos_token"] = "<|end_of_text|>", ["chat_template"] = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}" };
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), JsonSerializer.Serialize(tc));
        var cfg = new Dictionary<string, object>
        {
            ["architectures"] = new[] { modelType switch { "llama" => "LlamaForCausalLM", "mistral" => "MistralForCausalLM", _ => "Qwen2ForCausalLM" } },
            ["model_type"] = modelType,
            ["hidden_size"] = C,
            ["intermediate_size"] = F,
            ["num_hidden_layers"] = L,
            ["num_attention_heads"] = NH,
            ["num_key_value_heads"] = KVH,
            ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 500000.0,
            ["max_position_embeddings"] = 512,
            ["vocab_size"] = vocab,
            ["tie_word_embeddings"] = tied,
            ["bos_token_id"] = spm ? 1 : 128000,
            ["eos_token_id"] = eos ?? (spm ? new[] { 2 } : new[] { 128001, 128009 }),
            ["torch_dtype"] = "bfloat16",
            ["attention_bias"] = attentionBias,
        };
        if (llama3Rope)
            cfg["rope_scaling"] = new Dictionary<string, object> { ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 64 };
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(cfg));

        var rng = new Random(5);
        var w = new SafetensorsWriter().SetMetadata("format", "pt");
        void T(string name, params long[] shape)
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            var d = new float[n];
            bool norm = name.Contains("norm", StringComparison.Ordinal);
            for (long i = 0; i < n; i++) d[i] = norm ? 1f + 0.2f * (float)(rng.NextDouble() - 0.5) : 0.1f * (float)(rng.NextDouble() * 2 - 1);
            w.Add(name, shape, d, weights);
        }
        int hs = C / NH;
        T("model.embed_tokens.weight", vocab, C);
        for (int l = 0; l < L; l++)
        {
            string p = $"model.layers.{l}.";
            T(p + "input_layernorm.weight", C);
            T(p + "self_attn.q_proj.weight", C, C);
            T(p + "self_attn.k_proj.weight", KVH * hs, C);
            T(p + "self_attn.v_proj.weight", KVH * hs, C);
            if (modelType == "qwen2" || attentionBias)
            {
                T(p + "self_attn.q_proj.bias", C);
                T(p + "self_attn.k_proj.bias", KVH * hs);
                T(p + "self_attn.v_proj.bias", KVH * hs);
            }
            T(p + "self_attn.o_proj.weight", C, C);
            if (attentionBias && modelType != "qwen2") T(p + "self_attn.o_proj.bias", C); // transformers' Llama: o_proj has bias=attention_bias
            T(p + "post_attention_layernorm.weight", C);
            T(p + "mlp.gate_proj.weight", F, C);
            T(p + "mlp.up_proj.weight", F, C);
            T(p + "mlp.down_proj.weight", C, F);
        }
        T("model.norm.weight", C);
        if (!tied) T("lm_head.weight", vocab, C);
        if (shards > 1) w.WriteSharded(dir, w.DataBytes / shards + 1);
        else w.Write(Path.Combine(dir, "model.safetensors"));
        return dir;
    }
}
