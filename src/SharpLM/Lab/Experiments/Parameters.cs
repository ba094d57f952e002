using System.Globalization;
using System.Text.Json.Nodes;
using SharpLM.Models;
using SharpLM.Sizing;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;
using SharpLM.Training;
using SharpLM.Training.Optim;
using static SharpLM.Lab.LabReport;

namespace SharpLM.Lab.Experiments;

/// <summary>
/// <c>parameters</c> (note 2, 6): the note's 4h²+4h per attention block, 12h²+13h per layer, 2n GB to serve in fp16 and
/// 16n GB to train with Adam, against SharpLM's calculator (<see cref="ParameterCount"/>, <see cref="InferenceMemory"/>,
/// <see cref="TrainingMemory"/>), the tensors of a real file (models/default.gguf), published parameter counts, and the
/// bytes SharpLM's own trainer allocates per parameter.
/// </summary>
internal sealed class Parameters : LabExperiment
{
    public override string Name => "parameters";
    public override string Summary => "4h²+4h per attention block, 12h²+13h per layer, 2n GB to serve and 16n GB to train, against calc, files and the trainer";

    /// <summary>Published totals (PyTorch <c>sum(p.numel())</c> of the Hugging Face base classes), an outside check of calc.</summary>
    private static readonly Dictionary<string, long> Published = new(StringComparer.Ordinal)
    {
        ["bert-base-uncased"] = 109_482_240,   // BertModel with its pooler
        ["gpt2"] = 124_439_808,                // GPT2Model (tied head)
        ["llama-7b"] = 6_738_415_616,          // LLaMA-7B (Touvron et al. 2023 report "6.7B")
    };

