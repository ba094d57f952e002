using SharpLM.Inference;
using SharpLM.Inference.Sampling;
using SharpLM.Models;
using SharpLM.Tests.Models;

namespace SharpLM.Tests.Inference;

public sealed class GeneratorTests
{
    private static readonly TinySpec Spec = new("llama", Dim: 64, Layers: 2, Heads: 4, KvHeads: 2, Ffn: 96, Vocab: 300, Ctx: 128);

    private static LanguageModel Model(out TinyLlama tiny)
    {
        tiny = TinyLlama.Random(Spec, seed: 12);
        return LlamaLayoutTests.FromHfMemory(tiny, new ModelLoadOptions { ContextSize = Spec.Ctx });
    }

    private static int[] Run(LanguageModel m, int[] prompt, int n, SamplingOptions s, params int[] eos) =>
        [.. new Generator(m.CreateState(), new Sampler(s, Spec.Vocab), eos).Generate(prompt, n)];

    [Fact]
    public void An_eos_id_ends_generation_and_is_not_returned()
    {
        using var m = Model(out var tiny);
        var prompt = tiny.RandomPrompt(10, 1);
        var free = Run(m, prompt, 20, SamplingOptions.Greedy);
        Assert.Equal(20, free.Length);
        int stopAt = Array.FindIndex(free, x => Array.IndexOf(free, x) == Array.LastIndexOf(free, x) && x != free[0]);
        Assert.True(stopAt > 0, "need a token that appears once and not first");
        var stopped = Run(m, prompt, 20, SamplingOptions.Greedy, free[stopAt]);
        Assert.Equal(free[..stopAt], stopped);
        Assert.Empty(Run(m, prompt, 20, SamplingOptions.Greedy, free[0]));
        Assert.Empty(Run(m, prompt, 0, SamplingOptions.Greedy));
    }

    [Fact]
    public void A_seed_reproduces_a_sampled_run_and_another_seed_changes_it()
    {
        using var m = Model(out var tiny);
        var prompt = tiny.RandomPrompt(8, 2);
        var hot = SamplingOptions.Default with { Temperature = 1.5f, TopK = 0, TopP = 1, MinP = 0 };
        var a = Run(m, prompt, 24, hot with { Seed = 42 });
        var b = Run(m, prompt, 24, hot with { Seed = 42 });
        var c = Run(m, prompt, 24, hot with { Seed = 43 });
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void Stats_count_prompt_and_generated_tokens()
    {
        using var m = Model(out var tiny);
        var gen = new Generator(m.CreateState(), new Sampler(SamplingOptions.Greedy, Spec.Vocab), []);
        _ = gen.Generate(tiny.RandomPrompt(13, 3), 7).ToList();
        Assert.Equal(13, gen.Stats.PromptTokens);
        Assert.Equal(7, gen.Stats.GeneratedTokens);
        Assert.Equal(6, gen.Stats.DecodeSteps); // the last token is sampled but not evaluated
        Assert.True(gen.Stats.PrefillSeconds > 0 && gen.Stats.DecodeSeconds > 0);
    }
}

public sealed class GgufChatTemplateTests
{
    [Fact]
    public void A_gguf_chat_template_renders_with_the_vocab_bos_once_and_a_chat_turn_runs()
    {
        var spec = new TinySpec("llama", Dim: 64, Layers: 1, Heads: 2, KvHeads: 1, Ffn: 64, Vocab: 300, Ctx: 128);
        var tiny = TinyLlama.Random(spec, seed: 5);
        var path = Path.Combine(SharpLM.Testing.TestPaths.NewTempDir(), "chat.gguf");
        tiny.WriteGguf(path, tweak: w => w.Set("tokenizer.chat_template", ChatAndStreamingTests.Template));
        using var model = LanguageModel.Load(path);
        Assert.NotNull(model.ChatTemplate);
        Assert.Equal("<s>", model.ChatTemplate!.BosToken);
        Assert.Equal("</s>", model.ChatTemplate.EosToken);
        var session = new ChatSession(model);
        session.Messages.Add(new SharpLM.Inference.ChatTemplates.ChatTurn("user", "hi"));
        var ids = session.EncodeConversation();
        Assert.Equal(1, ids[0]);
        Assert.Single(ids, 1);
        session.Messages.Clear();
        var reply = string.Concat(session.Send("hi", GenerationOptions.Default with { MaxTokens = 5, Sampling = SamplingOptions.Greedy }));
        Assert.Equal(2, session.Messages.Count);
        Assert.Equal(reply, session.Messages[1].Content);
        Assert.True(session.LastStats!.GeneratedTokens is > 0 and <= 5);
    }
}
