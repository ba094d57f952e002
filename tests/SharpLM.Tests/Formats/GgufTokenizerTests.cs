using LLama;
using LLama.Common;
using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.HuggingFace;
using SharpLM.Testing;
using SharpLM.Tokenizers;

namespace SharpLM.Tests.Formats;

/// <summary>
/// A GGUF carrying a real tokenizer.json's vocabulary (converted as <see cref="GgufTokenizer.Write"/> does: Llama-3 as "gpt2",
/// Mistral as "llama" with scores from merge ranks) must tokenize like Hugging Face tokenizers (Rust, through
/// Tokenizers.DotNet) on that tokenizer.json, and like llama.cpp on the GGUF itself.
/// </summary>
public sealed class GgufTokenizerTests
{
    private static readonly Lazy<IReadOnlyList<string>> Texts = new(() =>
    {
        var lines = File.ReadLines(TestPaths.Asset("brown.txt")).Where(l => l.Trim().Length > 0).Take(300).ToList();
        lines.AddRange(EdgeCases());
        return lines;
    });

    private static IEnumerable<string> EdgeCases()
    {
        foreach (var line in File.ReadAllLines(Path.Combine(TestPaths.TestData, "tokenizer-edge-cases.txt"), System.Text.Encoding.UTF8))
        {
            if (line.StartsWith('#')) continue;
            yield return line.Replace("\\n", "\n", StringComparison.Ordinal).Replace("\\r", "\r", StringComparison.Ordinal).Replace("\\t", "\t", StringComparison.Ordinal);
        }
        yield return "";
        yield return string.Concat(Enumerable.Repeat("The quick brown fox. ", 40));
    }

    /// <summary>Writes a GGUF holding only the tokenizer (plus the llama hyperparameters llama.cpp needs to open it).</summary>
    private static string WriteVocabGguf(string tokenizerJson, string dir, int? bos, int? eos)
    {
        var w = new GgufWriter();
        w.Set(GgufKeys.Architecture, "llama")
         .Set(GgufKeys.ContextLength("llama"), 256u).Set(GgufKeys.EmbeddingLength("llama"), 64u).Set(GgufKeys.BlockCount("llama"), 1u)
         .Set(GgufKeys.FeedForwardLength("llama"), 128u).Set(GgufKeys.HeadCount("llama"), 4u).Set(GgufKeys.HeadCountKv("llama"), 4u)
         .Set(GgufKeys.RmsEpsilon("llama"), 1e-5f);
        var vocab = GgufTokenizer.Write(SharpLM.Tokenizers.Tokenizer.FromFile(tokenizerJson), null, w);
        if (bos is { } b) w.Set(GgufKeys.BosId, (uint)b);
        if (eos is { } e) w.Set(GgufKeys.EosId, (uint)e);
        if (vocab.IdOf("<unk>") is { } u) w.Set(GgufKeys.UnkId, (uint)u);
        if (vocab.AddsBos is { } ab) w.Set(GgufKeys.AddBos, ab);
        var path = Path.Combine(dir, "vocab.gguf");
        w.Write(path);
        return path;
    }

