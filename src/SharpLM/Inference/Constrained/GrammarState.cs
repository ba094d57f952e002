namespace SharpLM.Inference.Constrained;

/// <summary>
/// Where a generation stands in its grammar: an immutable stack of frames (the innermost construct on top), so a
/// state is shared by every continuation that extends it and trying a token never copies it. <see cref="MinChars"/> is
/// the length of the shortest text that completes the whole grammar from here (exact, see <see cref="GrammarNode"/>).
/// Ambiguity (anyOf, a key that is a prefix of another) is a set of states: <see cref="Step"/> maps each state and one
/// char to all successors.
/// </summary>
internal sealed class GrammarState
{
    /// <summary>The most whitespace chars allowed in one run between JSON tokens (a run holds at most one line
    /// break, so pretty-printed JSON fits but a model cannot pad its output with empty lines).</summary>
    public const int MaxWhitespace = 20;

    private const int Newline = 1000;

    /// <summary>The run counter after whitespace char <paramref name="c"/>, or -1 when the run may not grow by it. A
    /// counter is the run's length, plus 1000 once the run holds its one line break ('\r' is not allowed).</summary>
    internal static int Extend(int ws, char c)
    {
        int len = ws % Newline;
        if (len >= MaxWhitespace || c == '\r') return -1;
        if (c == '\n') return ws >= Newline ? -1 : Newline + len + 1;
        return ws + 1;
    }

    private readonly int _tailMin;

    private GrammarState(Frame top, GrammarState? rest)
    {
        Top = top;
        Rest = rest;
        int restTail = rest?._tailMin ?? 0;
        MinChars = GrammarNode.Add(top.Min, restTail);
        _tailMin = GrammarNode.Add(top.MinAfterChild, restTail);
    }

    public Frame Top { get; }
    public GrammarState? Rest { get; }

    /// <summary>Chars still needed to complete the grammar.</summary>
    public int MinChars { get; }

    /// <summary>The grammar is complete and nothing may follow.</summary>
    public bool IsDone => Top is DoneFrame;

    /// <summary>The grammar may end here (complete, or a complete number at the end).</summary>
    public bool IsAccepting => Top is DoneFrame || (Top is NumberFrame { IsComplete: true } && Complete(Rest).IsAccepting);

    /// <summary>The start of <paramref name="root"/>; <paramref name="leadingWhitespace"/> allows whitespace before it.</summary>
    public static GrammarState Start(GrammarNode root, bool leadingWhitespace) => new(new ValueFrame(root, leadingWhitespace, 0), null);

    internal static GrammarState Push(Frame top, GrammarState? rest) => new(top, rest);

    internal static readonly GrammarState Done = new(DoneFrame.Instance, null);

    /// <summary>The state after the frame above <paramref name="rest"/> completed.</summary>
    internal static GrammarState Complete(GrammarState? rest)
    {
        while (true)
        {
            if (rest is null) return Done;
            var f = rest.Top.AfterChild();
            if (f is SequenceFrame { IsComplete: true }) { rest = rest.Rest; continue; }
            return new GrammarState(f, rest.Rest);
        }
    }

    /// <summary>Adds every state reached from this one by <paramref name="c"/> to <paramref name="output"/>.</summary>
    public void Step(char c, List<GrammarState> output) => Top.Step(c, Rest, output);

    internal static bool IsWhitespace(char c) => c is ' ' or '\n' or '\t' or '\r';
}

/// <summary>One level of the grammar stack.</summary>
internal abstract class Frame
{
    /// <summary>Chars needed to complete this frame when it is on top.</summary>
    public abstract int Min { get; }

    /// <summary>Chars needed to complete this frame once the child above it has completed.</summary>
    public virtual int MinAfterChild => int.MaxValue;

    /// <summary>Consumes <paramref name="c"/> with this frame on top of <paramref name="rest"/>.</summary>
    public abstract void Step(char c, GrammarState? rest, List<GrammarState> output);

    /// <summary>This frame once its child completed.</summary>
    public virtual Frame AfterChild() => throw new InvalidOperationException($"{GetType().Name} has no child");
}

internal sealed class DoneFrame : Frame
{
    public static readonly DoneFrame Instance = new();
    public override int Min => 0;
    public override void Step(char c, GrammarState? rest, List<GrammarState> output) { }
}

