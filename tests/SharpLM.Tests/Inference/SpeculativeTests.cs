using SharpLM.Inference;
using SharpLM.Inference.Sampling;
using SharpLM.Models;
using SharpLM.Testing;
using SharpLM.Tests.Models;

namespace SharpLM.Tests.Inference;

public sealed class SpeculativeTests
{
    private static readonly TinySpec Spec = new("llama", Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, Ffn: 96, Vocab: 300, Ctx: 128);

    private static LanguageModel Model(out TinyLlama tiny, int seed = 12, int? ctx = null)
    {
        tiny = TinyLlama.Random(Spec, seed);
        return LlamaLayoutTests.FromHfMemory(tiny, new ModelLoadOptions { ContextSize = ctx ?? Spec.Ctx });
    }

    private static (int[] Ids, GenerationStats Stats, List<float[]> Rows) Run(LanguageModel m, int[] prompt, int n, SamplingOptions s, IDrafter? drafter, int[]? eos = null)
    {
        var rows = new List<float[]>();
        var gen = new Generator(m.CreateState(), new Sampler(s, m.Config.Vocab), eos ?? [], drafter);
        int[] ids = [.. gen.Generate(prompt, n, r => rows.Add(r.ToArray()))];
        return (ids, gen.Stats, rows);
    }

    /// <summary>A prompt that repeats itself, so that prompt lookup has something to find.</summary>
    private static int[] Repetitive(TinyLlama tiny, int seed)
    {
        var part = tiny.RandomPrompt(12, seed);
        return [.. part, .. part, .. part[..6]];
    }

