namespace SharpLM.Inference.ChatTemplates;

/// <summary>One message of a conversation: its role ("system", "user", "assistant", "tool") and text.</summary>
public sealed record ChatTurn(string Role, string Content);

/// <summary>A chat template that cannot be parsed or failed while rendering (including the template's own
/// <c>raise_exception</c>). <see cref="Line"/> and <see cref="Column"/> are 1-based positions in the template
/// (0 when unknown). A template comes inside a model file, so a broken one is a format error of that file.</summary>
public sealed class ChatTemplateException : FormatException
{
    public int Line { get; }
    public int Column { get; }

    public ChatTemplateException(string message, int line, int column)
        : base(line > 0 ? $"{message} (template line {line}, column {column})" : message)
    {
        Line = line;
        Column = column;
    }

    public ChatTemplateException() : this("chat template error", 0, 0) { }
    public ChatTemplateException(string message) : this(message, 0, 0) { }
    public ChatTemplateException(string message, Exception inner) : base(message, inner) { }
}
