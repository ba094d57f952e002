using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Models;
using SharpLM.Sizing;
using SharpLM.Testing;

namespace SharpLM.Tests.Models;

/// <summary>The one configuration reader: config.json of every architecture, GGUF metadata, the round trips back, and
/// errors that name the file and the key.</summary>
public sealed class ModelConfigTests
{
    private static ModelConfig Hf(string json) => ModelConfigReader.FromHfJson(json, "test/config.json");

    private static ModelConfig Real(string name) => ModelConfigReader.FromHfConfigFile(Path.Combine(TestPaths.TestData, "sizing", name + ".config.json"));

    private static InvalidDataException Bad(string json) => Assert.Throws<InvalidDataException>(() => Hf(json));

    [Fact]
    public void Reads_the_real_configs_of_every_family()
    {
        var b = Real("bert-base-uncased");
        Assert.Equal(("bert", 30522, 768, 768, 12, 12, 3072, 512, 2, "gelu"),
            (b.Architecture, b.Vocab, b.Width, b.EmbeddingWidth, b.Layers, b.Heads, b.FfnWidth, b.Context, b.TokenTypes, b.Activation));
        var a = Real("albert-base-v2");
        Assert.Equal(("albert", 30000, 768, 128, 12, 12, 3072, 1, "gelu_tanh"),
            (a.Architecture, a.Vocab, a.Width, a.EmbeddingWidth, a.Layers, a.Heads, a.FfnWidth, a.LayerGroups, a.Activation));
        var d = Real("distilbert-base-uncased");
        Assert.Equal(("distilbert", 30522, 768, 6, 12, 3072, 0), (d.Architecture, d.Vocab, d.Width, d.Layers, d.Heads, d.FfnWidth, d.TokenTypes));
        var t = Real("tinyllama-1.1b");
        Assert.Equal(("llama", 32000, 2048, 22, 32, 4, 64, 5632, true), (t.Architecture, t.Vocab, t.Width, t.Layers, t.Heads, t.KvHeads, t.HeadSize, t.FfnWidth, t.RopeNeox));
        var q = Real("qwen2.5-0.5b");
        Assert.True(q.QkvBias && !q.OutputBias && q.TiedEmbeddings);
        var g = Real("gpt2");
        Assert.Equal(("gpt2", 768, 3072, 1024, "gelu_tanh", true), (g.Architecture, g.Width, g.FfnWidth, g.Context, g.Activation, g.TiedEmbeddings));
        var m = Real("mixtral-8x7b");
        Assert.Equal((8, 2), (m.Experts, m.ExpertsPerToken));
        Assert.Null(m.Arch.NotRunnableReason); // mixtures of experts run (MoeParityTests)
    }

    [Fact]
    public void Llama3_rope_scaling_follows_the_transformers_formula()
    {
        // Llama-3.2-1B's config.json values
        var cfg = Hf("""
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 32,
             "num_key_value_heads": 8, "intermediate_size": 8192, "vocab_size": 128256, "max_position_embeddings": 131072,
             "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "head_dim": 64, "tie_word_embeddings": true,
             "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                              "original_max_position_embeddings": 8192, "rope_type": "llama3"},
             "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]}
            """);
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
        Assert.Equal(Math.Pow(500000.0, -62.0 / 64) / 32, inv[31], 1e-6 * inv[31]); // lowest divided by the factor
    }

    [Fact]
    public void Rope_freqs_divide_the_frequencies()
    {
        var cfg = Hf("""{"model_type":"llama","vocab_size":4,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":1,"intermediate_size":8}""");
        var plain = cfg.InverseFrequencies();
        var scaled = cfg.InverseFrequencies([1f, 2f, 4f, 8f]);
        for (int i = 0; i < 4; i++) Assert.Equal(plain[i] / (1 << i), scaled[i], 1e-7);
    }

