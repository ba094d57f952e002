using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Training.Data;
using SharpLM.Models;

namespace SharpLM.Training.Checkpoints;

/// <summary>
/// Writes a trained decoder (LLaMA or GPT-2) as an F32 GGUF file that llama.cpp and SharpLM read: the hyper-parameters
/// through the one configuration writer (<see cref="ModelConfigReader"/>), tensors under the architecture table's GGUF
/// names, LLaMA's q/k rows permuted from Hugging Face's rotate-half RoPE layout to llama.cpp's adjacent pairs (the same
/// permutation as <c>sharplm convert</c>), and the tokenizer as a "gpt2" byte-level BPE vocabulary (tokens, token types,
/// merges; raw bytes = 256 tokens and no merges).
/// </summary>
internal static class GgufExport
{
    public static void Write(string path, ModelConfig spec, ParameterSet p, ITextTokenizer tokenizer)
    {
        if (spec.Family == ArchFamily.Bert) throw new NotSupportedException($"GGUF export writes decoders (--arch llama or gpt2), not {spec.Architecture}");
        var w = new GgufWriter();
        ModelConfigReader.ToGguf(spec, w);
        w.Set(GgufKeys.Name, "sharplm-trained");
        w.Set(GgufKeys.FileType, 0u);
        AddTokenizer(w, spec, tokenizer);
        foreach (var info in p.Infos)
        {
            string name = TensorTable.HfToGguf(spec.Arch.Tensors, info.Name)
                          ?? throw new InvalidOperationException($"no GGUF name for tensor '{info.Name}'");
            ReadOnlyMemory<float> data = p.Values.AsMemory(info.Offset, info.Length);
            int heads = Formats.HuggingFace.HfToGguf.QkPermuteHeads(spec, info.Role);
            if (heads > 0)
            {
                int rows = info.Shape[0], cols = info.Shape.Length == 2 ? info.Shape[1] : 1;
                var src = data.Span;
                var o = new float[info.Length];
                for (int r = 0; r < rows; r++) src.Slice(Formats.HuggingFace.HfToGguf.PermuteSourceRow(r, heads, rows) * cols, cols).CopyTo(o.AsSpan(r * cols, cols));
                data = o;
            }
            w.AddTensor(name, Array.ConvertAll(info.Shape, d => (long)d), data);
        }
        w.Write(path);
    }

    /// <summary>The run's tokenizer as GGUF metadata (the one writer, <see cref="GgufTokenizer.Write"/>); BOS and EOS are
    /// its first special token, and nothing is added in front of the text.</summary>
    private static void AddTokenizer(GgufWriter w, ModelConfig spec, ITextTokenizer tokenizer)
    {
        var v = GgufTokenizer.Write(tokenizer.AsTokenizer(), spec.Vocab - (spec.Family == ArchFamily.Bert ? 1 : 0), w);
        if (v.AddedTokens.Where(a => a.Special).Select(a => (int?)a.Id).Min() is int first)
        {
            w.Set(GgufKeys.BosId, (uint)first);
            w.Set(GgufKeys.EosId, (uint)first);
        }
        w.Set(GgufKeys.AddBos, false);
    }
}
