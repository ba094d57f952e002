using SharpLM.Kernels;

namespace SharpLM.Lab;

/// <summary>Every experiment of <c>sharplm lab</c>, listed once in the order (docs/lab/README.md) (no reflection: the
/// native-AOT binary keeps exactly these), and the runner that applies the options.</summary>
internal static class LabRegistry
{
    public static IReadOnlyList<LabExperiment> All { get; } =
    [
        new Experiments.AttentionScale(),
        new Experiments.Norms(),
        new Experiments.NormPlacementExperiment(),
        new Experiments.Warmup(),
        new Experiments.PositionsExperiment(),
        new Experiments.EmbeddingSum(),
        new Experiments.Heads(),
        new Experiments.SparseAttention(),
        new Experiments.AlbertSharing(),
        new Experiments.TokensPerCharacter(),
        new Experiments.Oov(),
        new Experiments.Parameters(),
        new Experiments.Memory(),
        new Experiments.KvCacheExperiment(),
        new Experiments.Complexity(),
        new Experiments.CausalVsBidirectional(),
        new Experiments.NluVsNlg(),
    ];

    /// <summary>The experiment called <paramref name="name"/>, or null.</summary>
    public static LabExperiment? Find(string name) => All.FirstOrDefault(e => e.Name == name);

    /// <summary>Runs one experiment with the options' thread count and stamps its report with the form, seed and threads.</summary>
    public static LabReport Run(LabExperiment experiment, LabOptions options)
    {
        using var pool = new WorkerPool(options.Threads); // the experiment's thread count, for this run only
        LabReport report;
        using (pool.Use()) report = experiment.Run(new LabContext(experiment, options));
        report.Quick = options.Quick;
        report.Seed = options.Seed;
        report.Threads = options.Threads;
        return report;
    }
}
