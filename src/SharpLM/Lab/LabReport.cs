using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpLM.Lab;

/// <summary>A table of a report: a caption, column headers and rows of formatted cells.</summary>
internal sealed record LabTable(string Caption, IReadOnlyList<string> Headers, IReadOnlyList<IReadOnlyList<string>> Rows);

/// <summary>A claim quoted from the study note: its section, the Chinese text, and an English translation.</summary>
internal sealed record LabClaim(string Section, string Chinese, string English);

/// <summary>
/// An experiment's result, written as NAME.md (the claim quoted and translated, the method, the tables, the picture and
/// what the numbers say), NAME.json (every figure, in <see cref="Data"/>) and NAME.png (<see cref="Panels"/>).
/// Timings go to <see cref="Timings"/>, kept apart in the JSON so that everything else is the same for the same seed
/// and thread count.
/// </summary>
internal sealed class LabReport(string name, string title)
{
    public string Name { get; } = name;
    public string Title { get; } = title;
    public bool Quick { get; set; }
    public ulong Seed { get; set; }
    public int Threads { get; set; }
    public List<LabClaim> Claims { get; } = [];
    public List<string> Method { get; } = [];
    public List<LabTable> Tables { get; } = [];
    public List<string> Findings { get; } = [];
    /// <summary>Every figure the experiment computed (deterministic for a seed and a thread count).</summary>
    public JsonObject Data { get; } = [];
    /// <summary>Wall-clock measurements (vary from run to run).</summary>
    public JsonObject Timings { get; } = [];
    public List<ChartPanel> Panels { get; } = [];
    public int ChartWidth { get; set; } = 1000;
    public int ChartHeight { get; set; } = 520;

    /// <summary>Writes NAME.md, NAME.json and NAME.png into <paramref name="dir"/>; returns their paths.</summary>
    public string[] Write(string dir)
    {
        Directory.CreateDirectory(dir);
        string md = Path.Combine(dir, Name + ".md"), json = Path.Combine(dir, Name + ".json"), png = Path.Combine(dir, Name + ".png");
        SharpLM.Tokenizers.Core.AtomicFile.WriteAllText(md, Markdown());
        SharpLM.Tokenizers.Core.AtomicFile.WriteAllText(json, Json());
        if (Panels.Count > 0) Chart.Save(png, ChartWidth, ChartHeight, [.. Panels]);
        return Panels.Count > 0 ? [md, json, png] : [md, json];
    }

    /// <summary>The JSON document: name, form, seed, threads, data, timings.</summary>
    public string Json()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("experiment", Name);
            w.WriteString("form", Quick ? "quick" : "full");
            w.WriteNumber("seed", Seed);
            w.WriteNumber("threads", Threads);
            w.WritePropertyName("data");
            Data.WriteTo(w);
            w.WritePropertyName("timings");
            Timings.WriteTo(w);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    public string Markdown()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"# `{Name}`: {Title}\n\n");
        sb.Append(CultureInfo.InvariantCulture,
            $"*{(Quick ? "Quick form" : "Full form")}, seed {Seed}, {Threads} thread{(Threads == 1 ? "" : "s")}. Regenerate: `sharplm lab run {Name}{(Quick ? " --quick" : "")} --seed {Seed} --threads {Threads}`.*\n\n");
        sb.Append("## The claim\n\n");
        foreach (var c in Claims)
        {
            sb.Append(CultureInfo.InvariantCulture, $"The study note, section {c.Section}:\n\n> {c.Chinese.Replace("\n", "\n> ", StringComparison.Ordinal)}\n\n");
            sb.Append(CultureInfo.InvariantCulture, $"In English: *{c.English}*\n\n");
        }
        sb.Append("## Method\n\n");
        foreach (var m in Method) sb.Append(m).Append("\n\n");
        sb.Append("## Results\n\n");
        foreach (var t in Tables) AppendTable(sb, t);
        if (Panels.Count > 0) sb.Append(CultureInfo.InvariantCulture, $"![{Name}]({Name}.png)\n\n");
        sb.Append("## What the numbers say\n\n");
        foreach (var f in Findings) sb.Append("- ").Append(f).Append('\n');
        sb.Append(CultureInfo.InvariantCulture, $"\nEvery figure is in [{Name}.json]({Name}.json).\n");
        return sb.ToString();
    }

    private static void AppendTable(StringBuilder sb, LabTable t)
    {
        if (t.Caption.Length > 0) sb.Append(t.Caption).Append("\n\n");
        sb.Append("| ").Append(string.Join(" | ", t.Headers)).Append(" |\n");
        sb.Append('|').Append(string.Concat(t.Headers.Select(_ => "---|"))).Append('\n');
        foreach (var r in t.Rows) sb.Append("| ").Append(string.Join(" | ", r.Select(c => c.Replace("|", "\\|", StringComparison.Ordinal)))).Append(" |\n");
        sb.Append('\n');
    }

    /// <summary>A number for a table: 4 significant digits, invariant culture.</summary>
    public static string F(double v) =>
        !double.IsFinite(v) ? (double.IsNaN(v) ? "NaN" : v > 0 ? "inf" : "-inf")
        : v == Math.Floor(v) && Math.Abs(v) < 1e15 ? v.ToString("N0", CultureInfo.InvariantCulture)
        : Math.Abs(v) >= 1e-3 && Math.Abs(v) < 1e6 ? v.ToString("G4", CultureInfo.InvariantCulture)
        : v.ToString("0.###E+0", CultureInfo.InvariantCulture);

    /// <summary>A JSON number, or null for NaN/infinity (JSON has neither).</summary>
    public static JsonNode? J(double v) => double.IsFinite(v) ? JsonValue.Create(v) : null;
}
