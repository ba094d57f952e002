using static SharpLM.Cli.Tests.CliRun;
using SharpLM.Testing;
using SharpLM.Tests.Formats;

namespace SharpLM.Cli.Tests;

public sealed class InspectCommandTests
{
    [Fact]
    public async Task Text_output_lists_hyperparameters_and_tensors()
    {
        var dir = TestPaths.NewTempDir();
        var hf = TinyHf.Create(Path.Combine(dir, "hf"), "qwen2", tied: true);
        var (rc, output, err) = await Run("inspect", "--model", hf);
        Assert.True(rc == 0, err);
        Assert.Contains("Qwen2ForCausalLM", output);
        Assert.Contains("num_key_value_heads", output);
        Assert.Contains("model.layers.1.self_attn.q_proj.bias", output);
        var gguf = Path.Combine(dir, "q.gguf");
        (rc, _, err) = await Run("convert", "--from", hf, "--to", gguf, "--quiet");
        Assert.True(rc == 0, err);
        Assert.Equal("", err);
        (rc, output, err) = await Run("inspect", "--model", gguf, "--metadata");
        Assert.True(rc == 0, err);
        Assert.Contains("attention.head_count_kv", output);
        Assert.Contains("blk.1.attn_q.bias", output);
        Assert.Contains("tokenizer.ggml.merges", output);
        Assert.Contains("gpt2", output);
    }

    [Fact]
    public async Task A_corrupt_file_is_one_error_line_naming_it()
    {
        var dir = TestPaths.NewTempDir();
        var bad = Path.Combine(dir, "bad.gguf");
        await File.WriteAllTextAsync(bad, "not a gguf file at all");
        var (rc, output, err) = await Run("inspect", "--model", bad);
        Assert.Equal(1, rc);
        Assert.Equal("", output);
        Assert.StartsWith("error: ", err);
        Assert.Contains(bad, err);
        Assert.Contains("bad magic", err);
        Assert.DoesNotContain("   at ", err);
    }
}