/// <summary>A value of <see cref="Node"/> is expected next (after optional whitespace).</summary>
internal sealed class ValueFrame(GrammarNode node, bool whitespace, int ws) : Frame
{
    public GrammarNode Node { get; } = node;
    public override int Min => Node.MinChars;

    public override void Step(char c, GrammarState? rest, List<GrammarState> output)
    {
        if (whitespace && GrammarState.IsWhitespace(c))
        {
            if (GrammarState.Extend(ws, c) is >= 0 and var n) output.Add(GrammarState.Push(new ValueFrame(Node, true, n), rest));
            return;
        }
        Start(Node, c, rest, output);
    }

    /// <summary>Begins a value of <paramref name="node"/> with its first char.</summary>
    public static void Start(GrammarNode node, char c, GrammarState? rest, List<GrammarState> output)
    {
        switch (node)
        {
            case RefNode r:
                if (r.Target != null) Start(r.Target, c, rest, output);
                break;
            case AnyNode a:
                Start(a.Expand(), c, rest, output);
                break;
            case UnionNode u:
                foreach (var o in u.Options) Start(o, c, rest, output);
                break;
            case StringNode s:
                if (c == '"') output.Add(GrammarState.Push(new StringFrame(s, 0, 0), rest));
                break;
            case LiteralNode l:
                LiteralFrame.Begin(l, c, rest, output);
                break;
            case NumberNode n:
                NumberFrame.Begin(n, c, rest, output);
                break;
            case ObjectNode o:
                if (c == '{') output.Add(GrammarState.Push(new ObjectFrame(o, ObjectPhase.AfterOpen, 0, [], 0, 0), rest));
                break;
            case ArrayNode a:
                if (c == '[') output.Add(GrammarState.Push(new ArrayFrame(a, ArrayPhase.AfterOpen, 0, 0), rest));
                break;
            case SequenceNode q:
                new SequenceFrame(q, 0).Step(c, rest, output);
                break;
        }
    }
}

/// <summary>Inside one of a set of literal texts: the candidates still matching after <c>pos</c> chars.</summary>
internal sealed class LiteralFrame(LiteralNode node, int[] candidates, int pos) : Frame
{
    public override int Min
    {
        get
        {
            int m = int.MaxValue;
            foreach (int i in candidates) m = Math.Min(m, node.Texts[i].Length - pos);
            return m;
        }
    }

    public static void Begin(LiteralNode node, char c, GrammarState? rest, List<GrammarState> output)
    {
        var all = new int[node.Texts.Length];
        for (int i = 0; i < all.Length; i++) all[i] = i;
        Advance(node, all, 0, c, rest, output);
    }

    public override void Step(char c, GrammarState? rest, List<GrammarState> output) => Advance(node, candidates, pos, c, rest, output);

    private static void Advance(LiteralNode node, int[] cands, int pos, char c, GrammarState? rest, List<GrammarState> output)
    {
        int longer = 0;
        bool complete = false;
        foreach (int i in cands)
        {
            var t = node.Texts[i];
            if (pos < t.Length && t[pos] == c)
            {
                if (pos + 1 == t.Length) complete = true;
                else longer++;
            }
        }
        if (complete) output.Add(GrammarState.Complete(rest));
        if (longer == 0) return;
        var next = new int[longer];
        int k = 0;
        foreach (int i in cands)
        {
            var t = node.Texts[i];
            if (pos + 1 < t.Length && t[pos] == c) next[k++] = i;
        }
        output.Add(GrammarState.Push(new LiteralFrame(node, next, pos + 1), rest));
    }
}

/// <summary>Inside a JSON string: <c>len</c> chars so far; <c>esc</c> 0 normal, 1 after a backslash, 2..5 after
/// \u and esc-2 hex digits.</summary>
internal sealed class StringFrame(StringNode node, int len, int esc) : Frame
{
    public override int Min
    {
        get
        {
            if (esc == 0) return Math.Max(0, node.MinLength - len) + 1;
            int escRest = esc == 1 ? 1 : 4 - (esc - 2);
            return escRest + Math.Max(0, node.MinLength - len - 1) + 1;
        }
    }

