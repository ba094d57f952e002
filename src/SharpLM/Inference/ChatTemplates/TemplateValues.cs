using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace SharpLM.Inference.ChatTemplates;

/// <summary>Jinja2's default Undefined: prints as "", is false, iterates as empty; most other uses are errors.</summary>
internal sealed class Undefined(string name)
{
    public string Name { get; } = name;
    public override string ToString() => "";
}

/// <summary>The object <c>namespace(...)</c> returns: attributes that <c>{% set ns.x = ... %}</c> can change from
/// inside a loop.</summary>
internal sealed class Namespace
{
    public Dictionary<string, object?> Values { get; } = new(StringComparer.Ordinal);
}

/// <summary>A Python tuple: a list that prints with parentheses ((1, 2), ('a',)); dict.items() pairs are tuples.</summary>
internal sealed class PyTuple : List<object?>
{
    public PyTuple() { }
    public PyTuple(IEnumerable<object?> items) : base(items) { }
}

/// <summary>A callable global (<c>raise_exception</c>, <c>namespace</c>, <c>range</c>, ...).</summary>
internal sealed class TemplateFunction(string name, Func<List<object?>, Dictionary<string, object?>, object?> body)
{
    public string Name { get; } = name;
    public object? Invoke(List<object?> args, Dictionary<string, object?> kwargs) => body(args, kwargs);
}

/// <summary>The <c>loop</c> variable of a for loop.</summary>
internal sealed class LoopInfo(int index0, int length, object? prev, object? next)
{
    public object? Get(string name) => name switch
    {
        "index0" => (long)index0,
        "index" => (long)(index0 + 1),
        "revindex0" => (long)(length - index0 - 1),
        "revindex" => (long)(length - index0),
        "first" => index0 == 0,
        "last" => index0 == length - 1,
        "length" => (long)length,
        "previtem" => index0 > 0 ? prev : new Undefined("loop.previtem"),
        "nextitem" => index0 < length - 1 ? next : new Undefined("loop.nextitem"),
        "depth" => 1L,
        "depth0" => 0L,
        _ => new Undefined("loop." + name),
    };
}

/// <summary>Python-like semantics of the template's values: None = null, bool, long, double, string,
/// List&lt;object?&gt; (lists and tuples), Dictionary&lt;string, object?&gt; (mappings, insertion-ordered).</summary>
internal static class Values
{
    /// <summary>The longest string or list a template may build (a rendered prompt is far smaller): a chat template
    /// comes inside a downloaded model file, so nothing it does may exhaust memory.</summary>
    public const long MaxSize = 4_000_000;

    /// <summary>Throws when an operation would build a value of <paramref name="size"/> characters or items.</summary>
    public static void CheckSize(long size, string what)
    {
        if (size > MaxSize) throw new InvalidOperationException($"{what} would be {size:N0} long, over the template limit of {MaxSize:N0}");
    }

    /// <summary>Converts caller values (IReadOnlyDictionary, IEnumerable, ints, floats, JsonElement, ChatTurn) to the
    /// template's value model.</summary>
    public static object? FromClr(object? v) => v switch
    {
        null => null,
        string or bool or long or double or Undefined or Namespace or TemplateFunction => v,
        int i => (long)i,
        short s => (long)s,
        byte b => (long)b,
        uint u => (long)u,
        ulong ul => (long)ul,
        float f => (double)f,
        decimal m => (double)m,
        char c => c.ToString(),
        ChatTurn t => new Dictionary<string, object?>(StringComparer.Ordinal) { ["role"] = t.Role, ["content"] = t.Content },
        JsonElement j => FromJson(j),
        IDictionary<string, object?> d => d.ToDictionary(kv => kv.Key, kv => FromClr(kv.Value), StringComparer.Ordinal),
        IReadOnlyDictionary<string, object?> d => d.ToDictionary(kv => kv.Key, kv => FromClr(kv.Value), StringComparer.Ordinal),
        IDictionary d => d.Keys.Cast<object>().ToDictionary(k => Str(k), k => FromClr(d[k]), StringComparer.Ordinal),
        IEnumerable e => e.Cast<object?>().Select(FromClr).ToList(),
        _ => v.ToString(),
    };

