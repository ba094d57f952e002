using System.Globalization;
using System.Text.Json;

namespace SharpLM.Cli.Commands;

/// <summary><c>sharplm embed</c>: sentence embeddings from a BERT-family encoder, one vector per input text.</summary>
internal sealed class EmbedCommand : ICliCommand
{
    public string Name => "embed";
    public string Description => "sentence embeddings with a BERT-family encoder (e.g. --model minilm)";
    public string Usage => "--model PATH|minilm [--text TEXT ...] [--file FILE] [--pooling cls|mean|max|mean-max] [--normalize] [--json] [--batch N] [--threads N]";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        EncoderOptions.Model,
        new("text", "a text to embed (repeatable)", Repeatable: true),
        new("file", "a file with one text per line (empty lines skipped)"),
        EncoderOptions.Pooling,
        new("normalize", "L2-normalise each embedding", IsFlag: true),
        new("json", "print a JSON array with one array of floats per text, in input order", IsFlag: true),
        EncoderOptions.MaxTokens, EncoderOptions.NoTruncate, EncoderOptions.Threads, EncoderOptions.Batch,
    ];

    public Task<int> RunAsync(CliArgs args, CliContext context)
    {
        var texts = ReadTexts(args);
        using var enc = EncoderOptions.Open(args, context, args.Flag("normalize"));
        var vectors = enc.Embed(texts, context.CancellationToken);
        if (args.Flag("json"))
        {
            using var ms = new MemoryStream();
            using (var j = new Utf8JsonWriter(ms))
            {
                j.WriteStartArray();
                foreach (var v in vectors)
                {
                    j.WriteStartArray();
                    foreach (var x in v) j.WriteNumberValue(x);
                    j.WriteEndArray();
                }
                j.WriteEndArray();
            }
            context.Out.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
        }
        else
        {
            foreach (var v in vectors) context.Out.WriteLine(string.Join(' ', v.Select(x => x.ToString("G9", CultureInfo.InvariantCulture))));
        }
        return Task.FromResult(0);
    }

    internal static List<string> ReadTexts(CliArgs args)
    {
        var texts = new List<string>(args.All("text"));
        texts.AddRange(args.Positionals);
        if (args.String("file") is { } file)
        {
            if (!File.Exists(file)) throw new FileNotFoundException($"--file {file}: no such file", file);
            int before = texts.Count;
            texts.AddRange(File.ReadLines(file).Where(l => l.Trim().Length > 0));
            if (texts.Count == before) throw new CliUsageException($"--file {file} holds no text (every line is empty)");
        }
        if (texts.Count == 0) throw new CliUsageException("nothing to embed: give --text TEXT (repeatable) or --file FILE");
        return texts;
    }
}
