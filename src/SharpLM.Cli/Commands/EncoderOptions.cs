using SharpLM.Inference.Embeddings;

namespace SharpLM.Cli.Commands;

/// <summary>Options the encoder commands (embed, similarity, fill-mask) share.</summary>
internal static class EncoderOptions
{
    public static readonly CliOption Model = new("model", "an .onnx file, a model folder (config.json + model.safetensors + vocab.txt, or model.onnx), or 'minilm' (built-in all-MiniLM-L6-v2)");
    public static readonly CliOption Pooling = new("pooling", "cls | mean | max | mean-max (default: the model's sentence-transformers pooling, else mean)");
    public static readonly CliOption MaxTokens = new("max-tokens", "tokens per text incl. [CLS]/[SEP] (default: the model's max positions)");
    public static readonly CliOption NoTruncate = new("no-truncate", "fail on a text longer than the limit instead of truncating it with a warning", IsFlag: true);
    public static readonly CliOption Threads = new("threads", "kernel threads (default: all cores)");
    public static readonly CliOption Batch = new("batch", "texts per forward pass, sorted by length first (default 32)");

    public static EmbeddingPooling? ParsePooling(CliArgs a) => a.String("pooling") switch
    {
        null => null,
        "mean" => EmbeddingPooling.Mean,
        "cls" => EmbeddingPooling.Cls,
        "max" => EmbeddingPooling.Max,
        "mean-max" or "meanmax" => EmbeddingPooling.MeanMax,
        var s => throw new CliUsageException($"--pooling must be cls, mean, max or mean-max, got '{s}'"),
    };

    public static TextEncoder Open(CliArgs a, CliContext ctx, bool normalize, bool withMlmHead = false)
    {
        var model = BuiltinModels.Resolve(a.Required("model"), ctx.Error);
        var options = new TextEncoderOptions
        {
            Pooling = ParsePooling(a),
            Normalize = normalize,
            MaxTokens = a.Int("max-tokens", 0, 2),
            Overlong = a.Flag("no-truncate") ? OverlongInput.Error : OverlongInput.Truncate,
            Threads = a.Int("threads", 0, 1, 1024),
            BatchSize = a.Int("batch", 32, 1, 1 << 20),
            Warning = w => ctx.Error.WriteLine(w),
        };
        return TextEncoder.Open(model, options, withMlmHead);
    }
}