    public override void Step(char c, GrammarState? rest, List<GrammarState> output)
    {
        switch (esc)
        {
            case 0:
                if (c == '"')
                {
                    if (len >= node.MinLength) output.Add(GrammarState.Complete(rest));
                }
                else if (c == '\\')
                {
                    if (len < node.MaxLength) output.Add(GrammarState.Push(new StringFrame(node, len, 1), rest));
                }
                else if (c >= 0x20 && len < node.MaxLength) output.Add(GrammarState.Push(new StringFrame(node, len + 1, 0), rest));
                break;
            case 1:
                if (c is '"' or '\\' or '/' or 'b' or 'f' or 'n' or 'r' or 't') output.Add(GrammarState.Push(new StringFrame(node, len + 1, 0), rest));
                else if (c == 'u') output.Add(GrammarState.Push(new StringFrame(node, len, 2), rest));
                break;
            default:
                if (char.IsAsciiHexDigit(c))
                    output.Add(GrammarState.Push(esc == 5 ? new StringFrame(node, len + 1, 0) : new StringFrame(node, len, esc + 1), rest));
                break;
        }
    }
}

internal enum NumberPhase { Minus, Zero, Int, Dot, Frac, E, ESign, Exp }

/// <summary>
/// Inside a JSON number. A number has no closing char: when a char that cannot continue it arrives and the number is
/// complete, the frame pops and the char goes to the parent. Bounded numbers are integers within [Lo, Hi], checked
/// digit by digit (a prefix is kept only if some completion lies within the bounds). Digits are capped so a number
/// cannot run on: an unbounded integer part has at most 9 digits (it fits the 32-bit integer a client may read it into),
/// a fraction 9, an exponent 2; bounded integers as many as their bounds need (up to 16).
/// </summary>
internal sealed class NumberFrame(NumberNode node, NumberPhase phase, bool neg, long value, int digits) : Frame
{
    private const int MaxDigits = 16;
    private const int FreeDigits = 9;

    private int IntDigits => node.Bounded ? MaxDigits : FreeDigits;

    public bool IsComplete => phase switch
    {
        NumberPhase.Zero => !node.Bounded || (node.Lo <= 0 && node.Hi >= 0),
        NumberPhase.Int => !node.Bounded || InRange(neg ? -value : value),
        NumberPhase.Frac or NumberPhase.Exp => true,
        _ => false,
    };

    public override int Min => phase switch
    {
        NumberPhase.Minus => node.Bounded ? MinExtraAfterMinus() : 1,
        NumberPhase.Zero => 0,
        NumberPhase.Int => node.Bounded ? MinExtra(neg, value, digits) : 0,
        NumberPhase.Frac or NumberPhase.Exp => 0,
        _ => 1,
    };

    private bool InRange(long v) => v >= node.Lo && v <= node.Hi;

    public static void Begin(NumberNode node, char c, GrammarState? rest, List<GrammarState> output)
    {
        if (c == '-')
        {
            var f = new NumberFrame(node, NumberPhase.Minus, true, 0, 0);
            if (!node.Bounded || f.MinExtraAfterMinus() != int.MaxValue) output.Add(GrammarState.Push(f, rest));
        }
        else if (c == '0')
        {
            if (!node.Bounded || (node.Lo <= 0 && node.Hi >= 0)) output.Add(GrammarState.Push(new NumberFrame(node, NumberPhase.Zero, false, 0, 1), rest));
        }
        else if (c is >= '1' and <= '9')
        {
            var f = new NumberFrame(node, NumberPhase.Int, false, c - '0', 1);
            if (!node.Bounded || MinExtraOf(node, false, c - '0', 1) != int.MaxValue) output.Add(GrammarState.Push(f, rest));
        }
    }

