using System.Globalization;
using System.Text.Json.Nodes;
using SharpLM.Inference;

namespace SharpLM.Cli.Commands;

/// <summary>
/// <c>sharplm perplexity</c>: how well a model predicts text files, from its own logits: nats per token, perplexity
/// and bits per byte (comparable across tokenizers), in sliding windows (<see cref="Perplexity"/>).
/// </summary>
internal sealed class PerplexityCommand : ICliCommand
{
    public string Name => "perplexity";
    public string Description => "Measure a model's loss, perplexity and bits per byte on text files";
    public string Usage => "[--model PATH] --file FILE [--file FILE ...] [--window T] [--stride S] [--threads N] [--mmap] [--json]";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        ModelCli.ModelOption,
        new("file", "a UTF-8 text file to score (repeatable; each is scored as one text)", Repeatable: true),
        new("window", "tokens per window T (default: the model's context)"),
        new("stride", "tokens a window advances S; each scored token sees at least T - S before it (default T/2)"),
        ModelCli.ThreadsOption,
        ModelCli.MapOption,
        new("json", "print one JSON object per file", IsFlag: true),
    ];

    public async Task<int> RunAsync(CliArgs args, CliContext context)
    {
        if (args.Positionals.Count > 0) throw new CliUsageException($"unexpected argument '{args.Positionals[0]}'");
        var files = args.All("file");
        if (files.Count == 0) throw new CliUsageException("give at least one --file to score");
        foreach (var f in files)
            if (!File.Exists(f)) throw new CliUsageException($"--file: '{f}' not found");
        bool json = args.Flag("json");
        using var model = ModelCli.Load(args);
        int window = args.Int("window", model.ContextSize, min: 2, max: model.ContextSize);
        int stride = args.Int("stride", Math.Max(1, window / 2), min: 1, max: window);

        foreach (var f in files)
        {
            string text = await File.ReadAllTextAsync(f, context.CancellationToken).ConfigureAwait(false);
            TextScore r;
            try { r = Perplexity.Score(model, text, window, stride, ct: context.CancellationToken); }
            catch (ArgumentException e) { throw new CliUsageException($"--file '{f}': {e.Message}"); }
            if (json)
            {
                var o = new JsonObject
                {
                    ["file"] = f, ["tokens"] = r.Tokens, ["bytes"] = r.Bytes, ["nats_per_token"] = r.NatsPerToken,
                    ["perplexity"] = r.Perplexity, ["bits_per_byte"] = r.BitsPerByte, ["window"] = window, ["stride"] = stride, ["model"] = model.Path,
                };
                await context.Out.WriteLineAsync(o.ToJsonString()).ConfigureAwait(false);
            }
            else
                await context.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"{f}: {r.BitsPerByte:F4} bits/byte, {r.NatsPerToken:F4} nats/token, perplexity {r.Perplexity:F2} ({r.Tokens:N0} tokens, {r.Bytes:N0} bytes; window {window}, stride {stride})")).ConfigureAwait(false);
        }
        return 0;
    }
}
