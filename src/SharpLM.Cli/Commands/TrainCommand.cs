using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLM.Inference;
using SharpLM.Tokenizers.Training;
using SharpLM.Training;
using SharpLM.Training.Checkpoints;
using SharpLM.Training.Data;
using SharpLM.Models;
using SharpLM.Training.Optim;

namespace SharpLM.Cli.Commands;

/// <summary>
/// <c>sharplm train</c>: trains a small LLaMA or GPT-2 from scratch on a text file (hand-written backward passes,
/// pure C#), with a held-out split, warmup + decay, AdamW, clipping, checkpoints, resume, a loss CSV and PNG,
/// and optional GGUF export. Ends with the validation loss and bits per byte.
/// </summary>
internal sealed class TrainCommand : ICliCommand
{
    public string Name => "train";
    public string Description => "Train a small LLaMA or GPT-2 from scratch on a text file (pure C#)";
    public string Usage => "--data FILE --out DIR [--tokenizer PATH|bytes | --vocab-size N] [--arch llama|gpt2|bert] [--dim D] [--layers L] [--heads H] [--kv-heads K] [--ffn F] [--context T] [--batch B] [--grad-accum A] [--steps N] [--lr LR] [--min-lr LR] [--warmup W] [--schedule cosine|linear|constant] [--weight-decay WD] [--grad-clip C] [--optimizer adamw|sgd] [--seed S] [--threads N] [--eval-every N] [--resume DIR] [--export-gguf FILE] [--json]";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        new("data", "UTF-8 text file to train on (the last 10% is held out for validation)"),
        new("out", "output folder: checkpoint/, loss.csv, loss.png"),
        new("tokenizer", "a tokenizer.json (or a folder holding one), or 'bytes' (UTF-8 bytes, vocabulary 256; the default)"),
        new("vocab-size", "train a byte-level BPE tokenizer with this many tokens on the data (default: bytes)"),
        new("arch", "llama (default), gpt2, or bert (masked-LM: 15% chosen, 80/10/10 [MASK]/random/same; [MASK] = the last id)"),
        new("dim", "model width C (default 128)"),
        new("layers", "layers L (default 4)"),
        new("heads", "attention heads NH (default 4)"),
        new("kv-heads", "key/value heads KVH for LLaMA GQA (default: heads)"),
        new("ffn", "MLP hidden size F (default: LLaMA ~8/3 C rounded up to 32, GPT-2 4 C)"),
        new("untied", "LLaMA: a separate lm_head instead of tying it to the embedding", IsFlag: true),
        new("context", "sequence length T (default 128)"),
        new("batch", "sequences per micro-batch B (default 8)"),
        new("grad-accum", "micro-batches per optimizer step (default 1)"),
        new("steps", "optimizer steps (default 1000); with --resume, the new total"),
        new("lr", "peak learning rate (default 1e-3)"),
        new("min-lr", "final learning rate (default lr/10)"),
        new("warmup", "linear warmup steps (default min(100, steps/10))"),
        new("schedule", "decay after warmup: cosine (default), linear or constant"),
        new("weight-decay", "AdamW decoupled weight decay on matrices (default 0.1)"),
        new("grad-clip", "clip the global gradient norm to this (default 1; 0 = off)"),
        new("optimizer", "adamw (default) or sgd (momentum 0.9)"),
        new("seed", "random seed for the initial weights, the batch order and MLM masking (default 1337)"),
        new("threads", "threads (default: all cores; with --resume, the checkpoint's unless given)"),
        new("eval-every", "evaluate and checkpoint every N steps (default 100)"),
        new("eval-batches", "validation batches per evaluation (default 20)"),
        new("resume", "continue from a checkpoint folder (or an --out folder holding checkpoint/)"),
        new("export-gguf", "also write the trained LLaMA as a GGUF file (F32) with its tokenizer"),
        new("json", "print the summary as one JSON object", IsFlag: true),
    ];

    public async Task<int> RunAsync(CliArgs args, CliContext context)
    {
        if (args.Positionals.Count > 0) throw new CliUsageException($"unexpected argument '{args.Positionals[0]}'");
        string dataPath = args.Required("data");
        string outDir = args.Required("out");
        if (!File.Exists(dataPath)) throw new FileNotFoundException($"data file '{dataPath}' not found", dataPath);
        if (args.Has("tokenizer") && args.Has("vocab-size")) throw new CliUsageException("give --tokenizer or --vocab-size, not both");
        bool json = args.Flag("json");
        var err = context.Error;

        string text = await File.ReadAllTextAsync(dataPath, context.CancellationToken).ConfigureAwait(false);
        if (text.Length == 0) throw new InvalidDataException($"data file '{dataPath}' is empty: give a UTF-8 text file with at least a few thousand characters");

        string? resume = args.String("resume");
        TrainState? resumeState = null;
        string? resumeDir = null;
        if (resume != null)
        {
            resumeDir = TrainCheckpoint.Locate(resume);
            resumeState = TrainCheckpoint.ReadState(resumeDir);
        }

        // tokenizer: the checkpoint's (resume), a tokenizer.json, a BBPE trained on the data, or raw bytes
        ulong seed = (ulong)args.Long("seed", 1337, min: 0);
        int vocabSize = args.Int("vocab-size", 0, min: 0, max: 1 << 20);
        string? tokPath = args.String("tokenizer");
        ITextTokenizer tokenizer;
        if (resumeDir != null)
        {
            if (args.Has("tokenizer") || args.Has("vocab-size")) throw new CliUsageException("--resume uses the checkpoint's tokenizer: drop --tokenizer/--vocab-size");
            var saved = Path.Combine(resumeDir, TrainCheckpoint.TokenizerFile);
            tokenizer = File.Exists(saved) ? HfTextTokenizer.FromFile(saved) : new ByteTokenizer();
        }
        else if (tokPath is not null and not "bytes") tokenizer = HfTextTokenizer.FromFile(tokPath);
        else if (vocabSize > 256)
        {
            if (!json) await err.WriteLineAsync($"training a byte-level BPE tokenizer with {vocabSize} tokens on {dataPath} ...").ConfigureAwait(false);
            var trained = BpeTrainer.Train(text.Split('\n').Select(l => l + "\n"),
                new BpeTrainerOptions { VocabSize = vocabSize, SpecialTokens = ["<|endoftext|>"] }, ct: context.CancellationToken);
            tokenizer = new HfTextTokenizer(trained.ToTokenizerJson(), $"BPE trained on {dataPath}");
        }
        else if (vocabSize is > 0 and <= 256) throw new CliUsageException($"--vocab-size must be above 256 (the byte tokens), got {vocabSize}");
        else tokenizer = new ByteTokenizer();

        int[] tokens = tokenizer.Encode(text);
        TrainOptions options;
        ModelConfig spec;
        if (resumeDir != null)
        {
            spec = TrainCheckpoint.ReadSpec(resumeDir);
            options = resumeState!.Options;
        }
        else
        {
            string arch = args.String("arch") ?? "llama";
            if (!TrainModel.Archs.Contains(arch)) throw new CliUsageException($"--arch must be one of {string.Join(", ", TrainModel.Archs)}, got '{arch}'");
            int dim = args.Int("dim", 128, min: 2);
            int heads = args.Int("heads", 4, min: 1);
            int kvHeads = args.Int("kv-heads", heads, min: 1);
            if (arch == "gpt2" && kvHeads != heads) throw new CliUsageException("--kv-heads applies to --arch llama only");
            if (dim % heads != 0) throw new CliUsageException($"--dim {dim} must be a multiple of --heads {heads}");
            if (heads % kvHeads != 0) throw new CliUsageException($"--heads {heads} must be a multiple of --kv-heads {kvHeads}");
            int ffn = args.Int("ffn", arch != "llama" ? 4 * dim : (8 * dim / 3 + 31) / 32 * 32, min: 1);
            int contextLen = args.Int("context", 128, min: 1);
            spec = TrainModel.NewConfig(arch, tokenizer.VocabSize + (arch == "bert" ? 1 : 0), dim, args.Int("layers", 4, min: 1), heads, kvHeads, ffn, contextLen,
                                        tied: !args.Flag("untied"), normEps: arch == "bert" ? 1e-12 : 1e-5);
            int steps = args.Int("steps", 1000, min: 1);
            double lr = Dbl(args, "lr", 1e-3);
            options = new TrainOptions
            {
                Batch = args.Int("batch", 8, min: 1), GradAccum = args.Int("grad-accum", 1, min: 1), Steps = steps,
                Lr = lr, MinLr = Dbl(args, "min-lr", lr / 10), Warmup = args.Int("warmup", Math.Min(100, steps / 10), min: 0),
                Schedule = ParseSchedule(args.String("schedule") ?? "cosine"), Optimizer = args.String("optimizer") ?? "adamw",
                WeightDecay = Dbl(args, "weight-decay", 0.1), GradClip = Dbl(args, "grad-clip", 1), Seed = seed,
                Threads = args.Int("threads", Environment.ProcessorCount, min: 1, max: 1024), EvalEvery = args.Int("eval-every", 100, min: 0),
                EvalBatches = args.Int("eval-batches", 20, min: 1),
            };
        }
        var data = new TokenDataset(tokens, spec.Context, options.ValFraction, options.Seed, $"data file '{dataPath}'");
        if (data.ValWindows == 0)
            throw new InvalidDataException($"data file '{dataPath}' has {tokens.Length} tokens: too few to hold out a validation window of {spec.Context + 1} tokens; use more text or a smaller --context");

        Trainer trainer;
        try
        {
            trainer = resumeDir != null
                ? Trainer.Resume(resumeDir, data, tokenizer, outDir, args.Has("steps") ? args.Int("steps", 0, min: 1) : null,
                                 args.Has("threads") ? args.Int("threads", 0, min: 1, max: 1024) : null)
                : new Trainer(spec, options, data, tokenizer, outDir);
        }
        catch (ArgumentException e) { throw new CliUsageException(e.Message); }
        if (!json)
            await err.WriteLineAsync(
                FormattableString.Invariant($"{spec.Architecture}: {trainer.Model.Parameters.Count:N0} parameters, vocab {spec.Vocab}, context {spec.Context}; data: {data.TrainTokens:N0} train + {data.ValTokens:N0} validation tokens; ") +
                FormattableString.Invariant($"{trainer.Options.Steps} steps x {trainer.Options.Batch}x{trainer.Options.GradAccum} sequences, {trainer.Options.Threads} threads") +
                (trainer.StartStep > 0 ? FormattableString.Invariant($"; resuming at step {trainer.StartStep}") : "")).ConfigureAwait(false);

        bool live = !json && ReferenceEquals(err, Console.Error) && !Console.IsErrorRedirected;
        var lastPrint = DateTime.MinValue;
        try
        {
            trainer.Run(s =>
            {
                string line = FormattableString.Invariant($"step {s.Step}/{s.Steps} | loss {s.Loss:F4} | lr {s.Lr:E2} | {s.TokensPerSecond:N0} tok/s | ETA {s.Eta:hh\\:mm\\:ss}") +
                    (s.ValLoss is double v ? FormattableString.Invariant($" | val {v:F4}") : "");
                if (json) return;
                if (live)
                {
                    if (s.ValLoss != null || s.Step == s.Steps) err.WriteLine("\r" + line + "   ");
                    else if ((DateTime.UtcNow - lastPrint).TotalMilliseconds > 200) { err.Write("\r" + line + "   "); lastPrint = DateTime.UtcNow; }
                }
                else if (s.ValLoss != null || s.Step == s.Steps || s.Step % 10 == 0 || s.Step == trainer.StartStep + 1) err.WriteLine(line);
            }, context.CancellationToken);
        }
        finally
        {
            TryPlot(trainer.LossCsv, Path.Combine(outDir, "loss.png"), err);
        }

        double val = trainer.LastValLoss;
        int valLen = data.ValTokens;
        long valBytes = tokenizer.ByteCount(tokens.AsSpan(tokens.Length - valLen, valLen));
        // bits per byte is a causal-LM measure: BERT's masked-token loss does not give one
        double bpb = trainer.Model.IsMlm ? double.NaN : TextScore.BitsPerByteOf(val * valLen, valBytes);
        string? gguf = args.String("export-gguf");
        if (gguf != null)
        {
            GgufExport.Write(gguf, spec, trainer.Model.Parameters, tokenizer);
            if (!json) await err.WriteLineAsync($"wrote {gguf}").ConfigureAwait(false);
        }
        if (json)
        {
            var o = new JsonObject
            {
                ["val_loss"] = val, ["bits_per_byte"] = double.IsFinite(bpb) ? bpb : null, ["steps"] = trainer.Options.Steps, ["parameters"] = trainer.Model.Parameters.Count,
                ["checkpoint"] = trainer.CheckpointDir, ["loss_csv"] = trainer.LossCsv, ["gguf"] = gguf,
            };
            await context.Out.WriteLineAsync(o.ToJsonString()).ConfigureAwait(false);
        }
        else
        {
            await context.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"validation loss {val:F4} nats/token{(trainer.Model.IsMlm ? " (masked positions)" : "")}, {(double.IsFinite(bpb) ? bpb.ToString("F4", CultureInfo.InvariantCulture) : "n/a")} bits/byte ({valLen:N0} tokens, {valBytes:N0} bytes)")).ConfigureAwait(false);
            await context.Out.WriteLineAsync($"checkpoint: {trainer.CheckpointDir}").ConfigureAwait(false);
        }
        return 0;
    }

    /// <summary>A non-negative number option parsed as double (CliArgs.Float rounds through float).</summary>
    private static double Dbl(CliArgs args, string name, double fallback)
    {
        args.Float(name, 0, min: 0); // validates: a number, not negative
        var s = args.String(name);
        return s is null ? fallback : double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture);
    }

    private static LrDecay ParseSchedule(string s)
    {
        try { return LrSchedule.ParseDecay(s); }
        catch (ArgumentException e) { throw new CliUsageException("--schedule: " + e.Message); }
    }

    /// <summary>Writes the loss curve PNG; a plotting failure is reported, never fatal.</summary>
    private static void TryPlot(string csv, string png, TextWriter err)
    {
        try
        {
            if (!File.Exists(csv)) return;
            var rows = Trainer.ReadCsv(csv);
            if (rows.Count == 0) return;
            Lab.Chart.SaveLoss(png, [.. rows.Select(r => ((double)r.Step, r.Train))],
                [.. rows.Where(r => double.IsFinite(r.Val)).Select(r => ((double)r.Step, r.Val))]);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException)
        {
            err.WriteLine($"warning: could not draw {png}: {e.Message}");
        }
    }
}
