using System.Text;
using SharpLM.Formats;

namespace SharpLM.Models;

/// <summary>One tensor an architecture expects: its name in the file, its row-major shape, and whether it may be absent.</summary>
internal sealed record TensorSpec(string Name, long[] Shape, bool Optional = false)
{
    public override string ToString() => $"{Name} [{string.Join(", ", Shape)}]{(Optional ? " (optional)" : "")}";
}

/// <summary>
/// Matches an architecture's declared tensors against a weight source. A load that fails lists every missing,
/// mis-shaped and unused tensor at once, so a wrong file or a wrong name table is obvious from one message.
/// </summary>
internal static class WeightBinder
{
    /// <summary>
    /// Returns the declared tensors found in <paramref name="source"/> (optional ones may be absent). Throws
    /// <see cref="InvalidDataException"/> naming the file and listing problems. Tensors in the file that no spec
    /// names are an error unless <paramref name="ignore"/> accepts them.
    /// </summary>
    public static Dictionary<string, TensorInfo> Bind(IWeightSource source, IEnumerable<TensorSpec> specs, Func<string, bool>? ignore = null)
    {
        var bound = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        var missing = new List<string>();
        var misShaped = new List<string>();
        var declared = new HashSet<string>(StringComparer.Ordinal);
        foreach (var spec in specs)
        {
            declared.Add(spec.Name);
            if (!source.Tensors.TryGetValue(spec.Name, out var info))
            {
                if (!spec.Optional) missing.Add(spec.ToString());
                continue;
            }
            if (!info.Shape.AsSpan().SequenceEqual(spec.Shape))
            {
                misShaped.Add($"{spec.Name} has shape [{string.Join(", ", info.Shape)}], expected [{string.Join(", ", spec.Shape)}]");
                continue;
            }
            bound[spec.Name] = info;
        }
        var unused = source.Tensors.Keys.Where(n => !declared.Contains(n) && !(ignore?.Invoke(n) ?? false)).Order(StringComparer.Ordinal).ToList();
        if (missing.Count + misShaped.Count + unused.Count == 0) return bound;

        var sb = new StringBuilder($"{source.Path}: the tensors do not match the model's declaration");
        void Section(string title, List<string> items)
        {
            if (items.Count == 0) return;
            sb.Append($"; {items.Count} {title}: ");
            sb.Append(string.Join(", ", items.Take(12)));
            if (items.Count > 12) sb.Append($", ... ({items.Count - 12} more)");
        }
        Section("missing", missing);
        Section("mis-shaped", misShaped);
        Section("unused", unused);
        sb.Append(". Check that the file is a complete model of this architecture (not a shard or an adapter) and not corrupted.");
        throw new InvalidDataException(sb.ToString());
    }
}
