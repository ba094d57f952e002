using System.Diagnostics;
using SharpLM.Formats.HuggingFace;

namespace SharpLM.Cli.Commands;

/// <summary><c>sharplm convert --from HF_FOLDER --to model.gguf [--type f16]</c>: Hugging Face llama/mistral/qwen2 to GGUF.</summary>
internal sealed class ConvertCommand : ICliCommand
{
    public string Name => "convert";
    public string Description => "convert a Hugging Face llama/mistral/qwen2 folder (or re-quantize a .gguf) to a GGUF file llama.cpp loads";
    public string Usage => "--from HF_FOLDER|model.gguf --to model.gguf [--type f32|f16|bf16|q8_0|q4_k_m|...] [--name NAME]";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        new("from", "Hugging Face model folder (config.json, tokenizer.json, *.safetensors), or a .gguf to re-quantize"),
        new("to", "output .gguf path (written to a temporary file, then renamed)"),
        new("type", "file type: f32, f16 (default), bf16, or a quantized one as 'sharplm quantize' takes it (q8_0, q4_k_m, ...); norms and biases stay f32"),
        new("name", "general.name (default: the folder name)"),
        new("quiet", "no progress bar", IsFlag: true),
    ];

    public Task<int> RunAsync(CliArgs args, CliContext context)
    {
        string from = args.Required("from"), to = args.Required("to");
        if (File.Exists(from) && Path.GetFullPath(from) == Path.GetFullPath(to)) throw new CliUsageException("--to must differ from --from");
        if (File.Exists(from) && from.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
            return Task.FromResult(Requantize(from, to, args, context));
        if (!Directory.Exists(from)) throw new CliUsageException($"--from '{from}' is not a folder (expected a Hugging Face model folder with config.json)");
        if (!HfModelFolder.IsModelFolder(from)) throw new FileNotFoundException($"'{from}' has no config.json: not a Hugging Face model folder");
        var type = ParseType(args);
        var sw = Stopwatch.StartNew();
        using var folder = HfModelFolder.Open(from);
        var writer = HfToGguf.Build(folder, new HfToGguf.Options(type, args.String("name")));
        var bar = args.Flag("quiet") ? null : new ProgressBar(context.Error, "converting");
        writer.Write(to, bar is null ? null : bar.Report, context.CancellationToken);
        bar?.Done();
        var size = new FileInfo(to).Length;
        context.Out.WriteLine($"wrote {to}: {folder.Config.Arch.GgufName}, {writer.TensorCount} tensors, {type}, {size / 1e6:F1} MB in {sw.Elapsed.TotalSeconds:F1} s");
        return Task.FromResult(0);
    }

    private static Quantization.QuantFileType ParseType(CliArgs args)
    {
        try
        {
            return HfToGguf.ParseType(args.String("type") ?? "f16");
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException("--type: " + e.Message);
        }
    }

    private static int Requantize(string from, string to, CliArgs args, CliContext context)
    {
        if (args.Has("name")) throw new CliUsageException("--name applies to Hugging Face folders only");
        var type = ParseType(args);
        var sw = Stopwatch.StartNew();
        using var src = Formats.Gguf.GgufFile.Open(from);
        var writer = Formats.Gguf.GgufRequantize.Build(src, type);
        var bar = args.Flag("quiet") ? null : new ProgressBar(context.Error, "quantizing");
        writer.Write(to, bar is null ? null : bar.Report, context.CancellationToken);
        bar?.Done();
        context.Out.WriteLine($"wrote {to}: {writer.TensorCount} tensors, {type}, {new FileInfo(to).Length / 1e6:F1} MB in {sw.Elapsed.TotalSeconds:F1} s");
        return 0;
    }
}

/// <summary>A one-line text progress bar on stderr, redrawn at most once per percent.</summary>
internal sealed class ProgressBar(TextWriter w, string label)
{
    private int _lastPercent = -1;

    public void Report(long done, long total)
    {
        int pct = total <= 0 ? 100 : (int)(done * 100 / total);
        if (pct == _lastPercent) return;
        _lastPercent = pct;
        int filled = pct * 30 / 100;
        w.Write($"\r{label} [{new string('#', filled)}{new string('.', 30 - filled)}] {pct,3}% {done / 1e6:F0}/{total / 1e6:F0} MB");
        w.Flush();
    }

    public void Done()
    {
        if (_lastPercent >= 0) w.WriteLine();
    }
}
