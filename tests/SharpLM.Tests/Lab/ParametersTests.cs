using SharpLM.Lab;
using SharpLM.Lab.Experiments;
using SharpLM.Sizing;

namespace SharpLM.Tests.Lab;

/// <summary>The parameters experiment: its figures are the calculator's and the files', and the note's formulas are
/// evaluated, not typed.</summary>
public class ParametersTests
{
    private static readonly Lazy<LabReport> Quick = new(() => LabRegistry.Run(new Parameters(), new LabOptions { Quick = true, Threads = SharpLM.Kernels.WorkerPool.Shared.Threads }));

    [Fact]
    public void Every_preset_row_holds_calcs_counts_and_the_formulas_evaluated_from_h()
    {
        foreach (var row in Quick.Value.Data["presets"]!.AsArray())
        {
            string name = (string)row!["preset"]!;
            var cfg = ModelPresets.Load(name);
            var pc = new ParameterCount(cfg);
            long h = cfg.Width;
            Assert.Equal(h, (long)row["h"]!);
            Assert.Equal(pc.AttentionPerLayer, (long)row["attention_calc"]!);
            Assert.Equal(pc.PerLayer, (long)row["layer_calc"]!);
            Assert.Equal(pc.Total, (long)row["total_calc"]!);
            Assert.Equal(cfg.QkvBias || cfg.OutputBias ? 4 * h * h + 4 * h : 4 * h * h, (long)row["attention_note"]!);
            Assert.Equal(2 * pc.Total, (long)row["serve_fp16_bytes"]!);
            Assert.Equal(16 * pc.Total, (long)row["train_adam_mixed_bytes"]!);
        }
    }

    [Fact]
    public void Full_multi_head_attention_with_biases_is_4h2_plus_4h_and_12h2_plus_13h_per_layer()
    {
        var bert = Quick.Value.Data["presets"]!.AsArray().First(r => (string)r!["preset"]! == "bert-base-uncased")!;
        Assert.Equal((long)bert["attention_note"]!, (long)bert["attention_calc"]!);
        Assert.Equal((long)bert["layer_note"]!, (long)bert["layer_calc"]!);
        // grouped-query attention has fewer
        var l70 = Quick.Value.Data["presets"]!.AsArray().First(r => (string)r!["preset"]! == "llama-2-70b")!;
        Assert.True((long)l70["attention_calc"]! < (long)l70["attention_note"]!);
    }

    [Fact]
    public void The_file_census_and_the_trainers_bytes_are_measured()
    {
        if (Parameters.FindDefaultModel() is { } gguf)
        {
            var g = Quick.Value.Data["default_gguf"]!;
            Assert.Equal(ModelSource.FromGguf(gguf).File!.Parameters, (long)g["file_parameters"]!);
            Assert.Equal((long)g["file_parameters"]!, (long)g["calc"]!);
        }
        foreach (var t in Quick.Value.Timings["sharplm_trainer"]!.AsArray())
        {
            double perParam = ((long)t!["model_bytes"]! + (long)t["adamw_bytes"]!) / (double)(long)t["parameters"]!;
            Assert.InRange(perParam, 16.0, 17.5); // f32 weights, gradients, two moments, and little else
        }
    }
}
