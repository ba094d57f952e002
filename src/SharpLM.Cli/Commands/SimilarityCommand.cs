using System.Globalization;

namespace SharpLM.Cli.Commands;

/// <summary><c>sharplm similarity</c>: cosine similarity of two texts' embeddings.</summary>
internal sealed class SimilarityCommand : ICliCommand
{
    public string Name => "similarity";
    public string Description => "cosine similarity of two texts' sentence embeddings";
    public string Usage => "--model PATH|minilm --text A --text B [--pooling cls|mean|max|mean-max]";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        EncoderOptions.Model,
        new("text", "a text (give exactly two)", Repeatable: true),
        EncoderOptions.Pooling, EncoderOptions.MaxTokens, EncoderOptions.NoTruncate, EncoderOptions.Threads,
    ];

    public Task<int> RunAsync(CliArgs args, CliContext context)
    {
        var texts = args.All("text").Concat(args.Positionals).ToArray();
        if (texts.Length != 2) throw new CliUsageException($"give exactly two texts (--text A --text B), got {texts.Length}");
        using var enc = EncoderOptions.Open(args, context, normalize: true);
        float cos = enc.Similarity(texts[0], texts[1]);
        context.Out.WriteLine(cos.ToString("F6", CultureInfo.InvariantCulture));
        return Task.FromResult(0);
    }
}