    public override void Step(char c, GrammarState? rest, List<GrammarState> output)
    {
        bool digit = c is >= '0' and <= '9';
        switch (phase)
        {
            case NumberPhase.Minus:
                if (c == '0')
                {
                    if (!node.Bounded || (node.Lo <= 0 && node.Hi >= 0)) output.Add(GrammarState.Push(new NumberFrame(node, NumberPhase.Zero, true, 0, 1), rest));
                }
                else if (digit && (!node.Bounded || MinExtraOf(node, true, c - '0', 1) != int.MaxValue))
                    output.Add(GrammarState.Push(new NumberFrame(node, NumberPhase.Int, true, c - '0', 1), rest));
                return;
            case NumberPhase.Int when digit && digits < IntDigits:
                {
                    long v = value * 10 + (c - '0');
                    if (!node.Bounded || MinExtraOf(node, neg, v, digits + 1) != int.MaxValue)
                        output.Add(GrammarState.Push(new NumberFrame(node, NumberPhase.Int, neg, v, digits + 1), rest));
                    return;
                }
            case NumberPhase.Zero or NumberPhase.Int when c == '.' && !node.Integer && !node.Bounded:
                output.Add(GrammarState.Push(new NumberFrame(node, NumberPhase.Dot, neg, value, 0), rest));
                return;
            case NumberPhase.Zero or NumberPhase.Int or NumberPhase.Frac when c is 'e' or 'E' && !node.Integer && !node.Bounded:
                output.Add(GrammarState.Push(new NumberFrame(node, NumberPhase.E, neg, value, 0), rest));
                return;
            case NumberPhase.Dot:
                if (digit) output.Add(GrammarState.Push(new NumberFrame(node, NumberPhase.Frac, neg, value, 1), rest));
                return;
            case NumberPhase.Frac when digit:
                if (digits < FreeDigits) output.Add(GrammarState.Push(new NumberFrame(node, NumberPhase.Frac, neg, value, digits + 1), rest));
                return;
            case NumberPhase.E:
                if (c is '+' or '-') output.Add(GrammarState.Push(new NumberFrame(node, NumberPhase.ESign, neg, value, 0), rest));
                else if (digit) output.Add(GrammarState.Push(new NumberFrame(node, NumberPhase.Exp, neg, value, 1), rest));
                return;
            case NumberPhase.ESign:
                if (digit) output.Add(GrammarState.Push(new NumberFrame(node, NumberPhase.Exp, neg, value, 1), rest));
                return;
            case NumberPhase.Exp when digit:
                if (digits < 2) output.Add(GrammarState.Push(new NumberFrame(node, NumberPhase.Exp, neg, value, digits + 1), rest));
                return;
        }
        // a char that cannot continue the number: it ends here (if complete) and the char belongs to the parent
        if (IsComplete && !digit) GrammarState.Complete(rest).Step(c, output);
    }

    private int MinExtraAfterMinus()
    {
        if (node.Lo <= 0 && node.Hi >= 0) return 1; // "-0"
        int best = int.MaxValue;
        for (int d = 1; d <= 9; d++)
        {
            int m = MinExtraOf(node, true, d, 1);
            if (m != int.MaxValue) best = Math.Min(best, 1 + m);
        }
        return best;
    }

    private int MinExtra(bool negative, long v, int k) => MinExtraOf(node, negative, v, k);

    /// <summary>The fewest digits to append to a magnitude <paramref name="v"/> of <paramref name="k"/> digits so the
    /// integer lies within the bounds; int.MaxValue when no completion does.</summary>
    private static int MinExtraOf(NumberNode node, bool negative, long v, int k)
    {
        long scale = 1;
        for (int j = 0; k + j <= MaxDigits; j++)
        {
            long lo = v * scale, hi = v * scale + scale - 1; // magnitudes with j more digits
            long a = negative ? -hi : lo, b = negative ? -lo : hi;
            if (a <= node.Hi && b >= node.Lo) return j;
            if (scale > long.MaxValue / 10 || v * scale > long.MaxValue / 100) break;
            scale *= 10;
        }
        return int.MaxValue;
    }
}

internal enum ObjectPhase { AfterOpen, AfterComma, InKey, AfterKey, AwaitValue, AfterValue, FreeKey, AfterFreeKey, AwaitFreeValue }

/// <summary>Inside a JSON object. <c>next</c>: the first declared property that may still come (or, in
/// <see cref="ObjectPhase.InKey"/>/<see cref="ObjectPhase.AfterKey"/>/<see cref="ObjectPhase.AwaitValue"/>, the
/// property being written); <c>keys</c>/<c>pos</c>: the key candidates matching so far.</summary>
internal sealed class ObjectFrame(ObjectNode node, ObjectPhase phase, int next, int[] keys, int pos, int ws) : Frame
{
    private bool Free => node.Properties.Length == 0;

