using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Tokenizers.Training;
using SharpLM.Training.Data;
using SharpLM.Training.Models;

namespace SharpLM.Training.Checkpoints;

/// <summary>
/// Writes a trained LLaMA as an F32 GGUF file that llama.cpp and SharpLM's LLaMA loader read: llama.* hyper-parameters,
/// tensors under GGUF names (<see cref="TensorNames.Llama"/>), q/k rows permuted from Hugging Face's rotate-half RoPE
/// layout to llama.cpp's adjacent pairs (as convert_hf_to_gguf.py does), and the tokenizer as a "gpt2" byte-level BPE
/// vocabulary (tokens, token types, merges; raw bytes = 256 tokens and no merges).
/// </summary>
internal static class GgufExport
{
    public static void Write(string path, ModelSpec spec, ParameterSet<float> p, ITextTokenizer tokenizer)
    {
        if (spec.Arch != "llama") throw new NotSupportedException($"GGUF export supports --arch llama, not {spec.Arch}");
        const string A = "llama";
        int hs = spec.Dim / spec.Heads;
        var w = new GgufWriter();
        w.Set(GgufKeys.Architecture, A);
        w.Set(GgufKeys.Name, "sharplm-trained");
        w.Set(GgufKeys.FileType, 0u);
        w.Set(GgufKeys.ContextLength(A), (uint)spec.Context);
        w.Set(GgufKeys.EmbeddingLength(A), (uint)spec.Dim);
        w.Set(GgufKeys.BlockCount(A), (uint)spec.Layers);
        w.Set(GgufKeys.FeedForwardLength(A), (uint)spec.Ffn);
        w.Set(GgufKeys.HeadCount(A), (uint)spec.Heads);
        w.Set(GgufKeys.HeadCountKv(A), (uint)spec.KvHeads);
        w.Set(GgufKeys.RopeDimensionCount(A), (uint)hs);
        w.Set(GgufKeys.RopeFreqBase(A), (float)spec.RopeTheta);
        w.Set(GgufKeys.RmsEpsilon(A), (float)spec.NormEps);
        w.Set(GgufKeys.VocabSize(A), (uint)spec.Vocab);
        AddTokenizer(w, spec, tokenizer);
        foreach (var info in p.Infos)
        {
            string name = TensorNames.HfToGguf(TensorNames.Llama, info.Name)
                          ?? throw new InvalidOperationException($"no GGUF name for tensor '{info.Name}'");
            var data = p.Values.AsMemory(info.Offset, info.Length);
            if (info.Name.EndsWith("q_proj.weight", StringComparison.Ordinal)) data = PermuteRope(data.Span, spec.Heads, hs, spec.Dim);
            else if (info.Name.EndsWith("k_proj.weight", StringComparison.Ordinal)) data = PermuteRope(data.Span, spec.KvHeads, hs, spec.Dim);
            w.AddTensor(name, Array.ConvertAll(info.Shape, d => (long)d), data);
        }
        w.Write(path);
    }

    /// <summary>Per head, rows (i, i+HS/2) of the rotate-half layout become rows (2i, 2i+1). w (H*HS, C).</summary>
    internal static float[] PermuteRope(ReadOnlySpan<float> w, int heads, int hs, int c)
    {
        var o = new float[w.Length];
        int half = hs / 2;
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++)
            {
                w.Slice((h * hs + i) * c, c).CopyTo(o.AsSpan((h * hs + 2 * i) * c, c));
                w.Slice((h * hs + half + i) * c, c).CopyTo(o.AsSpan((h * hs + 2 * i + 1) * c, c));
            }
        return o;
    }

    private static void AddTokenizer(GgufWriter w, ModelSpec spec, ITextTokenizer tokenizer)
    {
        string[] tokens;
        string[] merges;
        int specials;
        HashSet<int>? specialSet = null;
        switch (tokenizer)
        {
            case HfTextTokenizer hf when hf.ByteLevelBpe() is var (t, mg, sp):
                tokens = t; merges = mg; specials = 0;
                specialSet = sp;
                break;
            case ByteTokenizer:
                tokens = [.. Enumerable.Range(0, 256).Select(b => ByteLevelChars.Table[b].ToString())]; merges = []; specials = 0;
                break;
            default:
                throw new NotSupportedException($"GGUF export writes byte-level BPE tokenizers (and raw bytes); {(tokenizer is HfTextTokenizer h ? h.Source : tokenizer.GetType().Name)} is not one");
        }
        // the model's vocabulary may be larger than the tokenizer's: pad with unused tokens
        var all = new string[spec.Vocab];
        var types = new int[spec.Vocab];
        for (int i = 0; i < all.Length; i++)
        {
            if (i < tokens.Length) { all[i] = tokens[i]; types[i] = (int)(i < specials || specialSet?.Contains(i) == true ? GgufTokenType.Control : GgufTokenType.Normal); }
            else { all[i] = $"[PAD{i}]"; types[i] = (int)GgufTokenType.Unused; }
        }
        w.Set(GgufKeys.TokenizerModel, "gpt2");
        w.Set(GgufKeys.TokenizerPre, "gpt-2");
        w.Set(GgufKeys.Tokens, GgufArray.Of(all));
        w.Set(GgufKeys.TokenType, GgufArray.Of(types));
        w.Set(GgufKeys.Merges, GgufArray.Of(merges));
        int firstSpecial = specials > 0 ? 0 : specialSet is { Count: > 0 } ? specialSet.Min() : -1;
        if (firstSpecial >= 0)
        {
            w.Set(GgufKeys.BosId, (uint)firstSpecial);
            w.Set(GgufKeys.EosId, (uint)firstSpecial);
        }
        w.Set(GgufKeys.AddBos, false);
    }
}
