using System.Text.Json;
using SharpLM.Cli;
using SharpLM.Formats.Gguf;
using SharpLM.Tensors;
using SharpLM.Testing;

namespace SharpLM.Cli.Tests;

public class CalcCommandTests
{
    private static Task<(int Rc, string Out, string Err)> Run(params string[] args) => CliRun.Run(["calc", .. args]);

    private static async Task<JsonElement> Json(params string[] args)
    {
        var (rc, o, e) = await Run([.. args, "--json"]);
        Assert.True(rc == 0, $"exit {rc}: {e}");
        return JsonDocument.Parse(o).RootElement;
    }

    [Fact]
    public async Task Preset_Json_HasTheDocumentedFields()
    {
        var j = await Json("--preset", "llama-3-8b", "--context", "8192");
        Assert.Equal(8_030_261_248L, j.GetProperty("parameters").GetInt64());
        long sum = j.GetProperty("breakdown").EnumerateObject().Sum(p => p.Value.GetInt64());
        Assert.Equal(8_030_261_248L, sum);
        var inf = j.GetProperty("inference_bytes");
        Assert.Equal(2 * 8_030_261_248L, inf.GetProperty("weights").GetInt64());
        Assert.Equal(2L * 32 * 8 * 128 * 8192 * 2, inf.GetProperty("kv_cache").GetInt64()); // 1 GiB
        Assert.Equal(inf.GetProperty("weights").GetInt64() + inf.GetProperty("kv_cache").GetInt64() + inf.GetProperty("activations").GetInt64(),
            inf.GetProperty("total").GetInt64());
        Assert.False(j.TryGetProperty("training_bytes", out _));
    }

    [Fact]
    public async Task Train_Zero3_ShardsOverGpus()
    {
        var one = (await Json("--preset", "llama-7b", "--train", "--zero", "3", "--gpus", "1", "--context", "512")).GetProperty("training_bytes");
        var eight = (await Json("--preset", "llama-7b", "--train", "--zero", "3", "--gpus", "8", "--context", "512")).GetProperty("training_bytes");
        Assert.Equal(16 * 6_738_415_616L, one.GetProperty("model_states").GetInt64());
        Assert.Equal(16 * 6_738_415_616L / 8, eight.GetProperty("model_states").GetInt64());
        Assert.Equal(one.GetProperty("activations").GetInt64(), eight.GetProperty("activations").GetInt64());
        Assert.Equal(eight.GetProperty("model_states").GetInt64() + eight.GetProperty("activations").GetInt64(), eight.GetProperty("total").GetInt64());
        var sgd = (await Json("--preset", "llama-7b", "--optimizer", "sgd")).GetProperty("training_bytes");
        Assert.Equal(12 * 6_738_415_616L, sgd.GetProperty("model_states").GetInt64());
        Assert.Equal("fp32", sgd.GetProperty("precision").GetString());
    }

