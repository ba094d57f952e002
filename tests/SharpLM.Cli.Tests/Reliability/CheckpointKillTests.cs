using System.Globalization;
using System.Text;
using SharpLM.Testing;

namespace SharpLM.Cli.Tests.Reliability;

/// <summary>
/// Crash-safe checkpoints: a <c>sharplm train</c> child process is killed with SIGKILL at each step of a checkpoint save
/// (SHARPLM_TEST_KILL_CHECKPOINT_AT, the fault points of TrainCheckpoint.Save: after each file of the new folder, between
/// the renames, after the swap), then resumed. Every time, the last good checkpoint loads, and the resumed run's
/// loss.csv equals an uninterrupted run's, row for row; a kill before the first checkpoint leaves nothing to resume
/// and says so.
/// </summary>
public sealed class CheckpointKillTests
{
    // 6 steps, a checkpoint every 2: saves at steps 2, 4 and 6; the first save has 4 fault points (no old folder to
    // move aside), the later ones 5 each: 14 in all.
    private const int Points = 14;

    private static string[] Train(string data, string outDir, bool resume) =>
    [
        "train", "--data", data, "--out", outDir, "--steps", "6", "--eval-every", "2", "--eval-batches", "1",
        .. resume ? new[] { "--resume", outDir } : ["--dim", "16", "--layers", "1", "--heads", "2", "--context", "16", "--batch", "2", "--seed", "3"],
        "--threads", "1",
    ];

    private static async Task<CliProcess.Result> Run(string[] args, int killAt = 0)
    {
        var env = new Dictionary<string, string?> { ["SHARPLM_TEST_KILL_CHECKPOINT_AT"] = killAt > 0 ? killAt.ToString(CultureInfo.InvariantCulture) : null };
        return await CliProcess.RunAsync(args, null, TimeSpan.FromMinutes(3), 2L << 30, env);
    }

    private static string[] Losses(string outDir) =>
        File.ReadAllLines(Path.Combine(outDir, "loss.csv")).Skip(1).Select(l => string.Join(',', l.Split(',').Take(3))).ToArray();

    private static async Task KillAndResume(IEnumerable<int> points)
    {
        var root = TestPaths.NewTempDir();
        var data = Path.Combine(root, "data.txt");
        var sb = new StringBuilder();
        var words = new[] { "the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far" };
        for (int i = 0; sb.Length < 3000; i++) sb.Append(words[(i * 7 + i / 3) % words.Length]).Append(i % 9 == 8 ? ".\n" : " ");
        await File.WriteAllTextAsync(data, sb.ToString());
        var reference = Path.Combine(root, "reference");
        var r = await Run(Train(data, reference, resume: false));
        Assert.True(r.ExitCode == 0, r.Output);
        var expected = Losses(reference);
        Assert.Equal(6, expected.Length);
        foreach (int k in points)
        {
            var outDir = Path.Combine(root, $"killed-{k}");
            var killed = await Run(Train(data, outDir, resume: false), killAt: k);
            Assert.True(killed.ExitCode == 137, $"fault point {k}: expected a SIGKILL (137), got exit {killed.ExitCode}\n{killed.Output}");
            var resumed = await Run(Train(data, outDir, resume: true));
            if (k <= 3)
            {
                // killed while the first checkpoint was being written: there is none, and resume says so
                Assert.Equal(1, resumed.ExitCode);
                Assert.Contains("no checkpoint", resumed.Output, StringComparison.Ordinal);
                Assert.DoesNotContain("   at ", resumed.Output, StringComparison.Ordinal);
                continue;
            }
            Assert.True(resumed.ExitCode == 0, $"fault point {k}: resume failed\n{resumed.Output}");
            Assert.Equal(expected, Losses(outDir));
            // no stray checkpoint.old-*/checkpoint.tmp-* folders left behind
            Assert.DoesNotContain(Directory.GetDirectories(outDir), d => Path.GetFileName(d).StartsWith("checkpoint.", StringComparison.Ordinal));
        }
        Directory.Delete(root, recursive: true);
    }

    [Fact]
    public Task A_kill_at_any_step_of_a_checkpoint_save_keeps_the_last_good_checkpoint() =>
        KillAndResume([2, 7, 8]); // in the first save; in the second: its files written (a stale .tmp folder), between the renames (recovery)

    [LongFact]
    public Task A_kill_at_every_step_of_every_checkpoint_save_keeps_the_last_good_checkpoint() => KillAndResume(Enumerable.Range(1, Points));
}
