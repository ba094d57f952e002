namespace SharpLM.Inference.Constrained;

/// <summary>
/// One node of an output grammar: a JSON value of some schema, a fixed text, or a sequence of nodes (a tool call is
/// "&lt;tool_call&gt;\n", an object, "\n&lt;/tool_call&gt;"). <see cref="MinChars"/> is the length of the shortest text the
/// node accepts (exact, so a generation can always be closed within its token budget; see <see cref="TokenConstraint"/>).
/// Nodes are immutable once <see cref="GrammarNodes.Seal"/> has computed the lengths.
/// </summary>
internal abstract class GrammarNode
{
    /// <summary>The shortest text this node accepts, in chars; int.MaxValue when it accepts none (an impossible schema).</summary>
    public int MinChars { get; internal set; } = int.MaxValue;

    /// <summary>Recomputes <see cref="MinChars"/> from the children's; true when it changed (fixed-point iteration).</summary>
    internal abstract bool UpdateMin();

    internal static int Add(int a, int b) => a == int.MaxValue || b == int.MaxValue ? int.MaxValue : (int)Math.Min((long)a + b, int.MaxValue - 1);

    internal bool Set(int value)
    {
        if (value == MinChars) return false;
        MinChars = value;
        return true;
    }
}

/// <summary>Any JSON value (JSON mode): objects with any keys, arrays, strings, numbers, true/false/null; nesting
/// deeper than <see cref="Depth"/> is refused so a runaway model cannot nest forever.</summary>
internal sealed class AnyNode : GrammarNode
{
    public int Depth { get; }
    private GrammarNode? _union;

    public AnyNode(int depth) => Depth = depth;

    /// <summary>The union this value expands to (objects and arrays only while depth remains).</summary>
    public GrammarNode Expand()
    {
        if (_union != null) return _union;
        var options = new List<GrammarNode> { new StringNode(0, int.MaxValue), new NumberNode(integer: false, null, null, false, false), LiteralNode.Of("true", "false", "null") };
        if (Depth > 0)
        {
            var inner = new AnyNode(Depth - 1);
            options.Insert(0, new ObjectNode([], inner));
            options.Insert(1, new ArrayNode([], inner, 0, int.MaxValue));
        }
        var u = new UnionNode([.. options]);
        GrammarNodes.Seal(u);
        return _union = u;
    }

    internal override bool UpdateMin() => Set(1); // "0"
}

/// <summary>A JSON string of <see cref="MinLength"/>..<see cref="MaxLength"/> characters (an escape counts as one).</summary>
internal sealed class StringNode(int minLength, int maxLength) : GrammarNode
{
    public int MinLength { get; } = minLength;
    public int MaxLength { get; } = maxLength;
    internal override bool UpdateMin() => Set(2 + MinLength);
}

/// <summary>A JSON number; an integer when <see cref="Integer"/>. Bounds restrict the value: within bounds only
/// integer parts are generated, with a fraction only where the whole unit interval lies within them.</summary>
internal sealed class NumberNode : GrammarNode
{
    public NumberNode(bool integer, double? min, double? max, bool exclusiveMin, bool exclusiveMax)
    {
        Integer = integer;
        Min = min;
        Max = max;
        ExclusiveMin = exclusiveMin;
        ExclusiveMax = exclusiveMax;
        Bounded = min.HasValue || max.HasValue;
        // the integers allowed: [Lo, Hi]
        double lo = min ?? -1e15, hi = max ?? 1e15;
        Lo = (long)Math.Ceiling(Math.Max(lo, -1e15));
        if (exclusiveMin && min.HasValue && Lo == lo) Lo++;
        Hi = (long)Math.Floor(Math.Min(hi, 1e15));
        if (exclusiveMax && max.HasValue && Hi == hi) Hi--;
    }

    public bool Integer { get; }
    public double? Min { get; }
    public double? Max { get; }
    public bool ExclusiveMin { get; }
    public bool ExclusiveMax { get; }
    public bool Bounded { get; }
    public long Lo { get; }
    public long Hi { get; }