    [Fact]
    public void A_multi_token_pass_gives_each_row_the_bits_of_the_token_evaluated_alone()
    {
        // the property speculative decoding's exactness rests on (below MatMul.GemmMinRows rows per pass)
        using var m = Model(out var tiny);
        var ids = tiny.RandomPrompt(20, 4);
        var alone = m.CreateState();
        alone.Forward(ids.AsSpan(0, 11), allLogits: false);
        var one = new List<float[]>();
        for (int i = 11; i < 20; i++) one.Add(alone.Forward(ids.AsSpan(i, 1), allLogits: false).ToArray());
        var batched = m.CreateState();
        batched.Forward(ids.AsSpan(0, 11), allLogits: false);
        var rows = batched.Forward(ids.AsSpan(11, 9), allLogits: true);
        for (int i = 0; i < 9; i++) Assert.Equal(one[i], rows.Slice(i * Spec.Vocab, Spec.Vocab).ToArray());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Prompt_lookup_gives_exactly_the_greedy_ids_and_rows(int seed)
    {
        using var m = Model(out var tiny);
        var prompt = Repetitive(tiny, seed);
        var plain = Run(m, prompt, 40, SamplingOptions.Greedy, null);
        var spec = Run(m, prompt, 40, SamplingOptions.Greedy, new PromptLookupDrafter(maxDraft: 6));
        Assert.Equal(plain.Ids, spec.Ids);
        Assert.Equal(plain.Rows.Count, spec.Rows.Count);
        for (int i = 0; i < plain.Rows.Count; i++) Assert.Equal(plain.Rows[i], spec.Rows[i]);
        Assert.True(spec.Stats.DraftedTokens > 0, "the repetitive prompt gave the drafter nothing to propose");
        Assert.Equal(spec.Stats.DecodeTokens, spec.Stats.DecodeSteps + spec.Stats.AcceptedTokens);
        Assert.Equal(40, spec.Stats.GeneratedTokens);
    }

    [Fact]
    public void Penalties_eos_and_the_token_limit_end_a_speculative_run_where_a_plain_one_ends()
    {
        using var m = Model(out var tiny);
        var prompt = Repetitive(tiny, 5);
        var penal = SamplingOptions.Greedy with { RepeatPenalty = 1.3f, RepeatLastN = 16, FrequencyPenalty = 0.2f };
        var free = Run(m, prompt, 30, penal, null).Ids;
        Assert.Equal(free, Run(m, prompt, 30, penal, new PromptLookupDrafter(maxDraft: 5)).Ids);
        // every early stop: an EOS at each generated position, and every token limit
        for (int stop = 0; stop < free.Length; stop += 3)
        {
            int[] eos = [free[stop]];
            Assert.Equal(Run(m, prompt, 30, penal, null, eos).Ids, Run(m, prompt, 30, penal, new PromptLookupDrafter(maxDraft: 5), eos).Ids);
        }
        for (int n = 0; n < 12; n++)
            Assert.Equal(free[..n], Run(m, prompt, n, penal, new PromptLookupDrafter(maxDraft: 8)).Ids);
    }

    [Fact]
    public void A_full_context_ends_a_speculative_run_where_a_plain_one_ends_and_the_cache_holds_what_was_generated()
    {
        using var m = Model(out var tiny, ctx: 48);
        var prompt = Repetitive(tiny, 6); // 30 tokens: 18 positions left
        var plain = Run(m, prompt, 100, SamplingOptions.Greedy, null).Ids;
        var state = m.CreateState();
        var gen = new Generator(state, new Sampler(SamplingOptions.Greedy, Spec.Vocab), [], new PromptLookupDrafter(maxDraft: 8));
        var ids = gen.Generate(prompt, 100).ToArray();
        Assert.Equal(plain, ids);
        Assert.Equal(prompt.Concat(ids).Take(state.Length), state.Tokens);
        // a consumer that stops early leaves only what it saw in the cache (accepted drafts beyond it are rolled back)
        var state2 = m.CreateState();
        var gen2 = new Generator(state2, new Sampler(SamplingOptions.Greedy, Spec.Vocab), [], new PromptLookupDrafter(maxDraft: 8));
        var seen = gen2.Generate(prompt, 100).Take(5).ToArray();
        Assert.Equal(plain[..5], seen);
        Assert.Equal(prompt.Length + 5, state2.Length);
        Assert.Equal(prompt.Concat(seen), state2.Tokens);
    }

    [Fact]
    public void The_model_as_its_own_draft_has_every_guess_accepted_and_a_different_draft_model_changes_nothing()
    {
        using var m = Model(out var tiny);
        using var other = Model(out _, seed: 99);
        var prompt = tiny.RandomPrompt(10, 7);
        var plain = Run(m, prompt, 33, SamplingOptions.Greedy, null);
        using (var self = new DraftModelDrafter(m, m.Config, maxDraft: 4))
        {
            var spec = Run(m, prompt, 33, SamplingOptions.Greedy, self);
            Assert.Equal(plain.Ids, spec.Ids);
            Assert.Equal(spec.Stats.DraftedTokens, spec.Stats.AcceptedTokens);
            Assert.True(spec.Stats.TokensPerStep > 4.5, $"{spec.Stats.TokensPerStep} tokens per step");
        }
        using (var draft = new DraftModelDrafter(other, m.Config, maxDraft: 3))
        {
            var spec = Run(m, prompt, 33, SamplingOptions.Greedy, draft);
            Assert.Equal(plain.Ids, spec.Ids);
            Assert.True(spec.Stats.DraftedTokens > 0);
            Assert.True(spec.Stats.AcceptedTokens < spec.Stats.DraftedTokens, "a random draft model should miss sometimes");
        }
    }

    [Fact]
    public void Prompt_lookup_proposes_what_followed_the_latest_longest_match()
    {
        var d = new PromptLookupDrafter(maxDraft: 3, maxNgram: 2);
        var draft = new List<int>();
        d.Propose([1, 2, 3, 9, 1, 2, 4, 5, 6, 7, 1, 2], 8, draft);
        Assert.Equal([4, 5, 6], draft); // "1 2" last occurred before "4 5 6"
        draft.Clear();
        d.Propose([5, 6, 7, 8, 6], 8, draft); // no bigram match: the unigram "6"
        Assert.Equal([7, 8, 6], draft);
        draft.Clear();
        d.Propose([1, 2, 3], 8, draft);
        Assert.Empty(draft);
        d.Propose([1, 2, 1], 1, draft);
        Assert.Equal([2], draft);
    }

    [Fact]
    public void Sampling_and_a_foreign_vocabulary_are_refused_with_clear_messages()
    {
        using var m = Model(out _);
        var hot = SamplingOptions.Default with { Temperature = 0.8f };
        var e = Assert.Throws<ArgumentException>(() => new Generator(m.CreateState(), new Sampler(hot, Spec.Vocab), [], new PromptLookupDrafter()));
        Assert.Contains("temperature 0", e.Message);
        var small = TinyLlama.Random(Spec with { Vocab = 200 }, 3);
        using var other = LlamaLayoutTests.FromHfMemory(small, new ModelLoadOptions { ContextSize = 64 });
        var v = Assert.Throws<ArgumentException>(() => new DraftModelDrafter(other, m.Config));
        Assert.Contains("same tokenizer", v.Message);
    }

    [Fact]
    public void On_the_quantized_default_model_prompt_lookup_is_exact_and_accepts_guesses()
    {
        // 8-bit activations for the Q8_0 weights: the matvec quantizes each row alone, so the rows still match
        using var m = LanguageModel.Load(Path.Combine(TestPaths.RepoRoot, "models", "default.gguf"));
        var prompt = m.Tokenize("The jury said that the city of Atlanta had done a fine job. The jury said that the city of Atlanta");
        var plain = Run(m, prompt, 48, SamplingOptions.Greedy, null);
        var spec = Run(m, prompt, 48, SamplingOptions.Greedy, new PromptLookupDrafter());
        Assert.Equal(plain.Ids, spec.Ids);
        Assert.True(spec.Stats.AcceptedTokens > 0, "prompt lookup kept no guess on a prompt that repeats itself");
        Assert.True(spec.Stats.DecodeSteps < plain.Stats.DecodeSteps);
    }

    [Fact]
    public async Task GenerateAsync_with_a_drafter_streams_the_greedy_text()
    {
        using var m = LanguageModel.Load(Path.Combine(TestPaths.RepoRoot, "models", "default.gguf"));
        const string prompt = "The jury said that the city of Atlanta had done a fine job. The jury said that";
        var greedy = GenerationOptions.Default with { MaxTokens = 32, Sampling = SamplingOptions.Greedy };
        var plain = new System.Text.StringBuilder();
        await foreach (var piece in m.GenerateAsync(prompt, greedy)) plain.Append(piece);
        var spec = new System.Text.StringBuilder();
        await foreach (var piece in m.GenerateAsync(prompt, greedy with { Drafter = new PromptLookupDrafter() })) spec.Append(piece);
        Assert.Equal(plain.ToString(), spec.ToString());
        Assert.Throws<ArgumentException>(() => m.GenerateAsync(prompt, GenerationOptions.Default with { Drafter = new PromptLookupDrafter() }));
    }
}
