using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace SharpLM.Inference.ChatTemplates;

/// <summary>Walks the tree and writes the output. Scopes follow Jinja2: a for loop's body gets its own scope (so
/// <c>set</c> inside a loop is not visible after it; use <c>namespace()</c>), <c>if</c> does not.</summary>
internal sealed class TemplateInterpreter
{
    private readonly TemplateLexer _lexer;
    private readonly List<Dictionary<string, object?>> _scopes = [];
    private readonly StringBuilder _out = new();
    private enum Flow { Normal, Break, Continue }
    private long _steps;
    private const long MaxSteps = 50_000_000;

    public TemplateInterpreter(TemplateLexer lexer, Dictionary<string, object?> globals)
    {
        _lexer = lexer;
        _scopes.Add(globals);
    }

    public string Render(List<Node> nodes)
    {
        Exec(nodes, _out);
        return _out.ToString();
    }

    private ChatTemplateException Error(string message, int pos) => _lexer.Error(message, pos);

    private object? Lookup(string name)
    {
        for (int i = _scopes.Count - 1; i >= 0; i--)
            if (_scopes[i].TryGetValue(name, out var v)) return v;
        return new Undefined(name);
    }

    private Flow Exec(List<Node> nodes, StringBuilder sb)
    {
        RuntimeHelpers.EnsureSufficientExecutionStack();
        foreach (var n in nodes)
        {
            if (++_steps > MaxSteps) throw Error($"the template ran more than {MaxSteps} steps; is it looping forever?", n.Pos);
            if (sb.Length > Values.MaxSize) throw Error($"the template's output is over the limit of {Values.MaxSize:N0} characters", n.Pos);
            switch (n)
            {
                case TextNode t: sb.Append(t.Text); break;
                case OutputNode o: sb.Append(Values.Str(Eval(o.Value))); break;
                case IfNode i:
                {
                    List<Node>? body = i.Else;
                    foreach (var (cond, b) in i.Branches)
                        if (Values.Truthy(Eval(cond))) { body = b; break; }
                    if (body != null)
                    {
                        var f = Exec(body, sb);
                        if (f != Flow.Normal) return f;
                    }
                    break;
                }
                case ForNode f: ExecFor(f, sb); break;
                case SetNode s: ExecSet(s); break;
                case SetBlockNode sb2:
                {
                    var inner = new StringBuilder();
                    Exec(sb2.Body, inner);
                    _scopes[^1][sb2.Target] = inner.ToString();
                    break;
                }
                case BlockNode b:
                {
                    var f = Exec(b.Body, sb);
                    if (f != Flow.Normal) return f;
                    break;
                }
                case MacroNode m: _scopes[^1][m.Name] = MakeMacro(m); break;
                case BreakNode: return Flow.Break;
                case ContinueNode: return Flow.Continue;
                default: throw Error($"internal error: node {n.GetType().Name}", n.Pos);
            }
        }
        return Flow.Normal;
    }

    /// <summary>A macro renders its body in a scope of its own: the template's globals and top-level variables plus
    /// its parameters (not the caller's loop variables), and returns the text.</summary>
    private TemplateFunction MakeMacro(MacroNode m) => new(m.Name, (args, kwargs) =>
    {
        if (args.Count > m.Params.Count)
            throw new InvalidOperationException($"macro '{m.Name}' takes {m.Params.Count} arguments, got {args.Count}");
        var scope = new Dictionary<string, object?>(StringComparer.Ordinal);
        for (int i = 0; i < m.Params.Count; i++)
        {
            var (pn, dflt) = m.Params[i];
            scope[pn] = i < args.Count ? args[i] : kwargs.TryGetValue(pn, out var kv) ? kv : dflt is null ? new Undefined(pn) : Eval(dflt);
        }
        foreach (var k in kwargs.Keys)
            if (!m.Params.Exists(p => p.Name == k)) throw new InvalidOperationException($"macro '{m.Name}' has no parameter '{k}'");
        var saved = _scopes.ToList();
        _scopes.RemoveRange(1, _scopes.Count - 1);
        _scopes.Add(scope);
        try
        {
            var inner = new StringBuilder();
            Exec(m.Body, inner);
            return inner.ToString();
        }
        finally
        {
            _scopes.Clear();
            _scopes.AddRange(saved);
        }
    });

