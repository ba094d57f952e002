using System.Text.Json;
using SharpLM.Cli;
using SharpLM.Lab;
using SharpLM.Testing;

namespace SharpLM.Cli.Tests;

public class LabCommandTests
{
    private static async Task<(int Rc, string Out, string Err)> Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = await CliApp.RunAsync(["lab", .. args], o, e);
        return (rc, o.ToString(), e.ToString());
    }

    [Fact]
    public async Task List_names_every_registered_experiment()
    {
        var (rc, o, _) = await Run("list");
        Assert.Equal(0, rc);
        var names = o.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[0]).ToArray();
        Assert.Equal(LabRegistry.All.Select(e => e.Name), names);
        Assert.Equal(names.Length, names.Distinct().Count());
    }

    [Fact]
    public async Task Run_writes_the_report_files_and_the_index()
    {
        var dir = TestPaths.NewTempDir();
        var (rc, o, e) = await Run("run", "attention-scale", "--quick", "--out", dir, "--seed", "3", "--threads", Environment.ProcessorCount.ToString(System.Globalization.CultureInfo.InvariantCulture)); // the pool keeps its size: other tests share it
        Assert.True(rc == 0, e);
        Assert.Contains("attention-scale.md", o);
        foreach (var ext in new[] { "md", "json", "png" }) Assert.True(File.Exists(Path.Combine(dir, "attention-scale." + ext)), ext);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "attention-scale.json")));
        Assert.Equal("quick", doc.RootElement.GetProperty("form").GetString());
        Assert.Equal(3UL, doc.RootElement.GetProperty("seed").GetUInt64());
        var index = File.ReadAllText(Path.Combine(dir, "README.md"));
        Assert.Contains("[attention-scale](attention-scale.md) | quick |", index);
        Assert.Contains("attention-scale [", e); // the progress bar
    }

    [Theory]
    [InlineData("run", "no-such-experiment")]
    [InlineData("walk")]
    [InlineData()]
    public async Task Bad_usage_is_a_message_and_exit_2(params string[] args)
    {
        var (rc, _, e) = await Run(args);
        Assert.Equal(2, rc);
        Assert.StartsWith("error: ", e);
    }
}
