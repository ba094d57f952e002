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

    /// <summary>A fresh scratch folder under the system temp folder.</summary>
    public static string NewTempDir([CallerMemberName] string name = "")
    {
        var d = Path.Combine(Path.GetTempPath(), "sharplm-tests", name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(d);
        return d;
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "SharpLM.slnx"))) return dir.FullName;
        throw new DirectoryNotFoundException("SharpLM.slnx not found above " + AppContext.BaseDirectory);
    }
}
