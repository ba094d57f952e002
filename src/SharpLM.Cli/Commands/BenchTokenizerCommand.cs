using System.Diagnostics;
using System.Globalization;
using SharpLM.Tokenizers;

namespace SharpLM.Cli.Commands;

/// <summary>
/// <c>sharplm bench-tokenizer --tokenizer PATH --file FILE [--mb 1] [--rounds 7]</c>: single-thread encode speed
/// (MB of UTF-8 per second, median of the rounds) on the first MB of a text file. Peers (HF tokenizers,
/// Microsoft.ML.Tokenizers) are measured by bench/SharpLM.Benchmarks (tokenizer-race).
/// </summary>
internal sealed class BenchTokenizerCommand : ICliCommand
{
    public string Name => "bench-tokenizer";
    public string Description => "Measure single-thread encode speed (MB/s) of a tokenizer on a text file";
    public string Usage => "--tokenizer PATH --file FILE [--mb 1] [--rounds 7] [--offsets] [--json]";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        new("tokenizer", "tokenizer.json, a folder holding one, vocab.txt, a .tiktoken rank file or a .gguf model"),
        new("file", "a UTF-8 text file (e.g. brown.txt)"),
        new("mb", "megabytes of text to encode per round (default 1)"),
        new("rounds", "timed rounds after one warm-up (default 7); the median is reported"),
        new("offsets", "time Encode (ids, tokens and offsets) instead of EncodeToIds (ids only)", IsFlag: true),
        new("json", "print the result as JSON", IsFlag: true),
    ];

    public async Task<int> RunAsync(CliArgs args, CliContext context)
    {
        var tokenizer = TokenizeCommand.LoadTokenizer(args.Required("tokenizer"));
        var file = args.Required("file");
        if (!File.Exists(file)) throw new FileNotFoundException($"Input file '{file}' does not exist.", file);
        float mb = args.Float("mb", 1, min: 0.001f, max: 1024);
        int rounds = args.Int("rounds", 7, min: 1, max: 1000);
        string text = Take(await File.ReadAllTextAsync(file, context.CancellationToken).ConfigureAwait(false), (int)(mb * 1_000_000));
        double bytes = System.Text.Encoding.UTF8.GetByteCount(text);

        bool offsets = args.Flag("offsets");
        int Run() => offsets ? tokenizer.Encode(text, false).Count : tokenizer.EncodeToIds(text, false).Length;
        int tokens = Run(); // warm-up (fills caches, JIT)
        var times = new double[rounds];
        for (int r = 0; r < rounds; r++)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            var sw = Stopwatch.StartNew();
            tokens = Run();
            times[r] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        double median = times[rounds / 2];
        double mbps = bytes / 1e6 / median;
        if (args.Flag("json"))
            await context.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"{{\"bytes\":{bytes},\"tokens\":{tokens},\"rounds\":{rounds},\"offsets\":{(offsets ? "true" : "false")},\"median_s\":{median:G6},\"mb_per_s\":{mbps:F3}}}")).ConfigureAwait(false);
        else
            await context.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"{bytes / 1e6:F2} MB, {tokens} tokens, {(offsets ? "Encode" : "EncodeToIds")}: median {median * 1000:F1} ms of {rounds} rounds = {mbps:F2} MB/s (1 thread, wall time)")).ConfigureAwait(false);
        return 0;
    }

    /// <summary>The first <paramref name="maxBytes"/> UTF-8 bytes of the text, cut at a line end when there is one.</summary>
    internal static string Take(string text, int maxBytes)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(text) <= maxBytes) return text;
        int chars = Math.Min(text.Length, maxBytes);
        while (chars > 0 && System.Text.Encoding.UTF8.GetByteCount(text.AsSpan(0, chars)) > maxBytes) chars -= Math.Max(1, chars / 100);
        int nl = text.LastIndexOf('\n', Math.Max(0, chars - 1));
        return nl > chars / 2 ? text[..(nl + 1)] : text[..chars];
    }
}
