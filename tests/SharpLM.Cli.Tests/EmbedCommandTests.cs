namespace SharpLM.Cli.Tests;

public class EmbedCommandTests
{
    [Fact]
    public async Task JsonHasOneVectorPerTextInInputOrder()
    {
        string[] texts = ["hello", "A much longer sentence to force padding in the batch.", "short one"];
        var (rc, o, e) = await EncoderCli.Run(["embed", "--model", "minilm", "--json", "--normalize", .. texts.SelectMany(t => new[] { "--text", t })]);
        Assert.True(rc == 0, e);
        var all = EncoderCli.ParseJsonVectors(o);
        Assert.Equal(3, all.Length);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(384, all[i].Length);
            Assert.InRange(Math.Sqrt(all[i].Sum(x => (double)x * x)), 0.9999, 1.0001);
        }
        // order: the last text alone gives the last vector
        var (rc1, o1, _) = await EncoderCli.Run("embed", "--model", "minilm", "--json", "--normalize", "--text", texts[2]);
        Assert.Equal(0, rc1);
        var alone = EncoderCli.ParseJsonVectors(o1)[0];
        float max = alone.Zip(all[2], (a, b) => Math.Abs(a - b)).Max();
        Assert.True(max < 1e-5f, $"text 2: alone vs batched max |diff| {max}");
    }

    /// <summary>--batch changes how many texts share a pass, never a text's embedding: the same bits in batches of 1, 2
    /// and 32 (the encoder's packed GEMM gives a row the same bits whatever its batch), with 1 and 2 threads.</summary>
    [Fact]
    public async Task BatchSizeAndThreadsDoNotChangeTheBits()
    {
        var dir = SharpLM.Testing.TestPaths.NewTempDir();
        var file = Path.Combine(dir, "texts.txt");
        await File.WriteAllLinesAsync(file, ["hi", "A much longer sentence, so that the batch has texts of many lengths in it.", "short one", "four words in here", "x"]);
        var (rc, expected, e) = await EncoderCli.Run("embed", "--model", "minilm", "--file", file, "--normalize", "--threads", "1");
        Assert.True(rc == 0, e);
        Assert.Equal(5, expected.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        foreach (var (batch, threads) in new[] { ("1", "1"), ("2", "2"), ("32", "2") })
        {
            var (rc2, o, e2) = await EncoderCli.Run("embed", "--model", "minilm", "--file", file, "--normalize", "--batch", batch, "--threads", threads);
            Assert.True(rc2 == 0, e2);
            Assert.True(expected == o, $"--batch {batch} --threads {threads}: the embeddings differ from the default batch on 1 thread");
        }
        (rc, _, e) = await EncoderCli.Run("embed", "--model", "minilm", "--text", "x", "--batch", "0");
        Assert.Equal(2, rc);
        Assert.Contains("--batch must be in [1,", e, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FileInputPoolingAndPlainOutput()
    {
        var dir = SharpLM.Testing.TestPaths.NewTempDir();
        var file = Path.Combine(dir, "texts.txt");
        await File.WriteAllLinesAsync(file, ["first line", "", "second line"]);
        var (rc, o, e) = await EncoderCli.Run("embed", "--model", "minilm", "--file", file, "--pooling", "mean-max");
        Assert.True(rc == 0, e);
        var lines = o.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.All(lines, l => Assert.Equal(768, l.Split(' ').Length));
        // without --normalize the mean-pooled MiniLM vector is not unit length
        var (_, o2, _) = await EncoderCli.Run("embed", "--model", "minilm", "--json", "--text", "first line");
        var v = EncoderCli.ParseJsonVectors(o2)[0];
        Assert.True(Math.Abs(Math.Sqrt(v.Sum(x => (double)x * x)) - 1) > 0.01);
        Assert.Equal(v, lines[0].Split(' ').Take(384).Select(s => float.Parse(s, System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Fact]
    public async Task BadUsageAndInputsAreClearErrors()
    {
        var (rc, _, e) = await EncoderCli.Run("embed", "--model", "minilm");
        Assert.Equal(2, rc);
        Assert.Contains("nothing to embed", e, StringComparison.Ordinal);
        (rc, _, e) = await EncoderCli.Run("embed", "--model", "minilm", "--text", "x", "--pooling", "median");
        Assert.Equal(2, rc);
        Assert.Contains("--pooling must be cls, mean, max or mean-max", e, StringComparison.Ordinal);
        (rc, _, e) = await EncoderCli.Run("embed", "--model", "/no/such/model.onnx", "--text", "x");
        Assert.Equal(1, rc);
        Assert.Contains("/no/such/model.onnx", e, StringComparison.Ordinal);
        var empty = Path.Combine(SharpLM.Testing.TestPaths.NewTempDir(), "empty.txt");
        await File.WriteAllTextAsync(empty, "\n\n");
        (rc, _, e) = await EncoderCli.Run("embed", "--model", "minilm", "--file", empty);
        Assert.Equal(2, rc);
        Assert.Contains("holds no text", e, StringComparison.Ordinal);
        string longText = string.Join(' ', Enumerable.Repeat("word", 600));
        (rc, var o, e) = await EncoderCli.Run("embed", "--model", "minilm", "--json", "--text", longText);
        Assert.Equal(0, rc);
        Assert.Contains("602 tokens; truncated to 512", e, StringComparison.Ordinal);
        Assert.Single(EncoderCli.ParseJsonVectors(o));
        (rc, _, e) = await EncoderCli.Run("embed", "--model", "minilm", "--no-truncate", "--text", longText);
        Assert.Equal(1, rc);
        Assert.Contains("more than the model's limit of 512", e, StringComparison.Ordinal);
    }
}