    private static string WriteGguf(string arch)
    {
        var w = new GgufWriter();
        w.Set(GgufKeys.Architecture, arch)
         .Set(GgufKeys.ContextLength(arch), 32768u).Set(GgufKeys.EmbeddingLength(arch), 896u).Set(GgufKeys.BlockCount(arch), 24u)
         .Set(GgufKeys.FeedForwardLength(arch), 4864u).Set(GgufKeys.HeadCount(arch), 14u).Set(GgufKeys.HeadCountKv(arch), 2u)
         .Set(GgufKeys.RopeFreqBase(arch), 1000000f).Set(GgufKeys.RmsEpsilon(arch), 1e-6f).Set(GgufKeys.EosId, 151645u)
         .Set(GgufKeys.Tokens, GgufArray.Of([.. Enumerable.Range(0, 151936).Select(i => "t" + i)]));
        var path = Path.Combine(TestPaths.NewTempDir(), arch + ".gguf");
        w.Write(path);
        return path;
    }

    [Fact]
    public void Gguf_metadata_reads_qwen2_as_neox_and_llama_as_adjacent_pairs()
    {
        using (var g = GgufFile.Open(WriteGguf("qwen2")))
        {
            var q = ModelConfigReader.FromGguf(g);
            Assert.Equal("qwen2", q.Architecture);
            Assert.True(q.RopeNeox);
            Assert.Equal(64, q.HeadSize);
            Assert.Equal(151936, q.Vocab);       // from the token list
            Assert.Equal([151645], q.EosTokenIds);
            Assert.True(q.TiedEmbeddings);       // no output.weight
        }
        using (var g = GgufFile.Open(WriteGguf("llama")))
            Assert.False(ModelConfigReader.FromGguf(g).RopeNeox);
        using (var g = GgufFile.Open(WriteGguf("mamba")))
            Assert.Contains("architecture 'mamba' is not supported", Assert.Throws<NotSupportedException>(() => ModelConfigReader.FromGguf(g)).Message, StringComparison.Ordinal);
    }

    /// <summary>A GGUF's end-of-generation ids are its eos, eot and eom ids (llama.cpp's keys; Llama 3.1's &lt;|eom_id|&gt;
    /// ends a message that awaits a tool's output), each once.</summary>
    [Fact]
    public void Gguf_eos_eot_and_eom_ids_all_end_generation()
    {
        var w = new GgufWriter();
        ModelConfigReader.ToGguf(Hf("""{"model_type":"llama","vocab_size":16,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":1,"intermediate_size":8}"""), w);
        w.Set(GgufKeys.EosId, 9u).Set(GgufKeys.EotId, 9u).Set(GgufKeys.EomId, 8u);
        var path = Path.Combine(TestPaths.NewTempDir(), "eom.gguf");
        w.Write(path);
        using var g = GgufFile.Open(path);
        Assert.Equal([9, 8], ModelConfigReader.FromGguf(g).EosTokenIds);
    }

    [Fact]
    public void A_missing_gguf_key_is_named()
    {
        var w = new GgufWriter().Set(GgufKeys.Architecture, "llama").Set(GgufKeys.EmbeddingLength("llama"), 8u).Set(GgufKeys.HeadCount("llama"), 2u);
        var path = Path.Combine(TestPaths.NewTempDir(), "m.gguf");
        w.Write(path);
        using var g = GgufFile.Open(path);
        Assert.Contains("'llama.block_count' is missing", Assert.Throws<InvalidDataException>(() => ModelConfigReader.FromGguf(g)).Message, StringComparison.Ordinal);
    }

