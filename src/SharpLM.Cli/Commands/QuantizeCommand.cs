using System.Diagnostics;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.HuggingFace;
using SharpLM.Quantization;

namespace SharpLM.Cli.Commands;

/// <summary>
/// <c>sharplm quantize --model IN.gguf|HF_FOLDER --to OUT.gguf --type q4_k_m</c>: llama-quantize's file types with its
/// per-tensor mixes and fallbacks (<see cref="QuantMix"/>); a Hugging Face folder is converted and quantized in one pass.
/// </summary>
internal sealed class QuantizeCommand : ICliCommand
{
    public string Name => "quantize";
    public string Description => "quantize a .gguf or a Hugging Face folder to a GGUF file type (q4_k_m, q5_k_m, q6_k, q8_0, iq4_xs, ...) as llama-quantize does";
    public string Usage => "--model IN.gguf|HF_FOLDER --to OUT.gguf --type q4_k_m [--name NAME] [--quiet]   |   --list";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        new("model", "the model to quantize: a .gguf file (any readable type) or a Hugging Face folder"),
        new("to", "output .gguf path (written to a temporary file, then renamed)"),
        new("type", "file type: q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k_s q3_k_m q3_k_l q4_k_s q4_k_m q5_k_s q5_k_m q6_k iq4_nl iq4_xs f16 bf16 f32 (q4_k = q4_k_m)"),
        new("name", "general.name of a Hugging Face folder (default: the folder name)"),
        new("list", "list the file types and what each does", IsFlag: true),
        new("quiet", "no progress bar", IsFlag: true),
    ];

    public Task<int> RunAsync(CliArgs args, CliContext context)
    {
        if (args.Flag("list"))
        {
            foreach (var t in QuantFileType.All)
                context.Out.WriteLine($"  {t.Name,-8} {t.Id,3}  {(t.Unsupported is null ? t.Description : "not available: " + t.Unsupported)}");
            return Task.FromResult(0);
        }
        string from = args.Required("model"), to = args.Required("to");
        QuantFileType type;
        try
        {
            type = QuantFileType.Parse(args.Required("type"));
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException("--type: " + e.Message);
        }
        if (type.Unsupported is { } why) throw new CliUsageException($"--type {type.Name}: {why}");
        if (File.Exists(from) && Path.GetFullPath(from) == Path.GetFullPath(to)) throw new CliUsageException("--to must differ from --model");
        var sw = Stopwatch.StartNew();
        IDisposable source;
        GgufWriter writer;
        if (Directory.Exists(from))
        {
            if (!HfModelFolder.IsModelFolder(from)) throw new FileNotFoundException($"'{from}' has no config.json: not a Hugging Face model folder");
            var folder = HfModelFolder.Open(from);
            source = folder;
            writer = HfToGguf.Build(folder, new HfToGguf.Options(type, args.String("name")));
        }
        else
        {
            if (!File.Exists(from)) throw new FileNotFoundException($"--model '{from}' does not exist (expected a .gguf file or a Hugging Face folder)", from);
            if (args.Has("name")) throw new CliUsageException("--name applies to Hugging Face folders only");
            var gguf = GgufFile.Open(from);
            source = gguf;
            writer = GgufRequantize.Build(gguf, type);
        }
        using (source)
        {
            var bar = args.Flag("quiet") ? null : new ProgressBar(context.Error, $"quantizing to {type}");
            writer.Write(to, bar is null ? null : bar.Report, context.CancellationToken);
            bar?.Done();
        }
        // the mix, as inspect shows it
        using var result = GgufFile.Open(to);
        var mix = result.TensorList.GroupBy(t => t.Type).OrderByDescending(g => g.Count()).Select(g => $"{g.Count()} {g.Key}");
        context.Out.WriteLine($"wrote {to}: {type}, {writer.TensorCount} tensors ({string.Join(", ", mix)}), {new FileInfo(to).Length / 1e6:F1} MB in {sw.Elapsed.TotalSeconds:F1} s");
        return Task.FromResult(0);
    }
}
