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

    [PeakRssFact]
    public async Task In_a_fresh_process_a_training_run_adds_at_least_its_model_states()
    {
        // the note's 16 bytes per parameter (f32 weights, gradients and AdamW's two moments) must all be resident at the
        // peak; measured by `sharplm lab run memory` in its own process, where nothing left by other work can be reused
        var dir = TestPaths.NewTempDir();
        var r = await Reliability.CliProcess.RunAsync(["lab", "run", "memory", "--quick", "--out", dir], null, TimeSpan.FromMinutes(5), 4L << 30);
        Assert.True(r.ExitCode == 0, r.Output);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "memory.json")));
        var root = doc.RootElement;
        int checkedStates = 0;
        foreach (var t in root.GetProperty("data").GetProperty("training").EnumerateArray())
        {
            int dim = t.GetProperty("width").GetInt32(), layers = t.GetProperty("layers").GetInt32();
            long states = t.GetProperty("calc_model_states").GetInt64();
            Assert.Equal(16 * t.GetProperty("parameters").GetInt64(), states);
            long added = root.GetProperty("timings").GetProperty($"train_{dim}x{layers}").GetProperty("added_bytes").GetInt64();
            if (states < 16 << 20) continue; // below ~16 MB the runtime's own growth blurs the figure
            Assert.True(added >= 0.9 * states, $"{dim}x{layers}: the run added {added} bytes, less than its {states} bytes of model states");
            checkedStates++;
        }
        Assert.True(checkedStates >= 1, "no quick model is large enough to check its model states");
    }
}
