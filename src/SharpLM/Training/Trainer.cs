using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using SharpLM.Formats.HuggingFace;
using SharpLM.Training.Checkpoints;
using SharpLM.Training.Data;
using SharpLM.Models;
using SharpLM.Training.Optim;
using SharpLM.Tokenizers.Core;

namespace SharpLM.Training;

/// <summary>Training hyper-parameters (saved in checkpoints; a resumed run uses the saved ones).</summary>
internal sealed record TrainOptions
{
    public int Batch { get; init; } = 8;
    public int GradAccum { get; init; } = 1;
    public int Steps { get; init; } = 1000;
    public double Lr { get; init; } = 1e-3;
    public double MinLr { get; init; } = 1e-4;
    public int Warmup { get; init; } = 50;
    public LrDecay Schedule { get; init; } = LrDecay.Cosine;
    public string Optimizer { get; init; } = "adamw";
    public double WeightDecay { get; init; } = 0.1;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.95;
    public double GradClip { get; init; } = 1.0;
    public ulong Seed { get; init; } = 1337;
    public int Threads { get; init; } = Environment.ProcessorCount;
    public int EvalEvery { get; init; } = 100;
    public int EvalBatches { get; init; } = 20;
    public double ValFraction { get; init; } = 0.1;

    public JsonObject ToJson() => new()
    {
        ["batch"] = Batch, ["grad_accum"] = GradAccum, ["steps"] = Steps, ["lr"] = Lr, ["min_lr"] = MinLr, ["warmup"] = Warmup,
        ["schedule"] = Schedule.ToString().ToLowerInvariant(), ["optimizer"] = Optimizer, ["weight_decay"] = WeightDecay,
        ["beta1"] = Beta1, ["beta2"] = Beta2, ["grad_clip"] = GradClip, ["seed"] = Seed, ["threads"] = Threads,
        ["eval_every"] = EvalEvery, ["eval_batches"] = EvalBatches, ["val_fraction"] = ValFraction,
    };

    /// <summary>The options saved in a checkpoint: every key is required, and an error names the file and the key.</summary>
    public static TrainOptions FromJson(JsonReader o)
    {
        LrDecay schedule;
        try { schedule = LrSchedule.ParseDecay(o.RequiredString("schedule")); }
        catch (ArgumentException e) { return o.Fail<TrainOptions>("schedule", e.Message); }
        var r = new TrainOptions
        {
            Batch = o.RequiredInt("batch"), GradAccum = o.RequiredInt("grad_accum"), Steps = o.RequiredInt("steps"),
            Lr = o.RequiredDouble("lr"), MinLr = o.RequiredDouble("min_lr"), Warmup = o.RequiredInt("warmup"),
            Schedule = schedule, Optimizer = o.RequiredString("optimizer"),
            WeightDecay = o.RequiredDouble("weight_decay"), Beta1 = o.RequiredDouble("beta1"), Beta2 = o.RequiredDouble("beta2"),
            GradClip = o.RequiredDouble("grad_clip"), Seed = o.RequiredULong("seed"), Threads = o.RequiredInt("threads"),
            EvalEvery = o.RequiredInt("eval_every"), EvalBatches = o.RequiredInt("eval_batches"), ValFraction = o.RequiredDouble("val_fraction"),
        };
        try { r.Validate(); }
        catch (ArgumentException e) { throw new InvalidDataException($"{o.Source}: the saved training options are invalid: {e.Message}", e); }
        return r;
    }

    public void Validate()
    {
        if (Batch < 1 || GradAccum < 1 || Steps < 1) throw new ArgumentException($"batch ({Batch}), grad-accum ({GradAccum}) and steps ({Steps}) must be at least 1");
        if (!(Lr > 0) || MinLr < 0 || MinLr > Lr) throw new ArgumentException($"need lr > 0 and 0 <= min-lr <= lr, got lr {Lr}, min-lr {MinLr}");
        if (Warmup < 0) throw new ArgumentException($"warmup must be >= 0, got {Warmup}");
        if (Optimizer is not ("adamw" or "sgd")) throw new ArgumentException($"unknown optimizer '{Optimizer}': expected adamw or sgd");
        if (Threads < 1) throw new ArgumentException($"threads must be >= 1, got {Threads}");
    }
}

/// <summary>One logged step.</summary>
internal sealed record TrainStepInfo(int Step, int Steps, double Loss, double Lr, double GradNorm, double TokensPerSecond, TimeSpan Eta, double? ValLoss);

/// <summary>The loss became NaN or infinite: training stopped; the last good checkpoint is kept.</summary>
internal sealed class TrainingDivergedException(string message) : InvalidOperationException(message);

