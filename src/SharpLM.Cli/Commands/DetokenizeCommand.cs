using SharpLM.Tokenizers;

namespace SharpLM.Cli.Commands;

/// <summary><c>sharplm detokenize --tokenizer PATH --ids "1 2 3"</c>: prints the decoded text.</summary>
internal sealed class DetokenizeCommand : ICliCommand
{
    public string Name => "detokenize";
    public string Description => "Decode token ids back to text";
    public string Usage => "--tokenizer PATH --ids \"1 2 3\" [--skip-special]";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        new("tokenizer", "tokenizer.json, a folder holding one, vocab.txt, a .tiktoken rank file or a .gguf model"),
        new("ids", "token ids separated by spaces or commas"),
        new("skip-special", "leave special tokens out of the text", IsFlag: true),
    ];

    public async Task<int> RunAsync(CliArgs args, CliContext context)
    {
        var ids = CliArgs.ParseIds("ids", args.Required("ids"));
        Tokenizer tokenizer = TokenizeCommand.LoadTokenizer(args.Required("tokenizer"));
        foreach (int id in ids)
            if (tokenizer.IdToToken(id) is null)
                throw new CliUsageException($"--ids: token id {id} is not in the vocabulary (this tokenizer has {tokenizer.VocabSize} ids, 0..{tokenizer.VocabSize - 1})");
        await context.Out.WriteLineAsync(tokenizer.Decode(ids, args.Flag("skip-special"))).ConfigureAwait(false);
        return 0;
    }
}
