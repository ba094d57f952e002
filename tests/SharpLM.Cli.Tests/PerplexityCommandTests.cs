using System.Text.Json;
using SharpLM.Testing;

namespace SharpLM.Cli.Tests;

/// <summary><c>sharplm perplexity</c> on the bundled default model and held-out prose written for the tests
/// (tests/testdata/text/prose-en.txt; the library's arithmetic is checked in SharpLM.Tests' PerplexityTests).</summary>
public sealed class PerplexityCommandTests
{
    private static string Prose => Path.Combine(TestPaths.TestData, "text", "prose-en.txt");
    private static string DefaultModel => Path.Combine(TestPaths.RepoRoot, "models", "default.gguf");

    [Fact]
    public async Task The_default_model_predicts_unseen_prose_better_than_a_uniform_guess()
    {
        var (rc, output, err) = await CliRun.Run("perplexity", "--model", DefaultModel, "--file", Prose, "--stride", "128", "--json");
        Assert.True(rc == 0, err);
        using var doc = JsonDocument.Parse(output.Trim());
        var r = doc.RootElement;
        long tokens = r.GetProperty("tokens").GetInt64(), bytes = r.GetProperty("bytes").GetInt64();
        double bpb = r.GetProperty("bits_per_byte").GetDouble(), nats = r.GetProperty("nats_per_token").GetDouble();
        Assert.Equal(128, r.GetProperty("stride").GetInt32());
        Assert.InRange(tokens, 100, bytes);
        Assert.Equal(nats * tokens / bytes / Math.Log(2), bpb, 9);
        Assert.Equal(Math.Exp(nats), r.GetProperty("perplexity").GetDouble(), 6);
        // a uniform guess over the vocabulary costs log2(V) bits a token (an untrained model scores about that)
        using var model = SharpLM.Models.LanguageModel.Load(DefaultModel);
        double uniform = Math.Log2(model.Config.Vocab) * tokens / bytes;
        Assert.True(bpb < uniform, $"{bpb:F3} bits/byte; a uniform guess is {uniform:F3}");
    }

    [Fact]
    public async Task Missing_files_and_bad_windows_are_usage_errors()
    {
        var (rc, _, err) = await CliRun.Run("perplexity", "--model", DefaultModel);
        Assert.Equal(2, rc);
        Assert.Contains("--file", err, StringComparison.Ordinal);
        (rc, _, err) = await CliRun.Run("perplexity", "--model", DefaultModel, "--file", "/no/such/prose.txt");
        Assert.Equal(2, rc);
        Assert.Contains("/no/such/prose.txt", err, StringComparison.Ordinal);
        (rc, _, err) = await CliRun.Run("perplexity", "--model", DefaultModel, "--file", Prose, "--window", "100000");
        Assert.Equal(2, rc);
        Assert.Contains("--window", err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
    }
}
