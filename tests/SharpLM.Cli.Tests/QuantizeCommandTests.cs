using static SharpLM.Cli.Tests.CliRun;
using SharpLM.Formats.Gguf;
using SharpLM.Tensors;
using SharpLM.Testing;
using SharpLM.Tests.Formats;

namespace SharpLM.Cli.Tests;

public sealed class QuantizeCommandTests
{
    [Fact]
    public async Task A_hf_folder_and_a_gguf_quantize_with_the_mix_and_a_progress_bar()
    {
        var dir = TestPaths.NewTempDir();
        var hf = TinyHf.Create(Path.Combine(dir, "hf"), "llama", DType.BF16);
        var q = Path.Combine(dir, "q4km.gguf");
        var (rc, output, err) = await Run("quantize", "--model", hf, "--to", q, "--type", "q4_k_m");
        Assert.True(rc == 0, err);
        Assert.Contains("quantizing to Q4_K_M", err);
        Assert.Contains("100%", err);
        Assert.Contains("wrote", output);
        Assert.Contains("Q4_K_M", output);
        using (var f = GgufFile.Open(q))
        {
            Assert.Equal(15, f.GetInt(GgufKeys.FileType));
            Assert.Equal(DType.F32, f.Tensors["blk.0.ffn_norm.weight"].Type);
            Assert.Contains(f.TensorList, t => t.Type is DType.Q6_K or DType.Q8_0); // the output keeps more bits
        }

        // inspect shows the file type and the mix
        (rc, output, err) = await Run("inspect", "--model", q, "--json");
        Assert.True(rc == 0, err);
        using (var j = System.Text.Json.JsonDocument.Parse(output))
        {
            Assert.Equal("Q4_K_M (15)", j.RootElement.GetProperty("file_type").GetString());
            var mix = j.RootElement.GetProperty("mix").EnumerateArray().ToDictionary(m => m.GetProperty("type").GetString()!, m => m.GetProperty("tensors").GetInt32());
            Assert.Equal(j.RootElement.GetProperty("tensors").GetArrayLength(), mix.Values.Sum());
            Assert.True(mix.ContainsKey("F32"));
            Assert.True(j.RootElement.GetProperty("bits_per_weight").GetDouble() is > 4 and < 32);
        }
        (rc, output, _) = await Run("inspect", "--model", q);
        Assert.Contains("mix:", output);
        Assert.Contains("bits per weight", output);

        // a GGUF in, another file type out
        var f16 = Path.Combine(dir, "f16.gguf");
        (rc, _, err) = await Run("convert", "--from", hf, "--to", f16, "--quiet");
        Assert.True(rc == 0, err);
        var q8 = Path.Combine(dir, "q8.gguf");
        (rc, output, err) = await Run("quantize", "--model", f16, "--to", q8, "--type", "q8_0", "--quiet");
        Assert.True(rc == 0, err);
        Assert.Equal("", err);
        using (var f = GgufFile.Open(q8)) Assert.Equal(DType.Q8_0, f.Tensors["blk.0.attn_q.weight"].Type);
    }

    [Fact]
    public async Task List_shows_the_file_types_and_bad_types_are_one_clear_error()
    {
        var (rc, output, _) = await Run("quantize", "--list");
        Assert.Equal(0, rc);
        Assert.Contains("q4_k_m", output);
        Assert.Contains("iq4_xs", output);
        var dir = TestPaths.NewTempDir();
        var hf = TinyHf.Create(Path.Combine(dir, "hf"), "llama", DType.BF16);
        string err;
        (rc, _, err) = await Run("quantize", "--model", hf, "--to", Path.Combine(dir, "x.gguf"), "--type", "q4_k_x");
        Assert.NotEqual(0, rc);
        Assert.Contains("unknown file type 'q4_k_x'", err);
        Assert.DoesNotContain("   at ", err);
        (rc, _, err) = await Run("quantize", "--model", hf, "--to", Path.Combine(dir, "x.gguf"), "--type", "iq2_xs");
        Assert.NotEqual(0, rc);
        Assert.Contains("IQ1/IQ2/IQ3", err);
        (rc, _, err) = await Run("quantize", "--model", hf, "--to", Path.Combine(dir, "x.gguf"), "--type", "q2_k_s");
        Assert.NotEqual(0, rc);
        Assert.Contains("importance matrix", err);
    }
}
