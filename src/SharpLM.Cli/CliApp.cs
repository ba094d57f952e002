using System.Reflection;

namespace SharpLM.Cli;

/// <summary>
/// The <c>sharplm</c> command line. Each command is one class in Commands/ implementing <see cref="ICliCommand"/>,
/// listed once in <see cref="Commands"/> (no reflection: the native-AOT binary keeps exactly these; a test checks
/// that every command class in the assembly is listed).
/// </summary>
internal static class CliApp
{
    /// <summary>Every command, in the order of the usage text (alphabetical).</summary>
    public static IReadOnlyList<ICliCommand> Commands { get; } =
    [
        new Commands.BenchCommand(),
        new Commands.BenchTokenizerCommand(),
        new Commands.CalcCommand(),
        new Commands.ChatCommand(),
        new Commands.ConvertCommand(),
        new Commands.DetokenizeCommand(),
        new Commands.EmbedCommand(),
        new Commands.FillMaskCommand(),
        new Commands.GenerateCommand(),
        new Commands.InspectCommand(),
        new Commands.LabCommand(),
        new Commands.PerplexityCommand(),
        new Commands.QuantizeCommand(),
        new Commands.ServeCommand(),
        new Commands.SimilarityCommand(),
        new Commands.TokenizeCommand(),
        new Commands.TrainCommand(),
        new Commands.TrainTokenizerCommand(),
    ];

    /// <summary>Runs one command line; returns the process exit code. Errors never escape as stack traces.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken ct = default)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            PrintUsage(stdout);
            return args.Length == 0 ? 1 : 0;
        }
        if (args[0] is "--version")
        {
            await stdout.WriteLineAsync(typeof(CliApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0").ConfigureAwait(false);
            return 0;
        }
        var cmd = Commands.FirstOrDefault(c => c.Name == args[0]);
        if (cmd is null)
        {
            await stderr.WriteLineAsync($"error: unknown command '{args[0]}'. Commands: {string.Join(", ", Commands.Select(c => c.Name))}.").ConfigureAwait(false);
            return 2;
        }
        try
        {
            var parsed = CliArgs.Parse(args.AsSpan(1), cmd.Options);
            if (parsed.Has("help"))
            {
                PrintCommandHelp(cmd, stdout);
                return 0;
            }
            return await cmd.RunAsync(parsed, new CliContext(stdout, stderr, ct)).ConfigureAwait(false);
        }
        catch (CliUsageException e)
        {
            await stderr.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            await stderr.WriteLineAsync($"usage: sharplm {cmd.Name} {cmd.Usage}").ConfigureAwait(false);
            return 2;
        }
        catch (OperationCanceledException)
        {
            await stderr.WriteLineAsync("cancelled").ConfigureAwait(false);
            return 130;
        }
        catch (Exception e) when (UserErrors.IsClear(e))
        {
            await stderr.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
            if (Environment.GetEnvironmentVariable("SHARPLM_DEBUG") == "1") await stderr.WriteLineAsync(e.ToString()).ConfigureAwait(false);
            return 1;
        }
    }

    private static void PrintUsage(TextWriter w)
    {
        w.WriteLine("sharplm: a pure .NET transformer engine");
        w.WriteLine();
        w.WriteLine("usage: sharplm <command> [options]    (sharplm <command> --help for its options)");
        w.WriteLine();
        foreach (var c in Commands) w.WriteLine($"  {c.Name,-18} {c.Description}");
    }

    private static void PrintCommandHelp(ICliCommand c, TextWriter w)
    {
        w.WriteLine($"sharplm {c.Name}: {c.Description}");
        w.WriteLine($"usage: sharplm {c.Name} {c.Usage}");
        w.WriteLine();
        foreach (var o in c.Options) w.WriteLine($"  --{o.Name}{(o.IsFlag ? "" : " VALUE"),-8} {o.Help}");
    }
}

/// <summary>One <c>sharplm</c> sub-command.</summary>
internal interface ICliCommand
{
    string Name { get; }
    string Description { get; }
    string Usage { get; }
    IReadOnlyList<CliOption> Options { get; }
    Task<int> RunAsync(CliArgs args, CliContext context);
}

/// <summary>Where a command writes, and its cancellation.</summary>
internal sealed record CliContext(TextWriter Out, TextWriter Error, CancellationToken CancellationToken);

/// <summary>An option a command accepts: <c>--name VALUE</c>, or <c>--name</c> alone when <paramref name="IsFlag"/>.</summary>
internal sealed record CliOption(string Name, string Help, bool IsFlag = false, bool Repeatable = false);

/// <summary>Bad command-line usage: printed as one line plus the usage, exit code 2.</summary>
internal sealed class CliUsageException(string message) : Exception(message);
