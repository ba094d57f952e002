using SharpLM.Inference;
using SharpLM.Inference.ChatTemplates;

namespace SharpLM.Cli.Commands;

/// <summary>
/// <c>sharplm chat</c>: an interactive conversation using the model's chat template. Reads one user message per line
/// from standard input (EOF or /exit ends, /reset starts over), streams each reply to standard output, and reuses the
/// KV cache across turns.
/// </summary>
internal sealed class ChatCommand : ICliCommand
{
    /// <summary>Where the user's lines come from (tests replace it).</summary>
    internal static Func<TextReader> Input { get; set; } = () => Console.In;

    public string Name => "chat";
    public string Description => "Chat with a LLaMA-family model using its chat template";
    public string Usage => "[--model PATH] [--system TEXT] [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--threads N] [--ctx N] [--mmap]";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        ModelCli.ModelOption,
        new("system", "a system message at the start of the conversation"),
        new("max-tokens", "the most tokens per reply (default 512)"),
        new("temperature", "0 = greedy (default 0.8)"),
        new("top-k", "keep the K most likely tokens, 0 = off (default 40)"),
        new("top-p", "nucleus sampling, 1 = off (default 0.95)"),
        new("min-p", "drop tokens below P x the best one's probability, 0 = off (default 0.05)"),
        new("repeat-penalty", "penalty for recently seen tokens, 1 = off (default 1)"),
        new("repeat-last-n", "how many recent tokens the penalties see (default 64)"),
        new("presence-penalty", "OpenAI presence penalty (default 0)"),
        new("frequency-penalty", "OpenAI frequency penalty (default 0)"),
        new("seed", "seed of the sampler (default: random)"),
        new("stop", "also stop a reply at this text (repeatable)", Repeatable: true),
        ModelCli.ThreadsOption,
        ModelCli.MapOption,
        ModelCli.ContextOption,
    ];

    public async Task<int> RunAsync(CliArgs args, CliContext context)
    {
        if (args.Positionals.Count > 0) throw new CliUsageException($"unexpected argument '{args.Positionals[0]}'");
        var options = new GenerationOptions { MaxTokens = args.Int("max-tokens", 512, min: 1), Sampling = ModelCli.Sampling(args) };
        using var model = ModelCli.Load(args);
        var session = new ChatSession(model);
        var system = args.String("system");
        void Reset()
        {
            session.Messages.Clear();
            if (system != null) session.Messages.Add(new ChatTurn("system", system));
        }
        Reset();
        var input = Input();
        await context.Error.WriteLineAsync($"chat with {model.Path} ({model.Config.Architecture}, context {model.ContextSize}); /reset starts over, /exit or EOF quits").ConfigureAwait(false);
        while (true)
        {
            await context.Error.WriteAsync("> ").ConfigureAwait(false);
            var line = await input.ReadLineAsync(context.CancellationToken).ConfigureAwait(false);
            if (line is null || line.Trim() == "/exit") break;
            if (line.Trim().Length == 0) continue;
            if (line.Trim() == "/reset") { Reset(); continue; }
            try
            {
                foreach (var piece in session.Send(line, options, context.CancellationToken))
                {
                    await context.Out.WriteAsync(piece).ConfigureAwait(false);
                    await context.Out.FlushAsync().ConfigureAwait(false);
                }
            }
            catch (ArgumentException e)
            {
                // the conversation outgrew the context: say so and keep the session usable
                await context.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
                session.Messages.RemoveAt(session.Messages.Count - 1);
                continue;
            }
            await context.Out.WriteLineAsync().ConfigureAwait(false);
            if (session.LastStats is { } s)
                await context.Error.WriteLineAsync($"[{s.PromptTokens} new prompt tokens ({session.LastReusedTokens} reused), {s.GeneratedTokens} generated at {s.DecodeTokensPerSecond:F1} tok/s]").ConfigureAwait(false);
        }
        return 0;
    }
}
