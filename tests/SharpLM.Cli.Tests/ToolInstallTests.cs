using System.Diagnostics;
using SharpLM.Testing;

namespace SharpLM.Cli.Tests;

/// <summary>
/// The tool as a user gets it: packed from the source into a fresh folder, installed from that folder with
/// <c>dotnet tool install --tool-path</c>, then run in an empty folder with an empty home (so the default model can
/// only be the one inside the package).
/// </summary>
public class ToolInstallTests
{
    [PackFact]
    public void PackedToolInstallsAndRunsInAnEmptyFolder()
    {
        var root = TestPaths.NewTempDir();
        string feed = Path.Combine(root, "feed"), tools = Path.Combine(root, "tools"), home = Path.Combine(root, "home"), work = Path.Combine(root, "work");
        foreach (var d in new[] { home, work }) Directory.CreateDirectory(d);
        // A version no NuGet cache has seen, so the install takes this very package.
        string version = "0.0.1-test." + Guid.NewGuid().ToString("N")[..8];
        var cli = Path.Combine(TestPaths.RepoRoot, "src", "SharpLM.Cli", "SharpLM.Cli.csproj");
        Run("dotnet", ["pack", cli, "-c", "Release", "-o", feed, $"-p:Version={version}"], TestPaths.RepoRoot, null);
        Assert.Single(Directory.GetFiles(feed, "SharpLM.Cli.*.nupkg"));
        Run("dotnet", ["tool", "install", "SharpLM.Cli", "--tool-path", tools, "--add-source", feed, "--version", version], root, null);
        string exe = Path.Combine(tools, "sharplm");
        Assert.True(File.Exists(exe), $"{exe} was not installed");

        var env = new Dictionary<string, string?> { ["HOME"] = home, ["SHARPLM_MODEL"] = null, ["SHARPLM_CACHE"] = Path.Combine(home, "cache") };
        var version2 = Run(exe, ["--version"], work, env);
        Assert.StartsWith(version, version2.Out.Trim(), StringComparison.Ordinal);
        var gen = Run(exe, ["generate", "--prompt", "The jury said", "--max-tokens", "8", "--temperature", "0", "--json"], work, env);
        Assert.Contains("\"generated_tokens\":8", gen.Out, StringComparison.Ordinal);
        Assert.Contains(Path.Combine("models", "default.gguf"), gen.Out, StringComparison.Ordinal);
        var calc = Run(exe, ["calc", "--preset", "llama-7b"], work, env);
        Assert.Contains("parameters", calc.Out, StringComparison.OrdinalIgnoreCase);
        // A bad input is one clear line, no stack trace.
        var bad = Run(exe, ["tokenize", "--tokenizer", "missing.json", "--text", "x"], work, env, expectFailure: true);
        Assert.Contains("missing.json", bad.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", bad.Err, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(work));
    }

    /// <summary>The native-AOT binary: published without trimming or AOT warnings, and every kind of command runs with
    /// it (text generation, tokenizers checked against HF, JSON outputs, encoders, training with its PNG, conversion).</summary>
    [PackFact]
    public void NativeAotBinaryPublishesWithoutWarningsAndRunsTheCommands()
    {
        var root = TestPaths.NewTempDir();
        string outDir = Path.Combine(root, "aot"), home = Path.Combine(root, "home"), work = Path.Combine(root, "work");
        foreach (var d in new[] { home, work }) Directory.CreateDirectory(d);
        var cli = Path.Combine(TestPaths.RepoRoot, "src", "SharpLM.Cli", "SharpLM.Cli.csproj");
        var pub = Run("dotnet", ["publish", cli, "-c", "Release", "-r", "linux-x64", "-p:PublishAot=true", "-o", outDir], TestPaths.RepoRoot, null);
        var warnings = pub.Out.Split('\n').Where(l => l.Contains("warning IL", StringComparison.Ordinal)).Distinct().ToArray();
        Assert.True(warnings.Length == 0, "AOT/trim warnings:\n" + string.Join('\n', warnings));
        string exe = Path.Combine(outDir, "sharplm");
        Assert.True(File.Exists(exe), $"{exe} was not published");
        Assert.Empty(Directory.GetFiles(outDir, "*.so")); // no native library beside it

        var env = new Dictionary<string, string?> { ["HOME"] = home, ["SHARPLM_MODEL"] = null, ["SHARPLM_CACHE"] = Path.Combine(home, "cache") };
        var gen = Run(exe, ["generate", "--prompt", "The jury said", "--max-tokens", "8", "--temperature", "0", "--json"], work, env);
        Assert.Contains("\"generated_tokens\":8", gen.Out, StringComparison.Ordinal);
        var llama3 = TestPaths.Asset("npm", "tokenizer-llama3", "models", "tokenizer.json");
        const string text = "Hello world! It's 2026 — tokenizing 中文 and emoji 🎉 in a native binary.";
        var tok = Run(exe, ["tokenize", "--tokenizer", llama3, "--text", text], work, env);
        using (var hf = new global::Tokenizers.DotNet.Tokenizer(llama3))
            Assert.Equal(string.Join(' ', hf.Encode(text)), tok.Out.Trim());
        var detok = Run(exe, ["detokenize", "--tokenizer", llama3, "--ids", tok.Out.Trim(), "--skip-special"], work, env);
        Assert.Equal(text, detok.Out.TrimEnd('\n'));
        var inspect = Run(exe, ["inspect", "--model", Path.Combine(outDir, "models", "default.gguf"), "--json"], work, env);
        Assert.Contains("\"tensors\"", inspect.Out, StringComparison.Ordinal);
        var calc = Run(exe, ["calc", "--preset", "llama-7b", "--json"], work, env);
        Assert.Contains("parameters", calc.Out, StringComparison.Ordinal);
        var bench = Run(exe, ["bench", "--prompt-tokens", "16", "--gen-tokens", "4", "--repeat", "1", "--json"], work, env);
        Assert.Contains("\"decode_tokens_per_s\"", bench.Out, StringComparison.Ordinal);
        var embed = Run(exe, ["embed", "--model", "minilm", "--text", "hello world", "--normalize", "--json"], work, env);
        Assert.StartsWith("[[", embed.Out.TrimStart(), StringComparison.Ordinal);
        var data = Path.Combine(root, "data.txt");
        File.WriteAllText(data, string.Concat(Enumerable.Repeat("the jury said the city was fine. ", 200)));
        var runDir = Path.Combine(root, "run");
        Run(exe, ["train", "--data", data, "--out", runDir, "--tokenizer", "bytes", "--dim", "32", "--layers", "1", "--heads", "2", "--kv-heads", "1",
            "--context", "32", "--batch", "2", "--steps", "3", "--export-gguf", Path.Combine(root, "t.gguf")], work, env);
        Assert.True(File.Exists(Path.Combine(runDir, "loss.png")));
        Run(exe, ["generate", "--model", Path.Combine(root, "t.gguf"), "--prompt-ids", "1 2 3", "--max-tokens", "2"], work, env);
        var bad = Run(exe, ["generate", "--model", Path.Combine(root, "nope.gguf"), "--prompt", "x"], work, env, expectFailure: true);
        Assert.Contains("nope.gguf", bad.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", bad.Err, StringComparison.Ordinal);
    }

    private static (string Out, string Err) Run(string exe, string[] args, string cwd, Dictionary<string, string?>? env, bool expectFailure = false)
    {
        var psi = new ProcessStartInfo(exe) { WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env != null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(10)), $"{exe} {string.Join(' ', args)} did not finish");
        string o = so.Result, e = se.Result;
        if (expectFailure) Assert.True(p.ExitCode != 0, $"{exe} {string.Join(' ', args)} should have failed:\n{o}\n{e}");
        else Assert.True(p.ExitCode == 0, $"{exe} {string.Join(' ', args)} exited {p.ExitCode}:\n{o}\n{e}");
        return (o, e);
    }
}
