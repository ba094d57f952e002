using System.Globalization;
using SharpLM.Tokenizers.Training;
using Spectre.Console;

namespace SharpLM.Cli.Commands;

/// <summary>
/// <c>sharplm train-tokenizer --corpus FILE --vocab-size N --out tokenizer.json [--special "&lt;s&gt;,&lt;/s&gt;"]</c>:
/// trains a byte-level BPE tokenizer (GPT-2 byte alphabet) and writes a Hugging Face tokenizer.json.
/// </summary>
internal sealed class TrainTokenizerCommand : ICliCommand
{
    public string Name => "train-tokenizer";
    public string Description => "Train a byte-level BPE tokenizer on a text corpus and save it as tokenizer.json";
    public string Usage => "--corpus FILE --vocab-size N --out tokenizer.json [--special \"<s>,</s>\"] [--split llama3|gpt2] [--bos TOKEN] [--min-frequency N]";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        new("corpus", "a UTF-8 text file (repeat for several)", Repeatable: true),
        new("vocab-size", "final vocabulary size, counting special tokens and the 256 byte tokens"),
        new("out", "where to write tokenizer.json"),
        new("special", "special tokens, comma separated; they get ids 0, 1, ..."),
        new("split", "pre-tokenizer regex: llama3 (default; cl100k style) or gpt2"),
        new("bos", "a special token the post-processor puts before every sequence"),
        new("min-frequency", "merge only pairs seen at least this often (default 2)"),
    ];

    public async Task<int> RunAsync(CliArgs args, CliContext context)
    {
        var corpora = args.All("corpus");
        if (corpora.Count == 0) throw new CliUsageException("--corpus is required");
        foreach (var c in corpora)
            if (!File.Exists(c)) throw new FileNotFoundException($"Corpus file '{c}' does not exist.", c);
        int vocabSize = args.Int("vocab-size", -1, min: 1);
        if (vocabSize < 0) throw new CliUsageException("--vocab-size is required");
        string outPath = args.Required("out");
        var specials = (args.String("special") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var split = (args.String("split") ?? "llama3") switch
        {
            "llama3" or "cl100k" => TrainerSplit.Llama3,
            "gpt2" => TrainerSplit.Gpt2,
            var s => throw new CliUsageException($"--split must be llama3 or gpt2, got '{s}'"),
        };
        int initial = specials.Length + 256;
        if (vocabSize < initial)
            throw new CliUsageException($"--vocab-size {vocabSize} is too small: it must be at least {initial} ({specials.Length} special tokens + 256 byte tokens)");
        var options = new BpeTrainerOptions
        {
            VocabSize = vocabSize,
            SpecialTokens = specials,
            Split = split,
            BosToken = args.String("bos"),
            MinFrequency = args.Int("min-frequency", 2, min: 1),
        };

        long totalChars = corpora.Sum(c => new FileInfo(c).Length);
        BpeTrainerResult result;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var corpus = corpora.SelectMany(ReadWithNewlines);
        bool interactive = ReferenceEquals(context.Error, Console.Error) && !Console.IsErrorRedirected;
        if (interactive)
        {
            BpeTrainerResult? r = null;
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(context.Error) });
            await console.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .StartAsync(ctx =>
                {
                    var count = ctx.AddTask("counting words", maxValue: Math.Max(1, totalChars));
                    var merge = ctx.AddTask("merging pairs", maxValue: Math.Max(1, vocabSize - initial), autoStart: false);
                    var progress = new InlineProgress(p =>
                    {
                        if (p.Stage == "count") count.Value = Math.Min(p.Done, count.MaxValue);
                        else
                        {
                            if (!merge.IsStarted) { count.Value = count.MaxValue; merge.StartTask(); }
                            merge.Value = Math.Min(p.Done, merge.MaxValue);
                        }
                    });
                    r = BpeTrainer.Train(corpus, options, progress, totalChars, context.CancellationToken);
                    count.Value = count.MaxValue;
                    merge.Value = merge.MaxValue;
                    return Task.CompletedTask;
                }).ConfigureAwait(false);
            result = r!;
        }
        else
        {
            // Redirected stderr (scripts, tests): plain lines at every 10%, no cursor movement.
            int lastCount = -1, lastMerge = -1;
            var progress = new InlineProgress(p =>
            {
                bool counting = p.Stage == "count";
                int pct = p.Total > 0 ? (int)Math.Min(100, 100 * p.Done / p.Total) / 10 * 10 : 0;
                ref int last = ref counting ? ref lastCount : ref lastMerge;
                if (pct == last) return;
                last = pct;
                context.Error.WriteLine($"{(counting ? "counting words" : "merging pairs")} {pct,3}%");
            });
            result = BpeTrainer.Train(corpus, options, progress, totalChars, context.CancellationToken);
        }

        result.Save(outPath);
        await context.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"wrote {outPath}: {result.VocabSize} tokens ({specials.Length} special, 256 bytes, {result.Merges.Count} merges) in {sw.Elapsed.TotalSeconds:F1} s")).ConfigureAwait(false);
        if (result.VocabSize < vocabSize)
            await context.Error.WriteLineAsync($"note: the corpus ran out of pairs (min frequency {options.MinFrequency}) at {result.VocabSize} tokens, below the requested {vocabSize}.").ConfigureAwait(false);
        return 0;
    }

    private static IEnumerable<string> ReadWithNewlines(string path)
    {
        foreach (var line in File.ReadLines(path)) yield return line + "\n";
    }

    /// <summary>Calls back on the reporting thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class InlineProgress(Action<BpeTrainerProgress> report) : IProgress<BpeTrainerProgress>
    {
        public void Report(BpeTrainerProgress value) => report(value);
    }
}
