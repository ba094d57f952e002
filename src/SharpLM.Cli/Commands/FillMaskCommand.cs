using System.Globalization;
using System.Text.Json;

namespace SharpLM.Cli.Commands;

/// <summary><c>sharplm fill-mask</c>: the most likely tokens for each [MASK] with a masked-LM model (BERT, ALBERT, DistilBERT).</summary>
internal sealed class FillMaskCommand : ICliCommand
{
    public string Name => "fill-mask";
    public string Description => "predict the tokens hidden by [MASK] with a masked-LM encoder";
    public string Usage => "--model PATH --text \"Paris is the [MASK] of France.\" [--top 5] [--json]";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        EncoderOptions.Model,
        new("text", "the text with one or more [MASK] tokens"),
        new("top", "candidates per mask (default 5)"),
        new("json", "print a JSON array (one entry per mask) of arrays of {token, id, probability}", IsFlag: true),
        EncoderOptions.MaxTokens, EncoderOptions.NoTruncate, EncoderOptions.Threads,
    ];

    public Task<int> RunAsync(CliArgs args, CliContext context)
    {
        var text = args.String("text") ?? (args.Positionals.Count == 1 ? args.Positionals[0] : null)
            ?? throw new CliUsageException("give the text with --text \"... [MASK] ...\"");
        if (text.Trim().Length == 0) throw new CliUsageException("--text is empty; write a sentence with [MASK] where a word should be predicted");
        int top = args.Int("top", 5, 1, 1000);
        using var enc = EncoderOptions.Open(args, context, normalize: false, withMlmHead: true);
        var result = enc.FillMask(text, top);
        if (args.Flag("json"))
        {
            using var ms = new MemoryStream();
            using (var j = new Utf8JsonWriter(ms, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                j.WriteStartArray();
                foreach (var mask in result)
                {
                    j.WriteStartArray();
                    foreach (var c in mask)
                    {
                        j.WriteStartObject();
                        j.WriteString("token", c.Token);
                        j.WriteNumber("id", c.Id);
                        j.WriteNumber("probability", c.Probability);
                        j.WriteEndObject();
                    }
                    j.WriteEndArray();
                }
                j.WriteEndArray();
            }
            context.Out.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
        }
        else
        {
            for (int m = 0; m < result.Count; m++)
            {
                if (result.Count > 1) context.Out.WriteLine($"[MASK] {m + 1}:");
                foreach (var c in result[m])
                    context.Out.WriteLine($"{c.Token,-16} {c.Probability.ToString("F4", CultureInfo.InvariantCulture)}");
            }
        }
        return Task.FromResult(0);
    }
}
