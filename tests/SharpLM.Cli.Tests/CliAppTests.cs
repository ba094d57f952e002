using SharpLM.Cli;

namespace SharpLM.Cli.Tests;

public class CliAppTests
{
    [Fact]
    public async Task UnknownCommandIsAClearErrorWithExitCode2()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = await CliApp.RunAsync(["no-such-command"], o, e);
        Assert.Equal(2, rc);
        Assert.Contains("unknown command 'no-such-command'", e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void EveryCommandClassIsRegisteredOnceByName()
    {
        // The registry is a plain list (no reflection in the AOT binary); this catches a command file that was added
        // without its line in CliApp.Commands.
        var classes = typeof(CliApp).Assembly.GetTypes()
            .Where(t => typeof(ICliCommand).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .Select(t => t.FullName!).Order(StringComparer.Ordinal).ToArray();
        var registered = CliApp.Commands.Select(c => c.GetType().FullName!).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(classes, registered);
        Assert.Equal(CliApp.Commands.Count, CliApp.Commands.Select(c => c.Name).Distinct().Count());
        Assert.True(classes.Length >= 14, $"only {classes.Length} command classes found");
    }

    [Fact]
    public void ArgsParseValuesFlagsAndRepeats()
    {
        CliOption[] opts = [new("text", "", Repeatable: true), new("json", "", IsFlag: true), new("top", "")];
        var a = CliArgs.Parse(["--text", "a", "--text=b", "--json", "--top", "5"], opts);
        Assert.Equal(["a", "b"], a.All("text"));
        Assert.True(a.Flag("json"));
        Assert.Equal(5, a.Int("top", 1));
        var ex = Assert.Throws<CliUsageException>(() => CliArgs.Parse(["--nope"], opts));
        Assert.Contains("--nope", ex.Message, StringComparison.Ordinal);
    }
}
