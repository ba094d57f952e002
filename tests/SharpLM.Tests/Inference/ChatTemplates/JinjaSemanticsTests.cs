using SharpLM.Inference.ChatTemplates;
using Xunit;

namespace SharpLM.Tests.Inference.ChatTemplates;

/// <summary>Jinja2 rules one at a time; expected outputs follow the Jinja2 documentation (templates.html, "Whitespace
/// Control", "List of Builtin Filters/Tests") with HF's trim_blocks=True, lstrip_blocks=True.</summary>
public class JinjaSemanticsTests
{
    private static string R(string template, Dictionary<string, object?>? vars = null) =>
        ChatTemplate.Parse(template).Render([], false, vars);

    [Theory]
    [InlineData("{% if true %}\n  x\n{% endif %}\n", "  x\n")]            // trim_blocks eats the \n after %}
    [InlineData("  {% if true %}x{% endif %}", "x")]                      // lstrip_blocks at the start of a line
    [InlineData("a\n    {% if true %}x{% endif %}", "a\nx")]
    [InlineData("a  {% if true %}x{% endif %}", "a  x")]                  // not at the start of a line: kept
    [InlineData("  {{ 'x' }}", "  x")]                                     // lstrip_blocks does not touch {{
    [InlineData("{{ 'a' }}\n{{ 'b' }}", "a\nb")]                           // no trim after }}
    [InlineData("x  {{- 'y' -}}  \n z", "xyz")]                            // - strips all whitespace incl. newlines
    [InlineData("{%- if true -%}  a  {%- endif %}", "a")]
    [InlineData("  {%+ if true %}x{% endif %}", "  x")]                   // + disables lstrip
    [InlineData("{# comment #}\nx", "x")]
    [InlineData("a {#- c -#} b", "ab")]
    [InlineData("line\n", "line")]                                         // one trailing newline dropped
    [InlineData("line\n\n", "line\n")]
    [InlineData("a\r\nb", "a\nb")]
    [InlineData("{% for i in [1, 2, 3] %}\n  {{ i }}\n{% endfor %}", "  1\n  2\n  3\n")]
    public void Whitespace(string template, string expected) => Assert.Equal(expected, R(template));

    [Theory]
    [InlineData("{{ [1, 'a', none, true, 2.5] }}", "[1, 'a', None, True, 2.5]")]   // Python str()
    [InlineData("{{ {'k': 'v'} }}", "{'k': 'v'}")]
    [InlineData("{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 7 / 2 }}|{{ 2 ** 10 }}", "7|3|1|2|3.5|1024")]
    [InlineData("{{ 'a' ~ 1 ~ none }}|{{ 'a' + 'b' }}", "a1None|ab")]
    [InlineData("{{ 'abcdef'[1:] }}|{{ 'abcdef'[::-1] }}|{{ 'abcdef'[-2:] }}|{{ [1,2,3][:-1] }}|{{ 'abc'[0] }}", "bcdef|fedcba|ef|[1, 2]|a")]
    [InlineData("{{ '  x '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\nab'.lstrip('\\n') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}", "x|a|ab|['a', 'b', '', 'c']|['a', 'b']")]
    [InlineData("{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|{{ 'a</think>b'.split('</think>')[-1] }}", "True|True|b")]
    [InlineData("{{ '  Hi  ' | trim }}|{{ [1, 2] | length }}|{{ 'ab' | upper }}|{{ 'AB' | lower }}|{{ 3 | string }}", "Hi|2|AB|ab|3")]
    [InlineData("{{ x | default('d') }}|{{ '' | default('d') }}|{{ '' | default('d', true) }}", "d||d")]
    [InlineData("{{ [1, 2, 3] | first }}|{{ [1, 2, 3] | last }}|{{ ['a', 'b'] | join(', ') }}|{{ [3, 1, 2] | sort | list }}", "1|3|a, b|[1, 2, 3]")]
    [InlineData("{{ {'a': [1, 2], 'b': 'é\"'} | tojson }}", "{\"a\": [1, 2], \"b\": \"é\\\"\"}")]
    [InlineData("{{ {'a': 1} | tojson(indent=2) }}", "{\n  \"a\": 1\n}")]
    [InlineData("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}", "a=1;b=2;")]
    [InlineData("{% for x in [] %}y{% else %}empty{% endfor %}", "empty")]
    [InlineData("{% for x in [1, 2, 3, 4] if x is even %}{{ x }}{% endfor %}", "24")]
    [InlineData("{% for x in 'ab' %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}", "10TrueFalse2;21FalseTrue2;")]
    [InlineData("{% for x in [1, 2, 3] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %}", "1")]
    [InlineData("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}", "1")]       // loop scope
    [InlineData("{% set ns = namespace(x=1) %}{% for i in [1] %}{% set ns.x = 2 %}{% endfor %}{{ ns.x }}", "2")]
    [InlineData("{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}", "2")]             // if has no scope
    [InlineData("{% set a, b = 1, 2 %}{{ a }}{{ b }}", "12")]
    [InlineData("{% set s %}in{{ 1 }}{% endset %}[{{ s }}]", "[in1]")]
    [InlineData("{{ x is defined }}|{{ none is none }}|{{ 'a' is string }}|{{ {} is mapping }}|{{ x is not defined }}", "False|True|True|True|True")]
    [InlineData("{{ 'b' in 'abc' }}|{{ 2 in [1, 2] }}|{{ 'k' in {'k': 1} }}|{{ 3 not in [1] }}", "True|True|True|True")]
    [InlineData("{{ 'y' if false else 'n' }}|{{ 'y' if true }}|{{ 1 if none is none and not false or x else 2 }}", "n|y|1")]
    [InlineData("{{ [1, 2, 3] | length - 1 }}", "2")]                                          // filter binds tighter than -
    [InlineData("{{ {'role': 'user'}.role }}|{{ {'role': 'user'}['role'] }}|{{ {'a': 1}.missing }}|", "user|user||")]
    [InlineData("{{ range(3) | list }}|{{ [{'n': 'a'}, {'n': 'b'}] | map(attribute='n') | join }}", "[0, 1, 2]|ab")]
    [InlineData("{{ [{'r': 'u'}, {'r': 'a'}] | selectattr('r', 'equalto', 'a') | list | length }}", "1")]
    [InlineData("{{ 'a' \"b\" }}|{{ \"it's\" }}|{{ 'tab\\tnl\\n' }}", "ab|it's|tab\tnl\n")]
    public void Expressions(string template, string expected) => Assert.Equal(expected, R(template));

