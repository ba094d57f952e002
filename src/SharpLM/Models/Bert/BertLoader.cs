using SharpLM.Formats;
using SharpLM.Formats.Onnx;
using SharpLM.Formats.Safetensors;
using SharpLM.Models;

namespace SharpLM.Models.Bert;

/// <summary>A bound encoder with its weight source (owned) and the tokenizer files found beside it.</summary>
internal sealed class LoadedEncoder(IWeightSource weights, BertModel model, string name, string directory, string? vocabTxt, string? tokenizerJson) : IDisposable
{
    /// <summary>The folder holding the model file (for tokenizer and sentence-transformers configs).</summary>
    public string Directory { get; } = directory;
    public IWeightSource Weights { get; } = weights;
    public BertModel Model { get; } = model;
    public string Name { get; } = name;
    public string? VocabTxt { get; } = vocabTxt;
    public string? TokenizerJson { get; } = tokenizerJson;

    public void Dispose() => Weights.Dispose();
}

/// <summary>
/// Opens a BERT-family encoder from an .onnx file, a folder holding model.onnx (or onnx/model.onnx), or a Hugging Face
/// folder (config.json + model.safetensors), and finds vocab.txt / tokenizer.json beside it.
/// </summary>
internal static class BertLoader
{
    public static LoadedEncoder Open(string path, bool withMlmHead = false)
    {
        string full = Path.GetFullPath(path);
        string dir;
        IWeightSource src;
        ModelConfig cfg;
        if (File.Exists(full))
        {
            dir = Path.GetDirectoryName(full)!;
            if (full.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
                (src, cfg) = OnnxBert.Open(full);
            else if (full.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                (src, cfg) = (OpenSafetensors(full), ModelConfigReader.FromHfConfigFile(Path.Combine(dir, "config.json")));
            else
                throw new InvalidDataException($"{full}: not a model file this loader reads (expected .onnx, .safetensors, or a Hugging Face folder)");
        }
        else if (Directory.Exists(full))
        {
            dir = full;
            var onnx = new[] { Path.Combine(dir, "model.onnx"), Path.Combine(dir, "onnx", "model.onnx") }.FirstOrDefault(File.Exists);
            if (Formats.HuggingFace.HfModelFolder.IsModelFolder(dir) && Formats.HuggingFace.HfModelFolder.HasWeights(dir))
            {
                var hf = Formats.HuggingFace.HfModelFolder.Open(dir);
                cfg = hf.Config;
                src = hf.RequireWeights();
            }
            else if (onnx is not null)
            {
                (src, cfg) = OnnxBert.Open(onnx);
            }
            else
            {
                throw new FileNotFoundException($"{full}: no model found: expected config.json + model.safetensors (a Hugging Face folder) or model.onnx. Files there: {string.Join(", ", Directory.GetFiles(dir).Select(Path.GetFileName).Take(12))}");
            }
        }
        else
        {
            throw new FileNotFoundException($"model not found: {full} is neither a file nor a folder", full);
        }

        try
        {
            if (cfg.Family != ArchFamily.Bert)
                throw new NotSupportedException($"{full}: a {cfg.Architecture} model is not an encoder (bert, distilbert, albert); generate text with it instead");
            var model = BertModel.Create(src, cfg, withMlmHead);
            string? vocab = new[] { Path.Combine(dir, "vocab.txt"), Path.Combine(Path.GetDirectoryName(dir) ?? dir, "vocab.txt") }.FirstOrDefault(File.Exists);
            string? tj = new[] { Path.Combine(dir, "tokenizer.json"), Path.Combine(Path.GetDirectoryName(dir) ?? dir, "tokenizer.json") }.FirstOrDefault(File.Exists);
            return new LoadedEncoder(src, model, Path.GetFileName(full.TrimEnd(Path.DirectorySeparatorChar)), dir, vocab, tj);
        }
        catch
        {
            src.Dispose();
            throw;
        }
    }

    private static IWeightSource OpenSafetensors(string path) => SafetensorsModel.Open(path);
}