/// <summary>
/// The training loop: gradient accumulation over micro-batches, global-norm clipping, warmup + decay schedule,
/// AdamW (or SGD), evaluation on the held-out split, a loss CSV, and checkpoints in OUT/checkpoint. Deterministic
/// for a seed: the weights' init, the batch order and the math do not depend on the thread count or on resuming.
/// </summary>
internal sealed class Trainer
{
    public ModelConfig Spec { get; }
    public TrainOptions Options { get; }
    public TrainModel Model { get; }
    public IOptimizer Optimizer { get; }
    public string OutDir { get; }
    public string CheckpointDir => Path.Combine(OutDir, "checkpoint");
    public string LossCsv => Path.Combine(OutDir, "loss.csv");
    /// <summary>Hook for tests: runs before each optimizer step's forward passes.</summary>
    internal Action<int, ParameterSet>? BeforeStep { get; set; }
    public double LastValLoss { get; private set; } = double.NaN;
    public List<(int Step, double Loss, double Lr, double? Val)> History { get; } = [];

    private readonly TokenDataset _data;
    private readonly ITextTokenizer _tokenizer;
    private readonly string _dataFingerprint;
    private int _startStep;

    public Trainer(ModelConfig spec, TrainOptions options, TokenDataset data, ITextTokenizer tokenizer, string outDir)
    {
        options.Validate();
        if (spec.Context < data.Context) throw new ArgumentException($"the data windows ({data.Context}) are longer than the model context ({spec.Context})");
        if (tokenizer.VocabSize > spec.Vocab - (spec.Family == ArchFamily.Bert ? 1 : 0)) throw new ArgumentException($"the tokenizer has {tokenizer.VocabSize} tokens but the model vocabulary is {spec.Vocab}");
        Spec = spec;
        Options = options;
        _data = data;
        _tokenizer = tokenizer;
        OutDir = outDir;
        _dataFingerprint = $"{data.TrainTokens}+{data.ValTokens}";
        Model = new TrainModel(spec);
        Model.Initialize(options.Seed);
        Optimizer = options.Optimizer == "sgd"
            ? new Sgd(Model.Parameters.Count, momentum: options.Beta1, weightDecay: options.WeightDecay)
            : new AdamW(Model.Parameters.Count, options.WeightDecay, options.Beta1, options.Beta2);
    }

    /// <summary>Rebuilds a trainer from a checkpoint (weights, optimizer state, step, options).
    /// <paramref name="steps"/> overrides the total number of steps when given, <paramref name="threads"/> the thread
    /// count (which does not change the results).</summary>
    public static Trainer Resume(string checkpoint, TokenDataset data, ITextTokenizer tokenizer, string outDir, int? steps = null, int? threads = null)
    {
        var dir = TrainCheckpoint.Locate(checkpoint);
        var spec = TrainCheckpoint.ReadSpec(dir);
        var state = TrainCheckpoint.ReadState(dir);
        var options = state.Options;
        if (steps is int s) options = options with { Steps = s };
        if (threads is int n) options = options with { Threads = n };
        var t = new Trainer(spec, options, data, tokenizer, outDir);
        string? fp = state.Data;
        if (fp != null && fp != t._dataFingerprint)
            throw new InvalidDataException($"the checkpoint in {dir} was trained on data with {fp} (train+val) tokens, this data has {t._dataFingerprint}: resume with the same --data and tokenizer");
        TrainCheckpoint.LoadWeights(dir, spec, t.Model.Parameters);
        int step = state.Step;
        t.Optimizer.Restore(step, TrainCheckpoint.LoadOptimizer(dir));
        t._startStep = step;
        return t;
    }

    public int StartStep => _startStep;

    /// <summary>Mean loss over up to EvalBatches held-out batches (NaN when there is no validation data).</summary>
    public double Evaluate()
    {
        int nb = Math.Min(Options.EvalBatches, _data.ValBatches(Options.Batch));
        if (nb == 0) return double.NaN;
        int b = Options.Batch, t = _data.Context;
        var x = new int[b * t]; var y = new int[b * t];
        double sum = 0;
        for (int i = 0; i < nb; i++)
        {
            _data.ValBatch(i, b, x, y);
            if (Model.IsMlm) Mask(x, y, -1 - i);
            sum += Model.Forward(x, y, b, t);
        }
        return sum / nb;
    }

    /// <summary>MLM: x (clean windows) becomes the corrupted input, y the targets at chosen positions.</summary>
    private void Mask(int[] x, int[] y, long batchIndex)
    {
        var clean = (int[])x.Clone();
        MlmMasking.Apply(clean, x, y, Spec.Vocab - 1, _tokenizer.VocabSize, Options.Seed, batchIndex);
    }

    public void Run(Action<TrainStepInfo>? onStep = null, CancellationToken ct = default)
    {
        using var pool = new Kernels.WorkerPool(Options.Threads); // the run's thread count, for this run only
        using var scope = pool.Use();
        RunCore(onStep, ct);
    }

