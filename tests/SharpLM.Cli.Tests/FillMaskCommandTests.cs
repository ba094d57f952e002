using System.Text.Json;

namespace SharpLM.Cli.Tests;

public class FillMaskCommandTests
{
    /// <summary>The tiny random BERT-MLM from tools/bert_golden.py, against PyTorch's top-5 in fill_mask.json.</summary>
    [Theory]
    [InlineData("bert_mlm")]
    [InlineData("albert_mlm")]
    [InlineData("distilbert_mlm")]
    public async Task JsonTopTokensMatchPyTorch(string name)
    {
        var dir = EncoderCli.TinyModel(name);
        using var golden = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(dir, "fill_mask.json")));
        var (rc, o, e) = await EncoderCli.Run("fill-mask", "--model", dir, "--text", golden.RootElement.GetProperty("text").GetString()!, "--top", "5", "--json");
        Assert.True(rc == 0, e);
        using var got = JsonDocument.Parse(o);
        var mask = Assert.Single(got.RootElement.EnumerateArray().ToArray());
        var expected = golden.RootElement.GetProperty("top").EnumerateArray().ToArray();
        var actual = mask.EnumerateArray().ToArray();
        Assert.Equal(expected.Select(x => x.GetProperty("token").GetString()), actual.Select(x => x.GetProperty("token").GetString()));
        for (int i = 0; i < expected.Length; i++)
        {
            double p = expected[i].GetProperty("probability").GetDouble(), q = actual[i].GetProperty("probability").GetDouble();
            Assert.True(Math.Abs(p - q) < 1e-4, $"{name} #{i}: {q} vs PyTorch {p}");
        }
    }

    [Fact]
    public async Task PlainOutputAndErrors()
    {
        var dir = EncoderCli.TinyModel("bert_mlm");
        var (rc, o, e) = await EncoderCli.Run("fill-mask", "--model", dir, "--text", "[MASK] is the capital of [MASK] .", "--top", "3");
        Assert.True(rc == 0, e);
        Assert.Contains("[MASK] 2:", o, StringComparison.Ordinal);
        Assert.Equal(8, o.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        (rc, _, e) = await EncoderCli.Run("fill-mask", "--model", dir, "--text", "no mask here");
        Assert.Equal(1, rc);
        Assert.Contains("has no [MASK] token", e, StringComparison.Ordinal);
        (rc, _, e) = await EncoderCli.Run("fill-mask", "--model", "minilm", "--text", "a [MASK] b");
        Assert.Equal(1, rc);
        Assert.Contains("has no masked-LM head", e, StringComparison.Ordinal);
        (rc, _, e) = await EncoderCli.Run("fill-mask", "--model", dir, "--text", "  ");
        Assert.Equal(2, rc);
    }
}
