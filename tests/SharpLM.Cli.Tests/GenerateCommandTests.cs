using System.Text.Json;
using SharpLM.Inference;
using SharpLM.Inference.Sampling;
using SharpLM.Models;
using SharpLM.Testing;
using SharpLM.Tests.Models;

namespace SharpLM.Cli.Tests;

public sealed class GenerateCommandTests
{
    private static readonly TinySpec Spec = new("llama", Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, Ffn: 96, Vocab: 300, Ctx: 64);

    internal static (TinyLlama Tiny, string Path) TinyModel(bool vocab = true)
    {
        var tiny = TinyLlama.Random(Spec, seed: 3);
        var path = System.IO.Path.Combine(TestPaths.NewTempDir("cli"), "tiny.gguf");
        tiny.WriteGguf(path, vocab: vocab);
        return (tiny, path);
    }

    internal static Task<(int Rc, string Out, string Err)> Run(params string[] args) => CliRun.Run(args);

    /// <summary>--mmap (weights used where the OS maps the file) gives the ids of the default (weights read into memory),
    /// and the dumped logits bit for bit.</summary>
    [Fact]
    public async Task Mapped_weights_give_the_same_output_as_read_ones()
    {
        var (tiny, path) = TinyModel();
        var prompt = string.Join(' ', tiny.RandomPrompt(7, seed: 8));
        var dir = TestPaths.NewTempDir();
        string[] Args(string dump, params string[] extra) =>
            ["generate", "--model", path, "--prompt-ids", prompt, "--max-tokens", "8", "--temperature", "0", "--ignore-eos", "--json", "--dump-logits", dump, .. extra];
        string readDump = System.IO.Path.Combine(dir, "read.f32"), mapDump = System.IO.Path.Combine(dir, "map.f32");
        var read = await Run(Args(readDump));
        var mapped = await Run(Args(mapDump, "--mmap"));
        Assert.True(read.Rc == 0, read.Err);
        Assert.True(mapped.Rc == 0, mapped.Err);
        static string Ids(string json) { using var d = JsonDocument.Parse(json); return d.RootElement.GetProperty("ids").GetRawText(); }
        Assert.Equal(Ids(read.Out), Ids(mapped.Out));
        Assert.Equal(File.ReadAllBytes(readDump), File.ReadAllBytes(mapDump));
    }

