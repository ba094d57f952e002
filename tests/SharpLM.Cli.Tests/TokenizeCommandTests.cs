using static SharpLM.Cli.Tests.CliRun;
using System.Text.Json;
using SharpLM.Cli;
using SharpLM.Testing;

namespace SharpLM.Cli.Tests;

/// <summary>
/// tokenize / detokenize / train-tokenizer / bench-tokenizer run in-process; ids are checked against HF tokenizers
/// (Rust, via Tokenizers.DotNet) on the same tokenizer.json.
/// </summary>
public class TokenizeCommandTests
{
    private static string Llama3 => TestPaths.Asset("npm", "tokenizer-llama3", "models", "tokenizer.json");

    private static readonly Dictionary<string, global::Tokenizers.DotNet.Tokenizer> Hf = new(StringComparer.Ordinal);

    private static string HfIds(string tokenizerJson, string text)
    {
        global::Tokenizers.DotNet.Tokenizer? hf;
        lock (Hf)
            if (!Hf.TryGetValue(tokenizerJson, out hf)) Hf[tokenizerJson] = hf = new global::Tokenizers.DotNet.Tokenizer(tokenizerJson);
        return string.Join(' ', hf.Encode(text));
    }

    private static readonly string[] Texts =
    [
        "Hello world! It's 2026, and we're tokenizing.",
        "  leading spaces and\ttabs\n\nnew lines",
        "中文字符测试，标点。日本語 한국어 emoji 🎉🚀",
        "def f(x):\n    return x ** 2  # 12345",
    ];

    [Fact]
    public async Task TokenizePrintsTheSameIdsAsHuggingFace()
    {
        var (rc, o, e) = await Run("tokenize", "--tokenizer", Llama3, "--text", Texts[0]);
        Assert.True(rc == 0, e);
        Assert.Equal(HfIds(Llama3, Texts[0]), o.TrimEnd('\n'));
        // A whole file (newlines included) is one sequence.
        var file = Path.Combine(TestPaths.NewTempDir(), "all.txt");
        var all = string.Join("\n", Texts);
        await File.WriteAllTextAsync(file, all);
        (rc, o, e) = await Run("tokenize", "--tokenizer", Llama3, "--file", file);
        Assert.True(rc == 0, e);
        Assert.Equal(HfIds(Llama3, all), o.TrimEnd('\n'));
    }

    [Fact]
    public async Task LinesModeEncodesEachLineWithoutItsNewline()
    {
        var dir = TestPaths.NewTempDir();
        var file = Path.Combine(dir, "in.txt");
        string[] lines = ["first line", "", "  third, indented", "last\r"];
        await File.WriteAllTextAsync(file, string.Join("\n", lines) + "\n");
        var (rc, o, e) = await Run("tokenize", "--tokenizer", Path.GetDirectoryName(Llama3)!, "--file", file, "--lines");
        Assert.True(rc == 0, e);
        var outLines = o.Split('\n');
        Assert.Equal(lines.Length + 1, outLines.Length); // one per input line, then the final newline
        Assert.Equal("", outLines[^1]);
        for (int i = 0; i < lines.Length; i++) Assert.Equal(HfIds(Llama3, lines[i].TrimEnd('\r')), outLines[i]);
    }

