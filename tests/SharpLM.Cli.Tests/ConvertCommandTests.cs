using static SharpLM.Cli.Tests.CliRun;
using System.Text.Json;
using SharpLM.Formats.Gguf;
using SharpLM.Tensors;
using SharpLM.Testing;
using SharpLM.Tests.Formats;

namespace SharpLM.Cli.Tests;

public sealed class ConvertCommandTests
{
    [Fact]
    public async Task Convert_then_inspect_reports_the_same_parameters_as_the_hf_folder()
    {
        var dir = TestPaths.NewTempDir();
        var hf = TinyHf.Create(Path.Combine(dir, "hf"), "llama", DType.BF16);
        var gguf = Path.Combine(dir, "m.gguf");
        var (rc, output, err) = await Run("convert", "--from", hf, "--to", gguf, "--type", "q8_0");
        Assert.True(rc == 0, err);
        Assert.Contains("100%", err);
        Assert.Contains("wrote", output);

        using (var f = GgufFile.Open(gguf))
        {
            Assert.Equal(DType.Q8_0, f.Tensors["blk.0.ffn_up.weight"].Type);
            Assert.Equal(DType.F32, f.Tensors["blk.0.ffn_norm.weight"].Type);
            Assert.Equal("llama", f.GetString("tokenizer.ggml.model"));
            Assert.Equal(1, f.GetInt("tokenizer.ggml.bos_token_id"));
        }

        var (rc1, j1, e1) = await Run("inspect", "--model", gguf, "--json");
        Assert.True(rc1 == 0, e1);
        var (rc2, j2, e2) = await Run("inspect", "--model", hf, "--json");
        Assert.True(rc2 == 0, e2);
        using var a = JsonDocument.Parse(j1);
        using var b = JsonDocument.Parse(j2);
        long pa = a.RootElement.GetProperty("parameters").GetInt64();
        long pb = b.RootElement.GetProperty("parameters").GetInt64();
        Assert.Equal(pb, pa);
        // independent count from the config: embeddings + lm_head + layers (attn, mlp, 2 norms) + final norm
        int c = TinyHf.C, kv = TinyHf.KVH * (TinyHf.C / TinyHf.NH), v = 32000;
        long expected = 2L * v * c + TinyHf.L * (2L * c * c + 2L * kv * c + 3L * TinyHf.F * c + 2 * c) + c;
        Assert.Equal(expected, pa);
        Assert.Equal("llama", a.RootElement.GetProperty("architecture").GetString());
        Assert.Equal(a.RootElement.GetProperty("tensors").GetArrayLength(), b.RootElement.GetProperty("tensors").GetArrayLength());
        Assert.Equal(new FileInfo(gguf).Length, a.RootElement.GetProperty("file_bytes").GetInt64());
    }

    [Fact]
    public async Task The_tokenize_command_reads_the_converted_gguf_like_hf_tokenizers()
    {
        var dir = TestPaths.NewTempDir();
        var hf = TinyHf.Create(Path.Combine(dir, "hf"), "mistral", DType.BF16, tied: true);
        var gguf = Path.Combine(dir, "m.gguf");
        Assert.Equal(0, (await Run("convert", "--from", hf, "--to", gguf, "--type", "q8_0", "--quiet")).Rc);
        using var reference = new global::Tokenizers.DotNet.Tokenizer(Path.Combine(hf, "tokenizer.json"));
        foreach (var text in new[] { "Hello world", "  two spaces, café 123 🤖" })
        {
            var (rc, output, err) = await Run("tokenize", "--tokenizer", gguf, "--text", text);
            Assert.True(rc == 0, err);
            Assert.Equal(string.Join(' ', reference.Encode(text)), output.Trim());
        }
    }

    [Theory]
    [InlineData("q8_0")]
    [InlineData("q4_0")]
    public async Task Requantizing_an_f32_gguf_gives_the_same_bytes_as_converting_directly(string type)
    {
        var dir = TestPaths.NewTempDir();
        var hf = TinyHf.Create(Path.Combine(dir, "hf"), "mistral", DType.BF16);
        string f32 = Path.Combine(dir, "f32.gguf"), direct = Path.Combine(dir, "direct.gguf"), requant = Path.Combine(dir, "requant.gguf");
        Assert.Equal(0, (await Run("convert", "--from", hf, "--to", f32, "--type", "f32", "--quiet")).Rc);
        Assert.Equal(0, (await Run("convert", "--from", hf, "--to", direct, "--type", type, "--quiet")).Rc);
        var (rc, _, err) = await Run("convert", "--from", f32, "--to", requant, "--type", type, "--quiet");
        Assert.True(rc == 0, err);
        using var a = GgufFile.Open(direct);
        using var b = GgufFile.Open(requant);
        Assert.Equal(a.TensorList.Select(t => (t.Name, t.Type)), b.TensorList.Select(t => (t.Name, t.Type)));
        Assert.Equal(a.MetadataList.Select(kv => kv.Key).Order(), b.MetadataList.Select(kv => kv.Key).Order());
        foreach (var t in a.TensorList) Assert.True(Bytes(t).SequenceEqual(Bytes(b.Tensors[t.Name])), $"{t.Name} differs");
        Assert.Equal(new FileInfo(direct).Length, new FileInfo(requant).Length);
    }

    private static unsafe ReadOnlySpan<byte> Bytes(SharpLM.Formats.TensorInfo t) => new((void*)t.Data, checked((int)t.ByteLength));

    [Fact]
    public async Task Bad_usage_and_bad_folders_are_clear_errors()
    {
        var dir = TestPaths.NewTempDir();
        var (rc, _, err) = await Run("convert", "--to", Path.Combine(dir, "x.gguf"));
        Assert.Equal(2, rc);
        Assert.Contains("--from is required", err);
        (rc, _, err) = await Run("convert", "--from", Path.Combine(dir, "missing"), "--to", Path.Combine(dir, "x.gguf"));
        Assert.Equal(2, rc);
        Assert.Contains("is not a folder", err);
        (rc, _, err) = await Run("convert", "--from", dir, "--to", Path.Combine(dir, "x.gguf"));
        Assert.Equal(1, rc);
        Assert.Contains("config.json", err);
        var hf = TinyHf.Create(Path.Combine(dir, "hf"), "llama");
        (rc, _, err) = await Run("convert", "--from", hf, "--to", Path.Combine(dir, "x.gguf"), "--type", "q3");
        Assert.Equal(2, rc);
        Assert.Contains("unknown file type 'q3'", err);
        File.Delete(Path.Combine(hf, "model.safetensors"));
        (rc, _, err) = await Run("convert", "--from", hf, "--to", Path.Combine(dir, "x.gguf"));
        Assert.Equal(1, rc);
        Assert.Contains("no safetensors weights", err);
        Assert.False(File.Exists(Path.Combine(dir, "x.gguf")));
    }
}