    private void RunCore(Action<TrainStepInfo>? onStep, CancellationToken ct)
    {
        Directory.CreateDirectory(OutDir);
        var o = Options;
        int b = o.Batch, t = _data.Context, a = o.GradAccum;
        var stepper = new TrainStep(Model, Optimizer, new LrSchedule(o.Lr, o.MinLr, o.Warmup, o.Steps, o.Schedule), o.GradClip);
        var x = new int[b * t]; var y = new int[b * t];
        var p = Model.Parameters;
        var csv = OpenCsv();
        var sw = Stopwatch.StartNew();
        long tokens = 0;
        int lastGood = _startStep;
        try
        {
            for (int step = _startStep; step < o.Steps; step++)
            {
                ct.ThrowIfCancellationRequested();
                BeforeStep?.Invoke(step, p);
                var r = stepper.Run(step, a, b, t, x, y, (m, xs, ys) =>
                {
                    _data.TrainBatch((long)step * a + m, b, xs, ys);
                    if (Model.IsMlm) Mask(xs, ys, (long)step * a + m);
                });
                if (!double.IsFinite(r.Loss)) Diverged(step, r.Loss, lastGood);
                if (!double.IsFinite(r.GradNorm)) Diverged(step, r.GradNorm, lastGood, "gradient norm");
                double loss = r.Loss, norm = r.GradNorm, lr = r.Lr;
                tokens += (long)b * t * a;
                int done = step + 1;
                double? val = null;
                bool checkpoint = (o.EvalEvery > 0 && done % o.EvalEvery == 0) || done == o.Steps;
                if (checkpoint)
                {
                    sw.Stop(); // tokens/s counts training only
                    val = LastValLoss = Evaluate();
                }
                History.Add((done, loss, lr, val));
                // the row before the checkpoint: a process killed right after the save must not lose the row of the step
                // the checkpoint holds (a resume keeps the rows up to it and redoes the ones after)
                csv.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{done},{loss:R},{(val is double v ? v.ToString("R", CultureInfo.InvariantCulture) : "")},{lr:R},{norm:R}"));
                csv.Flush();
                if (checkpoint)
                {
                    SaveCheckpoint();
                    lastGood = done;
                    sw.Start();
                }
                double secs = sw.Elapsed.TotalSeconds;
                double tps = secs > 0 ? tokens / secs : 0;
                var eta = TimeSpan.FromSeconds(secs / (done - _startStep) * (o.Steps - done));
                onStep?.Invoke(new TrainStepInfo(done, o.Steps, loss, lr, norm, tps, eta, val));
            }
        }
        finally { csv.Dispose(); }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void Diverged(int step, double value, int lastGood, string what = "loss")
    {
        string kept = Directory.Exists(CheckpointDir) ? $"the last good checkpoint (step {lastGood}) is kept in {CheckpointDir}" : "no checkpoint was written yet";
        throw new TrainingDivergedException(
            $"the {what} became {value.ToString(CultureInfo.InvariantCulture)} at step {step + 1}: training stopped; {kept}. " +
            "Try a lower --lr, a longer --warmup or --grad-clip 1.");
    }

    public void SaveCheckpoint()
    {
        var state = new JsonObject
        {
            ["options"] = Options.ToJson(),
            ["data"] = _dataFingerprint,
            ["val_loss"] = double.IsFinite(LastValLoss) ? LastValLoss : null,
            ["sharplm"] = "train",
        };
        TrainCheckpoint.Save(CheckpointDir, Spec, Model.Parameters, Optimizer, state, _tokenizer.TokenizerJson);
    }

    /// <summary>Opens loss.csv: a fresh run starts it; a resumed run keeps the rows before its start step.</summary>
    private StreamWriter OpenCsv()
    {
        const string Header = "step,train_loss,val_loss,lr,grad_norm";
        var kept = new List<string>();
        if (_startStep > 0 && File.Exists(LossCsv))
            foreach (var line in File.ReadLines(LossCsv).Skip(1))
            {
                if (ParseRow(line) is (int s, _, _) && s <= _startStep) kept.Add(line); // a mangled row is dropped
            }
        // the kept rows replace the file atomically (a kill here keeps the old history), then rows are appended
        AtomicFile.WriteAllText(LossCsv, string.Concat(kept.Prepend(Header).Select(l => l + "\n")));
        return new StreamWriter(LossCsv, append: true, new UTF8Encoding(false));
    }

    /// <summary>Reads loss.csv back: (step, train loss, val loss or NaN).</summary>
    public static List<(int Step, double Train, double Val)> ReadCsv(string path)
    {
        var rows = new List<(int, double, double)>();
        int lineNo = 1;
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            lineNo++;
            if (ParseRow(line) is { } row) rows.Add(row);
            else if (line.Split(',').Length >= 3)
                throw new InvalidDataException($"{path}: line {lineNo} is '{(line.Length <= 60 ? line : line[..60] + "...")}'; expected 'step,train_loss,val_loss,...' numbers");
        }
        return rows;
    }

    /// <summary>One loss.csv row (step, train loss, val loss or NaN), or null when it is not one.</summary>
    private static (int, double, double)? ParseRow(string line)
    {
        var f = line.Split(',');
        if (f.Length < 3) return null;
        const NumberStyles Num = NumberStyles.Float;
        var inv = CultureInfo.InvariantCulture;
        if (!int.TryParse(f[0], NumberStyles.None, inv, out int step) || !double.TryParse(f[1], Num, inv, out double train)) return null;
        double val = double.NaN;
        if (f[2].Length > 0 && !double.TryParse(f[2], Num, inv, out val)) return null;
        return (step, train, val);
    }
}