    [Fact]
    public async Task JsonAndPiecesFormats()
    {
        const string text = "Hello world";
        var (rc, o, e) = await Run("tokenize", "--tokenizer", Llama3, "--text", text, "--format", "json");
        Assert.True(rc == 0, e);
        using var doc = JsonDocument.Parse(o);
        var ids = doc.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        var tokens = doc.RootElement.GetProperty("tokens").EnumerateArray().Select(x => x.GetString()!).ToArray();
        var offsets = doc.RootElement.GetProperty("offsets").EnumerateArray().Select(x => (x[0].GetInt32(), x[1].GetInt32())).ToArray();
        Assert.Equal(HfIds(Llama3, text), string.Join(' ', ids));
        Assert.Equal(["Hello", "Ġworld"], tokens);
        Assert.Equal([(0, 5), (5, 11)], offsets);

        (rc, o, _) = await Run("tokenize", "--tokenizer", Llama3, "--text", text, "--format", "pieces");
        Assert.Equal(0, rc);
        Assert.Equal("Hello Ġworld", o.TrimEnd('\n'));

        // --lines with json: one object per input line.
        (rc, o, e) = await Run("tokenize", "--tokenizer", Llama3, "--text", "Hello world\nsecond line\n", "--lines", "--format", "json");
        Assert.True(rc == 0, e);
        var objects = o.TrimEnd('\n').Split('\n');
        Assert.Equal(2, objects.Length);
        using var second = JsonDocument.Parse(objects[1]);
        Assert.Equal(HfIds(Llama3, "second line"), string.Join(' ', second.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32())));
    }

    [Fact]
    public async Task DetokenizeRoundTrips()
    {
        foreach (var t in new[] { string.Join("\n", Texts) })
        {
            var (rc, ids, e) = await Run("tokenize", "--tokenizer", Llama3, "--text", t, "--no-special");
            Assert.True(rc == 0, e);
            var (rc2, text, e2) = await Run("detokenize", "--tokenizer", Llama3, "--ids", ids.Trim());
            Assert.True(rc2 == 0, e2);
            Assert.Equal(t, text[..^Environment.NewLine.Length]);
        }
    }

    [Fact]
    public async Task TrainTokenizerWritesATokenizerThatHuggingFaceAgreesWith()
    {
        var dir = TestPaths.NewTempDir();
        var corpus = Path.Combine(dir, "corpus.txt");
        var brown = File.ReadLines(TestPaths.Asset("brown.txt")).Take(300).ToArray();
        await File.WriteAllLinesAsync(corpus, brown);
        var outJson = Path.Combine(dir, "tok", "tokenizer.json");
        var (rc, o, e) = await Run("train-tokenizer", "--corpus", corpus, "--vocab-size", "600", "--out", outJson, "--special", "<s>,</s>", "--bos", "<s>");
        Assert.True(rc == 0, e);
        Assert.Contains("600 tokens", o, StringComparison.Ordinal);
        Assert.Contains("merging pairs", e, StringComparison.Ordinal); // the progress bar went to stderr
        foreach (var line in File.ReadLines(TestPaths.Asset("brown.txt")).Skip(10_000).Take(20).Append("<s> x </s> 🎉"))
        {
            var (rc2, ids, e2) = await Run("tokenize", "--tokenizer", outJson, "--text", line);
            Assert.True(rc2 == 0, e2);
            Assert.Equal(HfIds(outJson, line), ids.TrimEnd('\n'));
            Assert.StartsWith("0 ", ids, StringComparison.Ordinal); // the BOS post-processor
        }
    }

    [Fact]
    public async Task BenchTokenizerReportsMegabytesPerSecond()
    {
        var (rc, o, e) = await Run("bench-tokenizer", "--tokenizer", Llama3, "--file", TestPaths.Asset("brown.txt"), "--mb", "0.05", "--rounds", "2", "--json");
        Assert.True(rc == 0, e);
        using var doc = JsonDocument.Parse(o);
        Assert.True(doc.RootElement.GetProperty("mb_per_s").GetDouble() > 0);
        Assert.True(doc.RootElement.GetProperty("tokens").GetInt32() > 5000);
    }

    /// <summary>A tiny rank file: the 256 bytes (rank = byte value), then "He" 256, "ll" 257, "Hell" 258. tiktoken's
    /// merge of "Hello": H e l l o -> (He) l l o -> He (ll) o -> (Hell) o, so ids 258 111 ('o' = 111).</summary>
    [Fact]
    public async Task TokenizeAndDetokenizeATiktokenFile()
    {
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, "gpt2.tiktoken");
        var lines = Enumerable.Range(0, 256).Select(b => $"{Convert.ToBase64String([(byte)b])} {b}")
            .Append($"{Convert.ToBase64String("He"u8.ToArray())} 256")
            .Append($"{Convert.ToBase64String("ll"u8.ToArray())} 257")
            .Append($"{Convert.ToBase64String("Hell"u8.ToArray())} 258");
        await File.WriteAllLinesAsync(path, lines);
        var (rc, o, e) = await Run("tokenize", "--tokenizer", path, "--text", "Hello");
        Assert.True(rc == 0, e);
        Assert.Equal("258 111", o.TrimEnd('\n'));
        (rc, o, e) = await Run("detokenize", "--tokenizer", path, "--ids", "258 111 32 72");
        Assert.True(rc == 0, e);
        Assert.Equal("Hello H", o.TrimEnd('\r', '\n'));
    }

    [Fact]
    public async Task MissingTokenizerFileIsAClearError()
    {
        var (rc, _, e) = await Run("tokenize", "--tokenizer", "/no/such/tokenizer.json", "--text", "x");
        Assert.NotEqual(0, rc);
        Assert.Contains("error:", e, StringComparison.Ordinal);
        Assert.Contains("/no/such/tokenizer.json", e, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", e, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingInputFileIsAClearError()
    {
        var (rc, _, e) = await Run("tokenize", "--tokenizer", Llama3, "--file", "/no/such/input.txt");
        Assert.NotEqual(0, rc);
        Assert.Contains("/no/such/input.txt", e, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MalformedTokenizerJsonIsAClearError()
    {
        var dir = TestPaths.NewTempDir();
        var bad = Path.Combine(dir, "tokenizer.json");
        await File.WriteAllTextAsync(bad, "{ \"model\": { \"type\": \"BPE\", \"vocab\": [1, 2");
        var (rc, _, e) = await Run("tokenize", "--tokenizer", bad, "--text", "x");
        Assert.NotEqual(0, rc);
        Assert.Contains("error:", e, StringComparison.Ordinal);
        Assert.Contains("tokenizer.json", e, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", e, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownTokenIdIsAClearError()
    {
        var (rc, _, e) = await Run("detokenize", "--tokenizer", Llama3, "--ids", "1 2 99999999");
        Assert.NotEqual(0, rc);
        Assert.Contains("99999999", e, StringComparison.Ordinal);
        (rc, _, e) = await Run("detokenize", "--tokenizer", Llama3, "--ids", "1 two");
        Assert.NotEqual(0, rc);
        Assert.Contains("'two'", e, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadUsageExitsWith2()
    {
        Assert.Equal(2, (await Run("tokenize", "--tokenizer", Llama3)).Rc);
        Assert.Equal(2, (await Run("tokenize", "--tokenizer", Llama3, "--text", "x", "--format", "xml")).Rc);
        Assert.Equal(2, (await Run("tokenize", "--tokenizer", Llama3, "--text", "x", "--file", "y")).Rc);
        var corpus = Path.Combine(TestPaths.NewTempDir(), "c.txt");
        await File.WriteAllTextAsync(corpus, "abc abc");
        Assert.Equal(2, (await Run("train-tokenizer", "--corpus", corpus, "--vocab-size", "100", "--out", corpus + ".json")).Rc);
        var (rc, _, e) = await Run("train-tokenizer", "--corpus", "/no/such/corpus.txt", "--vocab-size", "300", "--out", corpus + ".json");
        Assert.NotEqual(0, rc);
        Assert.Contains("/no/such/corpus.txt", e, StringComparison.Ordinal);
    }

    [Fact]
    public void SplitLinesDropsNewlinesAndTheFinalEmptyLine()
    {
        static string[] Lines(string t) => [.. Commands.TokenizeCommand.LineRanges(t).Select(r => t.Substring(r.Start, r.Length))];
        Assert.Equal(["a", "", "b"], Lines("a\r\n\nb\n"));
        Assert.Equal(["a", "b"], Lines("a\nb"));
        Assert.Empty(Lines(""));
    }

    /// <summary>The built-in tiktoken encodings (rank files of NuGet Microsoft.ML.Tokenizers.Data, shipped under models/):
    /// "Hello world" is OpenAI's documented example in each (tiktoken's README and cookbook).</summary>
    [Theory]
    [InlineData("gpt2", "15496 995")]
    [InlineData("cl100k_base", "9906 1917")]
    [InlineData("o200k_base", "13225 2375")]
    public async Task Built_in_tiktoken_encodings_need_no_file(string name, string ids)
    {
        var (rc, o, e) = await Run("tokenize", "--tokenizer", name, "--text", "Hello world");
        Assert.True(rc == 0, e);
        Assert.Equal(ids, o.TrimEnd('\n'));
    }
}
