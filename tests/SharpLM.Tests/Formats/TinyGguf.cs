using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Tensors;

namespace SharpLM.Tests.Formats;

/// <summary>A tiny random llama/qwen2 GGUF (C=64, 2 layers, SentencePiece-style vocab with byte tokens) for loader tests.</summary>
internal static class TinyGguf
{
    public const int C = 64, L = 2, NH = 4, KVH = 2, F = 128, Ctx = 256;

    public static string[] Vocab()
    {
        var v = new List<string> { "<unk>", "<s>", "</s>" };
        for (int b = 0; b < 256; b++) v.Add($"<0x{b:X2}>");
        foreach (var w in new[] { "▁", "▁the", "▁a", "e", "t", "h", "▁h", "he", "▁he", "llo", "▁hello", "o", "l", "w", "r", "d", "▁world" })
            v.Add(w);
        return [.. v];
    }

    public static GgufWriter Build(string arch = "llama", DType type = DType.F32, int seed = 1)
    {
        var rng = new Random(seed);
        var vocab = Vocab();
        int v = vocab.Length, hs = C / NH;
        var w = new GgufWriter();
        w.Set(GgufKeys.Architecture, arch)
         .Set(GgufKeys.Name, "tiny-test")
         .Set(GgufKeys.ContextLength(arch), (uint)Ctx)
         .Set(GgufKeys.EmbeddingLength(arch), (uint)C)
         .Set(GgufKeys.BlockCount(arch), (uint)L)
         .Set(GgufKeys.FeedForwardLength(arch), (uint)F)
         .Set(GgufKeys.HeadCount(arch), (uint)NH)
         .Set(GgufKeys.HeadCountKv(arch), (uint)KVH)
         .Set(GgufKeys.RmsEpsilon(arch), 1e-5f)
         .Set(GgufKeys.RopeFreqBase(arch), 10000f)
         .Set(GgufKeys.RopeDimensionCount(arch), (uint)hs)
         .Set(GgufKeys.TokenizerModel, "llama")
         .Set(GgufKeys.TokenizerPre, "default")
         .Set(GgufKeys.Tokens, GgufArray.Of(vocab))
         .Set(GgufKeys.Scores, GgufArray.Of(vocab.Select((_, i) => -(float)i).ToArray()))
         .Set(GgufKeys.TokenType, GgufArray.Of(vocab.Select((t, i) => i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1).ToArray()))
         .Set(GgufKeys.BosId, 1u)
         .Set(GgufKeys.EosId, 2u)
         .Set(GgufKeys.UnkId, 0u)
         .Set(GgufKeys.AddBos, true);
        void T(string name, params long[] shape)
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            bool norm = name.Contains("norm", StringComparison.Ordinal);
            var d = new float[n];
            for (long i = 0; i < n; i++) d[i] = norm ? 1f + 0.1f * (float)(rng.NextDouble() - 0.5) : 0.2f * (float)(rng.NextDouble() - 0.5);
            w.AddTensor(name, shape, d, norm || name.EndsWith(".bias", StringComparison.Ordinal) ? DType.F32 : type);
        }
        T("token_embd.weight", v, C);
        for (int l = 0; l < L; l++)
        {
            T($"blk.{l}.attn_norm.weight", C);
            T($"blk.{l}.attn_q.weight", C, C);
            T($"blk.{l}.attn_k.weight", KVH * hs, C);
            T($"blk.{l}.attn_v.weight", KVH * hs, C);
            if (arch == "qwen2")
            {
                T($"blk.{l}.attn_q.bias", C);
                T($"blk.{l}.attn_k.bias", KVH * hs);
                T($"blk.{l}.attn_v.bias", KVH * hs);
            }
            T($"blk.{l}.attn_output.weight", C, C);
            T($"blk.{l}.ffn_norm.weight", C);
            T($"blk.{l}.ffn_gate.weight", F, C);
            T($"blk.{l}.ffn_up.weight", F, C);
            T($"blk.{l}.ffn_down.weight", C, F);
        }
        T("output_norm.weight", C);
        T("output.weight", v, C);
        return w;
    }
}
