using SharpLM.Formats.HuggingFace;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLM.Formats;
using SharpLM.Formats.Safetensors;
using SharpLM.Models;

namespace SharpLM.Training.Checkpoints;

/// <summary>
/// A training checkpoint folder:
///   model.safetensors      the weights under Hugging Face names, F32 (GPT-2's attn/mlp matrices transposed to HF's
///                          Conv1D (in,out) layout, as the architecture table marks them, so GPT2LMHeadModel loads them);
///   config.json            the Hugging Face config (LlamaForCausalLM / GPT2LMHeadModel / BertForMaskedLM), written and
///                          read by the one configuration reader (<see cref="ModelConfigReader"/>);
///   tokenizer.json         when the run's tokenizer has one;
///   optimizer.safetensors  the optimizer state as flat 1-D F32 tensors (AdamW: "m", "v"; SGD: "momentum");
///   trainer_state.json     step, optimizer name, the training options (JSON object), data fingerprint.
/// The folder is written beside the target as NAME.tmp-XXXX and swapped in by renames, so a crash never leaves a
/// half-written checkpoint in place of the last good one.
/// </summary>
internal static class TrainCheckpoint
{
    public const string ModelFile = "model.safetensors", ConfigFile = "config.json", TokenizerFile = "tokenizer.json",
                        OptimizerFile = "optimizer.safetensors", StateFile = "trainer_state.json";

    private static bool IsConv1D(ModelConfig spec, ParamInfo p) => p.Shape.Length == 2 && spec.Arch.Tensor(p.Role).HfTransposed;

    private static float[] Transpose(ReadOnlySpan<float> a, int rows, int cols)
    {
        var t = new float[a.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
        return t;
    }

    public static void Save(string dir, ModelConfig spec, ParameterSet p, Optim.IOptimizer opt, JsonObject state, string? tokenizerJson)
    {
        var full = Path.GetFullPath(dir);
        var parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        var tmp = full + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        Directory.CreateDirectory(tmp);
        try
        {
            var w = new SafetensorsWriter();
            w.SetMetadata("format", "pt");
            foreach (var info in p.Infos)
            {
                var data = p.Values.AsMemory(info.Offset, info.Length);
                if (IsConv1D(spec, info))
                    w.Add(info.Name, [info.Shape[1], info.Shape[0]], Transpose(data.Span, info.Shape[0], info.Shape[1]));
                else
                    w.Add(info.Name, Array.ConvertAll(info.Shape, d => (long)d), data);
            }
            w.Write(Path.Combine(tmp, ModelFile));
            var ow = new SafetensorsWriter();
            ow.SetMetadata("optimizer", opt.Name);
            foreach (var kv in opt.State) ow.Add(kv.Key, [kv.Value.Length], kv.Value);
            ow.Write(Path.Combine(tmp, OptimizerFile));
            var opts = new JsonSerializerOptions { WriteIndented = true };
            File.WriteAllText(Path.Combine(tmp, ConfigFile), ModelConfigReader.ToHfJson(spec).ToJsonString(opts));
            state["optimizer"] = opt.Name;
            state["step"] = opt.Step;
            File.WriteAllText(Path.Combine(tmp, StateFile), state.ToJsonString(opts));
            if (tokenizerJson != null) File.WriteAllText(Path.Combine(tmp, TokenizerFile), tokenizerJson);
            // swap: old -> .old, tmp -> dir, delete .old
            string? old = null;
            if (Directory.Exists(full))
            {
                old = full + ".old-" + Guid.NewGuid().ToString("N")[..8];
                Directory.Move(full, old);
            }
            Directory.Move(tmp, full);
            if (old != null) Directory.Delete(old, recursive: true);
        }
        catch
        {
            try { if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>The checkpoint folder for a path that is either the checkpoint itself or a training output folder.</summary>
    public static string Locate(string path)
    {
        if (File.Exists(Path.Combine(path, StateFile))) return path;
        var inner = Path.Combine(path, "checkpoint");
        if (File.Exists(Path.Combine(inner, StateFile))) return inner;
        throw new FileNotFoundException($"no checkpoint in '{path}': expected {StateFile} there or in {inner} (written by 'sharplm train')", Path.Combine(path, StateFile));
    }

    public static ModelConfig ReadSpec(string dir)
    {
        var cfg = Path.Combine(dir, ConfigFile);
        if (!File.Exists(cfg)) throw new FileNotFoundException($"checkpoint {dir} has no {ConfigFile}", cfg);
        var config = ModelConfigReader.FromHfConfigFile(cfg);
        if (!TrainModel.Archs.Contains(config.Architecture))
            throw new InvalidDataException($"{cfg}: a {config.Architecture} checkpoint; sharplm train resumes {string.Join(", ", TrainModel.Archs)}");
        return config;
    }

    /// <summary>The checkpoint's trainer_state.json: a clear error naming the file and the key when it is missing,
    /// not JSON, or lacks a value.</summary>
    public static TrainState ReadState(string dir)
    {
        var r = JsonReader.Load(Path.Combine(dir, StateFile));
        int step = r.RequiredInt("step");
        if (step < 0) r.Fail("step", $"is {step}, expected a step number >= 0");
        var options = r.Object("options") ?? r.Fail<JsonReader>("options", "is missing (expected the training options object)");
        return new TrainState(step, TrainOptions.FromJson(options), r.String("data"));
    }

    /// <summary>Loads the weights into <paramref name="p"/>; every parameter must be present with its shape.</summary>
    public static void LoadWeights(string dir, ModelConfig spec, ParameterSet p)
    {
        var path = Path.Combine(dir, ModelFile);
        using var f = SafetensorsFile.Open(path);
        var byName = f.Entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        var missing = p.Infos.Where(i => !byName.ContainsKey(i.Name)).Select(i => i.Name).ToList();
        if (missing.Count > 0) throw new InvalidDataException($"{path}: missing tensors {string.Join(", ", missing)}");
        foreach (var info in p.Infos)
        {
            var e = byName[info.Name];
            bool conv = IsConv1D(spec, info);
            long[] want = conv ? [info.Shape[1], info.Shape[0]] : Array.ConvertAll(info.Shape, d => (long)d);
            if (e.DTypeName != "F32" || !e.Shape.SequenceEqual(want))
                throw new InvalidDataException($"{path}: tensor '{info.Name}' is {e.DTypeName} [{string.Join(", ", e.Shape)}], expected F32 [{string.Join(", ", want)}]");
            var src = ReadF32(e);
            if (conv) src = Transpose(src, info.Shape[1], info.Shape[0]);
            src.CopyTo(p.P(info));
        }
    }

    public static Dictionary<string, float[]> LoadOptimizer(string dir)
    {
        var path = Path.Combine(dir, OptimizerFile);
        using var f = SafetensorsFile.Open(path);
        var d = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var e in f.Entries)
        {
            if (e.DTypeName != "F32") throw new InvalidDataException($"{path}: tensor '{e.Name}' is {e.DTypeName}, expected F32");
            d[e.Name] = ReadF32(e);
        }
        return d;
    }

    private static unsafe float[] ReadF32(SafetensorsEntry e)
    {
        var a = new float[e.ElementCount];
        new ReadOnlySpan<float>((void*)e.Data, a.Length).CopyTo(a);
        return a;
    }
}

/// <summary>What a checkpoint's trainer_state.json holds: the step reached, the training options, the data fingerprint.</summary>
internal sealed record TrainState(int Step, TrainOptions Options, string? Data);
