using System.Globalization;

namespace SharpLM.Cli;

/// <summary>
/// Parsed options of one command: <c>--name value</c>, <c>--name=value</c>, flags, repeated options and positionals.
/// Unknown options and missing values are <see cref="CliUsageException"/>s naming the option.
/// </summary>
internal sealed class CliArgs
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    public List<string> Positionals { get; } = [];

    public static CliArgs Parse(ReadOnlySpan<string> args, IReadOnlyList<CliOption> options)
    {
        var r = new CliArgs();
        for (int i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (a == "--") { for (i++; i < args.Length; i++) r.Positionals.Add(args[i]); break; }
            if (!a.StartsWith("--", StringComparison.Ordinal) || a.Length == 2) { r.Positionals.Add(a); continue; }
            string name = a[2..];
            string? inline = null;
            int eq = name.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0) { inline = name[(eq + 1)..]; name = name[..eq]; }
            if (name == "help") { r.Add("help", ""); continue; }
            var opt = options.FirstOrDefault(o => o.Name == name)
                      ?? throw new CliUsageException($"unknown option --{name}. Known: {string.Join(" ", options.Select(o => "--" + o.Name))}");
            if (opt.IsFlag)
            {
                r.Add(name, inline ?? "true");
                continue;
            }
            string value = inline ?? (i + 1 < args.Length ? args[++i] : throw new CliUsageException($"--{name} needs a value"));
            if (!opt.Repeatable && r._values.ContainsKey(name)) throw new CliUsageException($"--{name} given twice");
            r.Add(name, value);
        }
        return r;
    }

    private void Add(string name, string value)
    {
        if (!_values.TryGetValue(name, out var list)) _values[name] = list = [];
        list.Add(value);
    }

    public bool Has(string name) => _values.ContainsKey(name);

    public bool Flag(string name) => _values.TryGetValue(name, out var v) && v[^1] is not ("false" or "0");

    public string? String(string name) => _values.TryGetValue(name, out var v) ? v[^1] : null;

    public string Required(string name) => String(name) ?? throw new CliUsageException($"--{name} is required");

    public IReadOnlyList<string> All(string name) => _values.TryGetValue(name, out var v) ? v : [];

    public int Int(string name, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        var s = String(name);
        if (s is null) return fallback;
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
            throw new CliUsageException($"--{name} expects an integer, got '{s}'");
        if (v < min || v > max) throw new CliUsageException($"--{name} must be in [{min}, {max}], got {v}");
        return v;
    }

    public long Long(string name, long fallback, long min = long.MinValue)
    {
        var s = String(name);
        if (s is null) return fallback;
        if (!long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
            throw new CliUsageException($"--{name} expects an integer, got '{s}'");
        if (v < min) throw new CliUsageException($"--{name} must be at least {min}, got {v}");
        return v;
    }

    public float Float(string name, float fallback, float min = float.NegativeInfinity, float max = float.PositiveInfinity)
    {
        var s = String(name);
        if (s is null) return fallback;
        if (!float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || float.IsNaN(v))
            throw new CliUsageException($"--{name} expects a number, got '{s}'");
        if (v < min || v > max) throw new CliUsageException($"--{name} must be in [{min}, {max}], got {v}");
        return v;
    }

    /// <summary>Parses "1 2 3" or "1,2,3" into ids.</summary>
    public static int[] ParseIds(string name, string text)
    {
        var parts = text.Split([' ', ',', '\t', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries);
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out ids[i]) || ids[i] < 0)
                throw new CliUsageException($"--{name}: '{parts[i]}' is not a token id");
        return ids;
    }
}