    /// <summary>Whether x satisfies the bounds.</summary>
    public bool InRange(double x) =>
        (Min is not double mn || (ExclusiveMin ? x > mn : x >= mn)) && (Max is not double mx || (ExclusiveMax ? x < mx : x <= mx));

    internal override bool UpdateMin()
    {
        if (!Bounded) return Set(1);
        if (Lo > Hi) return Set(int.MaxValue);
        if (Lo <= 0 && Hi >= 0) return Set(1);
        return Set(Lo > 0 ? Digits(Lo) : 1 + Digits(-Hi));
    }

    internal static int Digits(long v) => v < 10 ? 1 : 1 + Digits(v / 10);
}

/// <summary>One of a fixed set of texts: an enum's or const's JSON values, true/false/null, or literal text between
/// JSON parts (a tool-call tag).</summary>
internal sealed class LiteralNode : GrammarNode
{
    public LiteralNode(string[] texts) => Texts = texts;

    public string[] Texts { get; }

    public static LiteralNode Of(params string[] texts) => new(texts);

    internal override bool UpdateMin() => Set(Texts.Length == 0 ? int.MaxValue : Texts.Min(t => t.Length));
}

/// <summary>One property of an <see cref="ObjectNode"/>: its name, the name as a JSON string, its value and whether
/// it must appear.</summary>
internal sealed record PropertyNode(string Name, string KeyJson, GrammarNode Value, bool Required);

/// <summary>
/// A JSON object. With <see cref="Properties"/>, keys come from them in their declared order (optional ones may be
/// left out, required ones may not), as llama.cpp's schema grammars do; without, keys are any strings and values follow
/// <see cref="Additional"/> (null: only <c>{}</c>).
/// </summary>
internal sealed class ObjectNode : GrammarNode
{
    public ObjectNode(PropertyNode[] properties, GrammarNode? additional)
    {
        Properties = properties;
        Additional = properties.Length == 0 ? additional : null;
    }

    public PropertyNode[] Properties { get; }
    public GrammarNode? Additional { get; }

    /// <summary>Chars still needed after the opening brace when the next property is <paramref name="next"/>:
    /// every remaining required member with its separator, or just the closing brace.</summary>
    public int AfterOpen(int next)
    {
        int sum = 0;
        bool any = false;
        for (int j = next; j < Properties.Length; j++)
            if (Properties[j].Required)
            {
                sum = Add(sum, Add(Member(j), 1));
                any = true;
            }
        return any ? sum : 1;
    }

    /// <summary>Chars still needed after a member (next property <paramref name="next"/>): a comma and a member for
    /// each remaining required property, then the brace.</summary>
    public int AfterValue(int next)
    {
        int open = AfterOpen(next);
        bool any = false;
        for (int j = next; j < Properties.Length; j++) any |= Properties[j].Required;
        return any ? Add(open, 1) : 1;
    }

    /// <summary>Chars still needed after a comma: one more member (any allowed one), then what follows it.</summary>
    public int AfterComma(int next)
    {
        if (Properties.Length == 0) return Additional is null ? int.MaxValue : Add(Add(3, Additional.MinChars), 1); // "":v}
        int best = int.MaxValue;
        for (int j = next; j < Properties.Length; j++)
        {
            best = Math.Min(best, Add(Member(j), AfterValue(j + 1)));
            if (Properties[j].Required) break;
        }
        return best;
    }

    /// <summary>"key":value at its shortest.</summary>
    public int Member(int j) => Add(Properties[j].KeyJson.Length + 1, Properties[j].Value.MinChars);

    internal override bool UpdateMin() => Set(Add(1, AfterOpen(0)));
}

/// <summary>A JSON array: items by position from <see cref="Prefix"/>, then <see cref="Items"/> (null: no more), with
/// <see cref="MinItems"/>..<see cref="MaxItems"/> items.</summary>
internal sealed class ArrayNode : GrammarNode
{
    public ArrayNode(GrammarNode[] prefix, GrammarNode? items, int minItems, int maxItems)
    {
        Prefix = prefix;
        Items = items;
        MinItems = minItems;
        MaxItems = items is null ? Math.Min(maxItems, prefix.Length) : maxItems;
    }

