using System.Runtime.CompilerServices;
namespace SharpLM.Inference.ChatTemplates;

// ---- syntax tree ----

internal abstract record Node(int Pos);
internal sealed record TextNode(int Pos, string Text) : Node(Pos);
internal sealed record OutputNode(int Pos, Expr Value) : Node(Pos);
internal sealed record IfNode(int Pos, List<(Expr Cond, List<Node> Body)> Branches, List<Node>? Else) : Node(Pos);
internal sealed record ForNode(int Pos, List<string> Targets, Expr Iter, Expr? Filter, List<Node> Body, List<Node>? Else) : Node(Pos);
/// <summary><c>{% set name = v %}</c>, <c>{% set ns.attr = v %}</c>, <c>{% set a, b = v %}</c>.</summary>
internal sealed record SetNode(int Pos, List<string> Targets, string? Attr, Expr Value) : Node(Pos);
/// <summary><c>{% set name %}...{% endset %}</c></summary>
internal sealed record SetBlockNode(int Pos, string Target, List<Node> Body) : Node(Pos);
internal sealed record BreakNode(int Pos) : Node(Pos);
internal sealed record ContinueNode(int Pos) : Node(Pos);
/// <summary><c>{% macro name(a, b='x') %}...{% endmacro %}</c>: defines a function that renders its body.</summary>
internal sealed record MacroNode(int Pos, string Name, List<(string Name, Expr? Default)> Params, List<Node> Body) : Node(Pos);
/// <summary>A body rendered as is (HF's <c>{% generation %}</c> marker).</summary>
internal sealed record BlockNode(int Pos, List<Node> Body) : Node(Pos);

