using System.Text;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.Safetensors;
using SharpLM.Fuzz;
using SharpLM.Testing;
using SharpLM.Tests.Bert;
using SharpLM.Tests.Formats;

namespace SharpLM.Tests.Reliability;

/// <summary>
/// The fuzz corpus of tests/fuzz/TARGET/ replayed through the fuzz targets (fuzz/SharpLM.Fuzz): seeds/ (valid inputs
/// made by SharpLM's own writers, where AFL++ starts) must be accepted; regressions/ (every input that ever crashed,
/// hung or blew up a reader, and the hand-made hostile ones) must be rejected cleanly, with a format error that names
/// the file; survive/ holds hostile inputs a reader may accept but must not crash on. SHARPLM_UPDATE_FUZZ_SEEDS=1
/// rewrites the generated seeds.
/// </summary>
public class FuzzCorpusTests
{
    private static string Corpus => Path.Combine(TestPaths.RepoRoot, "tests", "fuzz");

    public static TheoryData<string> Targets()
    {
        var d = new TheoryData<string>();
        foreach (var t in FuzzTargets.All.Keys) d.Add(t);
        return d;
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Seeds_are_accepted(string target)
    {
        if (Environment.GetEnvironmentVariable("SHARPLM_UPDATE_FUZZ_SEEDS") == "1") WriteSeeds();
        var dir = Path.Combine(Corpus, target, "seeds");
        var files = Directory.Exists(dir) ? Directory.GetFiles(dir) : [];
        Assert.True(files.Length > 0, $"no seeds in {dir}");
        foreach (var f in files) Assert.True(FuzzTargets.Run(target, File.ReadAllBytes(f)), $"{target}: the seed {Path.GetFileName(f)} is rejected");
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Regressions_are_rejected_cleanly(string target)
    {
        var dir = Path.Combine(Corpus, target, "regressions");
        var files = Directory.Exists(dir) ? Directory.GetFiles(dir) : [];
        Assert.True(files.Length > 0, $"no regression inputs in {dir}");
        var accepted = new List<string>();
        foreach (var f in files)
        {
            // an unexpected exception escapes here and fails the test with its stack trace
            if (FuzzTargets.Run(target, File.ReadAllBytes(f))) accepted.Add(Path.GetFileName(f));
        }
        Assert.True(accepted.Count == 0, $"{target}: hostile inputs accepted without an error: {string.Join(", ", accepted)}");
        // survive/: hostile inputs a reader may accept (a context length of 2^31-1 is capped where it is used), but
        // which must neither crash, hang nor exhaust memory
        var survive = Path.Combine(Corpus, target, "survive");
        if (Directory.Exists(survive))
            foreach (var f in Directory.GetFiles(survive)) FuzzTargets.Run(target, File.ReadAllBytes(f));
    }

    /// <summary>Writes the generated seeds: tiny files from SharpLM's writers (no third-party data).</summary>
    private static void WriteSeeds()
    {
        void Put(string target, string name, byte[] bytes)
        {
            var d = Path.Combine(Corpus, target, "seeds");
            Directory.CreateDirectory(d);
            File.WriteAllBytes(Path.Combine(d, name), bytes);
        }
        var tmp = TestPaths.NewTempDir();
        // a tiny llama GGUF: C 8, one layer, the TinyGguf vocabulary, a chat template
        var vocab = TinyGguf.Vocab();
        var w = new GgufWriter();
        const string arch = "llama";
        w.Set(GgufKeys.Architecture, arch).Set(GgufKeys.ContextLength(arch), 32u).Set(GgufKeys.EmbeddingLength(arch), 8u)
         .Set(GgufKeys.BlockCount(arch), 1u).Set(GgufKeys.FeedForwardLength(arch), 16u).Set(GgufKeys.HeadCount(arch), 2u)
         .Set(GgufKeys.HeadCountKv(arch), 1u).Set(GgufKeys.RmsEpsilon(arch), 1e-5f).Set(GgufKeys.RopeFreqBase(arch), 10000f)
         .Set(GgufKeys.TokenizerModel, "llama").Set(GgufKeys.Tokens, GgufArray.Of(vocab))
         .Set(GgufKeys.Scores, GgufArray.Of(vocab.Select((_, i) => -(float)i).ToArray()))
         .Set(GgufKeys.TokenType, GgufArray.Of(vocab.Select((t, i) => i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1).ToArray()))
         .Set(GgufKeys.BosId, 1u).Set(GgufKeys.EosId, 2u).Set(GgufKeys.UnkId, 0u)
         .Set("tokenizer.chat_template", "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] | trim }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}");
        var rng = new Random(16);
        void T(string name, params long[] shape)
        {
            var d = new float[shape.Aggregate(1L, (a, b) => a * b)];
            for (int i = 0; i < d.Length; i++) d[i] = (float)(rng.NextDouble() - 0.5);
            w.AddTensor(name, shape, d);
        }
        T("token_embd.weight", vocab.Length, 8);
        T("blk.0.attn_norm.weight", 8); T("blk.0.attn_q.weight", 8, 8); T("blk.0.attn_k.weight", 4, 8); T("blk.0.attn_v.weight", 4, 8);
        T("blk.0.attn_output.weight", 8, 8); T("blk.0.ffn_norm.weight", 8); T("blk.0.ffn_gate.weight", 16, 8);
        T("blk.0.ffn_up.weight", 16, 8); T("blk.0.ffn_down.weight", 8, 16); T("output_norm.weight", 8);
        var gguf = Path.Combine(tmp, "tiny.gguf");
        w.Write(gguf);
        Put("gguf", "tiny-llama.gguf", File.ReadAllBytes(gguf));
        // safetensors: two small tensors and metadata
        var st = new SafetensorsWriter();
        st.SetMetadata("format", "pt");
        st.Add("a.weight", [2, 3], new float[] { 1, 2, 3, 4, 5, 6 });
        st.Add("b.bias", [3], new float[] { 0.5f, -1, 2 });
        var stPath = Path.Combine(tmp, "tiny.safetensors");
        st.Write(stPath);
        Put("safetensors", "tiny.safetensors", File.ReadAllBytes(stPath));
        Put("onnx", "linear.onnx", TinyOnnx.LinearModel());
        // tokenizer.json, tiktoken and vocab.txt made here
        var words = new[] { "the", "cat", "sat", "on", "a", "mat", "hello", "world" };
        var bpe = SharpLM.Tokenizers.Training.BpeTrainer.Train(Enumerable.Repeat(string.Join(' ', words) + "\n", 20),
            new SharpLM.Tokenizers.Training.BpeTrainerOptions { VocabSize = 270, SpecialTokens = ["<|endoftext|>"] });
        Put("tokenizer-json", "bpe.json", Encoding.UTF8.GetBytes(bpe.ToTokenizerJson()));
        var tik = new StringBuilder();
        for (int b = 0; b < 256; b++) tik.Append(Convert.ToBase64String([(byte)b])).Append(' ').Append(b).Append('\n');
        int rank = 256;
        foreach (var m in new[] { "th", "he", "the", " t", " the", "at", "cat", " c", " cat" })
            tik.Append(Convert.ToBase64String(Encoding.UTF8.GetBytes(m))).Append(' ').Append(rank++).Append('\n');
        Put("tiktoken", "tiny.tiktoken", Encoding.UTF8.GetBytes(tik.ToString()));
        Put("vocab-txt", "vocab.txt", Encoding.UTF8.GetBytes(string.Join('\n', new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }.Concat(words).Append("##s").Append("##at")) + "\n"));
        foreach (var f in Directory.GetFiles(Path.Combine(TestPaths.TestData, "sizing"), "*.config.json"))
            Put("config-json", Path.GetFileName(f), File.ReadAllBytes(f));
        foreach (var f in Directory.GetFiles(Path.Combine(TestPaths.TestData, "chat-templates"), "*.jinja"))
            Put("chat-template", Path.GetFileName(f), File.ReadAllBytes(f));
        Put("server-request", "chat.json", Encoding.UTF8.GetBytes(
            """{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"top_p":0.9,"max_tokens":16,"stop":["\n"],"seed":1,"logit_bias":{"5":-100,"7":2.5}}"""));
        Put("server-request", "json-schema.json", Encoding.UTF8.GetBytes(
            """{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"a":{"type":"integer","minimum":0},"b":{"type":"array","items":{"type":"string","enum":["x","y"]},"maxItems":3}},"required":["a"]}}}}"""));
        Directory.Delete(tmp, recursive: true);
    }
}
