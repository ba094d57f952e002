using System.Globalization;

namespace SharpLM.Inference.ChatTemplates;

/// <summary>The filters, tests, methods and globals chat templates use, with Python/Jinja2 semantics.</summary>
internal static class Builtins
{
    public static readonly string[] FilterNames =
        ["trim", "length", "count", "tojson", "upper", "lower", "string", "default", "d", "first", "last", "join", "list",
         "reverse", "capitalize", "title", "replace", "int", "float", "abs", "safe", "e", "escape", "items", "map",
         "selectattr", "rejectattr", "select", "reject", "unique", "sort", "indent", "wordcount", "round", "sum", "min", "max", "dictsort"];

    public static Dictionary<string, object?> Globals(Func<string> now) => new(StringComparer.Ordinal)
    {
        ["raise_exception"] = new TemplateFunction("raise_exception", (a, _) =>
            throw new InvalidOperationException("the template raised an error: " + (a.Count > 0 ? Values.Str(a[0]) : ""))),
        ["namespace"] = new TemplateFunction("namespace", (a, kw) =>
        {
            var ns = new Namespace();
            if (a.Count > 0 && a[0] is Dictionary<string, object?> init) foreach (var (k, v) in init) ns.Values[k] = v;
            foreach (var (k, v) in kw) ns.Values[k] = v;
            return ns;
        }),
        ["range"] = new TemplateFunction("range", (a, _) =>
        {
            long start = 0, stop, step = 1;
            if (a.Count == 1) stop = Int(a[0]);
            else if (a.Count >= 2) { start = Int(a[0]); stop = Int(a[1]); if (a.Count > 2) step = Int(a[2]); }
            else throw new InvalidOperationException("range() needs 1 to 3 arguments");
            if (step == 0) throw new InvalidOperationException("range() step must not be zero");
            var r = new List<object?>();
            for (long i = start; step > 0 ? i < stop : i > stop; i += step)
            {
                r.Add(i);
                if (r.Count > 1_000_000) throw new InvalidOperationException("range() over a million items");
            }
            return r;
        }),
        ["dict"] = new TemplateFunction("dict", (a, kw) =>
        {
            var d = a.Count > 0 && a[0] is Dictionary<string, object?> src ? new Dictionary<string, object?>(src, StringComparer.Ordinal) : new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var (k, v) in kw) d[k] = v;
            return d;
        }),
        ["strftime_now"] = new TemplateFunction("strftime_now", (a, _) => Strftime(a.Count > 0 ? Values.Str(a[0]) : "%Y-%m-%d", now)),
    };

    private static long Int(object? v) => v is long l ? l : v is bool b ? (b ? 1 : 0) : throw new InvalidOperationException($"expected an integer, got {Values.TypeName(v)}");

    /// <summary>The few strftime codes chat templates use ("%d %b %Y", "%Y-%m-%d").</summary>
    private static string Strftime(string format, Func<string> now)
    {
        var t = DateTime.Parse(now(), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 == format.Length) { sb.Append(format[i]); continue; }
            char c = format[++i];
            sb.Append(c switch
            {
                'Y' => t.ToString("yyyy", CultureInfo.InvariantCulture),
                'm' => t.ToString("MM", CultureInfo.InvariantCulture),
                'd' => t.ToString("dd", CultureInfo.InvariantCulture),
                'b' => t.ToString("MMM", CultureInfo.InvariantCulture),
                'B' => t.ToString("MMMM", CultureInfo.InvariantCulture),
                'H' => t.ToString("HH", CultureInfo.InvariantCulture),
                'M' => t.ToString("mm", CultureInfo.InvariantCulture),
                'S' => t.ToString("ss", CultureInfo.InvariantCulture),
                'A' => t.ToString("dddd", CultureInfo.InvariantCulture),
                'a' => t.ToString("ddd", CultureInfo.InvariantCulture),
                '%' => "%",
                _ => "%" + c,
            });
        }
        return sb.ToString();
    }

    public static bool Contains(object? container, object? item) => container switch
    {
        string s => item is string sub ? s.Contains(sub, StringComparison.Ordinal) : throw new InvalidOperationException($"'in <string>' needs a string on the left, got {Values.TypeName(item)}"),
        List<object?> l => l.Any(x => Values.Equals(x, item)),
        Dictionary<string, object?> d => item is string k && d.ContainsKey(k),
        Namespace ns => item is string k2 && ns.Values.ContainsKey(k2),
        Undefined u => throw new InvalidOperationException($"'{u.Name}' is undefined; 'in' needs a string, list or mapping"),
        _ => throw new InvalidOperationException($"argument of type {Values.TypeName(container)} is not iterable"),
    };

    private static object? Arg(List<object?> a, Dictionary<string, object?> kw, int i, string name, object? dflt) =>
        kw.TryGetValue(name, out var v) ? v : i < a.Count ? a[i] : dflt;

    private static string PyStrip(string s, object? chars, bool left, bool right)
    {
        if (chars is null or Undefined)
        {
            if (left) s = s.TrimStart();
            if (right) s = s.TrimEnd();
            return s;
        }
        var set = Values.Str(chars).ToCharArray();
        if (left) s = s.TrimStart(set);
        if (right) s = s.TrimEnd(set);
        return s;
    }

    public static object? Filter(string name, object? v, List<object?> a, Dictionary<string, object?> kw, Func<string, ChatTemplateException> error)
    {
        switch (name)
        {
            case "trim": return PyStrip(Values.Str(v), Arg(a, kw, 0, "chars", null), true, true);
            case "length" or "count": return Values.Length(v);
            case "tojson":
            {
                var ind = Arg(a, kw, 0, "indent", null);
                return Values.ToJson(v, ind is long n ? (int)n : null);
            }
            case "upper": return Values.Str(v).ToUpperInvariant();
            case "lower": return Values.Str(v).ToLowerInvariant();
            case "string": return Values.Str(v);
            case "default" or "d":
            {
                var dflt = Arg(a, kw, 0, "default_value", "");
                bool boolean = Values.Truthy(Arg(a, kw, 1, "boolean", false));
                return v is Undefined || (boolean && !Values.Truthy(v)) ? dflt : v;
            }
            case "first": { var l = Values.Iterate(v); return l.Count > 0 ? l[0] : new Undefined("first"); }
            case "last": { var l = Values.Iterate(v); return l.Count > 0 ? l[^1] : new Undefined("last"); }
            case "join":
            {
                string sep = Values.Str(Arg(a, kw, 0, "d", ""));
                var attr = Arg(a, kw, 1, "attribute", null);
                var items = Values.Iterate(v).Select(x => Values.Str(attr is null ? x : Attr(x, Values.Str(attr)))).ToList();
                return Join(sep, items);
            }
            case "list": return Values.Iterate(v).ToList();
            case "reverse": return v is string rs ? string.Concat(Values.CodePoints(rs).Reverse()) : Enumerable.Reverse(Values.Iterate(v)).ToList();
            case "capitalize": { var cs = Values.Str(v); return cs.Length == 0 ? cs : char.ToUpperInvariant(cs[0]) + cs[1..].ToLowerInvariant(); }
            case "title": return CultureInfo.InvariantCulture.TextInfo.ToTitleCase(Values.Str(v).ToLowerInvariant());
            case "replace":
            {
                string text = Values.Str(v), old = Values.Str(Arg(a, kw, 0, "old", "")), @new = Values.Str(Arg(a, kw, 1, "new", ""));
                return PyReplace(text, old, @new, -1);
            }
            case "int":
                return v switch
                {
                    long l => l,
                    double d => (long)d,
                    bool b => b ? 1L : 0L,
                    string si when long.TryParse(si.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long p) => p,
                    _ => Arg(a, kw, 0, "default", 0L),
                };
            case "float":
                return v switch
                {
                    long l => (double)l,
                    double d => d,
                    string sf when double.TryParse(sf.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double p) => p,
                    _ => Arg(a, kw, 0, "default", 0.0),
                };
            case "abs": return v is long l2 ? (object)Math.Abs(l2) : Math.Abs(Values.ToDouble(v));
            case "round": return Math.Round(Values.ToDouble(v), (int)(Arg(a, kw, 0, "precision", 0L) as long? ?? 0), MidpointRounding.ToEven);
            case "safe" or "e" or "escape": return v;
            case "items":
                return v is Dictionary<string, object?> d2 ? d2.Select(kv => (object?)new PyTuple { kv.Key, kv.Value }).ToList()
                    : v is Undefined ? new List<object?>() : throw error($"the items filter needs a mapping, got {Values.TypeName(v)}");
            case "dictsort":
                return v is Dictionary<string, object?> d3 ? d3.OrderBy(kv => kv.Key, StringComparer.OrdinalIgnoreCase).Select(kv => (object?)new PyTuple { kv.Key, kv.Value }).ToList()
                    : throw error($"dictsort needs a mapping, got {Values.TypeName(v)}");
            case "map":
            {
                if (kw.TryGetValue("attribute", out var at)) return Values.Iterate(v).Select(x => Attr(x, Values.Str(at))).ToList();
                if (a.Count > 0) return Values.Iterate(v).Select(x => Filter(Values.Str(a[0]), x, a.Skip(1).ToList(), [], error)).ToList();
                throw error("map needs a filter name or attribute=");
            }
            case "selectattr" or "rejectattr":
            {
                if (a.Count == 0) throw error($"{name} needs an attribute name");
                string attr = Values.Str(a[0]);
                bool keep = name == "selectattr";
                return Values.Iterate(v).Where(x =>
                {
                    var val = Attr(x, attr);
                    bool r = a.Count > 1 ? Test(Values.Str(a[1]), val, a.Skip(2).ToList(), error) : Values.Truthy(val);
                    return r == keep;
                }).ToList();
            }
            case "select" or "reject":
            {
                bool keep = name == "select";
                return Values.Iterate(v).Where(x => (a.Count > 0 ? Test(Values.Str(a[0]), x, a.Skip(1).ToList(), error) : Values.Truthy(x)) == keep).ToList();
            }
            case "unique":
            {
                var r = new List<object?>();
                foreach (var x in Values.Iterate(v)) if (!r.Any(y => Values.Equals(x, y))) r.Add(x);
                return r;
            }
            case "sort":
            {
                var list = Values.Iterate(v).ToList();
                var attr = Arg(a, kw, 2, "attribute", null);
                list.Sort((x, y) => attr is null ? Values.Compare(x, y) : Values.Compare(Attr(x, Values.Str(attr)), Attr(y, Values.Str(attr))));
                if (Values.Truthy(Arg(a, kw, 0, "reverse", false))) list.Reverse();
                return list;
            }
            case "indent":
            {
                var w = Arg(a, kw, 0, "width", 4L);
                long width = w is long wl ? wl : 4;
                Values.CheckSize(w is string ? 0 : width, "indent width");
                string pad = w is string ws ? ws : new string(' ', (int)Math.Max(0, width));
                Values.CheckSize(Values.Str(v).Length + (long)Values.Str(v).Count(ch => ch == '\n') * pad.Length + pad.Length, "the indented text");
                bool first = Values.Truthy(Arg(a, kw, 1, "first", false));
                bool blank = Values.Truthy(Arg(a, kw, 2, "blank", false));
                var lines = Values.Str(v).Split('\n');
                for (int i = 0; i < lines.Length; i++)
                    if ((i > 0 || first) && (blank || lines[i].Length > 0)) lines[i] = pad + lines[i];
                return string.Join('\n', lines);
            }
            case "wordcount": return (long)Values.Str(v).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
            case "sum": return Values.Iterate(v).Aggregate((object?)0L, (acc, x) => acc is long la && x is long lx ? la + lx : Values.ToDouble(acc) + Values.ToDouble(x));
            case "min": { var l = Values.Iterate(v); return l.Count == 0 ? new Undefined("min") : l.Aggregate((x, y) => Values.Compare(x, y) <= 0 ? x : y); }
            case "max": { var l = Values.Iterate(v); return l.Count == 0 ? new Undefined("max") : l.Aggregate((x, y) => Values.Compare(x, y) >= 0 ? x : y); }
            default: throw error($"unknown filter '{name}'. Known: {string.Join(", ", FilterNames)}");
        }
    }

    private static object? Attr(object? x, string name) => x switch
    {
        Dictionary<string, object?> d => d.TryGetValue(name, out var v) ? v : new Undefined(name),
        Namespace ns => ns.Values.TryGetValue(name, out var v2) ? v2 : new Undefined(name),
        _ => new Undefined(name),
    };

    public static bool Test(string name, object? v, List<object?> a, Func<string, ChatTemplateException> error) => name switch
    {
        "defined" => v is not Undefined,
        "undefined" => v is Undefined,
        "none" => v is null,
        "string" => v is string,
        "mapping" => v is Dictionary<string, object?>,
        "iterable" => v is string or List<object?> or Dictionary<string, object?>,
        "sequence" => v is string or List<object?> or Dictionary<string, object?>,
        "number" => v is long or double,
        "integer" => v is long,
        "float" => v is double,
        "boolean" => v is bool,
        "true" => v is true,
        "false" => v is false,
        "callable" => v is TemplateFunction,
        "even" => v is long l && l % 2 == 0,
        "odd" => v is long l2 && l2 % 2 != 0,
        "divisibleby" => a.Count > 0 && v is long x && a[0] is long y && y != 0 && x % y == 0,
        "equalto" or "eq" or "==" or "sameas" => a.Count > 0 && Values.Equals(v, a[0]),
        "ne" or "!=" => a.Count > 0 && !Values.Equals(v, a[0]),
        "lt" or "lessthan" or "<" => a.Count > 0 && Values.Compare(v, a[0]) < 0,
        "le" or "<=" => a.Count > 0 && Values.Compare(v, a[0]) <= 0,
        "gt" or "greaterthan" or ">" => a.Count > 0 && Values.Compare(v, a[0]) > 0,
        "ge" or ">=" => a.Count > 0 && Values.Compare(v, a[0]) >= 0,
        "in" => a.Count > 0 && Contains(a[0], v),
        "lower" => v is string s && s == s.ToLowerInvariant(),
        "upper" => v is string s2 && s2 == s2.ToUpperInvariant(),
        _ => throw error($"unknown test '{name}'"),
    };

    /// <summary>Methods on strings (strip, startswith, split, ...) and mappings (items, keys, values, get).</summary>
    public static bool TryMethod(object? target, string name, List<object?> a, Dictionary<string, object?> kw, Func<string, ChatTemplateException> error, out object? result)
    {
        result = null;
        if (target is string s)
        {
            switch (name)
            {
                case "strip": result = PyStrip(s, Arg(a, kw, 0, "chars", null), true, true); return true;
                case "lstrip": result = PyStrip(s, Arg(a, kw, 0, "chars", null), true, false); return true;
                case "rstrip": result = PyStrip(s, Arg(a, kw, 0, "chars", null), false, true); return true;
                case "startswith": result = AnyAffix(a, p => s.StartsWith(p, StringComparison.Ordinal)); return true;
                case "endswith": result = AnyAffix(a, p => s.EndsWith(p, StringComparison.Ordinal)); return true;
                case "upper": result = s.ToUpperInvariant(); return true;
                case "lower": result = s.ToLowerInvariant(); return true;
                case "title": result = CultureInfo.InvariantCulture.TextInfo.ToTitleCase(s.ToLowerInvariant()); return true;
                case "capitalize": result = s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant(); return true;
                case "replace":
                {
                    string old = Values.Str(Arg(a, kw, 0, "old", "")), @new = Values.Str(Arg(a, kw, 1, "new", ""));
                    long count = Arg(a, kw, 2, "count", -1L) as long? ?? -1;
                    result = PyReplace(s, old, @new, count);
                    return true;
                }
                case "split":
                {
                    var sep = Arg(a, kw, 0, "sep", null);
                    long max = Arg(a, kw, 1, "maxsplit", -1L) as long? ?? -1;
                    result = PySplit(s, sep is null or Undefined ? null : Values.Str(sep), max, error);
                    return true;
                }
                case "find": result = (long)s.IndexOf(Values.Str(Arg(a, kw, 0, "sub", "")), StringComparison.Ordinal); return true;
                case "count": result = (long)CountOf(s, Values.Str(Arg(a, kw, 0, "sub", ""))); return true;
                case "join": result = Join(s, [.. Values.Iterate(Arg(a, kw, 0, "iterable", null)).Select(Values.Str)]); return true;
                case "isdigit": result = s.Length > 0 && s.All(char.IsDigit); return true;
                case "isspace": result = s.Length > 0 && s.All(char.IsWhiteSpace); return true;
                case "format": result = PyFormat(s, a, kw); return true;
            }
            return false;
        }
        if (target is Dictionary<string, object?> d)
        {
            switch (name)
            {
                case "items": result = d.Select(kv => (object?)new PyTuple { kv.Key, kv.Value }).ToList(); return true;
                case "keys": result = d.Keys.Cast<object?>().ToList(); return true;
                case "values": result = d.Values.ToList(); return true;
                case "get":
                    result = d.TryGetValue(Values.Str(Arg(a, kw, 0, "key", null)), out var v) ? v : Arg(a, kw, 1, "default", null);
                    return true;
            }
            return false;
        }
        return false;
    }

    private static bool AnyAffix(List<object?> a, Func<string, bool> test)
    {
        if (a.Count == 0) throw new InvalidOperationException("startswith/endswith needs an argument");
        return a[0] is List<object?> options ? options.Any(o => test(Values.Str(o))) : test(Values.Str(a[0]));
    }

    private static int CountOf(string s, string sub)
    {
        if (sub.Length == 0) return s.Length + 1;
        int n = 0;
        for (int i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    /// <summary>string.join with the result's size checked before it is built.</summary>
    private static string Join(string sep, List<string> items)
    {
        long size = (long)sep.Length * Math.Max(0, items.Count - 1);
        foreach (var x in items) size += x.Length;
        Values.CheckSize(size, "the joined text");
        return string.Join(sep, items);
    }

    private static string PyReplace(string s, string old, string @new, long count)
    {
        if (old.Length > 0 && @new.Length > old.Length)
        {
            long n = CountOf(s, old);
            if (count >= 0) n = Math.Min(n, count);
            Values.CheckSize(s.Length + n * (@new.Length - old.Length), "the replaced text");
        }
        if (count < 0) return old.Length == 0 ? s : s.Replace(old, @new, StringComparison.Ordinal);
        var sb = new System.Text.StringBuilder();
        int pos = 0;
        for (long k = 0; k < count; k++)
        {
            int i = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (i < 0 || old.Length == 0) break;
            sb.Append(s, pos, i - pos).Append(@new);
            pos = i + old.Length;
        }
        return sb.Append(s, pos, s.Length - pos).ToString();
    }

    /// <summary>Python's str.split: with a separator keeps empty parts; without one splits on whitespace runs.</summary>
    private static List<object?> PySplit(string s, string? sep, long max, Func<string, ChatTemplateException> error)
    {
        var parts = new List<object?>();
        if (sep is null)
        {
            int i = 0;
            while (true)
            {
                while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
                if (i >= s.Length) break;
                if (max >= 0 && parts.Count == max) { parts.Add(s[i..].TrimEnd()); break; }
                int j = i;
                while (j < s.Length && !char.IsWhiteSpace(s[j])) j++;
                parts.Add(s[i..j]);
                i = j;
            }
            return parts;
        }
        if (sep.Length == 0) throw error("split(): empty separator");
        int pos = 0;
        while (max < 0 || parts.Count < max)
        {
            int k = s.IndexOf(sep, pos, StringComparison.Ordinal);
            if (k < 0) break;
            parts.Add(s[pos..k]);
            pos = k + sep.Length;
        }
        parts.Add(s[pos..]);
        return parts;
    }

    /// <summary>str.format with {} and {0}/{name} fields (no format specs).</summary>
    private static string PyFormat(string s, List<object?> a, Dictionary<string, object?> kw)
    {
        var sb = new System.Text.StringBuilder();
        int auto = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '{' && i + 1 < s.Length && s[i + 1] == '{') { sb.Append('{'); i++; continue; }
            if (c == '}' && i + 1 < s.Length && s[i + 1] == '}') { sb.Append('}'); i++; continue; }
            if (c != '{') { sb.Append(c); continue; }
            int end = s.IndexOf('}', i);
            if (end < 0) throw new InvalidOperationException("format(): unmatched '{'");
            string field = s[(i + 1)..end];
            object? v = field.Length == 0 ? (auto < a.Count ? a[auto++] : null)
                : int.TryParse(field, NumberStyles.Integer, CultureInfo.InvariantCulture, out int idx) ? (idx < a.Count ? a[idx] : null)
                : kw.GetValueOrDefault(field);
            sb.Append(Values.Str(v));
            i = end;
        }
        return sb.ToString();
    }
}