    /// <summary>Every architecture's config round-trips through its config.json writer and reader, and through GGUF.</summary>
    [Theory]
    [InlineData("llama")]
    [InlineData("mistral")]
    [InlineData("qwen2")]
    [InlineData("gpt2")]
    [InlineData("bert")]
    [InlineData("distilbert")]
    [InlineData("albert")]
    public void Configs_round_trip_through_config_json_and_gguf(string arch)
    {
        var src = arch switch
        {
            "gpt2" => Hf("""{"model_type":"gpt2","vocab_size":50,"n_embd":32,"n_layer":3,"n_head":4,"n_positions":64,"layer_norm_epsilon":1e-5}"""),
            "bert" or "distilbert" or "albert" => Real(arch switch { "bert" => "bert-base-uncased", "albert" => "albert-base-v2", _ => "distilbert-base-uncased" }),
            _ => Hf($$"""{"model_type":"{{arch}}","vocab_size":50,"hidden_size":32,"num_hidden_layers":3,"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":40,"max_position_embeddings":64,"tie_word_embeddings":true}"""),
        };
        var back = Hf(ModelConfigReader.ToHfJson(src).ToJsonString());
        Assert.Equal(src with { EosTokenIds = [] }, back with { EosTokenIds = [] });
        Assert.Equal(src.EosTokenIds, back.EosTokenIds);
        if (src.Family == ArchFamily.Bert) return; // encoders are not written to GGUF by SharpLM
        var w = new GgufWriter();
        ModelConfigReader.ToGguf(src, w);
        var path = Path.Combine(TestPaths.NewTempDir(), arch + ".gguf");
        w.Write(path);
        using var g = GgufFile.Open(path);
        var fromGguf = ModelConfigReader.FromGguf(g);
        Assert.Equal((src.Vocab, src.Width, src.Layers, src.Heads, src.KvHeads, src.HeadSize, src.FfnWidth, src.Context, src.NormEps),
                     (fromGguf.Vocab, fromGguf.Width, fromGguf.Layers, fromGguf.Heads, fromGguf.KvHeads, fromGguf.HeadSize, fromGguf.FfnWidth, fromGguf.Context, fromGguf.NormEps));
    }