    public override LabReport Run(LabContext ctx)
    {
        var r = new LabReport(Name, "parameters and memory, by formula and by count");
        r.Claims.Add(new("2 (参数量)", "self-attention块的模型参数有Q、K、V的权重矩阵W_Q、W_K、W_V和偏置，输出权重矩阵W_O和偏置，4个权重矩阵的形状为[h,h]，4个偏置的形状为[h]。self-attention块的参数量为4h²+4h",
            "The self-attention block's parameters are the weight matrices W_Q, W_K, W_V with biases and the output matrix W_O with its bias; the 4 matrices are [h,h] and the 4 biases [h]. The block has 4h² + 4h parameters."));
        r.Claims.Add(new("2 (偏置矩阵有没有用？)", "LLaMA没有用（划重点），ChatGLM v1用了，这里参数量不同，但因为是1次项，所以几乎不影响参数量。…可以记住7B模型是，32个头，每个小矩阵 [128*4096]",
            "LLaMA uses no biases, ChatGLM v1 does; the counts differ, but the bias term is linear in h, so it barely changes the total. ... Remember the 7B model: 32 heads, each small matrix [128×4096]."));
        r.Claims.Add(new("6 (显存占用)", "推理时显存的下限是 2n GB，至少要把模型加载完全。训练时，如果用Adam优化器，有个2+2+12的公式，训练时显存下限是16n GB，需要把模型参数、梯度和优化器状态（4+4+4），保持在显存",
            "For an n-billion-parameter model, inference needs at least 2n GB (the fp16 weights must all be loaded). Training with Adam follows the 2+2+12 formula: at least 16n GB, for the parameters, gradients and optimizer states (4+4+4) kept in memory."));

        string[] presets = ["bert-base-uncased", "gpt2", "gpt2-xl", "qwen2.5-0.5b", "llama-7b", "llama-3-8b", "llama-2-70b"];
        r.Method.Add("**Per block.** For each preset (`Sizing/Presets`, the models' own config.json values) the note's formula is evaluated by hand " +
                     "from h = hidden size: 4h² + 4h with biases (BERT, GPT-2), 4h² without (LLaMA); 12h² + 13h per layer for BERT/GPT-2 (attention " +
                     "4h²+4h, MLP with F = 4h 8h²+5h, two LayerNorms 4h). These are compared with `sharplm calc`'s count (`ParameterCount`, " +
                     "which sums the architecture table's tensor shapes) for one layer.");
        r.Method.Add("**Totals.** calc's total against published counts (PyTorch `sum(p.numel())` of the Hugging Face base class: BERT-base 109,482,240 " +
                     "with its pooler, GPT-2 124,439,808, LLaMA-7B 6,738,415,616) and against the tensors stored in a real file: `models/default.gguf` " +
                     "(the model `sharplm train` made, counted by `ModelSource.FromGguf`'s census).");
        r.Method.Add("**Memory.** 2n GB and 16n GB against calc's fp16 weight bytes (`InferenceMemory`) and mixed-precision Adam model states " +
                     "(`TrainingMemory`, ZeRO stage 0 and stage 3 over 8 GPUs), with GB = 10⁹ bytes as the note uses it; and the bytes SharpLM's own " +
                     "trainer allocates per parameter (the `TrainModel` parameters and gradients plus the `AdamW` moments, measured with " +
                     "`GC.GetAllocatedBytesForCurrentThread`) for small models.");

        var rows = new List<IReadOnlyList<string>>();
        var totals = new List<IReadOnlyList<string>>();
        var mem = new List<IReadOnlyList<string>>();
        var jp = new JsonArray();
        var bars = new List<(double, double)>[] { [], [] };
        for (int i = 0; i < presets.Length; i++)
        {
            ctx.Report(presets[i], 0.6 * i / presets.Length);
            var cfg = ModelPresets.Load(presets[i]);
            var pc = new ParameterCount(cfg);
            long h = cfg.Width;
            bool biases = cfg.QkvBias || cfg.OutputBias;
            long noteAttn = biases ? 4 * h * h + 4 * h : 4 * h * h;
            bool bertLike = cfg.Family != ArchFamily.Llama;
            long noteLayer = bertLike ? 12 * h * h + 13 * h : 4 * h * h + 3 * h * cfg.FfnWidth + 2 * h;
            string noteLayerF = bertLike ? "12h²+13h" : "4h²+3hF+2h";
            rows.Add([presets[i], N(h), $"{(biases ? "4h²+4h" : "4h²")} = {N(noteAttn)}", N(pc.AttentionPerLayer), pc.AttentionFormula,
                      $"{noteLayerF} = {N(noteLayer)}", N(pc.PerLayer), Ratio(pc.AttentionPerLayer, noteAttn)]);
            var f16 = InferenceMemory.Estimate(pc, DTypes.Of(DType.F16), DTypes.Of(DType.F16), 1, 1);
            var adam = TrainingMemory.Estimate(pc, OptimizerKind.Adam, Precision.Mixed, 0, 1, 1, 1, Recompute.None);
            var zero3 = TrainingMemory.Estimate(pc, OptimizerKind.Adam, Precision.Mixed, 3, 8, 1, 1, Recompute.None);
            double n = pc.Total / 1e9;
            mem.Add([presets[i], F(n), F(2 * n), F(f16.Weights / 1e9), F(16 * n), F(adam.ModelStates / 1e9), F(zero3.ModelStates / 1e9)]);
            long? pub = Published.TryGetValue(presets[i], out var pv) ? pv : null;
            totals.Add([presets[i], N(pc.Total), pub is long p ? N(p) : "", pub is long p2 ? Ratio(pc.Total, p2) : ""]);
            jp.Add((JsonNode)new JsonObject
            {
                ["preset"] = presets[i], ["h"] = h, ["attention_note"] = noteAttn, ["attention_calc"] = pc.AttentionPerLayer, ["attention_formula"] = pc.AttentionFormula,
                ["layer_note"] = noteLayer, ["layer_calc"] = pc.PerLayer, ["layer_formula"] = pc.PerLayerFormula, ["total_calc"] = pc.Total,
                ["total_published"] = pub, ["serve_fp16_bytes"] = f16.Weights, ["train_adam_mixed_bytes"] = adam.ModelStates,
                ["train_adam_mixed_zero3_8gpu_bytes"] = zero3.ModelStates,
            });
            bars[0].Add((i, 2 * n));
            bars[1].Add((i, 16 * n));
        }
        r.Data["presets"] = jp;
        r.Tables.Add(new("**One layer: the note's formulas against calc** (calc's formula is derived from the tensor shapes):",
            ["preset", "h", "note: attention", "calc: attention", "calc's formula", "note: layer", "calc: layer", "attention calc/note"], rows));

        // LLaMA-7B's heads: 32 heads, each [128 x 4096]
        var l7 = ModelPresets.Load("llama-7b");
        r.Data["llama_7b_heads"] = new JsonObject { ["heads"] = l7.Heads, ["head_size"] = l7.HeadSize, ["width"] = l7.Width };

        // a real file
        string? gguf = FindDefaultModel();
        if (gguf != null)
        {
            var src = ModelSource.FromGguf(gguf);
            var pc = new ParameterCount(src.Config);
            totals.Add([$"models/default.gguf ({src.Config.Architecture}, h {src.Config.Width}, L {src.Config.Layers})", N(pc.Total), $"{N(src.File!.Parameters)} in {src.File.Tensors} tensors (file)", Ratio(pc.Total, src.File.Parameters)]);
            r.Data["default_gguf"] = new JsonObject { ["calc"] = pc.Total, ["file_parameters"] = src.File.Parameters, ["file_tensors"] = src.File.Tensors };
        }
        else r.Findings.Add("models/default.gguf was not found beside the binary or above the current folder: the file census row is missing.");
        r.Tables.Add(new("**Totals: calc against outside counts**:", ["model", "calc", "published / file", "calc / reference"], totals));
        r.Tables.Add(new("**Memory, GB = 10⁹ bytes** (n = parameters in billions; Adam model states only, no activations):",
            ["preset", "n", "note: 2n", "calc: fp16 weights", "note: 16n", "calc: Adam mixed", "calc: ZeRO-3 over 8 GPUs, per GPU"], mem));

        // SharpLM's own trainer: bytes per parameter actually allocated
        var own = new List<IReadOnlyList<string>>();
        var jo = new JsonArray();
        int[] widths = ctx.Quick ? [64, 128] : [64, 128, 256];
        foreach (int w in widths)
        {
            ctx.Report($"trainer width {w}", 0.6 + 0.4 * Array.IndexOf(widths, w) / widths.Length);
            var cfg = LabTraining.Llama(256, w, 2, 2, 64);
            long before = GC.GetAllocatedBytesForCurrentThread();
            var model = new TrainModel(cfg);
            long afterModel = GC.GetAllocatedBytesForCurrentThread();
            var opt = new AdamW(model.Parameters.Count);
            long afterOpt = GC.GetAllocatedBytesForCurrentThread();
            GC.KeepAlive(opt);
            long count = model.Parameters.Count;
            double modelBpp = (double)(afterModel - before) / count, optBpp = (double)(afterOpt - afterModel) / count;
            own.Add([$"LLaMA h {w}", N(count), F(modelBpp), F(optBpp), F(modelBpp + optBpp)]);
            jo.Add((JsonNode)new JsonObject { ["width"] = w, ["parameters"] = count, ["model_bytes"] = afterModel - before, ["adamw_bytes"] = afterOpt - afterModel });
        }
        // allocation counts are measured (the runtime's own first-use allocations vary from run to run), so they live
        // with the timings, apart from the deterministic data
        r.Timings["sharplm_trainer"] = jo;
        r.Tables.Add(new("**SharpLM's trainer (f32), bytes allocated per parameter**:", ["model", "parameters", "weights + gradients", "AdamW m, v", "total"], own));

        // findings from the numbers
        var bert = jp.First(x => (string)x!["preset"]! == "bert-base-uncased")!;
        var llama = jp.First(x => (string)x!["preset"]! == "llama-7b")!;
        var qwen = jp.First(x => (string)x!["preset"]! == "qwen2.5-0.5b")!;
        var l70 = jp.First(x => (string)x!["preset"]! == "llama-2-70b")!;
        r.Findings.Add($"BERT-base: the note's 4h²+4h = {N((long)bert["attention_note"]!)} is exactly calc's attention block ({N((long)bert["attention_calc"]!)}), and 12h²+13h = {N((long)bert["layer_note"]!)} exactly its layer ({N((long)bert["layer_calc"]!)}).");
        r.Findings.Add($"LLaMA-7B: no biases, so 4h² = {N((long)llama["attention_note"]!)} = calc's {N((long)llama["attention_calc"]!)}; its {l7.Heads} heads of {l7.HeadSize} over h = {l7.Width} are the note's \"[128×4096] small matrices\". The biases the note discusses would add 4h = {N(4L * l7.Width)}, {F(100.0 * 4 * l7.Width / (4.0 * l7.Width * l7.Width))}% of the block: \"almost no effect\", confirmed.");
        r.Findings.Add($"Where 4h²+4h does not hold: grouped-query attention. LLaMA-2-70B's keys and values have {ModelPresets.Load("llama-2-70b").KvHeads} heads, so the block is {N((long)l70["attention_calc"]!)} = {F((double)(long)l70["attention_calc"]! / (long)l70["attention_note"]!)} × 4h² ({l70["attention_formula"]}); Qwen2.5 has biases on Q, K, V only and GQA too ({qwen["attention_formula"]}). The note's formula assumes full multi-head attention.");
        int serveOk = jp.Count(x => (long)x!["serve_fp16_bytes"]! == 2 * (long)x["total_calc"]!);
        int trainOk = jp.Count(x => (long)x!["train_adam_mixed_bytes"]! == 16 * (long)x["total_calc"]!);
        r.Findings.Add($"The memory rules hold as arithmetic: calc's fp16 weights equal 2n in {serveOk} of {jp.Count} presets and its mixed-precision Adam model states equal 2+2+12 = 16n in {trainOk} of {jp.Count}. " +
                       "Both are floors: activations, the KV cache and allocator overhead come on top, which the note leaves out; ZeRO-3 divides the 16n by the number of GPUs.");
        if (jo.Count > 0)
        {
            var last = jo[^1]!;
            double tot = ((long)last["model_bytes"]! + (long)last["adamw_bytes"]!) / (double)(long)last["parameters"]!;
            r.Findings.Add($"SharpLM trains in f32: it allocates {F(tot)} bytes per parameter (4 weights + 4 gradients + 8 for AdamW's two moments, plus a little bookkeeping): the same 16 as the note, split 4+4+8 instead of 2+2+12, because there is no fp16 copy to keep a master copy of.");
        }
        r.Panels.Add(new ChartPanel
        {
            Title = "memory by the note's rules", XLabel = "preset", YLabel = "GB", Kind = ChartKind.Bar, LogY = true,
            Categories = [.. presets.Select(Short)], Series = [new("serve fp16 (2n)", bars[0]), new("train Adam (16n)", bars[1])],
        });
        r.ChartWidth = 1000;
        return r;
    }

    private static string Short(string preset) => preset.Replace("-uncased", "", StringComparison.Ordinal).Replace("llama-", "llama", StringComparison.Ordinal);

    private static string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);

    private static string Ratio(long a, long b) => b == 0 ? "" : (a / (double)b).ToString("0.####", CultureInfo.InvariantCulture);

    /// <summary>models/default.gguf beside the binary (the CLI ships it) or in a folder at or above the current one.</summary>
    internal static string? FindDefaultModel()
    {
        var beside = Path.Combine(AppContext.BaseDirectory, "models", "default.gguf");
        if (File.Exists(beside)) return beside;
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
            {
                var p = Path.Combine(d.FullName, "models", "default.gguf");
                if (File.Exists(p)) return p;
            }
        return null;
    }
}
