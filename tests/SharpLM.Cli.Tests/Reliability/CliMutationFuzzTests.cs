using SharpLM.Testing;
using Xunit.Abstractions;

namespace SharpLM.Cli.Tests.Reliability;

/// <summary>
/// The mutational fuzz of the whole CLI (<see cref="CliMutationFuzz"/>): a small seeded run always (12 processes drawn
/// from every command/file case), a long one with SHARPLM_LONG_TESTS=1 (40 mutations of every case).
/// SHARPLM_CLI_FUZZ_PER_CASE (every case, that many mutations each) and SHARPLM_CLI_FUZZ_SEED change the size and the
/// seed; SHARPLM_CLI_FUZZ_LOG=FILE appends each finding to FILE as it comes.
/// </summary>
public sealed class CliMutationFuzzTests(ITestOutputHelper output)
{
    private static int Env(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), out int v) ? v : fallback;

    private async Task Fuzz(int perCase, int seed, int? sample = null)
    {
        var root = TestPaths.NewTempDir();
        try
        {
            var fuzz = await CliMutationFuzz.CreateAsync(root);
            var logFile = Environment.GetEnvironmentVariable("SHARPLM_CLI_FUZZ_LOG");
            var (runs, findings) = await fuzz.RunAsync(Env("SHARPLM_CLI_FUZZ_PER_CASE", perCase), Env("SHARPLM_CLI_FUZZ_SEED", seed),
                logFile is null ? null : line => { lock (fuzz) File.AppendAllText(logFile, line + "\n\n"); },
                Environment.GetEnvironmentVariable("SHARPLM_CLI_FUZZ_PER_CASE") is null ? sample : null);
            output.WriteLine($"{runs} mutated inputs through {fuzz.Cases().Count} command/file cases: {findings.Count} findings " +
                             $"({string.Join(", ", findings.GroupBy(f => f.Kind).Select(g => $"{g.Count()} {g.Key}"))})");
            foreach (var f in findings.Take(40)) output.WriteLine($"--- {f.Kind}: {f.Case}\n    sharplm {f.Args}\n{f.Detail}");
            Assert.True(runs >= Math.Min(sample ?? int.MaxValue, fuzz.Cases().Count), $"only {runs} runs");
            if (findings.Count > 0)
                Assert.Fail($"{findings.Count} of {runs} runs misbehaved; first: {findings[0].Kind} in {findings[0].Case}: sharplm {findings[0].Args}\n{findings[0].Detail}");
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    [Fact]
    public Task Mutated_files_through_every_command_give_clear_errors_never_traces_crashes_hangs_or_blowups() => Fuzz(perCase: 2, seed: 16, sample: 12);

    [LongFact]
    public Task Long_mutational_fuzz_of_the_cli() => Fuzz(perCase: 40, seed: 1616);
}
