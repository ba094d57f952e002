using System.Globalization;

namespace SharpLM.Cli.Tests;

public class SimilarityCommandTests
{
    [Fact]
    public async Task PrintsTheCosineOfTheTwoEmbeddings()
    {
        string a = "A cat sits on the mat.", b = "A kitten is sitting on a rug.", c = "Stock markets fell sharply today.";
        var (rc, o, e) = await EncoderCli.Run("similarity", "--model", "minilm", "--text", a, "--text", b);
        Assert.True(rc == 0, e);
        float ab = float.Parse(o.Trim(), CultureInfo.InvariantCulture);
        var (_, json, _) = await EncoderCli.Run("embed", "--model", "minilm", "--json", "--normalize", "--text", a, "--text", b);
        var v = EncoderCli.ParseJsonVectors(json);
        float dot = v[0].Zip(v[1], (x, y) => x * y).Sum();
        Assert.True(Math.Abs(dot - ab) < 1e-5, $"similarity printed {ab}, cosine of the embeddings {dot}");
        var (_, o2, _) = await EncoderCli.Run("similarity", "--model", "minilm", "--text", a, "--text", c);
        Assert.True(ab > float.Parse(o2.Trim(), CultureInfo.InvariantCulture) + 0.2f, $"related {ab} vs unrelated {o2.Trim()}");
    }

    [Fact]
    public async Task NeedsExactlyTwoTexts()
    {
        var (rc, _, e) = await EncoderCli.Run("similarity", "--model", "minilm", "--text", "only one");
        Assert.Equal(2, rc);
        Assert.Contains("exactly two texts", e, StringComparison.Ordinal);
    }
}
