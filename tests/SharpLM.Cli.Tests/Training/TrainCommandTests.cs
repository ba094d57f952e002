using static SharpLM.Cli.Tests.CliRun;
using System.Text.Json;
using SharpLM.Testing;

namespace SharpLM.Cli.Tests.Training;

/// <summary><c>sharplm train</c> end to end on a tiny model and a small text.</summary>
public class TrainCommandTests
{
    private static string WriteText(string dir, int chars)
    {
        var words = new[] { "the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far", "away", "from", "home" };
        var sb = new System.Text.StringBuilder();
        for (int i = 0; sb.Length < chars; i++) sb.Append(words[(i * 7 + i / 3) % words.Length]).Append(i % 9 == 8 ? ".\n" : " ");
        var p = Path.Combine(dir, "data.txt");
        File.WriteAllText(p, sb.ToString());
        return p;
    }

    private static readonly string[] Tiny = ["--dim", "16", "--layers", "1", "--heads", "2", "--context", "16", "--batch", "2", "--threads", "1", "--eval-batches", "2"];

    [Fact]
    public async Task Trains_checkpoints_resumes_and_exports()
    {
        var dir = TestPaths.NewTempDir();
        var data = WriteText(dir, 8000);
        var outDir = Path.Combine(dir, "out");
        var (rc, stdout, stderr) = await Run(["train", "--data", data, "--out", outDir, "--steps", "4", "--eval-every", "2", "--vocab-size", "300",
                                              "--export-gguf", Path.Combine(outDir, "m.gguf"), "--json", .. Tiny]);
        Assert.True(rc == 0, stderr);
        var j = JsonDocument.Parse(stdout).RootElement;
        Assert.True(j.GetProperty("val_loss").GetDouble() > 0);
        Assert.True(j.GetProperty("bits_per_byte").GetDouble() > 0);
        foreach (var f in new[] { "loss.csv", "loss.png", "m.gguf", "checkpoint/model.safetensors", "checkpoint/config.json", "checkpoint/tokenizer.json", "checkpoint/optimizer.safetensors", "checkpoint/trainer_state.json" })
            Assert.True(File.Exists(Path.Combine(outDir, f)), $"{f} missing");
        var cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "checkpoint", "config.json"))).RootElement;
        Assert.Equal("LlamaForCausalLM", cfg.GetProperty("architectures")[0].GetString());

        // resume to 6 steps: the CSV continues
        (rc, stdout, stderr) = await Run(["train", "--data", data, "--out", outDir, "--resume", outDir, "--steps", "6"]);
        Assert.True(rc == 0, stderr);
        Assert.Contains("resuming at step 4", stderr);
        Assert.Contains("bits/byte", stdout);
        Assert.Equal(7, File.ReadAllLines(Path.Combine(outDir, "loss.csv")).Length);

        // a given tokenizer.json (the one trained above), GPT-2
        var tokJson = Path.Combine(dir, "tokenizer.json");
        File.Copy(Path.Combine(outDir, "checkpoint", "tokenizer.json"), tokJson);
        var out2 = Path.Combine(dir, "out2");
        (rc, stdout, stderr) = await Run(["train", "--data", data, "--out", out2, "--tokenizer", tokJson, "--arch", "gpt2", "--steps", "2", .. Tiny]);
        Assert.True(rc == 0, stderr);
        int vocab = cfg.GetProperty("vocab_size").GetInt32();
        Assert.Contains($"vocab {vocab},", stderr);
        Assert.Equal(File.ReadAllText(tokJson), File.ReadAllText(Path.Combine(out2, "checkpoint", "tokenizer.json")));
    }

    [Fact]
    public async Task Empty_or_tiny_data_and_bad_options_are_clear_errors()
    {
        var dir = TestPaths.NewTempDir();
        var empty = Path.Combine(dir, "empty.txt");
        File.WriteAllText(empty, "");
        var (rc, _, err) = await Run(["train", "--data", empty, "--out", dir, .. Tiny]);
        Assert.Equal(1, rc);
        Assert.Contains("is empty", err);

        var small = Path.Combine(dir, "small.txt");
        File.WriteAllText(small, "hello world");
        (rc, _, err) = await Run(["train", "--data", small, "--out", dir, .. Tiny]);
        Assert.Equal(1, rc);
        Assert.Contains("too few", err);
        Assert.DoesNotContain("   at ", err);

        (rc, _, err) = await Run(["train", "--data", small, "--out", dir, "--arch", "rnn"]);
        Assert.Equal(2, rc);
        Assert.Contains("--arch", err);

        (rc, _, err) = await Run(["train", "--data", Path.Combine(dir, "nope.txt"), "--out", dir]);
        Assert.Equal(1, rc);
        Assert.Contains("not found", err);
    }
}