internal abstract record Expr(int Pos);
internal sealed record LiteralExpr(int Pos, object? Value) : Expr(Pos);
internal sealed record NameExpr(int Pos, string Name) : Expr(Pos);
internal sealed record ListExpr(int Pos, List<Expr> Items, bool IsTuple = false) : Expr(Pos);
internal sealed record DictExpr(int Pos, List<(Expr Key, Expr Value)> Items) : Expr(Pos);
internal sealed record AttrExpr(int Pos, Expr Obj, string Name) : Expr(Pos);
internal sealed record ItemExpr(int Pos, Expr Obj, Expr Index) : Expr(Pos);
internal sealed record SliceExpr(int Pos, Expr Obj, Expr? Start, Expr? Stop, Expr? Step) : Expr(Pos);
internal sealed record CallExpr(int Pos, Expr Func, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr(Pos);
internal sealed record FilterExpr(int Pos, Expr Value, string Name, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr(Pos);
internal sealed record TestExpr(int Pos, Expr Value, string Name, List<Expr> Args, bool Negated) : Expr(Pos);
internal sealed record UnaryExpr(int Pos, string Op, Expr Operand) : Expr(Pos);
internal sealed record BinaryExpr(int Pos, string Op, Expr Left, Expr Right) : Expr(Pos);
internal sealed record CondExpr(int Pos, Expr Cond, Expr Then, Expr? Else) : Expr(Pos);

/// <summary>
/// Parses the lexer's segments into a tree. Statements: if/elif/else, for (with loop filter and else), set
/// (names, namespace attributes, tuple targets, block form), break/continue, generation. Expressions follow
/// Jinja2's precedence: conditional &lt; or &lt; and &lt; not &lt; comparison/in &lt; + - &lt; ~ &lt; * / // % &lt; ** &lt;
/// unary &lt; primary with postfix (.attr, [index], [a:b:c], call) and filters/tests (| f, is t).
/// </summary>
internal sealed class TemplateParser
{
    private readonly TemplateLexer _lexer;
    private readonly List<Segment> _segs;
    private int _seg;
    private List<Tok> _toks = [];
    private int _t;

    private TemplateParser(TemplateLexer lexer)
    {
        _lexer = lexer;
        _segs = lexer.Lex();
    }

    public static List<Node> Parse(TemplateLexer lexer)
    {
        var p = new TemplateParser(lexer);
        var body = p.ParseBody([], out var end);
        if (end != null) throw lexer.Error($"unexpected '{{% {end.Value.Text} %}}' with no open block", end.Value.Pos);
        return body;
    }

    /// <summary>Parses nodes until a block tag whose name is in <paramref name="stops"/>; returns that tag's name
    /// token (the cursor is after the name) or null at the end of the template.</summary>
    private List<Node> ParseBody(string[] stops, out Tok? stop)
    {
        RuntimeHelpers.EnsureSufficientExecutionStack();
        var nodes = new List<Node>();
        while (_seg < _segs.Count)
        {
            var s = _segs[_seg++];
            switch (s.Kind)
            {
                case SegKind.Text:
                    nodes.Add(new TextNode(s.Pos, s.Text));
                    break;
                case SegKind.Output:
                    Begin(s);
                    nodes.Add(new OutputNode(s.Pos, ParseExpression()));
                    ExpectEnd();
                    break;
                default:
                    Begin(s);
                    var name = Peek;
                    if (name.Kind != TokKind.Name) throw Err($"expected a statement name after '{{%', got '{name.Text}'", name);
                    if (Array.IndexOf(stops, name.Text) >= 0)
                    {
                        _t++;
                        stop = name;
                        return nodes;
                    }
                    _t++;
                    nodes.Add(ParseStatement(name));
                    break;
            }
        }
        stop = null;
        return nodes;
    }

    private Node ParseStatement(Tok name)
    {
        switch (name.Text)
        {
            case "if":
            {
                var branches = new List<(Expr, List<Node>)>();
                var cond = ParseExpression();
                ExpectEnd();
                List<Node>? elseBody = null;
                while (true)
                {
                    var body = ParseBody(["elif", "else", "endif"], out var stop);
                    branches.Add((cond, body));
                    if (stop is null) throw Err("'if' is never closed: expected '{% endif %}'", name);
                    if (stop.Value.Text == "elif") { cond = ParseExpression(); ExpectEnd(); continue; }
                    if (stop.Value.Text == "else")
                    {
                        ExpectEnd();
                        elseBody = ParseBody(["endif"], out var end);
                        if (end is null) throw Err("'if' is never closed: expected '{% endif %}'", name);
                    }
                    ExpectEnd();
                    return new IfNode(name.Pos, branches, elseBody);
                }
            }
            case "for":
            {
                var targets = new List<string> { ExpectName("a loop variable") };
                while (Peek.Is(",")) { _t++; targets.Add(ExpectName("a loop variable")); }
                if (!Peek.IsName("in")) throw Err($"expected 'in' in the for statement, got '{Peek.Text}'", Peek);
                _t++;
                var iter = ParseCondOrOr(allowCond: false);
                Expr? filter = null;
                if (Peek.IsName("if")) { _t++; filter = ParseCondOrOr(allowCond: false); }
                if (Peek.IsName("recursive")) throw Err("recursive loops are not supported", Peek);
                ExpectEnd();
                var body = ParseBody(["else", "endfor"], out var stop);
                if (stop is null) throw Err("'for' is never closed: expected '{% endfor %}'", name);
                List<Node>? elseBody = null;
                if (stop.Value.Text == "else")
                {
                    ExpectEnd();
                    elseBody = ParseBody(["endfor"], out var end);
                    if (end is null) throw Err("'for' is never closed: expected '{% endfor %}'", name);
                }
                ExpectEnd();
                return new ForNode(name.Pos, targets, iter, filter, body, elseBody);
            }
            case "set":
            {
                var first = ExpectName("a variable name");
                if (Peek.Is("."))
                {
                    _t++;
                    var attr = ExpectName("an attribute name");
                    Expect("=");
                    var v = ParseExpressionOrTuple();
                    ExpectEnd();
                    return new SetNode(name.Pos, [first], attr, v);
                }
                var targets = new List<string> { first };
                while (Peek.Is(",")) { _t++; targets.Add(ExpectName("a variable name")); }
                if (Peek.Kind == TokKind.End && targets.Count == 1)
                {
                    ExpectEnd();
                    var body = ParseBody(["endset"], out var stop);
                    if (stop is null) throw Err("'set' block is never closed: expected '{% endset %}'", name);
                    ExpectEnd();
                    return new SetBlockNode(name.Pos, first, body);
                }
                Expect("=");
                var value = ParseExpressionOrTuple();
                ExpectEnd();
                return new SetNode(name.Pos, targets, null, value);
            }
            case "break":
                ExpectEnd();
                return new BreakNode(name.Pos);
            case "continue":
                ExpectEnd();
                return new ContinueNode(name.Pos);
            case "generation":
            {
                ExpectEnd();
                var body = ParseBody(["endgeneration"], out var stop);
                if (stop is null) throw Err("'generation' is never closed: expected '{% endgeneration %}'", name);
                ExpectEnd();
                return new BlockNode(name.Pos, body);
            }
            case "macro":
            {
                string macroName = ExpectName("a macro name");
                Expect("(");
                var ps = new List<(string, Expr?)>();
                while (!Peek.Is(")"))
                {
                    string pn = ExpectName("a parameter name");
                    Expr? dflt = null;
                    if (Peek.Is("=")) { _t++; dflt = ParseExpression(); }
                    ps.Add((pn, dflt));
                    if (!Peek.Is(",")) break;
                    _t++;
                }
                Expect(")");
                ExpectEnd();
                var body = ParseBody(["endmacro"], out var stop);
                if (stop is null) throw Err("'macro' is never closed: expected '{% endmacro %}'", name);
                ExpectEnd();
                return new MacroNode(name.Pos, macroName, ps, body);
            }
            case "call" or "filter" or "include" or "import" or "from" or "extends" or "block" or "with" or "raw" or "autoescape":
                throw Err($"the '{name.Text}' statement is not supported by SharpLM's chat template engine", name);
            case "endif" or "endfor" or "else" or "elif" or "endset" or "endgeneration" or "endmacro":
                throw Err($"unexpected '{{% {name.Text} %}}' with no open block to close", name);
            default:
                throw Err($"unknown statement '{name.Text}'", name);
        }
    }

    // ---- tokens ----

    private Tok Peek => _toks[_t];

    private void Begin(Segment s)
    {
        _toks = s.Tokens;
        _t = 0;
    }

    private ChatTemplateException Err(string message, Tok at) => _lexer.Error(message, at.Pos);

    private void ExpectEnd()
    {
        if (Peek.Kind != TokKind.End) throw Err($"expected the end of the tag, got '{Peek.Text}'", Peek);
    }

    private void Expect(string op)
    {
        if (!Peek.Is(op)) throw Err($"expected '{op}', got '{(Peek.Kind == TokKind.End ? "end of tag" : Peek.Text)}'", Peek);
        _t++;
    }

    private string ExpectName(string what)
    {
        var t = Peek;
        if (t.Kind != TokKind.Name) throw Err($"expected {what}, got '{(t.Kind == TokKind.End ? "end of tag" : t.Text)}'", t);
        _t++;
        return t.Text;
    }

    // ---- expressions ----

    private Expr ParseExpressionOrTuple()
    {
        var first = ParseExpression();
        if (!Peek.Is(",")) return first;
        var items = new List<Expr> { first };
        while (Peek.Is(",")) { _t++; if (Peek.Kind == TokKind.End) break; items.Add(ParseExpression()); }
        return new ListExpr(first.Pos, items, IsTuple: true);
    }

    public Expr ParseExpression()
    {
        RuntimeHelpers.EnsureSufficientExecutionStack(); // deeply nested brackets end in an error, not a crash
        return ParseCondOrOr(allowCond: true);
    }

    private Expr ParseCondOrOr(bool allowCond)
    {
        var e = ParseOr();
        if (!allowCond) return e;
        while (Peek.IsName("if"))
        {
            _t++;
            var cond = ParseOr();
            Expr? other = null;
            if (Peek.IsName("else")) { _t++; other = ParseCondOrOr(true); }
            e = new CondExpr(e.Pos, cond, e, other);
        }
        return e;
    }

    private Expr ParseOr()
    {
        var e = ParseAnd();
        while (Peek.IsName("or")) { var t = _toks[_t++]; e = new BinaryExpr(t.Pos, "or", e, ParseAnd()); }
        return e;
    }

    private Expr ParseAnd()
    {
        var e = ParseNot();
        while (Peek.IsName("and")) { var t = _toks[_t++]; e = new BinaryExpr(t.Pos, "and", e, ParseNot()); }
        return e;
    }

    private Expr ParseNot()
    {
        if (Peek.IsName("not")) { var t = _toks[_t++]; return new UnaryExpr(t.Pos, "not", ParseNot()); }
        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        var e = ParseMath1();
        while (true)
        {
            var t = Peek;
            if (t.Kind == TokKind.Op && t.Text is "==" or "!=" or "<" or "<=" or ">" or ">=")
            {
                _t++;
                e = new BinaryExpr(t.Pos, t.Text, e, ParseMath1());
            }
            else if (t.IsName("in"))
            {
                _t++;
                e = new BinaryExpr(t.Pos, "in", e, ParseMath1());
            }
            else if (t.IsName("not") && _toks[_t + 1].IsName("in"))
            {
                _t += 2;
                e = new BinaryExpr(t.Pos, "not in", e, ParseMath1());
            }
            else return e;
        }
    }

    private Expr ParseMath1()
    {
        var e = ParseConcat();
        while (Peek.Kind == TokKind.Op && Peek.Text is "+" or "-") { var t = _toks[_t++]; e = new BinaryExpr(t.Pos, t.Text, e, ParseConcat()); }
        return e;
    }

    private Expr ParseConcat()
    {
        var e = ParseMath2();
        while (Peek.Is("~")) { var t = _toks[_t++]; e = new BinaryExpr(t.Pos, "~", e, ParseMath2()); }
        return e;
    }

    private Expr ParseMath2()
    {
        var e = ParsePow();
        while (Peek.Kind == TokKind.Op && Peek.Text is "*" or "/" or "//" or "%") { var t = _toks[_t++]; e = new BinaryExpr(t.Pos, t.Text, e, ParsePow()); }
        return e;
    }

    private Expr ParsePow()
    {
        var e = ParseUnary();
        while (Peek.Is("**")) { var t = _toks[_t++]; e = new BinaryExpr(t.Pos, "**", e, ParseUnary()); }
        return e;
    }

    /// <summary>As Jinja2's parse_unary: "-3 | abs" is (-3) | abs; the operand of - takes no filters itself.</summary>
    private Expr ParseUnary(bool withFilter = true)
    {
        var t = Peek;
        Expr e;
        if (t.Kind == TokKind.Op && t.Text is "-" or "+")
        {
            _t++;
            e = new UnaryExpr(t.Pos, t.Text, ParseUnary(false));
        }
        else e = ParsePrimary();
        e = ParsePostfix(e);
        return withFilter ? ParseFiltersAndTests(e) : e;
    }

    private Expr ParsePrimary()
    {
        var t = Peek;
        switch (t.Kind)
        {
            case TokKind.String:
            {
                _t++;
                string s = (string)t.Value!;
                while (Peek.Kind == TokKind.String) s += (string)_toks[_t++].Value!; // adjacent literals concatenate
                return new LiteralExpr(t.Pos, s);
            }
            case TokKind.Integer:
            case TokKind.Float:
                _t++;
                return new LiteralExpr(t.Pos, t.Value);
            case TokKind.Name:
                _t++;
                return t.Text switch
                {
                    "true" or "True" => new LiteralExpr(t.Pos, true),
                    "false" or "False" => new LiteralExpr(t.Pos, false),
                    "none" or "None" => new LiteralExpr(t.Pos, null),
                    _ => new NameExpr(t.Pos, t.Text),
                };
            case TokKind.Op when t.Text == "(":
            {
                _t++;
                if (Peek.Is(")")) { _t++; return new ListExpr(t.Pos, [], IsTuple: true); }
                var e = ParseExpression();
                if (Peek.Is(","))
                {
                    var items = new List<Expr> { e };
                    while (Peek.Is(",")) { _t++; if (Peek.Is(")")) break; items.Add(ParseExpression()); }
                    e = new ListExpr(t.Pos, items, IsTuple: true);
                }
                Expect(")");
                return e;
            }
            case TokKind.Op when t.Text == "[":
            {
                _t++;
                var items = new List<Expr>();
                while (!Peek.Is("]"))
                {
                    items.Add(ParseExpression());
                    if (!Peek.Is(",")) break;
                    _t++;
                }
                Expect("]");
                return new ListExpr(t.Pos, items);
            }
            case TokKind.Op when t.Text == "{":
            {
                _t++;
                var items = new List<(Expr, Expr)>();
                while (!Peek.Is("}"))
                {
                    var k = ParseExpression();
                    Expect(":");
                    items.Add((k, ParseExpression()));
                    if (!Peek.Is(",")) break;
                    _t++;
                }
                Expect("}");
                return new DictExpr(t.Pos, items);
            }
            default:
                throw Err(t.Kind == TokKind.End ? "expected an expression, got the end of the tag" : $"unexpected '{t.Text}'", t);
        }
    }

    private Expr ParsePostfix(Expr e)
    {
        while (true)
        {
            var t = Peek;
            if (t.Is("."))
            {
                _t++;
                var n = Peek;
                if (n.Kind == TokKind.Integer) { _t++; e = new ItemExpr(n.Pos, e, new LiteralExpr(n.Pos, n.Value)); continue; }
                e = new AttrExpr(t.Pos, e, ExpectName("an attribute name after '.'"));
            }
            else if (t.Is("["))
            {
                _t++;
                Expr? start = null, stop = null, step = null;
                bool slice = false;
                if (!Peek.Is(":")) start = ParseExpression();
                if (Peek.Is(":"))
                {
                    slice = true;
                    _t++;
                    if (!Peek.Is(":") && !Peek.Is("]")) stop = ParseExpression();
                    if (Peek.Is(":"))
                    {
                        _t++;
                        if (!Peek.Is("]")) step = ParseExpression();
                    }
                }
                Expect("]");
                e = slice ? new SliceExpr(t.Pos, e, start, stop, step) : new ItemExpr(t.Pos, e, start ?? throw Err("empty subscript '[]'", t));
            }
            else if (t.Is("("))
            {
                _t++;
                var (args, kwargs) = ParseArgs();
                e = new CallExpr(t.Pos, e, args, kwargs);
            }
            else return e;
        }
    }

    /// <summary>After '(' : positional and keyword arguments up to ')'.</summary>
    private (List<Expr>, List<(string, Expr)>) ParseArgs()
    {
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!Peek.Is(")"))
        {
            if (Peek.Kind == TokKind.Name && _toks[_t + 1].Is("="))
            {
                string k = _toks[_t].Text;
                _t += 2;
                kwargs.Add((k, ParseExpression()));
            }
            else
            {
                if (kwargs.Count > 0) throw Err("a positional argument after a keyword argument", Peek);
                args.Add(ParseExpression());
            }
            if (!Peek.Is(",")) break;
            _t++;
        }
        Expect(")");
        return (args, kwargs);
    }

    private Expr ParseFiltersAndTests(Expr e)
    {
        while (true)
        {
            var t = Peek;
            if (t.Is("|"))
            {
                _t++;
                string name = ExpectName("a filter name after '|'");
                List<Expr> args = [];
                List<(string, Expr)> kwargs = [];
                if (Peek.Is("(")) { _t++; (args, kwargs) = ParseArgs(); }
                e = new FilterExpr(t.Pos, e, name, args, kwargs);
            }
            else if (t.IsName("is"))
            {
                _t++;
                bool negated = false;
                if (Peek.IsName("not")) { _t++; negated = true; }
                var nt = Peek;
                string name;
                if (nt.Kind == TokKind.Name) { _t++; name = nt.Text; }
                else if (nt.Kind == TokKind.Op && nt.Text is "==" or "!=" or "<" or ">" or "<=" or ">=") { _t++; name = nt.Text; }
                else throw Err($"expected a test name after 'is', got '{nt.Text}'", nt);
                var args = new List<Expr>();
                if (Peek.Is("(")) { _t++; var (a, _) = ParseArgs(); args = a; }
                else if (Peek.Kind is TokKind.String or TokKind.Integer or TokKind.Float
                         || (Peek.Kind == TokKind.Op && Peek.Text is "[" or "{")
                         || (Peek.Kind == TokKind.Name && Peek.Text is not ("and" or "or" or "else")))
                {
                    // as Jinja2's parse_test: one argument without parentheses ("is divisibleby 3"); only else/or/and end it
                    if (Peek.IsName("is")) throw Err("you cannot chain multiple tests with 'is'", Peek);
                    args.Add(ParsePostfix(ParsePrimary()));
                }
                e = new TestExpr(t.Pos, e, name, args, negated);
            }
            else return e;
        }
    }
}