    [Fact]
    public async Task Table_ShowsFormulasAndTotals()
    {
        var (rc, o, e) = await Run("--preset", "bert-base-uncased", "--train", "--tflops", "100");
        Assert.True(rc == 0, e);
        Assert.Contains("109,482,240", o, StringComparison.Ordinal);
        Assert.Contains("4h² + 4h", o, StringComparison.Ordinal);
        Assert.Contains("pooler", o, StringComparison.Ordinal);
        Assert.Contains("KV cache", o, StringComparison.Ordinal);
        Assert.Contains("ZeRO-0", o, StringComparison.Ordinal);
        Assert.Contains("TFLOP/s", o, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ListPresets_HasTheRequiredOnes()
    {
        var (rc, o, _) = await Run("--list-presets");
        Assert.Equal(0, rc);
        foreach (var n in new[] { "llama-7b", "llama-13b", "llama-65b", "llama-2-70b", "llama-3-8b", "mistral-7b", "tinyllama-1.1b",
                     "qwen2.5-0.5b", "gpt2", "gpt2-xl", "bert-base-uncased", "bert-large-uncased", "albert-base-v2", "all-minilm-l6-v2" })
            Assert.Contains(n, o, StringComparison.Ordinal);
        var (rc2, j, _) = await Run("--list-presets", "--json");
        Assert.Equal(0, rc2);
        Assert.True(JsonDocument.Parse(j).RootElement.GetArrayLength() >= 14);
    }

    [Fact]
    public async Task ConfigFile_AndGgufModel()
    {
        var j = await Json("--config", Path.Combine(TestPaths.TestData, "sizing", "qwen2.5-0.5b.config.json"));
        Assert.Equal(494_032_768L, j.GetProperty("parameters").GetInt64());
        Assert.Equal(0L, j.GetProperty("breakdown").GetProperty("output_head").GetInt64());

        // a GGUF written by the formats GgufWriter: the computed count must match its tensors
        const int v = 64, h = 32, f = 64;
        var w = new GgufWriter();
        w.Set("general.architecture", "llama").Set("llama.block_count", 1u).Set("llama.embedding_length", (uint)h)
         .Set("llama.feed_forward_length", (uint)f).Set("llama.attention.head_count", 4u).Set("llama.attention.head_count_kv", 2u)
         .Set("llama.context_length", 128u).Set("llama.vocab_size", (uint)v);
        void T(string name, params long[] shape) => w.AddTensor(name, DType.F32, shape, new byte[shape.Aggregate(1L, (a, b) => a * b) * 4]);
        T("token_embd.weight", v, h); T("blk.0.attn_norm.weight", h);
        T("blk.0.attn_q.weight", h, h); T("blk.0.attn_k.weight", 16, h); T("blk.0.attn_v.weight", 16, h); T("blk.0.attn_output.weight", h, h);
        T("blk.0.ffn_norm.weight", h); T("blk.0.ffn_gate.weight", f, h); T("blk.0.ffn_up.weight", f, h); T("blk.0.ffn_down.weight", h, f);
        T("output_norm.weight", h);
        var path = Path.Combine(TestPaths.NewTempDir(), "tiny.gguf");
        w.Write(path);
        var g = await Json("--model", path);
        var file = g.GetProperty("file");
        Assert.True(file.GetProperty("matches").GetBoolean(), g.ToString());
        Assert.Equal(file.GetProperty("parameters").GetInt64(), g.GetProperty("parameters").GetInt64());
        Assert.True(g.GetProperty("architecture").GetProperty("tied_embeddings").GetBoolean());
    }

    [Theory]
    [InlineData(2, "exactly one of", new string[0])]
    [InlineData(2, "exactly one of", new[] { "--preset", "gpt2", "--config", "x.json" })]
    [InlineData(1, "unknown preset 'gpt5'", new[] { "--preset", "gpt5" })]
    [InlineData(2, "unknown type 'q9'", new[] { "--preset", "gpt2", "--dtype", "q9" })]
    [InlineData(2, "--context must be at least 1", new[] { "--preset", "gpt2", "--context", "-5" })]
    [InlineData(2, "--zero must be in [0, 3]", new[] { "--preset", "gpt2", "--zero", "4" })]
    [InlineData(2, "unknown optimizer 'lion'", new[] { "--preset", "gpt2", "--optimizer", "lion" })]
    [InlineData(1, "does not exist", new[] { "--config", "/nonexistent/config.json" })]
    public async Task BadUsage_IsAClearMessage(int code, string message, string[] args)
    {
        var (rc, o, e) = await Run(args);
        Assert.Equal(code, rc);
        Assert.Contains(message, e, StringComparison.Ordinal);
        Assert.Equal("", o);
    }

    [Fact]
    public async Task BadConfig_NamesTheField()
    {
        var dir = TestPaths.NewTempDir();
        var p = Path.Combine(dir, "config.json");
        File.WriteAllText(p, """{"model_type":"llama","vocab_size":32000,"hidden_size":4096,"num_hidden_layers":-3,"num_attention_heads":32,"intermediate_size":11008}""");
        var (rc, _, e) = await Run("--config", p);
        Assert.Equal(1, rc);
        Assert.Contains("'num_hidden_layers'", e, StringComparison.Ordinal);
        Assert.Contains("-3", e, StringComparison.Ordinal);
        File.WriteAllText(p, """{"model_type":"mamba"}""");
        (rc, _, e) = await Run("--config", p);
        Assert.Equal(1, rc);
        Assert.Contains("architecture 'mamba' is not supported", e, StringComparison.Ordinal);
    }
}
