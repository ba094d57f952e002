using LLama.Native;
using SharpLM.Inference;
using SharpLM.Models;
using SharpLM.Tensors;
using SharpLM.Testing;
using SharpLM.Tests.Models;
using Xunit.Abstractions;

namespace SharpLM.Tests.Inference;

/// <summary>
/// The F16 and Q8_0 KV caches: their size, their accuracy against the exact F32 cache (logits over a prompt and a greedy
/// continuation; bounds a few times the measured error, printed), against llama.cpp's own F16 cache, and the refusals.
/// </summary>
public sealed class KvCacheTests(ITestOutputHelper output)
{
    private static string TinyPath(string shape, int seed = 21)
    {
        var spec = LlamaParityTests.Shape(shape);
        var tiny = TinyLlama.Random(spec, seed: seed);
        var path = Path.Combine(TestPaths.NewTempDir(), "tiny.gguf");
        tiny.WriteGguf(path, DType.F32);
        return path;
    }

    private static (float[] Logits, int[] Greedy) Run(string path, DType kv, int[] prompt, int n)
    {
        using var model = LanguageModel.Load(path, new ModelLoadOptions { ContextSize = 128, BatchSize = 64, KvCacheType = kv });
        var logits = LlamaParityTests.OurLogits(model, prompt);
        return (logits, LlamaParityTests.OurGreedy(model, prompt, n));
    }

    [Theory]
    // measured on this model: F16 max |diff| / max |logit| 1.0e-3, Q8_0 2.0e-2; greedy identical for 24 of 24 (both)
    [InlineData(DType.F16, 4e-3)]
    [InlineData(DType.Q8_0, 6e-2)]
    public void A_compressed_cache_stays_within_its_stated_error_of_the_exact_one(DType kv, double tolerance)
    {
        var path = TinyPath("hs64-gqa4");
        int[] prompt = [.. Enumerable.Range(0, 40).Select(i => (i * 37 + 5) % 300)];
        var exact = Run(path, DType.F32, prompt, 24);
        var compressed = Run(path, kv, prompt, 24);
        double scale = exact.Logits.Max(Math.Abs), worst = 0;
        for (int i = 0; i < exact.Logits.Length; i++) worst = Math.Max(worst, Math.Abs(exact.Logits[i] - compressed.Logits[i]) / scale);
        int same = 0;
        while (same < exact.Greedy.Length && exact.Greedy[same] == compressed.Greedy[same]) same++;
        output.WriteLine($"{kv} KV cache vs F32: max |diff| / max |logit| {worst:E2}; greedy identical for {same} of {exact.Greedy.Length}");
        Assert.True(worst < tolerance, $"{kv} KV cache: logits differ from the exact cache by {worst:E2} of the largest (tolerance {tolerance:E0})");
        Assert.True(worst > 0, $"{kv} KV cache: the logits should differ from the exact cache (is the cache rounding?)");
    }

    /// <summary>SharpLM's F16 cache against llama.cpp's (which also rounds the query and the probabilities to f16 in its
    /// F16 attention path, so the agreement is looser than between the two F32 paths).</summary>
    [Fact]
    public void The_f16_cache_agrees_with_llama_cpps_f16_cache()
    {
        var path = TinyPath("hs64-gqa4");
        int[] prompt = [.. Enumerable.Range(0, 33).Select(i => (i * 11 + 3) % 300)];
        using var model = LanguageModel.Load(path, new ModelLoadOptions { ContextSize = 128, BatchSize = 64, KvCacheType = DType.F16 });
        var ours = LlamaParityTests.OurLogits(model, prompt);
        using var cpp = new LlamaCppOracle(path, 128, kvType: GGMLType.GGML_TYPE_F16);
        var expected = cpp.Logits(prompt);
        int v = model.Config.Vocab;
        double rel = LlamaParityTests.MaxRelativeDiff(expected, r => ours.AsSpan(r * v, v), out int row);
        output.WriteLine($"F16 KV cache, SharpLM vs llama.cpp: max |diff| / max |logit| {rel:E2} (row {row})");
        // measured 1.8e-3
        Assert.True(rel < 6e-3, $"F16 KV cache: SharpLM and llama.cpp differ by {rel:E2} of the largest logit at row {row}");
    }

