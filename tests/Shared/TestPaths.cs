// Locations that tests share: the repository root, committed test data, and the test-asset cache
// that scripts/fetch-test-assets.sh fills (.cache/assets, ignored by git).
using System.Runtime.CompilerServices;

namespace SharpLM.Testing;

internal static class TestPaths
{
    /// <summary>The folder that holds SharpLM.slnx.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The test-asset cache; override with SHARPLM_TEST_ASSETS.</summary>
    public static string Assets =>
        Environment.GetEnvironmentVariable("SHARPLM_TEST_ASSETS") is { Length: > 0 } a ? a : Path.Combine(RepoRoot, ".cache", "assets");

    /// <summary>Committed fixtures (tests/testdata).</summary>
    public static string TestData => Path.Combine(RepoRoot, "tests", "testdata");

    /// <summary>A self-written mixed Chinese/English/code/math text (tests/testdata/text), a tokenizer test text.</summary>
    public static string MixedText => Path.Combine(TestData, "text", "mixed-zh.md");

    /// <summary>An asset file, or a clear failure telling how to fetch it.</summary>
    public static string Asset(params string[] parts)
    {
        var p = Path.Combine([Assets, .. parts]);
        if (!File.Exists(p) && !Directory.Exists(p))
            throw new FileNotFoundException($"Test asset {p} is missing: run 'bash scripts/fetch-test-assets.sh' first.", p);
        return p;
    }

    /// <summary>A fresh scratch folder for one test: inside this process's run folder, which is deleted when the process
    /// exits (set SHARPLM_KEEP_TEST_FILES=1 to keep it for a look).</summary>
    public static string NewTempDir([CallerMemberName] string name = "")
    {
        var d = Path.Combine(RunFolder.Value, name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(d);
        return d;
    }

    /// <summary>The shared folder of the tests' scratch folders and caches (system temp/sharplm-tests).</summary>
    public static string TempRoot => Path.Combine(Path.GetTempPath(), "sharplm-tests");

    // One folder per test process, run-PID-TAG: deleted at exit; a run folder whose process is gone (a run that was killed)
    // is deleted by the next run, so scratch models never pile up on a machine's disk. The named caches beside them stay.
    private static readonly Lazy<string> RunFolder = new(() =>
    {
        SweepDeadRuns();
        var d = Path.Combine(TempRoot, $"run-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(d);
        if (Environment.GetEnvironmentVariable("SHARPLM_KEEP_TEST_FILES") != "1")
            AppDomain.CurrentDomain.ProcessExit += (_, _) => TryDelete(d);
        return d;
    });

    private static void SweepDeadRuns()
    {
        if (!Directory.Exists(TempRoot)) return;
        foreach (var dir in Directory.EnumerateDirectories(TempRoot, "run-*"))
        {
            var parts = Path.GetFileName(dir).Split('-');
            if (parts.Length == 3 && int.TryParse(parts[1], out int pid) && !ProcessAlive(pid)) TryDelete(dir);
        }
    }

    private static bool ProcessAlive(int pid)
    {
        try { using var p = System.Diagnostics.Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    private static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "SharpLM.slnx"))) return dir.FullName;
        throw new DirectoryNotFoundException("SharpLM.slnx not found above " + AppContext.BaseDirectory);
    }
}
