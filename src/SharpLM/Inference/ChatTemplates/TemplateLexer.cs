using System.Globalization;
using System.Text;

namespace SharpLM.Inference.ChatTemplates;

internal enum TokKind { Name, String, Integer, Float, Op, End }

/// <summary>One expression token; <see cref="Pos"/> is its offset in the (newline-normalised) template.</summary>
internal readonly record struct Tok(TokKind Kind, string Text, int Pos, object? Value = null)
{
    public bool Is(string op) => Kind == TokKind.Op && Text == op;
    public bool IsName(string name) => Kind == TokKind.Name && Text == name;
}

internal enum SegKind { Text, Output, Block }

/// <summary>Template text, a <c>{{ expression }}</c> or a <c>{% statement %}</c> (its tokens, ending with End).</summary>
internal sealed record Segment(SegKind Kind, int Pos, string Text, List<Tok> Tokens);

/// <summary>
/// Splits a template into text and tags the way Jinja2's lexer does with Hugging Face's settings
/// (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False):
/// <list type="bullet">
/// <item>newlines are normalised to \n and one trailing newline of the template is dropped;</item>
/// <item><c>{%-</c>, <c>{{-</c>, <c>{#-</c> strip all whitespace before the tag; <c>-%}</c>, <c>-}}</c>, <c>-#}</c> all after;</item>
/// <item>trim_blocks: the first \n after <c>%}</c> or <c>#}</c> is removed;</item>
/// <item>lstrip_blocks: spaces and tabs from the start of a line up to <c>{%</c> or <c>{#</c> are removed (not before
///   <c>{{</c>, and not with <c>{%+</c>).</item>
/// </list>
/// </summary>
internal sealed class TemplateLexer
{
    public static readonly string[] Operators =
        ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", ".", ",", ":", "|", "(", ")", "[", "]", "{", "}"];

    private readonly string _src;
    private readonly int[] _lineStarts;

    public TemplateLexer(string template)
    {
        string s = template.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        if (s.EndsWith('\n')) s = s[..^1];
        _src = s;
        var starts = new List<int> { 0 };
        for (int i = 0; i < s.Length; i++) if (s[i] == '\n') starts.Add(i + 1);
        _lineStarts = [.. starts];
    }

    public string Source => _src;

    public (int Line, int Column) Position(int pos)
    {
        int i = Array.BinarySearch(_lineStarts, pos);
        if (i < 0) i = ~i - 1;
        return (i + 1, pos - _lineStarts[i] + 1);
    }

    public ChatTemplateException Error(string message, int pos)
    {
        var (l, c) = Position(pos);
        return new ChatTemplateException(message, l, c);
    }

