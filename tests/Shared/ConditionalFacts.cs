// Facts that run only under a condition and are reported as skipped (with the reason) otherwise, so a test never
// passes by returning early.
using Xunit;

namespace SharpLM.Testing;

/// <summary>A benchmark: runs only with SHARPLM_BENCH=1 (minutes, GBs of disk).</summary>
public sealed class BenchFactAttribute : FactAttribute
{
    public BenchFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("SHARPLM_BENCH") != "1") Skip = "a benchmark: set SHARPLM_BENCH=1 to run it";
    }
}

/// <summary>The long form of a test whose short form runs always: runs only with SHARPLM_LONG_TESTS=1.</summary>
public sealed class LongFactAttribute : FactAttribute
{
    public static bool Enabled => Environment.GetEnvironmentVariable("SHARPLM_LONG_TESTS") == "1";

    public LongFactAttribute()
    {
        if (!Enabled) Skip = "a long run: set SHARPLM_LONG_TESTS=1 to run it";
    }
}

/// <summary>Packs, installs or publishes the product (minutes of dotnet pack / tool install / AOT publish): runs only
/// with SHARPLM_PACK_TESTS=1, which .ci/run sets for its packaging step.</summary>
public sealed class PackFactAttribute : FactAttribute
{
    public PackFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("SHARPLM_PACK_TESTS") != "1") Skip = "packs and installs the tool: set SHARPLM_PACK_TESTS=1 to run it";
    }
}

/// <summary>A fact that needs Linux's peak-memory counter (VmHWM in /proc/self/status, reset through
/// /proc/self/clear_refs); skipped with the reason elsewhere.</summary>
public sealed class PeakRssFactAttribute : FactAttribute
{
    public static bool Supported => File.Exists("/proc/self/clear_refs") && File.Exists("/proc/self/status")
                                    && File.ReadLines("/proc/self/status").Any(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));

    public PeakRssFactAttribute()
    {
        if (!Supported) Skip = "no /proc/self/clear_refs or VmHWM in /proc/self/status (not Linux): peak memory cannot be measured";
    }
}

/// <summary>A fact that needs a file of the test-asset cache (scripts/fetch-test-assets.sh fills it); skipped with the
/// reason where it is missing.</summary>
public sealed class AssetFactAttribute : FactAttribute
{
    public AssetFactAttribute(params string[] parts)
    {
        if (AssetTheoryAttribute.Missing(parts) is { } why) Skip = why;
    }
}

/// <summary>A theory that needs a file of the test-asset cache; skipped with the reason where it is missing.</summary>
public sealed class AssetTheoryAttribute : TheoryAttribute
{
    public AssetTheoryAttribute(params string[] parts)
    {
        if (Missing(parts) is { } why) Skip = why;
    }

    internal static string? Missing(string[] parts)
    {
        var p = Path.Combine([TestPaths.Assets, .. parts]);
        return File.Exists(p) ? null : $"the test asset {p} is missing: run 'bash scripts/fetch-test-assets.sh'";
    }
}