    [Fact]
    public void Unknown_architectures_name_the_value_and_the_supported_ones()
    {
        var e = Assert.Throws<NotSupportedException>(() => Hf("""{"model_type":"t5","d_model":512}"""));
        Assert.Contains("'t5'", e.Message, StringComparison.Ordinal);
        Assert.Contains("llama", e.Message, StringComparison.Ordinal);
        Assert.Contains("test/config.json", e.Message, StringComparison.Ordinal);
        Assert.Contains("'GPTNeoXForCausalLM'",
            Assert.Throws<NotSupportedException>(() => Hf("""{"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "hidden_size": 8}""")).Message, StringComparison.Ordinal);
        Assert.Contains("'model_type' is missing", Bad("""{"hidden_size":4}""").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_field_is_named()
    {
        Assert.Contains("'hidden_size' is missing", Bad("""{"model_type":"llama","vocab_size":10,"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":8}""").Message, StringComparison.Ordinal);
        Assert.Contains("'n_embd' is missing", Bad("""{"model_type":"gpt2","vocab_size":10,"n_layer":2,"n_head":2,"n_positions":8}""").Message, StringComparison.Ordinal);
        Assert.Contains("'hidden_size' is missing", Bad("""{"model_type":"bert","vocab_size":10}""").Message, StringComparison.Ordinal);
        Assert.Contains("'dim' is missing", Bad("""{"model_type":"distilbert","vocab_size":10}""").Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("num_hidden_layers", -2)]
    [InlineData("hidden_size", 0)]
    [InlineData("vocab_size", -1)]
    [InlineData("num_key_value_heads", -4)]
    [InlineData("intermediate_size", -8)]
    public void Negative_or_zero_sizes_name_the_field(string field, long value)
    {
        var fields = new Dictionary<string, long>
        {
            ["vocab_size"] = 100, ["hidden_size"] = 64, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4,
            ["num_key_value_heads"] = 2, ["intermediate_size"] = 128,
        };
        fields[field] = value;
        string json = "{\"model_type\":\"llama\"," + string.Join(",", fields.Select(kv => $"\"{kv.Key}\":{kv.Value}")) + "}";
        var e = Bad(json);
        Assert.Contains($"'{field}'", e.Message, StringComparison.Ordinal);
        Assert.Contains(value.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message, StringComparison.Ordinal);
        Assert.Contains("test/config.json", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Wrong_types_and_broken_json_are_clear()
    {
        Assert.Contains("'hidden_size' is \"big\", expected an integer", Bad("""{"model_type":"llama","vocab_size":10,"hidden_size":"big"}""").Message, StringComparison.Ordinal);
        Assert.Contains("'tie_word_embeddings' is \"yes\", expected true or false",
            Bad("""{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":8,"tie_word_embeddings":"yes"}""").Message,
            StringComparison.Ordinal);
        Assert.Contains("not valid JSON", Bad("""{"model_type": """).Message, StringComparison.Ordinal);
        Assert.Contains("not a multiple", Bad("""{"model_type":"llama","vocab_size":10,"hidden_size":10,"num_hidden_layers":1,"num_attention_heads":3,"intermediate_size":8}""").Message, StringComparison.Ordinal);
        Assert.Contains("'num_attention_heads' 4 is not a multiple of 'num_key_value_heads' 3",
            Bad("""{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":4,"num_key_value_heads":3,"intermediate_size":8}""").Message,
            StringComparison.Ordinal);
        Assert.Contains("not a multiple of the number of heads 5",
            Bad("""{"model_type":"bert","vocab_size":10,"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":5,"intermediate_size":8}""").Message, StringComparison.Ordinal);
        Assert.Contains("'hidden_act' 'swish' is not supported",
            Bad("""{"model_type":"bert","vocab_size":10,"hidden_size":32,"num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":8,"hidden_act":"swish"}""").Message, StringComparison.Ordinal);
        Assert.Contains("expected an object", Bad("[1, 2]").Message, StringComparison.Ordinal);
        // deep nesting is an error, not a stack overflow
        Assert.Contains("not valid JSON", Bad(new string('[', 10_000) + new string(']', 10_000)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Transformers_defaults_apply_where_keys_are_absent()
    {
        var a = Hf("""{"model_type":"llama","vocab_size":10,"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":8,"intermediate_size":8,"head_dim":null}""");
        Assert.Equal(8, a.KvHeads);      // num_key_value_heads defaults to num_attention_heads
        Assert.Equal(8, a.HeadSize);     // C / NH
        Assert.False(a.TiedEmbeddings);
        Assert.Equal(2048, a.Context);
        Assert.Equal(1e-6f, a.NormEps);
        var g = Hf("""{"model_type":"gpt2","vocab_size":10,"n_embd":64,"n_layer":2,"n_head":8,"n_positions":32,"n_inner":null}""");
        Assert.Equal(256, g.FfnWidth);   // n_inner null -> 4C
        Assert.True(g.TiedEmbeddings);
        var b = Hf("""{"model_type":"llama","vocab_size":10,"hidden_size":64,"num_hidden_layers":2,"num_attention_heads":8,"intermediate_size":8,"attention_bias":true,"mlp_bias":true}""");
        Assert.True(b.QkvBias && b.OutputBias && b.MlpBias);
        Assert.Equal("4h² + 4h", new ParameterCount(ParameterCount.BaseModel(b)).AttentionFormula);
        var al = Hf("""{"model_type":"albert","vocab_size":10,"hidden_size":8,"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":8,"max_position_embeddings":8}""");
        Assert.Equal(128, al.EmbeddingWidth); // AlbertConfig's embedding_size default
    }

    [Fact]
    public void Features_the_engine_lacks_are_read_but_refused_when_loading()
    {
        var y = Hf("""{"model_type":"llama","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":8,"rope_scaling":{"rope_type":"yarn","factor":4}}""");
        Assert.Contains("rope_scaling type 'yarn' is not supported", y.Unsupported, StringComparison.Ordinal);
        Assert.Contains("yarn", Assert.Throws<NotSupportedException>(() => DecoderWeights.CheckRunnable(y, "x")).Message, StringComparison.Ordinal);
    }
}
