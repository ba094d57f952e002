using System.Globalization;
using System.Text.Json;
using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.HuggingFace;

namespace SharpLM.Cli.Commands;

/// <summary><c>sharplm inspect --model PATH [--json]</c>: architecture, hyperparameters, tensors, parameter count.</summary>
internal sealed class InspectCommand : ICliCommand
{
    public string Name => "inspect";
    public string Description => "show a model's architecture, hyperparameters, tensors and parameter count (.gguf, .safetensors or HF folder)";
    public string Usage => "--model PATH [--json] [--metadata]";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        new("model", "a .gguf file, a .safetensors file, or a Hugging Face model folder"),
        new("json", "print JSON on stdout", IsFlag: true),
        new("metadata", "list every GGUF metadata key (arrays summarized)", IsFlag: true),
    ];

    private sealed record TensorRow(string Name, string Type, long[] Shape, long Elements, long Bytes);

    public Task<int> RunAsync(CliArgs args, CliContext context)
    {
        string path = args.Required("model");
        var info = new Dictionary<string, object?>(StringComparer.Ordinal);
        var hyper = new Dictionary<string, object?>(StringComparer.Ordinal);
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        List<TensorRow> tensors;
        long fileBytes;
        string format;
        if (Directory.Exists(path) || path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            IWeightSource src;
            HfModelFolder? folder = null;
            if (HfModelFolder.IsModelFolder(path))
            {
                folder = HfModelFolder.Open(path);
                src = folder.RequireWeights();
                var c = folder.Config;
                info["architecture"] = c.Arch.HfClasses[0];
                hyper["model_type"] = c.Arch.HfModelTypes[0];
                hyper["hidden_size"] = c.Width;
                hyper["intermediate_size"] = c.FfnWidth;
                hyper["num_hidden_layers"] = c.Layers;
                hyper["num_attention_heads"] = c.Heads;
                hyper["num_key_value_heads"] = c.KvHeads;
                hyper["head_dim"] = c.HeadSize;
                hyper["vocab_size"] = c.Vocab;
                hyper["max_position_embeddings"] = c.Context;
                hyper[c.Family == Models.ArchFamily.Llama ? "rms_norm_eps" : "layer_norm_eps"] = c.NormEps;
                if (c.Family == Models.ArchFamily.Llama) hyper["rope_theta"] = c.RopeTheta;
                if (c.RopeScaling != Models.RopeScalingType.None)
                    hyper["rope_scaling"] = $"{c.RopeScaling.ToString().ToLowerInvariant()} x{c.RopeScalingFactor.ToString(CultureInfo.InvariantCulture)}";
                hyper["tie_word_embeddings"] = c.TiedEmbeddings;
                format = "huggingface";
            }
            else
            {
                src = Formats.Safetensors.SafetensorsModel.Open(path);
                format = "safetensors";
            }
            using (folder)
            using (src)
            {
                tensors = [.. src.Tensors.Values.OrderBy(t => t.Name, StringComparer.Ordinal).Select(Row)];
                fileBytes = ((Formats.Safetensors.SafetensorsModel)src).FileBytes;
            }
        }
        else
        {
            using var f = GgufFile.Open(path);
            format = $"gguf v{f.Version}";
            fileBytes = f.FileLength;
            string? arch = f.GetStringOrNull(GgufKeys.Architecture);
            info["architecture"] = arch;
            info["name"] = f.GetStringOrNull(GgufKeys.Name);
            if (f.Contains(GgufKeys.FileType))
            {
                long id = f.GetLong(GgufKeys.FileType);
                var ft = Quantization.QuantFileType.All.FirstOrDefault(t => t.Id == id);
                info["file_type"] = ft is null ? $"{id}" : $"{ft} ({id})";
            }
            foreach (var (k, v) in f.MetadataList)
            {
                if (arch is not null && k.StartsWith(arch + ".", StringComparison.Ordinal) && v.Value is not GgufArray)
                    hyper[k[(arch.Length + 1)..]] = v.Value switch
                    {
                        float or bool or string => v.Value,
                        double d => d,
                        ulong u => u <= long.MaxValue ? (long)u : v.ToString(),
                        _ when GgufValue.IsInteger(v.Type) => Convert.ToInt64(v.Value, CultureInfo.InvariantCulture),
                        _ => v.ToString(),
                    };
                meta[k] = v.Value is GgufArray a ? $"[{a.ElementType} x {a.Count}]" : Truncate(v.ToString());
            }
            if (f.GetStringOrNull(GgufKeys.TokenizerModel) is { } tm)
            {
                hyper["tokenizer"] = tm;
                if (f.GetArrayOrNull(GgufKeys.Tokens) is { } toks) hyper["tokens"] = toks.Count;
                if (f.GetStringOrNull(GgufKeys.TokenizerPre) is { } pre) hyper["tokenizer_pre"] = pre;
                if (f.Contains(GgufKeys.BosId)) hyper["bos_token_id"] = f.GetLong(GgufKeys.BosId);
                if (f.Contains(GgufKeys.EosId)) hyper["eos_token_id"] = f.GetLong(GgufKeys.EosId);
                hyper["chat_template"] = f.Contains(GgufKeys.ChatTemplate);
            }
            tensors = [.. f.TensorList.Select(Row)];
        }
        long parameters = tensors.Sum(t => t.Elements);
        // the file's mix: how many tensors, parameters and bytes each type holds
        var mix = tensors.GroupBy(t => t.Type).Select(g => (Type: g.Key, Tensors: g.Count(), Parameters: g.Sum(t => t.Elements), Bytes: g.Sum(t => t.Bytes)))
                         .OrderByDescending(m => m.Parameters).ToList();
        double bitsPerWeight = parameters == 0 ? 0 : 8.0 * tensors.Sum(t => t.Bytes) / parameters;

        if (args.Flag("json"))
        {
            var o = new Dictionary<string, object?>(StringComparer.Ordinal)
            {
                ["path"] = Path.GetFullPath(path),
                ["format"] = format,
                ["file_bytes"] = fileBytes,
                ["parameters"] = parameters,
            };
            foreach (var kv in info) o[kv.Key] = kv.Value;
            o["bits_per_weight"] = Math.Round(bitsPerWeight, 3);
            o["mix"] = mix.Select(m => new Dictionary<string, object> { ["type"] = m.Type, ["tensors"] = m.Tensors, ["parameters"] = m.Parameters, ["bytes"] = m.Bytes }).ToList();
            o["hyperparameters"] = hyper;
            if (args.Flag("metadata")) o["metadata"] = meta;
            o["tensors"] = tensors.Select(t => new Dictionary<string, object> { ["name"] = t.Name, ["type"] = t.Type, ["shape"] = t.Shape, ["bytes"] = t.Bytes }).ToList();
            context.Out.WriteLine(JsonSerializer.Serialize(o, CliJson.Indented.DictionaryStringObject));
            return Task.FromResult(0);
        }

        var w = context.Out;
        w.WriteLine($"{Path.GetFullPath(path)}  ({format}, {fileBytes / 1e6:F1} MB)");
        foreach (var kv in info.Where(kv => kv.Value is not null)) w.WriteLine($"{kv.Key + ":",-16}{kv.Value}");
        w.WriteLine($"{"parameters:",-16}{parameters:N0} ({parameters / 1e6:F2} M), {bitsPerWeight.ToString("F2", CultureInfo.InvariantCulture)} bits per weight");
        w.WriteLine($"{"mix:",-16}{string.Join(", ", mix.Select(m => $"{m.Type} {m.Tensors} tensors ({100.0 * m.Parameters / Math.Max(1, parameters):F1}% of weights)"))}");
        w.WriteLine();
        w.WriteLine("hyperparameters:");
        foreach (var kv in hyper) w.WriteLine($"  {kv.Key,-36}{Format(kv.Value)}");
        if (args.Flag("metadata"))
        {
            w.WriteLine();
            w.WriteLine("metadata:");
            foreach (var kv in meta) w.WriteLine($"  {kv.Key,-44}{kv.Value}");
        }
        w.WriteLine();
        w.WriteLine($"tensors ({tensors.Count}):");
        int nameWidth = Math.Min(60, tensors.Count == 0 ? 10 : tensors.Max(t => t.Name.Length) + 2);
        foreach (var t in tensors) w.WriteLine($"  {t.Name.PadRight(nameWidth)}{t.Type,-6}[{string.Join(", ", t.Shape)}]");
        return Task.FromResult(0);
    }

    private static TensorRow Row(TensorInfo t) => new(t.Name, t.Type.ToString(), t.Shape, t.ElementCount, t.ByteLength);

    private static string Format(object? v) => v switch
    {
        bool b => b ? "true" : "false",
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v?.ToString() ?? "",
    };

    private static string Truncate(string s) => s.Length > 80 ? s[..77].ReplaceLineEndings(" ") + "..." : s.ReplaceLineEndings(" ");
}