    private void ExecFor(ForNode f, StringBuilder sb)
    {
        var source = Eval(f.Iter);
        List<object?> items;
        try { items = Values.Iterate(source); }
        catch (InvalidOperationException e) { throw Error(e.Message, f.Iter.Pos); }
        if (f.Filter != null)
        {
            var kept = new List<object?>();
            foreach (var it in items)
            {
                var scope = new Dictionary<string, object?>(StringComparer.Ordinal);
                Bind(scope, f.Targets, it, f.Pos);
                _scopes.Add(scope);
                try { if (Values.Truthy(Eval(f.Filter))) kept.Add(it); }
                finally { _scopes.RemoveAt(_scopes.Count - 1); }
            }
            items = kept;
        }
        if (items.Count == 0)
        {
            if (f.Else != null) Exec(f.Else, sb);
            return;
        }
        var loopScope = new Dictionary<string, object?>(StringComparer.Ordinal);
        _scopes.Add(loopScope);
        try
        {
            for (int i = 0; i < items.Count; i++)
            {
                loopScope.Clear();
                Bind(loopScope, f.Targets, items[i], f.Pos);
                loopScope["loop"] = new LoopInfo(i, items.Count, i > 0 ? items[i - 1] : null, i + 1 < items.Count ? items[i + 1] : null);
                if (Exec(f.Body, sb) == Flow.Break) break;
            }
        }
        finally { _scopes.RemoveAt(_scopes.Count - 1); }
    }

    private void Bind(Dictionary<string, object?> scope, List<string> targets, object? item, int pos)
    {
        if (targets.Count == 1) { scope[targets[0]] = item; return; }
        if (item is not List<object?> tuple || tuple.Count != targets.Count)
            throw Error($"cannot unpack {Values.TypeName(item)} into {targets.Count} variables ({string.Join(", ", targets)})", pos);
        for (int i = 0; i < targets.Count; i++) scope[targets[i]] = tuple[i];
    }

    private void ExecSet(SetNode s)
    {
        var value = Eval(s.Value);
        if (s.Attr != null)
        {
            if (Lookup(s.Targets[0]) is not Namespace ns)
                throw Error($"cannot set '{s.Targets[0]}.{s.Attr}': '{s.Targets[0]}' is not a namespace() object", s.Pos);
            ns.Values[s.Attr] = value;
            return;
        }
        Bind(_scopes[^1], s.Targets, value, s.Pos);
    }

    // ---- expressions ----

    public object? Eval(Expr e)
    {
        try
        {
            RuntimeHelpers.EnsureSufficientExecutionStack(); // nesting (recursive macros) ends in an error, not a crash
            var v = EvalCore(e);
            if (v is string s) Values.CheckSize(s.Length, "a text");
            else if (v is List<object?> l) Values.CheckSize(l.Count, "a list");
            return v;
        }
        catch (InvalidOperationException ex)
        {
            throw Error(ex.Message, e.Pos);
        }
    }