    [Theory]
    [InlineData("tokenizer-llama3", 128000, 128001, "gpt2")]
    [InlineData("tokenizer-llama2", 1, 2, "llama")]
    [InlineData("tokenizer-qwen3", -1, 151643, "gpt2")]
    public void Gguf_tokenizer_matches_hf_tokenizers_and_llama_cpp(string asset, int bos, int eos, string model)
    {
        var json = TestPaths.Asset("npm", asset, "models", "tokenizer.json");
        var dir = TestPaths.NewTempDir();
        var path = WriteVocabGguf(json, dir, bos < 0 ? null : bos, eos);

        Tokenizer ours;
        using (var f = GgufFile.Open(path))
        {
            Assert.Equal(model, f.GetString(GgufKeys.TokenizerModel));
            ours = f.LoadTokenizer();
        }
        if (bos >= 0) Assert.Equal(bos, ours.BosId);
        Assert.Equal(eos, ours.EosId);
        using var hf = new global::Tokenizers.DotNet.Tokenizer(json);
        using var cpp = LLamaWeights.LoadFromFile(new ModelParams(path) { GpuLayerCount = 0, VocabOnly = true });

        int badHf = 0, badCpp = 0, badDecode = 0;
        string firstHf = "", firstCpp = "", firstDecode = "";
        foreach (var text in Texts.Value)
        {
            var mine = ours.EncodeToIds(text);
            var expected = hf.Encode(text).Select(x => (int)x).ToArray();
            // Qwen's tokenizer.json applies NFC first; GGUF has no normalizer, and llama.cpp skips it too (it is
            // compared on every text below), so text with combining marks is compared with llama.cpp only.
            bool nfcDiffers = asset == "tokenizer-qwen3" && text.Any(c => c is >= '\u0300' and <= '\u036F');
            if (!nfcDiffers && !mine.SequenceEqual(expected) && badHf++ == 0) firstHf = $"{Show(text)}: hf [{string.Join(' ', expected)}] ours [{string.Join(' ', mine)}]";
            var llama = cpp.NativeHandle.Tokenize(text, true, true, System.Text.Encoding.UTF8).Select(x => (int)x).ToArray();
            // llama.cpp retypes control-looking normal tokens such as Qwen's "</s>" to CONTROL ("this is probably a bug
            // in the model") and then matches them as specials; HF tokenizers and we keep them normal.
            bool retyped = asset == "tokenizer-qwen3" && text.Contains("</s>", StringComparison.Ordinal);
            if (!retyped && !mine.SequenceEqual(llama) && badCpp++ == 0) firstCpp = $"{Show(text)}: llama.cpp [{string.Join(' ', llama)}] ours [{string.Join(' ', mine)}]";
            var back = ours.Decode(mine);
            var hfBack = hf.Decode(expected.Select(x => (uint)x).ToArray());
            if (!nfcDiffers && back != hfBack && badDecode++ == 0) firstDecode = $"{Show(text)}: hf '{Show(hfBack)}' ours '{Show(back)}'";
        }
        int n = Texts.Value.Count;
        Assert.True(badHf == 0, $"{asset}: {badHf}/{n} texts differ from HF tokenizers; first {firstHf}");
        Assert.True(badCpp == 0, $"{asset}: {badCpp}/{n} texts differ from llama.cpp; first {firstCpp}");
        Assert.True(badDecode == 0, $"{asset}: {badDecode}/{n} decodes differ from HF; first {firstDecode}");
    }

    [Fact]
    public void Tokenizer_FromFile_reads_a_gguf_through_the_registered_loader()
    {
        var json = TestPaths.Asset("npm", "tokenizer-llama2", "models", "tokenizer.json");
        var dir = TestPaths.NewTempDir();
        var path = WriteVocabGguf(json, dir, 1, 2);
        GgufTokenizer.Register(); // the module initializer has run already; registering twice is harmless
        var tok = Tokenizer.FromFile(path);
        using var hf = new global::Tokenizers.DotNet.Tokenizer(json);
        Assert.Equal(hf.Encode("Hello world").Select(x => (int)x), tok.EncodeToIds("Hello world"));
    }

    [Fact]
    public void A_gguf_without_tokenizer_metadata_is_a_clear_error()
    {
        var dir = TestPaths.NewTempDir();
        var path = Path.Combine(dir, "none.gguf");
        new GgufWriter().Set(GgufKeys.Architecture, "llama").Write(path);
        using var f = GgufFile.Open(path);
        var e = Assert.Throws<InvalidDataException>(() => f.LoadTokenizer());
        Assert.Contains("tokenizer.ggml.model", e.Message);
        Assert.Contains(path, e.Message);
    }

    private static string Show(string s) => s.Length > 80 ? s[..80].ReplaceLineEndings("⏎") + "..." : s.ReplaceLineEndings("⏎");
}
