using System.Text.Json;

namespace SharpLM.Inference.ChatTemplates;

/// <summary>
/// A Hugging Face chat template (the Jinja2 text in tokenizer_config.json's "chat_template"), rendered by SharpLM's
/// own Jinja2-subset engine with HF's settings (trim_blocks, lstrip_blocks, no trailing newline, tojson as
/// json.dumps(ensure_ascii=False)). Supports what the LLaMA-2/3, Mistral, Qwen2/2.5/3, ChatML and TinyLlama templates
/// use: <c>{{ }}</c>, <c>{% %}</c>, <c>{# #}</c>, whitespace control, if/elif/else, for (loop.*), macro, set (with
/// namespace()), filters, tests, string methods, slicing, raise_exception. Unsupported syntax is a
/// <see cref="ChatTemplateException"/> with the line and column.
/// <code>
/// var t = ChatTemplate.Parse(templateText);
/// string prompt = t.Render([new("system", "Be brief."), new("user", "Hi")], addGenerationPrompt: true,
///     new Dictionary&lt;string, object?&gt; { ["bos_token"] = "&lt;s&gt;", ["eos_token"] = "&lt;/s&gt;" });
/// </code>
/// </summary>
public sealed class ChatTemplate
{
    private readonly TemplateLexer _lexer;
    private readonly List<Node> _nodes;

    private ChatTemplate(string source)
    {
        _lexer = new TemplateLexer(source);
        try
        {
            _nodes = TemplateParser.Parse(_lexer);
        }
        catch (InsufficientExecutionStackException)
        {
            throw new ChatTemplateException("the template is nested too deeply to parse");
        }
        Source = source;
    }

    /// <summary>The template text.</summary>
    public string Source { get; }

    /// <summary>The tokenizer's bos_token/eos_token, passed to the template unless <c>extra</c> overrides them
    /// (set by <see cref="FromTokenizerConfig"/>).</summary>
    public string? BosToken { get; init; }
    public string? EosToken { get; init; }

    /// <summary>Parses a template; throws <see cref="ChatTemplateException"/> (with line and column) on syntax it
    /// does not understand.</summary>
    public static ChatTemplate Parse(string template)
    {
        ArgumentNullException.ThrowIfNull(template);
        return new ChatTemplate(template);
    }

    /// <summary>The chat template of a tokenizer_config.json (its "chat_template" string, or the one named "default"
    /// in the list form), with its bos_token and eos_token.</summary>
    public static ChatTemplate FromTokenizerConfig(string tokenizerConfigJson)
    {
        ArgumentNullException.ThrowIfNull(tokenizerConfigJson);
        return From(Formats.HuggingFace.HfTokenizerConfig.Parse(tokenizerConfigJson, "tokenizer_config.json"));
    }

    /// <summary>The template of a parsed tokenizer_config.json (the one reader of that file), with its BOS/EOS texts.</summary>
    internal static ChatTemplate From(Formats.HuggingFace.HfTokenizerConfig config) =>
        config.ChatTemplate is { } text
            ? new ChatTemplate(text) { BosToken = config.BosToken, EosToken = config.EosToken }
            : throw new ChatTemplateException("tokenizer_config.json has no \"chat_template\"");

    /// <summary>
    /// Renders the conversation. Variables: <c>messages</c> (list of {role, content}), <c>add_generation_prompt</c>,
    /// <c>bos_token</c>/<c>eos_token</c> (from the tokenizer config, if known), plus everything in
    /// <paramref name="extra"/> (e.g. tools, enable_thinking, date_string; values may be strings, numbers, bools,
    /// lists, dictionaries or JsonElements).
    /// </summary>
    public string Render(IReadOnlyList<ChatTurn> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? extra = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        return RenderCore(messages.Select(m => Values.FromClr(m)).ToList(), addGenerationPrompt, extra);
    }

    /// <summary>
    /// Renders messages that carry more than role and content (OpenAI-style <c>tool_calls</c>, <c>reasoning_content</c>,
    /// <c>name</c>, ...): each message is a dictionary whose values may be strings, numbers, bools, lists,
    /// dictionaries or JsonElements.
    /// </summary>
    public string RenderMessages(IReadOnlyList<IReadOnlyDictionary<string, object?>> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? extra = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        return RenderCore(messages.Select(m => Values.FromClr(m)).ToList(), addGenerationPrompt, extra);
    }

    private string RenderCore(List<object?> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? extra)
    {
        var globals = Builtins.Globals(() => DateTime.Now.ToString("o", System.Globalization.CultureInfo.InvariantCulture));
        if (BosToken != null) globals["bos_token"] = BosToken;
        if (EosToken != null) globals["eos_token"] = EosToken;
        globals["messages"] = messages;
        globals["add_generation_prompt"] = addGenerationPrompt;
        if (extra != null)
            foreach (var (k, v) in extra) globals[k] = Values.FromClr(v);
        try
        {
            return new TemplateInterpreter(_lexer, globals).Render(_nodes);
        }
        catch (InsufficientExecutionStackException)
        {
            throw new ChatTemplateException("the template recursed too deeply while rendering (a macro calling itself without end?)");
        }
    }
}