    [Fact]
    public void Variables_MessagesAndExtras()
    {
        var t = ChatTemplate.Parse("{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m['content'] }}|{% endfor %}{{ add_generation_prompt }}{{ n + 1 }}{{ flags[1] }}");
        var got = t.Render([new("user", "hi"), new("assistant", "yo")], true,
            new Dictionary<string, object?> { ["bos_token"] = "<s>", ["n"] = 41, ["flags"] = new List<bool> { false, true } });
        Assert.Equal("<s>user:hi|assistant:yo|True42True", got);
    }

    [Theory]
    [InlineData("{% foo %}", "unknown statement 'foo'", 1, 4)]
    [InlineData("ab\n{{ 1 + }}", "expected an expression", 2, 8)]
    [InlineData("{% if x %}open", "'if' is never closed", 1, 4)]
    [InlineData("{% for x in y %}", "'for' is never closed", 1, 4)]
    [InlineData("x {% endif %}", "unexpected '{% endif %}'", 1, 6)]
    [InlineData("{% call m() %}{% endcall %}", "'call' statement is not supported", 1, 4)]
    [InlineData("{{ 'abc }}", "unterminated string literal", 1, 4)]
    [InlineData("{{ a $ b }}", "unexpected character '$'", 1, 6)]
    [InlineData("{{ x ", "unclosed tag", 1, 1)]
    [InlineData("{# never closed", "unclosed comment", 1, 1)]
    [InlineData("{% set %}", "expected a variable name", 1, 8)]
    public void ParseErrors_HaveAPosition(string template, string message, int line, int column)
    {
        var e = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(template));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.Equal(line, e.Line);
        Assert.Equal(column, e.Column);
        Assert.Contains($"line {line}, column {column}", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{{ x | nope }}", "unknown filter 'nope'")]
    [InlineData("{{ x is nope }}", "unknown test 'nope'")]
    [InlineData("{{ undefined_thing.attr }}", "'undefined_thing' is undefined")]
    [InlineData("{{ 'a' + 1 }}", "cannot add str and int")]
    [InlineData("{{ raise_exception('bad role') }}", "the template raised an error: bad role")]
    [InlineData("{{ 1 // 0 }}", "division by zero")]
    [InlineData("{% set x.y = 1 %}", "is not a namespace() object")]
    [InlineData("{{ none.x }}", "None has no attribute 'x'")]
    public void RenderErrors_AreClear(string template, string message)
    {
        var t = ChatTemplate.Parse(template);
        var e = Assert.Throws<ChatTemplateException>(() => t.Render([], false));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.Equal(1, e.Line);
    }

    [Fact]
    public void FromTokenizerConfig_ReadsTemplateAndSpecialTokens()
    {
        var t = ChatTemplate.FromTokenizerConfig("""
            {"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
             "chat_template": [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"}]}
            """);
        Assert.Equal("<s>hi</s>", t.Render([new("user", "hi")], false));
        Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromTokenizerConfig("{}"));
    }
}
