using System.Diagnostics;
using System.Globalization;
using SharpLM.Lab;

namespace SharpLM.Cli.Commands;

/// <summary>
/// <c>sharplm lab list | run NAME|all</c>: the study note's claims as experiments (<see cref="LabRegistry"/>), each
/// writing NAME.md, NAME.json and NAME.png into --out, then the folder's README.md index.
/// </summary>
internal sealed class LabCommand : ICliCommand
{
    public string Name => "lab";
    public string Description => "Run the study note's experiments: tables, pictures and reports (list | run NAME | run all)";
    public string Usage => "list | run NAME|all [--quick] [--out DIR] [--seed S] [--threads N] [--assets DIR]";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        new("quick", "the seconds-long form (what the tests run) instead of the full one", IsFlag: true),
        new("out", "folder for NAME.md, NAME.json, NAME.png and README.md (default: lab)"),
        new("seed", "seed of every random draw (default 1)"),
        new("threads", "worker threads (default: all cores)"),
        new("assets", "test-asset folder with the tokenizers and the Brown corpus (default: SHARPLM_TEST_ASSETS or .cache/assets above the current folder)"),
    ];

    public Task<int> RunAsync(CliArgs args, CliContext context)
    {
        var pos = args.Positionals;
        if (pos.Count == 0) throw new CliUsageException("give 'list' or 'run NAME' (or 'run all')");
        if (pos[0] == "list")
        {
            if (pos.Count > 1) throw new CliUsageException($"unexpected argument '{pos[1]}'");
            foreach (var e in LabRegistry.All) context.Out.WriteLine($"{e.Name,-24} {e.Summary}");
            return Task.FromResult(0);
        }
        if (pos[0] != "run") throw new CliUsageException($"unknown lab action '{pos[0]}': expected list or run");
        if (pos.Count != 2) throw new CliUsageException("run takes one experiment name, or all");
        LabExperiment[] chosen = pos[1] == "all" ? [.. LabRegistry.All]
            : LabRegistry.Find(pos[1]) is { } one ? [one]
            : throw new CliUsageException($"unknown experiment '{pos[1]}'. Experiments: {string.Join(", ", LabRegistry.All.Select(e => e.Name))}");
        var seedText = args.String("seed");
        ulong seed = 1;
        if (seedText != null && !ulong.TryParse(seedText, NumberStyles.Integer, CultureInfo.InvariantCulture, out seed))
            throw new CliUsageException($"--seed expects a non-negative integer, got '{seedText}'");
        string outDir = args.String("out") ?? "lab";
        var bar = new LabProgressLine(context.Error);
        var options = new LabOptions
        {
            Quick = args.Flag("quick"),
            Seed = seed,
            Threads = args.Int("threads", Environment.ProcessorCount, min: 1, max: 1024),
            AssetsDir = args.String("assets") ?? LabContext.FindAssets(Environment.CurrentDirectory),
            Progress = bar,
            MiniLm = () =>
            {
                try { return BuiltinModels.Resolve(BuiltinModels.MiniLm, context.Error); }
                catch (FileNotFoundException) { return null; }   // the experiment's report says the model is missing
            },
            Tiktoken = name =>
            {
                try { return BuiltinModels.ResolveTokenizer(name, context.Error); }
                catch (FileNotFoundException) { return null; }   // the experiment leaves the encoding out and says so
            },
        };
        foreach (var e in chosen)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            var sw = Stopwatch.StartNew();
            var report = LabRegistry.Run(e, options);
            bar.Done();
            var files = report.Write(outDir);
            context.Out.WriteLine($"{e.Name}: {string.Join(", ", files.Select(Path.GetFileName))} in {outDir} ({sw.Elapsed.TotalSeconds:F1} s)");
        }
        context.Out.WriteLine($"index: {LabIndex.Write(outDir)}");
        return Task.FromResult(0);
    }

    /// <summary>A one-line progress bar on stderr, redrawn when the percentage or the stage changes.</summary>
    private sealed class LabProgressLine(TextWriter w) : IProgress<LabProgress>
    {
        private string _last = "";

        public void Report(LabProgress p)
        {
            int pct = (int)(p.Fraction * 100);
            string line = $"{p.Experiment} [{new string('#', pct * 30 / 100)}{new string('.', 30 - pct * 30 / 100)}] {pct,3}% {p.Stage}";
            if (line == _last) return;
            w.Write("\r" + line.PadRight(Math.Max(_last.Length, line.Length)));
            w.Flush();
            _last = line;
        }

        public void Done()
        {
            if (_last.Length == 0) return;
            w.WriteLine();
            _last = "";
        }
    }
}