    public override int Min => phase switch
    {
        ObjectPhase.AfterOpen => node.AfterOpen(next),
        ObjectPhase.AfterComma => node.AfterComma(next),
        ObjectPhase.InKey => KeyMin(),
        ObjectPhase.AfterKey => GrammarNode.Add(GrammarNode.Add(1, node.Properties[next].Value.MinChars), node.AfterValue(next + 1)),
        ObjectPhase.AfterValue => node.AfterValue(next),
        ObjectPhase.AfterFreeKey => GrammarNode.Add(GrammarNode.Add(1, node.Additional!.MinChars), 1),
        _ => int.MaxValue,
    };

    public override int MinAfterChild => phase switch
    {
        ObjectPhase.AwaitValue => node.AfterValue(next + 1),
        ObjectPhase.FreeKey => GrammarNode.Add(GrammarNode.Add(1, node.Additional!.MinChars), 1),
        ObjectPhase.AwaitFreeValue => 1,
        _ => int.MaxValue,
    };

    public override Frame AfterChild() => phase switch
    {
        ObjectPhase.AwaitValue => new ObjectFrame(node, ObjectPhase.AfterValue, next + 1, [], 0, 0),
        ObjectPhase.FreeKey => new ObjectFrame(node, ObjectPhase.AfterFreeKey, 0, [], 0, 0),
        ObjectPhase.AwaitFreeValue => new ObjectFrame(node, ObjectPhase.AfterValue, 0, [], 0, 0),
        _ => base.AfterChild(),
    };

    private int KeyMin()
    {
        int best = int.MaxValue;
        foreach (int j in keys)
        {
            int m = GrammarNode.Add(node.Properties[j].KeyJson.Length - pos, GrammarNode.Add(GrammarNode.Add(1, node.Properties[j].Value.MinChars), node.AfterValue(j + 1)));
            best = Math.Min(best, m);
        }
        return best;
    }

    private bool RequiredRemain()
    {
        for (int j = next; j < node.Properties.Length; j++) if (node.Properties[j].Required) return true;
        return false;
    }

    private bool Whitespace(char c, GrammarState? rest, List<GrammarState> output)
    {
        if (!GrammarState.IsWhitespace(c)) return false;
        if (GrammarState.Extend(ws, c) is >= 0 and var n) output.Add(GrammarState.Push(new ObjectFrame(node, phase, next, keys, pos, n), rest));
        return true;
    }

    public override void Step(char c, GrammarState? rest, List<GrammarState> output)
    {
        switch (phase)
        {
            case ObjectPhase.AfterOpen:
            case ObjectPhase.AfterComma:
                if (Whitespace(c, rest, output)) return;
                if (c == '}' && phase == ObjectPhase.AfterOpen && !RequiredRemain()) output.Add(GrammarState.Complete(rest));
                else if (c == '"') BeginKey(rest, output);
                return;
            case ObjectPhase.InKey:
                {
                    int matching = 0;
                    foreach (int j in keys)
                    {
                        var k = node.Properties[j].KeyJson;
                        if (k[pos] != c) continue;
                        if (pos + 1 == k.Length) output.Add(GrammarState.Push(new ObjectFrame(node, ObjectPhase.AfterKey, j, [], 0, 0), rest));
                        else matching++;
                    }
                    if (matching == 0) return;
                    var nextKeys = new int[matching];
                    int n = 0;
                    foreach (int j in keys)
                    {
                        var k = node.Properties[j].KeyJson;
                        if (k[pos] == c && pos + 1 < k.Length) nextKeys[n++] = j;
                    }
                    output.Add(GrammarState.Push(new ObjectFrame(node, ObjectPhase.InKey, next, nextKeys, pos + 1, 0), rest));
                    return;
                }
            case ObjectPhase.AfterKey:
            case ObjectPhase.AfterFreeKey:
                if (Whitespace(c, rest, output)) return;
                if (c == ':')
                {
                    bool free = phase == ObjectPhase.AfterFreeKey;
                    var parent = GrammarState.Push(new ObjectFrame(node, free ? ObjectPhase.AwaitFreeValue : ObjectPhase.AwaitValue, next, [], 0, 0), rest);
                    output.Add(GrammarState.Push(new ValueFrame(free ? node.Additional! : node.Properties[next].Value, true, 0), parent));
                }
                return;
            case ObjectPhase.AfterValue:
                if (Whitespace(c, rest, output)) return;
                if (c == '}' && !RequiredRemain()) output.Add(GrammarState.Complete(rest));
                else if (c == ',' && (Free ? node.Additional != null : next < node.Properties.Length))
                    output.Add(GrammarState.Push(new ObjectFrame(node, ObjectPhase.AfterComma, next, [], 0, 0), rest));
                return;
        }
    }

