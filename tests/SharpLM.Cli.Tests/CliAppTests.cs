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