    public List<Segment> Lex()
    {
        var segs = new List<Segment>();
        int pos = 0;
        bool lineStarting = true;
        while (pos < _src.Length)
        {
            int start = NextTag(pos);
            if (start < 0)
            {
                segs.Add(new Segment(SegKind.Text, pos, _src[pos..], []));
                break;
            }
            string text = _src[pos..start];
            char kind = _src[start + 1]; // '{', '%' or '#'
            int after = start + 2;
            char sign = after < _src.Length ? _src[after] : '\0';
            if (sign == '-')
            {
                text = text.TrimEnd();
                after++;
            }
            else if (sign == '+' && kind != '{')
            {
                after++;
            }
            else if (kind != '{')
            {
                int lpos = text.LastIndexOf('\n') + 1;
                if ((lpos > 0 || lineStarting) && lpos < text.Length && IsBlank(text.AsSpan(lpos)))
                    text = text[..lpos];
            }
            if (text.Length > 0) segs.Add(new Segment(SegKind.Text, pos, text, []));

            if (kind == '#')
            {
                int end = _src.IndexOf("#}", after, StringComparison.Ordinal);
                if (end < 0) throw Error("unclosed comment: '{#' without '#}'", start);
                pos = end + 2;
                pos = AfterTag(pos, rightStrip: end > after && _src[end - 1] == '-', trim: true, out lineStarting);
                continue;
            }

            var toks = new List<Tok>();
            string close = kind == '{' ? "}}" : "%}";
            int p = after, depth = 0;
            while (true)
            {
                while (p < _src.Length && char.IsWhiteSpace(_src[p])) p++;
                if (p >= _src.Length) throw Error($"unclosed tag: '{(kind == '{' ? "{{" : "{%")}' without '{close}'", start);
                if (depth == 0)
                {
                    bool minus = _src[p] == '-' && string.CompareOrdinal(_src, p + 1, close, 0, 2) == 0;
                    if (minus || string.CompareOrdinal(_src, p, close, 0, 2) == 0)
                    {
                        toks.Add(new Tok(TokKind.End, close, p));
                        pos = p + (minus ? 3 : 2);
                        pos = AfterTag(pos, minus, trim: kind == '%', out lineStarting);
                        break;
                    }
                }
                var t = Next(ref p);
                if (t.Text is "(" or "[" or "{") depth++;
                else if (t.Text is ")" or "]" or "}" && t.Kind == TokKind.Op) depth = Math.Max(0, depth - 1);
                toks.Add(t);
            }
            segs.Add(new Segment(kind == '{' ? SegKind.Output : SegKind.Block, start, "", toks));
        }
        return segs;
    }

    private static bool IsBlank(ReadOnlySpan<char> s)
    {
        foreach (char c in s) if (!char.IsWhiteSpace(c)) return false;
        return true;
    }

    /// <summary>After a tag's closing delimiter: strip whitespace for '-', else drop one \n for block and comment
    /// tags (trim_blocks). Reports whether the consumed text ended a line (Jinja's line_starting).</summary>
    private int AfterTag(int pos, bool rightStrip, bool trim, out bool lineStarting)
    {
        lineStarting = false;
        if (rightStrip)
        {
            while (pos < _src.Length && char.IsWhiteSpace(_src[pos])) { lineStarting = _src[pos] == '\n'; pos++; }
        }
        else if (trim && pos < _src.Length && _src[pos] == '\n')
        {
            pos++;
            lineStarting = true;
        }
        return pos;
    }

    private int NextTag(int from)
    {
        for (int i = from; i + 1 < _src.Length; i++)
            if (_src[i] == '{' && _src[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    private Tok Next(ref int p)
    {
        int start = p;
        char c = _src[p];
        if (char.IsLetter(c) || c == '_')
        {
            while (p < _src.Length && (char.IsLetterOrDigit(_src[p]) || _src[p] == '_')) p++;
            return new Tok(TokKind.Name, _src[start..p], start);
        }
        if (char.IsDigit(c))
        {
            while (p < _src.Length && (char.IsDigit(_src[p]) || _src[p] == '_')) p++;
            bool isFloat = false;
            if (p + 1 < _src.Length && _src[p] == '.' && char.IsDigit(_src[p + 1]))
            {
                isFloat = true;
                p++;
                while (p < _src.Length && char.IsDigit(_src[p])) p++;
            }
            if (p < _src.Length && _src[p] is 'e' or 'E' && p + 1 < _src.Length && (char.IsDigit(_src[p + 1]) || _src[p + 1] is '+' or '-'))
            {
                isFloat = true;
                p += 2;
                while (p < _src.Length && char.IsDigit(_src[p])) p++;
            }
            string num = _src[start..p].Replace("_", "", StringComparison.Ordinal);
            if (isFloat) return new Tok(TokKind.Float, num, start, double.Parse(num, CultureInfo.InvariantCulture));
            if (!long.TryParse(num, NumberStyles.None, CultureInfo.InvariantCulture, out long value))
                throw Error($"integer literal {(num.Length > 30 ? num[..30] + "..." : num)} does not fit in 64 bits", start);
            return new Tok(TokKind.Integer, num, start, value);
        }
        if (c is '"' or '\'')
        {
            var sb = new StringBuilder();
            var sink = new StringBuilderSink(sb);
            var literal = new PyStringReader(c, multiline: true);
            p++;
            while (true)
            {
                if (p >= _src.Length) throw Error("unterminated string literal", start);
                var step = literal.Read(_src[p++], ref sink);
                if (step == PyStringReader.Step.End) break;
                if (step == PyStringReader.Step.Bad) throw Error("malformed escape in a string literal (\\x takes 2 hex digits, \\u 4, \\U 8 up to 0010FFFF)", p - 1);
            }
            return new Tok(TokKind.String, _src[start..p], start, sb.ToString());
        }
        foreach (var op in Operators)
            if (string.CompareOrdinal(_src, p, op, 0, op.Length) == 0)
            {
                p += op.Length;
                return new Tok(TokKind.Op, op, start);
            }
        throw Error($"unexpected character '{c}' in a tag", start);
    }
}
