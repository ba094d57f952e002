using System.Buffers.Binary;
using System.Text;
using SharpLM.Formats.Gguf;
using SharpLM.Sizing;
using SharpLM.Tensors;
using SharpLM.Testing;
using SharpLM.Tests.Formats;
using Xunit;

namespace SharpLM.Tests.Sizing;

/// <summary>The count computed from a file's metadata must equal the elements of the tensors actually in it.</summary>
public class ModelFileTests
{
    [Theory]
    [InlineData("llama", DType.F32)]
    [InlineData("qwen2", DType.Q8_0)]
    public void FormatsTinyGguf_ComputedEqualsTensors(string arch, DType type)
    {
        // written by the formats helper's test builder, independently of Sizing
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, "tiny.gguf");
        TinyGguf.Build(arch, type).Write(path);
        var input = ModelSource.FromModel(path);
        var census = input.File!;
        var p = new ParameterCount(input.Config);
        Assert.True(census.Parameters == p.Total, $"file {census.Parameters}, computed {p.Total}");
        Assert.Equal(arch == "qwen2", input.Config.QkvBias);
        Assert.False(input.Config.TiedEmbeddings);
        Assert.Equal(TinyGguf.KVH, input.Config.KvHeads);
        Assert.Equal(TinyGguf.Vocab().Length, input.Config.Vocab);
    }

    /// <summary>Tensor names and shapes as llama.cpp's converter writes them (src/llama-arch.cpp), row-major.</summary>
    private static void AddLlamaLike(GgufWriter w, int v, int h, int layers, int heads, int kvHeads, int hs, int f, bool tied,
        bool qkvBias, bool outBias, bool qkNorm, int experts, bool ropeFreqs)
    {
        void T(string name, params long[] shape) =>
            w.AddTensor(name, DType.F32, shape, new byte[shape.Aggregate(1L, (a, b) => a * b) * 4]);
        T("token_embd.weight", v, h);
        if (ropeFreqs) T("rope_freqs.weight", hs / 2);
        for (int l = 0; l < layers; l++)
        {
            T($"blk.{l}.attn_norm.weight", h);
            T($"blk.{l}.attn_q.weight", heads * hs, h);
            T($"blk.{l}.attn_k.weight", kvHeads * hs, h);
            T($"blk.{l}.attn_v.weight", kvHeads * hs, h);
            T($"blk.{l}.attn_output.weight", h, heads * hs);
            if (qkvBias) { T($"blk.{l}.attn_q.bias", heads * hs); T($"blk.{l}.attn_k.bias", kvHeads * hs); T($"blk.{l}.attn_v.bias", kvHeads * hs); }
            if (outBias) T($"blk.{l}.attn_output.bias", h);
            if (qkNorm) { T($"blk.{l}.attn_q_norm.weight", hs); T($"blk.{l}.attn_k_norm.weight", hs); }
            T($"blk.{l}.ffn_norm.weight", h);
            if (experts > 0)
            {
                T($"blk.{l}.ffn_gate_inp.weight", experts, h);
                T($"blk.{l}.ffn_gate_exps.weight", experts, f, h);
                T($"blk.{l}.ffn_up_exps.weight", experts, f, h);
                T($"blk.{l}.ffn_down_exps.weight", experts, h, f);
            }
            else
            {
                T($"blk.{l}.ffn_gate.weight", f, h);
                T($"blk.{l}.ffn_up.weight", f, h);
                T($"blk.{l}.ffn_down.weight", h, f);
            }
        }
        T("output_norm.weight", h);
        if (!tied) T("output.weight", v, h);
    }

    [Theory]
    [InlineData("llama", 8, 2, 16, false, false, false, false, 0, true)]    // MHA, untied, rope_freqs buffer
    [InlineData("llama", 8, 2, 16, true, true, true, false, 0, false)]     // attention_bias=true, tied
    [InlineData("qwen2", 6, 2, 16, true, true, false, false, 0, false)]    // qwen2: q/k/v bias, tied
    [InlineData("qwen3", 4, 2, 32, true, false, false, true, 0, false)]    // qwen3: HS > h/NH, q/k norms
    [InlineData("llama", 8, 4, 16, false, false, false, false, 4, false)]  // mixtral-style experts
    public void LlamaFamilyGguf_ComputedEqualsTensors(string arch, int heads, int kvHeads, int hs, bool tied, bool qkvBias, bool outBias,
        bool qkNorm, int experts, bool ropeFreqs)
    {
        const int v = 300, h = 128, layers = 3, f = 96;
        var w = new GgufWriter();
        w.Set("general.architecture", arch)
         .Set($"{arch}.block_count", (uint)layers)
         .Set($"{arch}.embedding_length", (uint)h)
         .Set($"{arch}.feed_forward_length", (uint)f)
         .Set($"{arch}.attention.head_count", (uint)heads)
         .Set($"{arch}.attention.head_count_kv", (uint)kvHeads)
         .Set($"{arch}.context_length", (uint)512)
         .Set($"{arch}.vocab_size", (uint)v);
        if (hs != h / heads) w.Set($"{arch}.attention.key_length", (uint)hs);
        if (experts > 0) w.Set($"{arch}.expert_count", (uint)experts).Set($"{arch}.expert_used_count", (uint)2);
        AddLlamaLike(w, v, h, layers, heads, kvHeads, hs, f, tied, qkvBias, outBias, qkNorm, experts, ropeFreqs);
        var path = Path.Combine(TestPaths.NewTempDir(), "m.gguf");
        w.Write(path);

        var input = ModelSource.FromGguf(path);
        var p = new ParameterCount(input.Config);
        Assert.True(input.File!.Parameters == p.Total, $"file {input.File.Parameters}, computed {p.Total}");
        Assert.Equal(tied, input.Config.TiedEmbeddings);
        Assert.Equal(ropeFreqs, input.File.Excluded.Contains("rope_freqs.weight"));
        Assert.Equal(experts, input.Config.Experts);
    }

    [Fact]
    public void Gpt2AndBertGguf_ComputedEqualsTensors()
    {
        const int v = 200, h = 64, layers = 2, f = 256, pos = 128;
        void T(GgufWriter w, string name, params long[] shape) =>
            w.AddTensor(name, DType.F32, shape, new byte[shape.Aggregate(1L, (a, b) => a * b) * 4]);

        var g = new GgufWriter();
        g.Set("general.architecture", "gpt2").Set("gpt2.block_count", (uint)layers).Set("gpt2.embedding_length", (uint)h)
         .Set("gpt2.feed_forward_length", (uint)f).Set("gpt2.attention.head_count", (uint)4).Set("gpt2.context_length", (uint)pos)
         .Set("tokenizer.ggml.tokens", GgufArray.Of(Enumerable.Range(0, v).Select(i => "t" + i).ToArray()));
        T(g, "token_embd.weight", v, h);
        T(g, "position_embd.weight", pos, h);
        for (int l = 0; l < layers; l++)
        {
            T(g, $"blk.{l}.attn_norm.weight", h); T(g, $"blk.{l}.attn_norm.bias", h);
            T(g, $"blk.{l}.attn_qkv.weight", 3 * h, h); T(g, $"blk.{l}.attn_qkv.bias", 3 * h);
            T(g, $"blk.{l}.attn_output.weight", h, h); T(g, $"blk.{l}.attn_output.bias", h);
            T(g, $"blk.{l}.ffn_norm.weight", h); T(g, $"blk.{l}.ffn_norm.bias", h);
            T(g, $"blk.{l}.ffn_up.weight", f, h); T(g, $"blk.{l}.ffn_up.bias", f);
            T(g, $"blk.{l}.ffn_down.weight", h, f); T(g, $"blk.{l}.ffn_down.bias", h);
        }
        T(g, "output_norm.weight", h); T(g, "output_norm.bias", h);
        var gp = Path.Combine(TestPaths.NewTempDir(), "gpt2.gguf");
        g.Write(gp);
        var gi = ModelSource.FromModel(gp);
        Assert.Equal(gi.File!.Parameters, new ParameterCount(gi.Config).Total);
        Assert.Equal(v, gi.Config.Vocab);

        var b = new GgufWriter();
        b.Set("general.architecture", "bert").Set("bert.block_count", (uint)layers).Set("bert.embedding_length", (uint)h)
         .Set("bert.feed_forward_length", (uint)f).Set("bert.attention.head_count", (uint)4).Set("bert.context_length", (uint)pos)
         .Set("bert.vocab_size", (uint)v);
        T(b, "token_embd.weight", v, h); T(b, "token_types.weight", 2, h); T(b, "position_embd.weight", pos, h);
        T(b, "token_embd_norm.weight", h); T(b, "token_embd_norm.bias", h);
        for (int l = 0; l < layers; l++)
        {
            foreach (var n in new[] { "attn_q", "attn_k", "attn_v", "attn_output" }) { T(b, $"blk.{l}.{n}.weight", h, h); T(b, $"blk.{l}.{n}.bias", h); }
            T(b, $"blk.{l}.attn_output_norm.weight", h); T(b, $"blk.{l}.attn_output_norm.bias", h);
            T(b, $"blk.{l}.ffn_up.weight", f, h); T(b, $"blk.{l}.ffn_up.bias", f);
            T(b, $"blk.{l}.ffn_down.weight", h, f); T(b, $"blk.{l}.ffn_down.bias", h);
            T(b, $"blk.{l}.layer_output_norm.weight", h); T(b, $"blk.{l}.layer_output_norm.bias", h);
        }
        var bp = Path.Combine(TestPaths.NewTempDir(), "bert.gguf");
        b.Write(bp);
        var bi = ModelSource.FromModel(bp);
        Assert.False(bi.Config.Pooler);
        Assert.Equal(bi.File!.Parameters, new ParameterCount(bi.Config).Total);
    }

    /// <summary>A safetensors file with the given tensors (f32 zeros): u64 header length, JSON header, data.</summary>
    internal static void WriteSafetensors(string path, IEnumerable<(string Name, long[] Shape)> tensors)
    {
        var sb = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        long offset = 0;
        foreach (var (name, shape) in tensors)
        {
            long bytes = shape.Aggregate(1L, (a, b) => a * b) * 4;
            sb.Append($",\"{name}\":{{\"dtype\":\"F32\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{offset},{offset + bytes}]}}");
            offset += bytes;
        }
        sb.Append('}');
        var header = Encoding.UTF8.GetBytes(sb.ToString());
        using var fs = File.Create(path);
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
        fs.Write(len);
        fs.Write(header);
        fs.SetLength(8 + header.Length + offset);
    }

    /// <summary>BertModel's state_dict names and shapes (transformers modeling_bert.py), with or without the pooler.</summary>
    internal static List<(string, long[])> BertTensors(int v, int h, int layers, int f, int pos, bool pooler, bool buffers)
    {
        var t = new List<(string, long[])>
        {
            ("embeddings.word_embeddings.weight", [v, h]), ("embeddings.position_embeddings.weight", [pos, h]),
            ("embeddings.token_type_embeddings.weight", [2, h]), ("embeddings.LayerNorm.weight", [h]), ("embeddings.LayerNorm.bias", [h]),
        };
        if (buffers) t.Add(("embeddings.position_ids", [1, pos]));
        for (int l = 0; l < layers; l++)
        {
            string p = $"encoder.layer.{l}.";
            foreach (var n in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense" })
            { t.Add((p + n + ".weight", [h, h])); t.Add((p + n + ".bias", [h])); }
            t.Add((p + "attention.output.LayerNorm.weight", [h])); t.Add((p + "attention.output.LayerNorm.bias", [h]));
            t.Add((p + "intermediate.dense.weight", [f, h])); t.Add((p + "intermediate.dense.bias", [f]));
            t.Add((p + "output.dense.weight", [h, f])); t.Add((p + "output.dense.bias", [h]));
            t.Add((p + "output.LayerNorm.weight", [h])); t.Add((p + "output.LayerNorm.bias", [h]));
        }
        if (pooler) { t.Add(("pooler.dense.weight", [h, h])); t.Add(("pooler.dense.bias", [h])); }
        return t;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void HfFolder_Safetensors_ComputedEqualsTensors_PoolerFromFile(bool pooler)
    {
        var dir = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(dir, "config.json"),
            """{"model_type":"bert","vocab_size":100,"hidden_size":32,"num_hidden_layers":2,"num_attention_heads":4,"intermediate_size":64,"max_position_embeddings":40,"type_vocab_size":2}""");
        WriteSafetensors(Path.Combine(dir, "model.safetensors"), BertTensors(100, 32, 2, 64, 40, pooler, buffers: true));
        var input = ModelSource.FromModel(dir);
        Assert.Equal(pooler, input.Config.Pooler);
        Assert.Equal(input.File!.Parameters, new ParameterCount(input.Config).Total);
        Assert.Contains("embeddings.position_ids", input.File.Excluded);
    }

    [Fact]
    public void BadFiles_AreClearErrors()
    {
        var dir = TestPaths.NewTempDir();
        var junk = Path.Combine(dir, "junk.bin");
        File.WriteAllBytes(junk, [1, 2, 3, 4, 5, 6, 7, 8]);
        var e = Assert.Throws<InvalidDataException>(() => ModelSource.FromModel(junk));
        Assert.Contains("junk.bin", e.Message, StringComparison.Ordinal);
        Assert.Throws<FileNotFoundException>(() => ModelSource.FromModel(Path.Combine(dir, "missing.gguf")));
        Assert.Throws<FileNotFoundException>(() => ModelSource.FromModel(dir)); // folder without config.json

        // a GGUF without the width
        var w = new GgufWriter();
        w.Set("general.architecture", "llama").Set("llama.block_count", (uint)2);
        var g = Path.Combine(dir, "nometa.gguf");
        w.Write(g);
        var m = Assert.Throws<InvalidDataException>(() => ModelSource.FromModel(g));
        Assert.Contains("llama.embedding_length", m.Message, StringComparison.Ordinal);

        // a truncated safetensors header
        var st = Path.Combine(dir, "model.safetensors");
        File.WriteAllText(Path.Combine(dir, "config.json"), File.ReadAllText(Path.Combine(TestPaths.TestData, "sizing", "bert-base-uncased.config.json")));
        File.WriteAllBytes(st, [255, 0, 0, 0, 0, 0, 0, 0, (byte)'{']);
        var s = Assert.Throws<InvalidDataException>(() => ModelSource.FromModel(dir));
        Assert.Contains("model.safetensors", s.Message, StringComparison.Ordinal);
    }
}
