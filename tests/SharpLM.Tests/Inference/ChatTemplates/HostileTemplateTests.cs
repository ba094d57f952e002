using SharpLM.Inference.ChatTemplates;

namespace SharpLM.Tests.Inference.ChatTemplates;

/// <summary>A chat template is a program that comes inside a downloaded model file: whatever it does, the result is a
/// <see cref="ChatTemplateException"/> (a <see cref="FormatException"/>), never a stack overflow, a hang or an
/// exhausted machine.</summary>
public class HostileTemplateTests
{
    private static ChatTemplateException Fails(string template)
    {
        var e = Assert.ThrowsAny<ChatTemplateException>(() => ChatTemplate.Parse(template).Render([new("user", "hi")], addGenerationPrompt: true));
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
        return e;
    }

    [Fact]
    public void Deeply_nested_brackets_are_an_error_not_a_crash()
    {
        Assert.Contains("nested too deeply", Fails("{{ " + new string('(', 200_000) + "1" + new string(')', 200_000) + " }}").Message, StringComparison.Ordinal);
        // reasonable nesting still works
        Assert.Equal("1", ChatTemplate.Parse("{{ " + new string('(', 500) + "1" + new string(')', 500) + " }}").Render([], false));
    }

    [Fact]
    public void Deeply_nested_blocks_are_an_error_not_a_crash()
    {
        int depth = 100_000;
        var t = string.Concat(Enumerable.Repeat("{% if true %}", depth)) + "x" + string.Concat(Enumerable.Repeat("{% endif %}", depth));
        Assert.Contains("nested too deeply", Fails(t).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unbounded_macro_recursion_is_an_error_not_a_crash() =>
        Assert.Contains("recursed too deeply", Fails("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").Message, StringComparison.Ordinal);

    [Theory]
    [InlineData("{{ 'a' * 1000000000 }}", "repeated text")]
    [InlineData("{{ ([1] * 100000000)|length }}", "repeated list")]
    [InlineData("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}", "limit")]
    [InlineData("{{ ('a' * 1000000)|replace('a', 'aaaaaaaaaa') }}", "replaced text")]
    [InlineData("{{ ('a' * 1000000).replace('a', 'aaaaaaaaaa') }}", "replaced text")]
    [InlineData("{{ (['x' * 1000000] * 5)|join('-') }}", "joined text")]
    [InlineData("{{ '-'.join(['x' * 1000000] * 5) }}", "joined text")]
    [InlineData("{{ 'x'|indent(1000000000) }}", "indent width")]
    [InlineData("{% for i in range(10) %}{{ 'y' * 1000000 }}{% endfor %}", "output")]
    public void A_template_cannot_build_an_unbounded_value(string template, string expected) =>
        Assert.Contains(expected, Fails(template).Message, StringComparison.Ordinal);

    [Fact]
    public void Raise_exception_and_syntax_errors_are_format_errors_naming_the_place()
    {
        var e = Fails("{{ raise_exception('no system role') }}");
        Assert.Contains("no system role", e.Message, StringComparison.Ordinal);
        Assert.IsAssignableFrom<FormatException>(e);
        var syntax = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse("line one\n{% if x %}unclosed"));
        Assert.Equal(2, syntax.Line);
    }

    [Fact]
    public void Ordinary_templates_still_render()
    {
        var t = ChatTemplate.Parse("{% for m in messages %}<{{ m.role }}>{{ m.content * 2 }}{% endfor %}{{ 'ab' * 3 }}{{ [1, 2] * 2 }}");
        Assert.Equal("<user>hihiababab[1, 2, 1, 2]", t.Render([new("user", "hi")], addGenerationPrompt: false));
    }
}
