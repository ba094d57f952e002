using System.Globalization;
using System.Text;
using System.Text.Json;

namespace SharpLM.Lab;

/// <summary>
/// docs/lab/README.md: how the pages were made (command, machine, date), and one row per experiment whose NAME.json is
/// in the folder (its form read from the file), with its picture.
/// </summary>
internal static class LabIndex
{
    public static string Write(string dir)
    {
        var sb = new StringBuilder();
        sb.Append("# The study note, measured (`sharplm lab`)\n\n");
        sb.Append("Each page takes one claim of the study note *llm-fundamentals* (大模型基础知识), quotes it with its section and an English ");
        sb.Append("translation, and measures it with SharpLM's own tokenizers, models (`Models/Decoder.cs`, `Models/Encoder.cs`), trainer, kernels ");
        sb.Append("and calculator: the method, the table, the picture, and what the numbers say, including where they disagree with the note.\n\n");
        sb.Append("Regenerate every page: `sharplm lab run all --out docs/lab` (add `--quick` for the seconds-long forms the tests run; ");
        sb.Append("`sharplm lab list` names the experiments). Each experiment writes NAME.md, NAME.json (every figure; the same seed and thread ");
        sb.Append("count give the same `data`, wall-clock times are kept apart under `timings`) and NAME.png.\n\n");
        sb.Append("The pictures are drawn by SharpLM's managed PNG chart writer (`src/SharpLM/Lab/Chart.cs`, also `sharplm train`'s loss curve), ");
        sb.Append("not ScottPlot: ScottPlot needs SkiaSharp and HarfBuzz native libraries, and the tool package and the native-AOT binary ship no native code.\n\n");
        sb.Append(CultureInfo.InvariantCulture, $"Last written {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {Machine()}, {Environment.ProcessorCount} logical CPUs, .NET {Environment.Version}.\n\n");
        sb.Append("| experiment | form | what it measures | picture |\n|---|---|---|---|\n");
        foreach (var e in LabRegistry.All)
        {
            string json = Path.Combine(dir, e.Name + ".json");
            if (!File.Exists(json)) { sb.Append(CultureInfo.InvariantCulture, $"| {e.Name} | not run | {e.Summary} | |\n"); continue; }
            string form = "?";
            using (var doc = JsonDocument.Parse(File.ReadAllBytes(json)))
                if (doc.RootElement.TryGetProperty("form", out var f)) form = f.GetString() ?? "?";
            string pic = File.Exists(Path.Combine(dir, e.Name + ".png")) ? $"<img src=\"{e.Name}.png\" width=\"320\">" : "";
            sb.Append(CultureInfo.InvariantCulture, $"| [{e.Name}]({e.Name}.md) | {form} | {e.Summary} | {pic} |\n");
        }
        sb.Append("\nNot measured yet (issue 14): `norms` (BatchNorm and no norm need encoder variants), `norm-placement` (post-norm and DeepNorm in the ");
        sb.Append("decoder), ");
        sb.Append("`causal-vs-bidirectional`, `nlu-vs-nlg` (classification heads and fine-tuning MiniLM); GPT-2, cl100k and o200k in `tokens-per-character`; ");
        sb.Append("training with a sparse mask and strided or global-token patterns in `sparse-attention`.\n");
        var path = Path.Combine(dir, "README.md");
        SharpLM.Tokenizers.Core.AtomicFile.WriteAllText(path, sb.ToString());
        return path;
    }

    /// <summary>The CPU model from /proc/cpuinfo, or the OS description.</summary>
    private static string Machine()
    {
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                foreach (var line in File.ReadLines("/proc/cpuinfo"))
                    if (line.StartsWith("model name", StringComparison.Ordinal)) return line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
        }
        catch (IOException) { }
        return System.Runtime.InteropServices.RuntimeInformation.OSDescription;
    }
}