    [Fact]
    public void The_cache_takes_the_bytes_of_its_type()
    {
        var c = SharpLM.Training.TrainModel.NewConfig("llama", 64, 256, 2, 4, 4, 64, 10); // KVH*HS = 256
        var f32 = new KvCache(c, 10, 4, DType.F32);
        var f16 = new KvCache(c, 10, 4, DType.F16);
        var q8 = new KvCache(c, 10, 4, DType.Q8_0);
        Assert.Equal(2L * 2 * 10 * 256 * 4, f32.Bytes);
        Assert.Equal(f32.Bytes / 2, f16.Bytes);
        Assert.Equal(f32.Bytes * 34 / 128, q8.Bytes);
    }

    [Fact]
    public void Unsupported_cache_types_are_refused_with_the_reason()
    {
        var path = TinyPath("hs32-mha");
        var e = Assert.Throws<ArgumentException>(() => LanguageModel.Load(path, new ModelLoadOptions { KvCacheType = DType.Q4_K }));
        Assert.Contains("F16 or Q8_0", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new KvCache(SharpLM.Training.TrainModel.NewConfig("llama", 64, 48, 1, 1, 1, 64, 4), 4, 4, DType.Q8_0)); // HS 48
        using var ok = LanguageModel.Load(path, new ModelLoadOptions { KvCacheType = DType.Q8_0, ContextSize = 16 }); // HS 32: allowed
        Assert.Equal(DType.Q8_0, ok.CreateState().Cache.Type);
    }

    /// <summary>With a compressed cache a sequence still gives exactly its own ids when batched with others, and a fork
    /// continues as the recomputed prefix.</summary>
    [Theory]
    [InlineData(DType.F16)]
    [InlineData(DType.Q8_0)]
    public void Batched_sequences_and_forks_keep_their_own_results_with_a_compressed_cache(DType kv)
    {
        var path = TinyPath("hs64-gqa4");
        using var model = LanguageModel.Load(path, new ModelLoadOptions { ContextSize = 96, BatchSize = 64, KvCacheType = kv });
        int[][] prompts = [[5, 9, 2], [.. Enumerable.Range(1, 17)], [7, 7, 7, 7, 7, 7]];
        var alone = prompts.Select(p => LlamaParityTests.OurGreedy(model, p, 10)).ToArray();
        using var batch = model.CreateBatch();
        var seqs = prompts.Select(_ => batch.AddSequence()).ToArray();
        batch.Decode([.. seqs.Select((s, i) => new SequenceInput(s, prompts[i]))]);
        var ids = prompts.Select(_ => new List<int>()).ToArray();
        for (int step = 0; step < 10; step++)
        {
            var inputs = new List<SequenceInput>();
            for (int k = 0; k < seqs.Length; k++)
            {
                var l = seqs[k].Logits;
                int next = 0;
                for (int i = 1; i < l.Length; i++) if (l[i] > l[next]) next = i;
                ids[k].Add(next);
                inputs.Add(new SequenceInput(seqs[k], new[] { next }));
            }
            batch.Decode([.. inputs]);
        }
        for (int k = 0; k < prompts.Length; k++) Assert.Equal(alone[k], ids[k]);
        var fork = batch.Fork(seqs[1], prompts[1].Length);
        var fresh = batch.AddSequence();
        batch.Decode([new(fresh, prompts[1])]);
        batch.Decode([new(fork, new[] { 42 }), new(fresh, new[] { 42 })]);
        Assert.Equal(fresh.Logits.ToArray(), fork.Logits.ToArray());
    }
}