    private void BeginKey(GrammarState? rest, List<GrammarState> output)
    {
        if (Free)
        {
            if (node.Additional is null) return;
            var parent = GrammarState.Push(new ObjectFrame(node, ObjectPhase.FreeKey, 0, [], 0, 0), rest);
            output.Add(GrammarState.Push(new StringFrame(FreeKeyNode, 0, 0), parent));
            return;
        }
        var allowed = new List<int>();
        for (int j = next; j < node.Properties.Length; j++)
        {
            allowed.Add(j);
            if (node.Properties[j].Required) break;
        }
        if (allowed.Count > 0) output.Add(GrammarState.Push(new ObjectFrame(node, ObjectPhase.InKey, next, [.. allowed], 1, 0), rest));
    }

    private static readonly StringNode FreeKeyNode = new(0, 256);
}

internal enum ArrayPhase { AfterOpen, AfterComma, AwaitItem, AfterValue }

/// <summary>Inside a JSON array with <c>count</c> complete items.</summary>
internal sealed class ArrayFrame(ArrayNode node, ArrayPhase phase, int count, int ws) : Frame
{
    public override int Min => phase switch
    {
        ArrayPhase.AfterOpen => node.AfterOpen(),
        ArrayPhase.AfterComma => node.AfterComma(count),
        ArrayPhase.AfterValue => node.RestAfterValue(count),
        _ => int.MaxValue,
    };

    public override int MinAfterChild => phase == ArrayPhase.AwaitItem ? node.RestAfterValue(count + 1) : int.MaxValue;

    public override Frame AfterChild() => phase == ArrayPhase.AwaitItem ? new ArrayFrame(node, ArrayPhase.AfterValue, count + 1, 0) : base.AfterChild();

    public override void Step(char c, GrammarState? rest, List<GrammarState> output)
    {
        if (phase != ArrayPhase.AwaitItem && GrammarState.IsWhitespace(c))
        {
            if (GrammarState.Extend(ws, c) is >= 0 and var n) output.Add(GrammarState.Push(new ArrayFrame(node, phase, count, n), rest));
            return;
        }
        switch (phase)
        {
            case ArrayPhase.AfterOpen:
            case ArrayPhase.AfterComma:
                if (c == ']' && phase == ArrayPhase.AfterOpen)
                {
                    if (node.MinItems == 0) output.Add(GrammarState.Complete(rest));
                    return;
                }
                if (count < node.MaxItems && node.Item(count) is { } item)
                    ValueFrame.Start(item, c, GrammarState.Push(new ArrayFrame(node, ArrayPhase.AwaitItem, count, 0), rest), output);
                return;
            case ArrayPhase.AfterValue:
                if (c == ']' && count >= node.MinItems) output.Add(GrammarState.Complete(rest));
                else if (c == ',' && count < node.MaxItems && node.Item(count) != null)
                    output.Add(GrammarState.Push(new ArrayFrame(node, ArrayPhase.AfterComma, count, 0), rest));
                return;
        }
    }
}

/// <summary>Part <c>index</c> of a <see cref="SequenceNode"/> comes next.</summary>
internal sealed class SequenceFrame(SequenceNode node, int index) : Frame
{
    public bool IsComplete => index >= node.Parts.Length;
    public override int Min => node.Rest(index);
    public override int MinAfterChild => node.Rest(index + 1);
    public override Frame AfterChild() => new SequenceFrame(node, index + 1);

    public override void Step(char c, GrammarState? rest, List<GrammarState> output)
    {
        if (IsComplete) return;
        ValueFrame.Start(node.Parts[index], c, GrammarState.Push(this, rest), output);
    }
}