    [Fact]
    public async Task Greedy_json_output_and_the_logits_dump_agree_with_the_library()
    {
        var (tiny, path) = TinyModel();
        var prompt = tiny.RandomPrompt(9, seed: 5);
        var dump = System.IO.Path.Combine(TestPaths.NewTempDir(), "logits.f32");
        var (rc, output, err) = await Run("generate", "--model", path, "--prompt-ids", string.Join(' ', prompt), "--max-tokens", "12",
                                          "--temperature", "0", "--ignore-eos", "--threads", "2", "--dump-logits", dump, "--json");
        Assert.True(rc == 0, err);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.Equal(prompt, root.GetProperty("prompt_ids").EnumerateArray().Select(x => x.GetInt32()));
        var ids = root.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        Assert.Equal(12, ids.Length);
        Assert.True(root.GetProperty("prefill_tokens_per_s").GetDouble() > 0);
        Assert.True(root.GetProperty("decode_tokens_per_s").GetDouble() > 0);
        Assert.Equal("length", root.GetProperty("stop_reason").GetString());

        using var model = LanguageModel.Load(path);
        var gen = new Generator(model.CreateState(), new Sampler(SamplingOptions.Greedy, Spec.Vocab), []);
        Assert.Equal(gen.Generate(prompt, 12).ToArray(), ids);

        // one row per prompt position, then one per generated token
        var bytes = File.ReadAllBytes(dump);
        Assert.Equal((prompt.Length + 12) * Spec.Vocab * 4, bytes.Length);
        var rows = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes);
        var expected = model.CreateState().Forward(prompt, allLogits: true).ToArray();
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - rows[i]) <= 1e-5f * Math.Max(1, Math.Abs(expected[i])), $"prompt logit {i}");
        // the row of generated token k is the logits after feeding it: its argmax is token k+1
        for (int k = 0; k + 1 < ids.Length; k++)
        {
            var row = rows.Slice((prompt.Length + k) * Spec.Vocab, Spec.Vocab);
            int best = 0;
            for (int i = 1; i < row.Length; i++) if (row[i] > row[best]) best = i;
            Assert.Equal(ids[k + 1], best);
        }
    }

    [Fact]
    public async Task Without_a_tokenizer_the_ids_are_streamed_as_text()
    {
        var (tiny, path) = TinyModel(vocab: false);
        var (rc, output, err) = await Run("generate", "--model", path, "--prompt-ids", "1 5 9", "--max-tokens", "4", "--temperature", "0", "--ignore-eos");
        Assert.True(rc == 0, err);
        Assert.Equal(4, output.Trim().Split(' ').Length);
        Assert.Contains("tok/s", err, StringComparison.Ordinal);
        _ = tiny;
    }

    [Fact]
    public async Task A_text_prompt_is_tokenized_with_the_gguf_vocabulary_and_the_output_decoded()
    {
        var (_, path) = TinyModel();
        var (rc, output, err) = await Run("generate", "--model", path, "--prompt", "hi there", "--max-tokens", "10", "--temperature", "0", "--ignore-eos", "--json");
        Assert.True(rc == 0, err);
        using var doc = JsonDocument.Parse(output);
        using var model = LanguageModel.Load(path);
        var promptIds = doc.RootElement.GetProperty("prompt_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        Assert.Equal(model.Tokenize("hi there"), promptIds);
        Assert.Equal(1, promptIds[0]); // BOS
        var ids = doc.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
        // decoded after the last prompt token (keeps a leading space), unless byte fallback merged them into U+FFFDs
        string full = model.Detokenize([promptIds[^1], .. ids]), ctx = model.Detokenize([promptIds[^1]]);
        string expected = full.StartsWith(ctx, StringComparison.Ordinal) ? full[ctx.Length..] : model.Detokenize(ids);
        Assert.Equal(expected, doc.RootElement.GetProperty("text").GetString());
    }

    [Fact]
    public async Task Speculative_decoding_prints_the_greedy_ids_and_reports_its_drafts()
    {
        var (tiny, path) = TinyModel();
        var part = tiny.RandomPrompt(8, seed: 6);
        string prompt = string.Join(' ', [.. part, .. part, .. part[..4]]);
        var (rc0, plainOut, err0) = await Run("generate", "--model", path, "--prompt-ids", prompt, "--max-tokens", "30", "--temperature", "0", "--ignore-eos", "--json");
        Assert.True(rc0 == 0, err0);
        var plain = JsonDocument.Parse(plainOut).RootElement;
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("speculative").ValueKind);

        // prompt lookup (greedy implied), then the model as its own draft: the same ids, fewer passes
        var (rc1, lookupOut, err1) = await Run("generate", "--model", path, "--prompt-ids", prompt, "--max-tokens", "30", "--ignore-eos", "--speculative", "--draft", "5", "--json");
        Assert.True(rc1 == 0, err1);
        var (rc2, selfOut, err2) = await Run("generate", "--model", path, "--prompt-ids", prompt, "--max-tokens", "30", "--ignore-eos", "--draft-model", path, "--json");
        Assert.True(rc2 == 0, err2);
        int[] Ids(JsonElement e) => [.. e.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32())];
        var lookup = JsonDocument.Parse(lookupOut).RootElement;
        var self = JsonDocument.Parse(selfOut).RootElement;
        Assert.Equal(Ids(plain), Ids(lookup));
        Assert.Equal(Ids(plain), Ids(self));
        var ls = lookup.GetProperty("speculative");
        Assert.Equal("prompt-lookup", ls.GetProperty("drafter").GetString());
        Assert.Equal(5, ls.GetProperty("max_draft").GetInt32());
        Assert.True(ls.GetProperty("drafted_tokens").GetInt32() > 0);
        var ss = self.GetProperty("speculative");
        Assert.Equal("draft-model", ss.GetProperty("drafter").GetString());
        Assert.Equal(ss.GetProperty("drafted_tokens").GetInt32(), ss.GetProperty("accepted_tokens").GetInt32());
        Assert.True(self.GetProperty("decode_steps").GetInt32() < plain.GetProperty("decode_steps").GetInt32());

        // the text form reports the drafts on stderr; sampling and a stray --draft are usage errors
        var (rc3, _, err3) = await Run("generate", "--model", path, "--prompt-ids", prompt, "--max-tokens", "8", "--speculative");
        Assert.True(rc3 == 0, err3);
        Assert.Contains("speculative (prompt-lookup, up to 8 per step)", err3, StringComparison.Ordinal);
        var (rc4, _, err4) = await Run("generate", "--model", path, "--prompt-ids", prompt, "--speculative", "--temperature", "0.7");
        Assert.Equal(2, rc4);
        Assert.Contains("--temperature 0", err4, StringComparison.Ordinal);
        var (rc5, _, err5) = await Run("generate", "--model", path, "--prompt-ids", prompt, "--draft", "3");
        Assert.Equal(2, rc5);
        Assert.Contains("--draft needs", err5, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_prompt_longer_than_the_context_is_a_usage_error_naming_both_numbers()
    {
        var (tiny, path) = TinyModel();
        var (rc, _, err) = await Run("generate", "--model", path, "--prompt-ids", string.Join(' ', tiny.RandomPrompt(70, 1)), "--max-tokens", "2");
        Assert.Equal(2, rc);
        Assert.Contains("the prompt has 70 tokens but the context holds 64", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_usage_is_reported_without_a_stack_trace()
    {
        var (_, path) = TinyModel();
        var (rc1, _, e1) = await Run("generate", "--model", path);
        Assert.Equal(2, rc1);
        Assert.Contains("exactly one of --prompt and --prompt-ids", e1, StringComparison.Ordinal);
        var (rc2, _, e2) = await Run("generate", "--model", path, "--prompt-ids", "1 2 999");
        Assert.Equal(2, rc2);
        Assert.Contains("token id 999 is outside the vocabulary of 300", e2, StringComparison.Ordinal);
        var (rc3, _, e3) = await Run("generate", "--model", TinyModel(vocab: false).Path, "--prompt", "hello");
        Assert.Equal(1, rc3);
        Assert.Contains("has no tokenizer", e3, StringComparison.Ordinal);
        var (rc4, _, e4) = await Run("generate", "--model", "/no/such.gguf", "--prompt-ids", "1");
        Assert.Equal(1, rc4);
        Assert.Contains("model not found: /no/such.gguf", e4, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", e1 + e2 + e3 + e4, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_model_and_default_the_error_says_no_default_model_is_installed()
    {
        var old = Environment.GetEnvironmentVariable("SHARPLM_MODEL");
        try
        {
            Environment.SetEnvironmentVariable("SHARPLM_MODEL", null);
            SharpLM.Cli.Commands.ModelCli.HomeOverride = TestPaths.NewTempDir();
            SharpLM.Cli.Commands.ModelCli.BundledModelPath = Path.Combine(TestPaths.NewTempDir(), "absent.gguf");
            var (rc, _, err) = await Run("generate", "--prompt", "hi");
            Assert.Equal(2, rc);
            Assert.Contains("no default model is installed", err, StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable("SHARPLM_MODEL", old);
            SharpLM.Cli.Commands.ModelCli.HomeOverride = null;
            SharpLM.Cli.Commands.ModelCli.BundledModelPath = Path.Combine(AppContext.BaseDirectory, "models", "default.gguf");
        }
    }

    [Fact]
    public async Task Without_model_generate_runs_the_bundled_default_model()
    {
        var old = Environment.GetEnvironmentVariable("SHARPLM_MODEL");
        try
        {
            Environment.SetEnvironmentVariable("SHARPLM_MODEL", null);
            SharpLM.Cli.Commands.ModelCli.HomeOverride = TestPaths.NewTempDir();
            var bundled = Path.Combine(TestPaths.RepoRoot, "models", "default.gguf");
            Assert.True(File.Exists(bundled), "models/default.gguf is the committed default model");
            Assert.Equal(Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "models", "default.gguf")), SharpLM.Cli.Commands.ModelCli.DefaultModelPath());
            var (rc, stdout, err) = await Run("generate", "--prompt", "The jury said", "--max-tokens", "12", "--temperature", "0", "--ignore-eos", "--json");
            Assert.True(rc == 0, err);
            using var doc = System.Text.Json.JsonDocument.Parse(stdout.Trim().Split('\n')[^1]);
            var ids = doc.RootElement.GetProperty("ids");
            Assert.Equal(12, ids.GetArrayLength());
            Assert.False(string.IsNullOrWhiteSpace(doc.RootElement.GetProperty("text").GetString()));
        }
        finally
        {
            Environment.SetEnvironmentVariable("SHARPLM_MODEL", old);
            SharpLM.Cli.Commands.ModelCli.HomeOverride = null;
        }
    }
}