    public static object? FromJson(JsonElement j) => j.ValueKind switch
    {
        JsonValueKind.String => j.GetString(),
        JsonValueKind.Number => j.TryGetInt64(out long l) ? l : j.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Array => j.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.Object => j.EnumerateObject().ToDictionary(p => p.Name, p => FromJson(p.Value), StringComparer.Ordinal),
        _ => null,
    };

    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        Dictionary<string, object?> d => d.Count > 0,
        _ => true,
    };

    /// <summary>Python's str(): None, True/False, 1.0, ['a', 1], {'k': 'v'}; Undefined prints nothing.</summary>
    public static string Str(object? v) => v switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(v),
    };

    public static string Repr(object? v)
    {
        switch (v)
        {
            case null: return "None";
            case Undefined: return "";
            case bool b: return b ? "True" : "False";
            case long l: return l.ToString(CultureInfo.InvariantCulture);
            case double d: return FormatFloat(d);
            case string s: return PyStringRepr(s);
            case PyTuple t: return t.Count == 1 ? "(" + Repr(t[0]) + ",)" : "(" + string.Join(", ", t.Select(Repr)) + ")";
            case List<object?> list: return "[" + string.Join(", ", list.Select(Repr)) + "]";
            case Dictionary<string, object?> d: return "{" + string.Join(", ", d.Select(kv => PyStringRepr(kv.Key) + ": " + Repr(kv.Value))) + "}";
            case Namespace: return "<Namespace>";
            case TemplateFunction f: return $"<function {f.Name}>";
            default: return v.ToString() ?? "";
        }
    }

    /// <summary>Python's repr of a float: the shortest round-trip digits, fixed notation for decimal exponents
    /// -4..15 (always with a '.'), else d.ddde+XX.</summary>
    public static string FormatFloat(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        string r = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        // split the shortest round-trip text into significant digits and a decimal exponent (value = 0.DIGITS × 10^(exp+1))
        int e = r.IndexOfAny(['E', 'e']);
        string mant = e < 0 ? r : r[..e];
        int exp10 = e < 0 ? 0 : int.Parse(r[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        int dot = mant.IndexOf('.', StringComparison.Ordinal);
        string intPart = dot < 0 ? mant : mant[..dot], frac = dot < 0 ? "" : mant[(dot + 1)..];
        string digits = (intPart + frac).TrimStart('0');
        int leadingZeros = (intPart + frac).Length - digits.Length;
        int exp = intPart.Length - 1 - leadingZeros + exp10; // exponent of the first significant digit
        digits = digits.TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        var sb = new StringBuilder();
        if (d < 0) sb.Append('-');
        if (exp >= -4 && exp < 16)
        {
            if (exp < 0) sb.Append("0.").Append('0', -exp - 1).Append(digits);
            else if (digits.Length <= exp + 1) sb.Append(digits).Append('0', exp + 1 - digits.Length).Append(".0");
            else sb.Append(digits, 0, exp + 1).Append('.').Append(digits, exp + 1, digits.Length - exp - 1);
        }
        else
        {
            sb.Append(digits[0]);
            if (digits.Length > 1) sb.Append('.').Append(digits, 1, digits.Length - 1);
            sb.Append('e').Append(exp < 0 ? '-' : '+').Append(Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    private static string PyStringRepr(string s)
    {
        char q = s.Contains('\'', StringComparison.Ordinal) && !s.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        var sb = new StringBuilder().Append(q);
        foreach (char c in s)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c == q) sb.Append('\\').Append(c);
                    else if (c < 0x20 || c == 0x7F) sb.Append(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}");
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append(q).ToString();
    }

    /// <summary>json.dumps(v, ensure_ascii=False, indent=indent) as Hugging Face's tojson filter does it.</summary>
    public static string ToJson(object? v, int? indent)
    {
        var sb = new StringBuilder();
        WriteJson(sb, v, indent, 0);
        return sb.ToString();
    }

    private static void WriteJson(StringBuilder sb, object? v, int? indent, int depth)
    {
        switch (v)
        {
            case null or Undefined: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(double.IsFinite(d) ? FormatFloat(d) : double.IsNaN(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity"); break;
            case string s: JsonString(sb, s); break;
            case List<object?> list:
                if (list.Count == 0) { sb.Append("[]"); break; }
                sb.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(indent is null ? ", " : ",");
                    NewLine(sb, indent, depth + 1);
                    WriteJson(sb, list[i], indent, depth + 1);
                }
                NewLine(sb, indent, depth);
                sb.Append(']');
                break;
            case Dictionary<string, object?> d:
                if (d.Count == 0) { sb.Append("{}"); break; }
                sb.Append('{');
                int k = 0;
                foreach (var (key, value) in d)
                {
                    if (k++ > 0) sb.Append(indent is null ? ", " : ",");
                    NewLine(sb, indent, depth + 1);
                    JsonString(sb, key);
                    sb.Append(": ");
                    WriteJson(sb, value, indent, depth + 1);
                }
                NewLine(sb, indent, depth);
                sb.Append('}');
                break;
            case Namespace ns: WriteJson(sb, ns.Values, indent, depth); break;
            default: JsonString(sb, Str(v)); break;
        }
    }

    private static void NewLine(StringBuilder sb, int? indent, int depth)
    {
        if (indent is int n) sb.Append('\n').Append(' ', n * depth);
    }

    private static void JsonString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s) AppendJsonChar(sb, c);
        sb.Append('"');
    }

    /// <summary>A character inside a JSON string, escaped as JSON needs (also the server's tool-call arguments).</summary>
    internal static void AppendJsonChar(StringBuilder sb, char c)
    {
        switch (c)
        {
            case '"': sb.Append("\\\""); break;
            case '\\': sb.Append("\\\\"); break;
            case '\n': sb.Append("\\n"); break;
            case '\r': sb.Append("\\r"); break;
            case '\t': sb.Append("\\t"); break;
            case '\b': sb.Append("\\b"); break;
            case '\f': sb.Append("\\f"); break;
            default:
                if (c < 0x20) sb.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
                else sb.Append(c);
                break;
        }
    }

    public static bool IsNumber(object? v) => v is long or double || v is bool;

    public static double ToDouble(object? v) => v switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new InvalidOperationException($"expected a number, got {TypeName(v)}"),
    };

    public static string TypeName(object? v) => v switch
    {
        null => "None",
        Undefined u => $"undefined '{u.Name}'",
        PyTuple => "tuple",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        Dictionary<string, object?> => "dict",
        Namespace => "namespace",
        TemplateFunction => "function",
        LoopInfo => "loop",
        _ => v.GetType().Name,
    };

    public static new bool Equals(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (a is null || b is null) return a is null && b is null;
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a) == ToDouble(b);
        if (a is string sa && b is string sb) return string.Equals(sa, sb, StringComparison.Ordinal);
        if (a is List<object?> la && b is List<object?> lb) return la.Count == lb.Count && la.Zip(lb).All(p => Equals(p.First, p.Second));
        if (a is Dictionary<string, object?> da && b is Dictionary<string, object?> db)
            return da.Count == db.Count && da.All(kv => db.TryGetValue(kv.Key, out var o) && Equals(kv.Value, o));
        return ReferenceEquals(a, b);
    }

    public static int Compare(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a).CompareTo(ToDouble(b));
        if (a is string sa && b is string sb) return string.CompareOrdinal(sa, sb);
        if (a is List<object?> la && b is List<object?> lb)
        {
            for (int i = 0; i < Math.Min(la.Count, lb.Count); i++)
            {
                int c = Compare(la[i], lb[i]);
                if (c != 0) return c;
            }
            return la.Count.CompareTo(lb.Count);
        }
        throw new InvalidOperationException($"cannot compare {TypeName(a)} with {TypeName(b)}");
    }

    /// <summary>Items a for loop visits: list items, string characters, dict keys; Undefined/None give none.</summary>
    public static List<object?> Iterate(object? v) => v switch
    {
        null or Undefined => [],
        List<object?> l => l,
        Dictionary<string, object?> d => d.Keys.Cast<object?>().ToList(),
        string s => CodePoints(s).Select(c => (object?)c).ToList(),
        _ => throw new InvalidOperationException($"{TypeName(v)} is not iterable"),
    };

    /// <summary>A string's characters as Python sees them: code points (an emoji is one, not two UTF-16 units).</summary>
    public static string[] CodePoints(string s)
    {
        if (!s.Any(char.IsSurrogate)) return s.Select(c => c.ToString()).ToArray();
        var r = new List<string>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { r.Add(s.Substring(i, 2)); i++; }
            else r.Add(s[i].ToString());
        }
        return [.. r];
    }

    public static long Length(object? v) => v switch
    {
        string s => s.Any(char.IsSurrogate) ? CodePoints(s).Length : s.Length,
        List<object?> l => l.Count,
        Dictionary<string, object?> d => d.Count,
        Undefined => 0,
        _ => throw new InvalidOperationException($"object of type {TypeName(v)} has no length"),
    };
}