    private object? EvalCore(Expr e)
    {
        switch (e)
        {
            case LiteralExpr l: return l.Value;
            case NameExpr n: return Lookup(n.Name);
            case ListExpr l: return l.IsTuple ? new PyTuple(l.Items.Select(Eval)) : l.Items.Select(Eval).ToList();
            case DictExpr d:
            {
                var r = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, v) in d.Items) r[Values.Str(Eval(k))] = Eval(v);
                return r;
            }
            case AttrExpr a: return GetAttr(Eval(a.Obj), a.Name, a.Pos);
            case ItemExpr i: return GetItem(Eval(i.Obj), Eval(i.Index), i.Pos);
            case SliceExpr s: return Slice(Eval(s.Obj), s);
            case CallExpr c: return Call(c);
            case FilterExpr f:
                return Builtins.Filter(f.Name, Eval(f.Value), f.Args.Select(Eval).ToList(), Kwargs(f.Kwargs), msg => Error(msg, f.Pos));
            case TestExpr t:
            {
                bool r = Builtins.Test(t.Name, Eval(t.Value), t.Args.Select(Eval).ToList(), msg => Error(msg, t.Pos));
                return t.Negated ? !r : r;
            }
            case UnaryExpr u:
            {
                var v = Eval(u.Operand);
                return u.Op switch
                {
                    "not" => !Values.Truthy(v),
                    "-" => v is long l ? (object)(-l) : -Values.ToDouble(v),
                    _ => v is long or double ? v : (object)Values.ToDouble(v),
                };
            }
            case BinaryExpr b: return Binary(b);
            case CondExpr c:
                return Values.Truthy(Eval(c.Cond)) ? Eval(c.Then) : c.Else is null ? new Undefined("(if without else)") : Eval(c.Else);
            default: throw Error($"internal error: expression {e.GetType().Name}", e.Pos);
        }
    }

    private Dictionary<string, object?> Kwargs(List<(string Name, Expr Value)> kw)
    {
        var d = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (k, v) in kw) d[k] = Eval(v);
        return d;
    }

    private object? Binary(BinaryExpr b)
    {
        if (b.Op == "and") { var l = Eval(b.Left); return Values.Truthy(l) ? Eval(b.Right) : l; }
        if (b.Op == "or") { var l = Eval(b.Left); return Values.Truthy(l) ? l : Eval(b.Right); }
        var a = Eval(b.Left);
        var c = Eval(b.Right);
        switch (b.Op)
        {
            case "==": return Values.Equals(a, c);
            case "!=": return !Values.Equals(a, c);
            case "<": return Values.Compare(a, c) < 0;
            case "<=": return Values.Compare(a, c) <= 0;
            case ">": return Values.Compare(a, c) > 0;
            case ">=": return Values.Compare(a, c) >= 0;
            case "in": return Builtins.Contains(c, a);
            case "not in": return !Builtins.Contains(c, a);
            case "~": return Values.Str(a) + Values.Str(c);
            case "+":
                if (a is string sa && c is string sc) return sa + sc;
                if (a is List<object?> la && c is List<object?> lc) return la.Concat(lc).ToList();
                if (a is Undefined || c is Undefined) throw new InvalidOperationException($"cannot add {Values.TypeName(a)} and {Values.TypeName(c)}");
                if (a is string || c is string) throw new InvalidOperationException($"cannot add {Values.TypeName(a)} and {Values.TypeName(c)}: use '~' to join text");
                return Arith(a, c, (x, y) => x + y, (x, y) => x + y);
            case "-": return Arith(a, c, (x, y) => x - y, (x, y) => x - y);
            case "*":
                if (a is string s1 && c is long n1)
                {
                    Values.CheckSize(n1 <= 0 ? 0 : s1.Length * Math.Min(n1, Values.MaxSize + 1), "the repeated text");
                    return string.Concat(Enumerable.Repeat(s1, (int)Math.Max(0, n1)));
                }
                if (a is List<object?> l1 && c is long n2)
                {
                    Values.CheckSize(n2 <= 0 ? 0 : l1.Count * Math.Min(n2, Values.MaxSize + 1), "the repeated list");
                    return Enumerable.Range(0, (int)Math.Max(0, n2)).SelectMany(_ => l1).ToList();
                }
                return Arith(a, c, (x, y) => x * y, (x, y) => x * y);
            case "/":
            {
                double d = Values.ToDouble(c);
                if (d == 0) throw new InvalidOperationException("division by zero");
                return Values.ToDouble(a) / d;
            }
            case "//":
            {
                if (a is long x && c is long y)
                {
                    if (y == 0) throw new InvalidOperationException("integer division by zero");
                    return (long)Math.Floor((double)x / y);
                }
                return Math.Floor(Values.ToDouble(a) / Values.ToDouble(c));
            }
            case "%":
            {
                if (a is string) throw new InvalidOperationException("'%' string formatting is not supported; use '~' or format()");
                if (a is long x && c is long y)
                {
                    if (y == 0) throw new InvalidOperationException("modulo by zero");
                    long r = x % y;
                    return r != 0 && (r < 0) != (y < 0) ? r + y : r; // Python's sign rule
                }
                double dx = Values.ToDouble(a), dy = Values.ToDouble(c);
                return dx - dy * Math.Floor(dx / dy);
            }
            case "**":
                return a is long pa && c is long pc && pc >= 0 ? (object)(long)Math.Pow(pa, pc) : Math.Pow(Values.ToDouble(a), Values.ToDouble(c));
            default: throw new InvalidOperationException($"unknown operator '{b.Op}'");
        }
    }

    private static object Arith(object? a, object? b, Func<long, long, long> onLong, Func<double, double, double> onDouble)
    {
        if (a is long or bool && b is long or bool) return onLong(a is bool x ? (x ? 1 : 0) : (long)a!, b is bool y ? (y ? 1 : 0) : (long)b!);
        return onDouble(Values.ToDouble(a), Values.ToDouble(b));
    }

    private object? GetAttr(object? obj, string name, int pos)
    {
        switch (obj)
        {
            case Dictionary<string, object?> d:
                return d.TryGetValue(name, out var v) ? v : new Undefined(name);
            case Namespace ns:
                return ns.Values.TryGetValue(name, out var nv) ? nv : new Undefined(name);
            case LoopInfo loop:
                return loop.Get(name);
            case Undefined u:
                throw Error($"'{u.Name}' is undefined, so it has no attribute '{name}'", pos);
            case null:
                throw Error($"None has no attribute '{name}'", pos);
            default:
                return new Undefined(name);
        }
    }

    private object? GetItem(object? obj, object? index, int pos)
    {
        switch (obj)
        {
            case List<object?> l when index is long or bool:
            {
                long i = (long)Values.ToDouble(index);
                if (i < 0) i += l.Count;
                return i >= 0 && i < l.Count ? l[(int)i] : new Undefined($"[{index}]");
            }
            case string s when index is long:
            {
                var cps = Values.CodePoints(s);
                long i = (long)index;
                if (i < 0) i += cps.Length;
                return i >= 0 && i < cps.Length ? cps[(int)i] : new Undefined($"[{index}]");
            }
            case Dictionary<string, object?> d:
                return d.TryGetValue(Values.Str(index), out var v) ? v : new Undefined(Values.Str(index));
            case Namespace or LoopInfo:
                return GetAttr(obj, Values.Str(index), pos);
            case Undefined u:
                throw Error($"'{u.Name}' is undefined, so it cannot be indexed with [{Values.Repr(index)}]", pos);
            default:
                throw Error($"cannot index {Values.TypeName(obj)} with {Values.TypeName(index)}", pos);
        }
    }

    private object? Slice(object? obj, SliceExpr s)
    {
        long? Opt(Expr? e)
        {
            if (e is null) return null;
            var v = Eval(e);
            return v is null ? null : v is long l ? l : throw Error($"slice indices must be integers, got {Values.TypeName(v)}", e.Pos);
        }
        long? start = Opt(s.Start), stop = Opt(s.Stop), step = Opt(s.Step);
        long st = step ?? 1;
        if (st == 0) throw Error("slice step cannot be zero", s.Pos);
        string[]? cps = obj is string str ? Values.CodePoints(str) : null;
        int n = obj switch
        {
            string => cps!.Length,
            List<object?> l => l.Count,
            _ => throw Error($"cannot slice {Values.TypeName(obj)}", s.Pos),
        };
        var idx = SliceIndices(n, start, stop, st);
        return cps != null
            ? string.Concat(idx.Select(i => cps[i]))
            : idx.Select(i => ((List<object?>)obj!)[i]).ToList();
    }

    /// <summary>Python's slice.indices.</summary>
    internal static List<int> SliceIndices(int n, long? start, long? stop, long step)
    {
        long Clamp(long? v, long dflt, long lo, long hi)
        {
            if (v is null) return dflt;
            long x = v.Value < 0 ? v.Value + n : v.Value;
            return Math.Clamp(x, lo, hi);
        }
        var r = new List<int>();
        if (step > 0)
        {
            long a = Clamp(start, 0, 0, n), b = Clamp(stop, n, 0, n);
            for (long i = a; i < b; i += step) r.Add((int)i);
        }
        else
        {
            long a = Clamp(start, n - 1, -1, n - 1), b = Clamp(stop, -1, -1, n - 1);
            if (stop is not null && stop.Value < 0 && stop.Value + n < 0) b = -1;
            for (long i = a; i > b; i += step) r.Add((int)i);
        }
        return r;
    }

    private object? Call(CallExpr c)
    {
        var args = c.Args.Select(Eval).ToList();
        var kwargs = Kwargs(c.Kwargs);
        if (c.Func is AttrExpr a)
        {
            var target = Eval(a.Obj);
            if (target is Undefined u) throw Error($"'{u.Name}' is undefined, so it has no method '{a.Name}'", a.Pos);
            if (Builtins.TryMethod(target, a.Name, args, kwargs, msg => Error(msg, c.Pos), out var result)) return result;
            var member = GetAttr(target, a.Name, a.Pos);
            if (member is TemplateFunction mf) return mf.Invoke(args, kwargs);
            throw Error($"{Values.TypeName(target)} has no method '{a.Name}'", a.Pos);
        }
        var f = Eval(c.Func);
        if (f is TemplateFunction fn)
        {
            try { return fn.Invoke(args, kwargs); }
            catch (InvalidOperationException e) { throw Error(e.Message, c.Pos); }
        }
        throw Error(f is Undefined un ? $"'{un.Name}' is undefined and cannot be called" : $"{Values.TypeName(f)} is not callable", c.Pos);
    }
}
