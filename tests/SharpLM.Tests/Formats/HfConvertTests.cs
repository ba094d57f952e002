using LLama;
using LLama.Common;
using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.HuggingFace;
using SharpLM.Tensors;
using SharpLM.Testing;

namespace SharpLM.Tests.Formats;

public sealed class HfConvertTests
{
    [Theory]
    [InlineData(4, 8)]
    [InlineData(2, 16)]
    [InlineData(1, 64)]
    public void Permutation_turns_rotate_half_rope_into_interleaved_rope(int heads, int hs)
    {
        // GGUF q = P(HF q). RoPE commutes with it: P(rope_neox(q)) == rope_interleaved(P(q)), which is why llama.cpp
        // can run HF llama weights with its adjacent-pair RoPE after convert_hf_to_gguf.py's permute.
        int rows = heads * hs;
        var rng = new Random(heads * 100 + hs);
        var q = Enumerable.Range(0, rows).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var invFreq = Enumerable.Range(0, hs / 2).Select(i => 1f / MathF.Pow(10000f, 2f * i / hs)).ToArray();
        int[] pos = [37];

        var hf = (float[])q.Clone();
        SharpLM.Tests.Kernels.Oracles.Rope(hf, 1, heads, hs, pos, invFreq, neox: true);
        var gguf = Enumerable.Range(0, rows).Select(r => q[HfToGguf.PermuteSourceRow(r, heads, rows)]).ToArray();
        SharpLM.Tests.Kernels.Oracles.Rope(gguf, 1, heads, hs, pos, invFreq, neox: false);
        double maxDiff = 0;
        for (int r = 0; r < rows; r++) maxDiff = Math.Max(maxDiff, Math.Abs(gguf[r] - hf[HfToGguf.PermuteSourceRow(r, heads, rows)]));
        Assert.True(maxDiff == 0, $"max |diff| {maxDiff}");
        // every HF row lands exactly once
        Assert.Equal(Enumerable.Range(0, rows), Enumerable.Range(0, rows).Select(r => HfToGguf.PermuteSourceRow(r, heads, rows)).Order());
    }

