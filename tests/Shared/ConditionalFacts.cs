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
