using System.Runtime.CompilerServices;

namespace SharpLM.Cli.Commands;

/// <summary>
/// Makes <c>Tokenizer.FromFile("model.gguf")</c> work in every command: the GGUF loader registers itself from the
/// SharpLM assembly's module initializer, which only runs once that assembly is loaded, so the CLI registers it at start.
/// </summary>
internal static class GgufTokenizerRegistration
{
    [ModuleInitializer]
    internal static void Register() => Formats.Gguf.GgufTokenizer.Register();
}
