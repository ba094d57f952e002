using System.Text;

namespace SharpLM.Inference.ChatTemplates;

/// <summary>Where <see cref="PyStringReader"/> puts a string's text: a character of the source as written, or the code
/// point an escape stands for (which may be a lone surrogate, e.g. <c>\ud800</c>).</summary>
internal interface IPyStringSink
{
    void Char(char c);

    void CodePoint(int codePoint);
}

/// <summary>
/// The body of a Python string literal read one character at a time after its opening quote, decoded as Python decodes
/// it: <c>\n \t \r \a \b \f \v \\ \' \"</c>, <c>\ooo</c> (one to three octal digits), <c>\xhh</c>, <c>\uhhhh</c>,
/// <c>\Uhhhhhhhh</c>; a backslash before a newline continues the line; any other escape stays as written, backslash
/// included; a hex escape with too few digits, or above U+10FFFF, is malformed. The one reader of Python string literals:
/// the chat template lexer's (Jinja2 decodes its literals with Python's unicode-escape) and the server's, which reads a
/// model's Python call (Llama 3.1's built-in tools) as its characters stream in.
/// </summary>
/// <param name="quote">The opening (and closing) quote.</param>
/// <param name="multiline">A raw line break may be in the literal (Jinja2's literals), else it is malformed (a
/// Python call's quoted strings).</param>
/// <param name="jsonSlash"><c>\/</c> is <c>/</c>, JSON's escape (a model writes its call's values as JSON), else it stays
/// as written.</param>
internal struct PyStringReader(char quote, bool multiline, bool jsonSlash = false)
{
    public enum Step { More, End, Bad }

    private bool _escape;
    private char _kind;   // 'x', 'u', 'U' (hex digits) or 'o' (octal) while an escape's digits are read
    private int _digits;
    private int _value;

    /// <summary>Reads <paramref name="c"/>: the literal goes on (More), <paramref name="c"/> was its closing quote (End),
    /// or it is malformed (Bad). What it stands for goes to <paramref name="sink"/>.</summary>
    public Step Read<TSink>(char c, ref TSink sink) where TSink : IPyStringSink
    {
        if (_kind == 'o')
        {
            if (c is >= '0' and <= '7' && _digits < 3)
            {
                _value = _value * 8 + (c - '0');
                if (++_digits == 3) EndEscape(ref sink);
                return Step.More;
            }
            EndEscape(ref sink);                         // c is not part of the escape
        }
        else if (_kind != '\0')
        {
            if (!char.IsAsciiHexDigit(c)) return Step.Bad;
            _value = _value * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
            if (++_digits < (_kind switch { 'x' => 2, 'u' => 4, _ => 8 })) return Step.More;
            if (_value > 0x10FFFF) return Step.Bad;
            EndEscape(ref sink);
            return Step.More;
        }
        if (_escape)
        {
            _escape = false;
            int? simple = c switch
            {
                'n' => '\n', 't' => '\t', 'r' => '\r', 'a' => '\a', 'b' => '\b', 'f' => '\f', 'v' => '\v',
                '\\' or '\'' or '"' => c,
                '/' when jsonSlash => '/',
                _ => null,
            };
            if (simple is int s) sink.CodePoint(s);
            else if (c == '\n') { }                      // a line continuation
            else if (c is 'x' or 'u' or 'U' or (>= '0' and <= '7'))
            {
                _kind = c is >= '0' and <= '7' ? 'o' : c;
                _digits = _kind == 'o' ? 1 : 0;
                _value = _kind == 'o' ? c - '0' : 0;
            }
            else
            {
                sink.Char('\\');                         // Python keeps an unknown escape as written
                sink.Char(c);
            }
            return Step.More;
        }
        if (c == '\\') _escape = true;
        else if (c == quote) return Step.End;
        else if (c is '\n' or '\r' && !multiline) return Step.Bad;
        else sink.Char(c);
        return Step.More;
    }

    private void EndEscape<TSink>(ref TSink sink) where TSink : IPyStringSink
    {
        _kind = '\0';
        sink.CodePoint(_value);
    }
}

/// <summary>A string's text as UTF-16 (a code point above U+FFFF as its surrogate pair).</summary>
internal readonly struct StringBuilderSink(StringBuilder sb) : IPyStringSink
{
    public void Char(char c) => sb.Append(c);

    public void CodePoint(int codePoint)
    {
        if (codePoint > 0xFFFF) sb.Append(char.ConvertFromUtf32(codePoint));
        else sb.Append((char)codePoint);
    }
}
