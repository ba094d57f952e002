using System.Text.Json;

namespace SharpLM.Sizing;

/// <summary>
/// Named architectures stored as embedded config.json-like files (Sizing/Presets/NAME.json), each with a
/// "_source" field saying where its numbers come from.
/// </summary>
internal static class ModelPresets
{
    private const string Prefix = "SharpLM.Sizing.Presets.";

    /// <summary>Preset names, sorted.</summary>
    public static IReadOnlyList<string> Names { get; } =
        [.. typeof(ModelPresets).Assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(Prefix, StringComparison.Ordinal) && n.EndsWith(".json", StringComparison.Ordinal))
            .Select(n => n[Prefix.Length..^".json".Length])
            .Order(StringComparer.Ordinal)];

    /// <summary>The preset's config.json text.</summary>
    public static string Json(string name)
    {
        string key = name.Trim().ToLowerInvariant();
        using var s = typeof(ModelPresets).Assembly.GetManifestResourceStream(Prefix + key + ".json")
            ?? throw new ArgumentException($"unknown preset '{name}'. Known presets: {string.Join(", ", Names)}.");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }

    /// <summary>The preset as the base model calc counts (<see cref="ParameterCount.BaseModel"/>).</summary>
    public static Models.ModelConfig Load(string name) => ParameterCount.BaseModel(Formats.ModelConfigReader.FromHfJson(Json(name), $"preset '{name}'"));

    /// <summary>Where the preset's numbers come from.</summary>
    public static string Source(string name)
    {
        using var doc = JsonDocument.Parse(Json(name));
        return doc.RootElement.TryGetProperty("_source", out var s) ? s.GetString() ?? "" : "";
    }
}