    [Fact]
    public void Permutation_matches_the_reshape_swapaxes_of_the_python_converter()
    {
        // w.reshape(nh, 2, rows/nh/2, cols).swapaxes(1, 2).reshape(rows, cols), spelled out with a 3-D index.
        const int nh = 3, half = 4, rows = nh * 2 * half;
        var order = new List<int>();
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < half; i++)      // axis 1 after the swap
                for (int j = 0; j < 2; j++)     // axis 2 after the swap
                    order.Add(h * 2 * half + j * half + i);
        Assert.Equal(order, Enumerable.Range(0, rows).Select(r => HfToGguf.PermuteSourceRow(r, nh, rows)));
    }

    [Theory]
    [InlineData("llama", "f32", 1)]
    [InlineData("mistral", "q8_0", 2)]
    [InlineData("qwen2", "f16", 1)]
    public void Converted_model_has_permuted_qk_and_llama_cpp_loads_it(string modelType, string type, int shards)
    {
        var dir = TestPaths.NewTempDir();
        var hfDir = TinyHf.Create(Path.Combine(dir, "hf"), modelType, shards: shards, tied: modelType == "qwen2");
        var outPath = Path.Combine(dir, "out.gguf");
        using (var folder = HfModelFolder.Open(hfDir))
            HfToGguf.Build(folder, new HfToGguf.Options(HfToGguf.ParseType(type))).Write(outPath);

        using var hf = HfModelFolder.Open(hfDir);
        using var g = GgufFile.Open(outPath);
        string arch = modelType == "qwen2" ? "qwen2" : "llama";
        Assert.Equal(arch, g.Architecture);
        Assert.Equal(TinyHf.KVH, g.GetInt(GgufKeys.HeadCountKv(arch)));
        Assert.Equal(500000f, g.GetFloat(GgufKeys.RopeFreqBase(arch)));
        Assert.Equal(hf.Config.Vocab, g.GetStringArray(GgufKeys.Tokens).Length);
        Assert.NotNull(g.GetStringOrNull(GgufKeys.ChatTemplate));
        Assert.Equal(DType.F32, g.Tensors["blk.0.attn_norm.weight"].Type);

        // Row r of GGUF attn_q/attn_k is HF row PermuteSourceRow(r) for llama, the same row for qwen2.
        foreach (var (gn, hn, heads) in new[] { ("blk.1.attn_q.weight", "model.layers.1.self_attn.q_proj.weight", TinyHf.NH), ("blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight", TinyHf.KVH) })
        {
            var gm = g.Tensors[gn].AsMatrix();
            var hm = hf.RequireWeights().Tensors[hn].AsMatrix();
            var a = new float[gm.Cols];
            var b = new float[hm.Cols];
            double maxDiff = 0;
            for (int r = 0; r < gm.Rows; r++)
            {
                int s = arch == "llama" ? HfToGguf.PermuteSourceRow(r, heads, gm.Rows) : r;
                SharpLM.Tensors.Types.DTypes.Of(gm.Type).DequantizeRowNaive(gm.Row(r), a);
                SharpLM.Tensors.Types.DTypes.Of(hm.Type).DequantizeRowNaive(hm.Row(s), b);
                for (int c = 0; c < a.Length; c++) maxDiff = Math.Max(maxDiff, Math.Abs(a[c] - b[c]));
            }
            double tol = type == "q8_0" ? 1e-3 : type == "f16" ? 1e-4 : 0;
            Assert.True(maxDiff <= tol, $"{gn}: max |diff| {maxDiff} > {tol}");
        }

        using var weights = LLamaWeights.LoadFromFile(new ModelParams(outPath) { GpuLayerCount = 0 });
        Assert.Equal(hf.Config.Vocab, weights.Vocab.Count);
        Assert.Equal(TinyHf.C, weights.EmbeddingSize);
        Assert.Equal(arch, weights.Metadata["general.architecture"]);
    }

    [Fact]
    public void Llama_attention_biases_are_permuted_like_their_rows()
    {
        var dir = TestPaths.NewTempDir();
        var hfDir = TinyHf.Create(Path.Combine(dir, "hf"), "llama", DType.F32, attentionBias: true);
        var outPath = Path.Combine(dir, "out.gguf");
        using var hf = HfModelFolder.Open(hfDir);
        Assert.True(hf.Config.QkvBias);
        HfToGguf.Build(hf, new HfToGguf.Options(DType.F32)).Write(outPath);
        using var g = GgufFile.Open(outPath);
        foreach (var (gn, hn, heads) in new[] { ("blk.0.attn_q.bias", "model.layers.0.self_attn.q_proj.bias", TinyHf.NH), ("blk.0.attn_k.bias", "model.layers.0.self_attn.k_proj.bias", TinyHf.KVH), ("blk.0.attn_v.bias", "model.layers.0.self_attn.v_proj.bias", 0) })
        {
            var a = g.Tensors[gn].AsFloats().ToArray();
            var b = hf.RequireWeights().Tensors[hn].AsFloats().ToArray();
            Assert.Equal(b.Length, a.Length);
            for (int r = 0; r < a.Length; r++) Assert.Equal(b[heads > 0 ? HfToGguf.PermuteSourceRow(r, heads, a.Length) : r], a[r]);
        }
        using var weights = LLamaWeights.LoadFromFile(new ModelParams(outPath) { GpuLayerCount = 0 });
        Assert.Equal(TinyHf.C, weights.EmbeddingSize);
    }

    [Fact]
    public void Llama3_rope_scaling_becomes_a_rope_freqs_tensor()
    {
        var dir = TestPaths.NewTempDir();
        var hfDir = TinyHf.Create(Path.Combine(dir, "hf"), "llama", llama3Rope: true);
        using var folder = HfModelFolder.Open(hfDir);
        Assert.Equal(SharpLM.Models.RopeScalingType.Llama3, folder.Config.RopeScaling);
        var outPath = Path.Combine(dir, "out.gguf");
        HfToGguf.Build(folder, new HfToGguf.Options(DType.F32)).Write(outPath);
        using var g = GgufFile.Open(outPath);
        var f = g.Tensors["rope_freqs.weight"].AsFloats().ToArray();
        Assert.Equal(TinyHf.C / TinyHf.NH / 2, f.Length);
        Assert.Equal(1f, f[0]);      // highest frequency: unscaled
        Assert.Equal(8f, f[^1]);     // lowest frequency: divided by factor
        using var weights = LLamaWeights.LoadFromFile(new ModelParams(outPath) { GpuLayerCount = 0 });
        Assert.Equal(TinyHf.C, weights.EmbeddingSize);
    }

    [Fact]
    public void Llama_cpp_tokenizes_like_hf_tokenizers_on_the_converted_vocab()
    {
        var lines = File.ReadLines(TestPaths.Asset("brown.txt")).Where(l => l.Length > 0).Take(60).ToList(); // the full Brown comparison is GgufTokenizerTests'
        lines.AddRange(["Hello world", " leading space", "tabs\tand\nnewlines", "数字 123 4567", "émoji 🤖 ok", "  two  spaces", "<s> not special?"]);
        foreach (var modelType in new[] { "mistral", "qwen2" })
        {
            var dir = TestPaths.NewTempDir();
            var hfDir = TinyHf.Create(Path.Combine(dir, "hf"), modelType, DType.F16, tied: true);
            var outPath = Path.Combine(dir, "out.gguf");
            using (var folder = HfModelFolder.Open(hfDir))
                HfToGguf.Build(folder, new HfToGguf.Options(DType.Q8_0)).Write(outPath);
            using var hf = new global::Tokenizers.DotNet.Tokenizer(Path.Combine(hfDir, "tokenizer.json"));
            using var weights = LLamaWeights.LoadFromFile(new ModelParams(outPath) { GpuLayerCount = 0, VocabOnly = true });
            int bad = 0;
            string firstBad = "";
            foreach (var line in lines)
            {
                var expected = hf.Encode(line).Select(x => (int)x).ToArray();
                var actual = weights.NativeHandle.Tokenize(line, modelType == "mistral", true, System.Text.Encoding.UTF8).Select(x => (int)x).ToArray();
                if (!expected.SequenceEqual(actual))
                {
                    if (bad++ == 0) firstBad = $"'{line}': hf [{string.Join(' ', expected)}] llama.cpp [{string.Join(' ', actual)}]";
                }
            }
            Assert.True(bad == 0, $"{modelType}: {bad}/{lines.Count} lines differ; first {firstBad}");
        }
    }
}
