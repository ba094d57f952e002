using SharpLM.Formats.Gguf;
using SharpLM.Inference;
using SharpLM.Inference.Sampling;
using SharpLM.Models;
using SharpLM.Tensors;
using SharpLM.Testing;

namespace SharpLM.Tests.Models;

/// <summary>Broken files and impossible requests fail with messages that say what is wrong.</summary>
public sealed class LlamaBadInputTests
{
    private static readonly TinySpec Spec = new("llama", Dim: 64, Layers: 2, Heads: 2, KvHeads: 1, Ffn: 96, Vocab: 300, Ctx: 32);

    private static string Write(TinyLlama tiny, Action<GgufWriter>? tweak = null)
    {
        var path = Path.Combine(TestPaths.NewTempDir(), "bad.gguf");
        tiny.WriteGguf(path, DType.F32, tweak: tweak);
        return path;
    }

    [Fact]
    public void A_missing_and_a_mis_shaped_tensor_are_both_listed()
    {
        var tiny = TinyLlama.Random(Spec, 1);
        tiny.Tensors.Remove("model.layers.1.mlp.up_proj.weight");
        var (shape, data) = tiny.Tensors["model.layers.0.self_attn.k_proj.weight"];
        tiny.Tensors["model.layers.0.self_attn.k_proj.weight"] = ([shape[0] * 2, shape[1]], [.. data, .. data]);
        var path = Write(tiny);
        var e = Assert.Throws<InvalidDataException>(() => LanguageModel.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("missing: blk.1.ffn_up.weight [96, 64]", e.Message, StringComparison.Ordinal);
        Assert.Contains("blk.0.attn_k.weight has shape [64, 64], expected [32, 64]", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_tensor_no_layer_uses_is_reported_as_unused()
    {
        var tiny = TinyLlama.Random(Spec, 1);
        var path = Write(tiny, w => w.AddTensor("blk.7.attn_q.weight", [4, 4], new float[16]));
        var e = Assert.Throws<InvalidDataException>(() => LanguageModel.Load(path));
        Assert.Contains("1 unused: blk.7.attn_q.weight", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_architecture_names_itself_and_the_supported_ones()
    {
        var tiny = TinyLlama.Random(Spec with { Arch = "mamba" }, 1);
        var path = Write(tiny);
        var e = Assert.Throws<NotSupportedException>(() => LanguageModel.Load(path));
        Assert.Contains("architecture 'mamba' is not supported", e.Message, StringComparison.Ordinal);
        Assert.Contains("supported: llama, qwen2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Heads_that_do_not_divide_into_kv_heads_are_rejected()
    {
        var tiny = TinyLlama.Random(Spec, 1);
        var path = Write(tiny, w => w.Set("llama.attention.head_count_kv", 3u));
        var e = Assert.Throws<InvalidDataException>(() => LanguageModel.Load(path));
        Assert.Contains("2 attention heads is not a multiple of 3 key/value heads", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_metadata_names_the_key()
    {
        var tiny = TinyLlama.Random(Spec, 1);
        var path = Write(tiny, w => w.Remove("llama.block_count"));
        var e = Assert.Throws<InvalidDataException>(() => LanguageModel.Load(path));
        Assert.Contains("'llama.block_count' is missing", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_prompt_longer_than_the_context_names_both_numbers()
    {
        var tiny = TinyLlama.Random(Spec, 1);
        using var model = LanguageModel.Load(Write(tiny));
        Assert.Equal(32, model.ContextSize);
        var gen = new Generator(model.CreateState(), new Sampler(SamplingOptions.Greedy, Spec.Vocab), []);
        var e = Assert.Throws<ArgumentException>(() => gen.Generate(tiny.RandomPrompt(40, 1), 4));
        Assert.Contains("the prompt has 40 tokens but the context holds 32", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Generation_stops_at_the_end_of_the_context()
    {
        var tiny = TinyLlama.Random(Spec, 1);
        using var model = LanguageModel.Load(Write(tiny));
        var gen = new Generator(model.CreateState(), new Sampler(SamplingOptions.Greedy, Spec.Vocab), []);
        var ids = gen.Generate(tiny.RandomPrompt(30, 1), 10).ToList();
        Assert.Equal(3, ids.Count); // 30 cached + 2 fed = 32; the third is sampled from the last row
    }

    [Fact]
    public void A_token_id_outside_the_vocabulary_is_rejected()
    {
        var tiny = TinyLlama.Random(Spec, 1);
        using var model = LanguageModel.Load(Write(tiny));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => model.CreateState().Forward([1, 300], false));
        Assert.Contains("token id 300 is outside the vocabulary of 300", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_file_and_a_folder_without_config_are_clear()
    {
        var e1 = Assert.Throws<FileNotFoundException>(() => LanguageModel.Load("/no/such/model.gguf"));
        Assert.Contains("model not found: /no/such/model.gguf", e1.Message, StringComparison.Ordinal);
        var dir = TestPaths.NewTempDir();
        var e2 = Assert.Throws<FileNotFoundException>(() => LanguageModel.Load(dir));
        Assert.Contains("has no config.json", e2.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unsupported_hf_architecture_is_named()
    {
        var dir = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(dir, "config.json"), """{"architectures": ["GPTNeoXForCausalLM"], "hidden_size": 8}""");
        var e = Assert.Throws<NotSupportedException>(() => LanguageModel.Load(dir));
        Assert.Contains("'GPTNeoXForCausalLM' is not supported", e.Message, StringComparison.Ordinal);
        Assert.Contains("config.json", e.Message, StringComparison.Ordinal);
    }
}