    public GrammarNode[] Prefix { get; }
    public GrammarNode? Items { get; }
    public int MinItems { get; }
    public int MaxItems { get; }

    public GrammarNode? Item(int index) => index < Prefix.Length ? Prefix[index] : Items;

    /// <summary>Chars needed after the opening bracket: every required item with its separator, or the bracket.</summary>
    public int AfterOpen()
    {
        if (MinItems == 0) return 1;
        int sum = 0;
        for (int i = 0; i < MinItems; i++)
        {
            var item = Item(i);
            if (item is null) return int.MaxValue;
            sum = Add(sum, Add(item.MinChars, 1));
        }
        return sum;
    }

    /// <summary>Chars needed after a comma following <paramref name="count"/> items: one more item, then the rest.</summary>
    public int AfterComma(int count)
    {
        var item = Item(count);
        return item is null ? int.MaxValue : Add(item.MinChars, RestAfterValue(count + 1));
    }

    /// <summary>Chars needed after <paramref name="count"/> complete items (a comma or the closing bracket next).</summary>
    public int RestAfterValue(int count)
    {
        if (count >= MinItems) return 1;
        int sum = 0;
        for (int i = count; i < MinItems; i++)
        {
            var item = Item(i);
            if (item is null) return int.MaxValue;
            sum = Add(sum, Add(1, item.MinChars));
        }
        return Add(sum, 1);
    }

    internal override bool UpdateMin() => Set(Add(1, AfterOpen()));
}

/// <summary>Any one of several nodes (anyOf, oneOf, a list of types).</summary>
internal sealed class UnionNode(GrammarNode[] options) : GrammarNode
{
    public GrammarNode[] Options { get; } = options;
    internal override bool UpdateMin() => Set(Options.Length == 0 ? int.MaxValue : Options.Min(o => o.MinChars));
}

/// <summary>A reference ($ref) resolved after compilation, so schemas may be recursive.</summary>
internal sealed class RefNode : GrammarNode
{
    public GrammarNode? Target { get; set; }
    internal override bool UpdateMin() => Set(Target?.MinChars ?? int.MaxValue);
}

/// <summary>Nodes one after the other (literal text around JSON).</summary>
internal sealed class SequenceNode(GrammarNode[] parts) : GrammarNode
{
    public GrammarNode[] Parts { get; } = parts;

    /// <summary>The shortest text of the parts from <paramref name="index"/> on.</summary>
    public int Rest(int index)
    {
        int sum = 0;
        for (int i = index; i < Parts.Length; i++) sum = Add(sum, Parts[i].MinChars);
        return sum;
    }

    internal override bool UpdateMin() => Set(Rest(0));
}

internal static class GrammarNodes
{
    /// <summary>Computes <see cref="GrammarNode.MinChars"/> for every node reachable from <paramref name="root"/>
    /// (iterated to a fixed point, so recursive references converge).</summary>
    public static void Seal(GrammarNode root)
    {
        var all = new List<GrammarNode>();
        var seen = new HashSet<GrammarNode>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<GrammarNode>();
        stack.Push(root);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            if (!seen.Add(n)) continue;
            all.Add(n);
            foreach (var c in Children(n)) stack.Push(c);
        }
        for (int round = 0; round < 10_000; round++)
        {
            bool changed = false;
            for (int i = all.Count - 1; i >= 0; i--) changed |= all[i].UpdateMin();
            if (!changed) return;
        }
    }

    private static IEnumerable<GrammarNode> Children(GrammarNode n) => n switch
    {
        ObjectNode o => o.Properties.Select(p => p.Value).Concat(o.Additional is null ? [] : [o.Additional]),
        ArrayNode a => a.Prefix.Concat(a.Items is null ? [] : [a.Items]),
        UnionNode u => u.Options,
        RefNode r => r.Target is null ? [] : [r.Target],
        SequenceNode s => s.Parts,
        _ => [],
    };
}
