using SharpLM.Inference;
using SharpLM.Inference.ChatTemplates;
using SharpLM.Inference.Sampling;
using SharpLM.Models;
using SharpLM.Testing;
using SharpLM.Tests.Models;
using SharpLM.Tokenizers;

namespace SharpLM.Tests.Inference;

/// <summary>
/// A tiny random model in a Hugging Face folder with a real tokenizer.json (Mistral-7B's 32000-token vocabulary from the
/// test assets) and a chat template: text in, text out.
/// </summary>
public sealed class ChatAndStreamingTests
{
    internal const string Template =
        "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}[INST] {{ message['content'] }} [/INST]" +
        "{% elif message['role'] == 'system' %}<<SYS>>{{ message['content'] }}<</SYS>>{% else %}{{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}";

    internal static string MistralFolder(int ctx = 256)
    {
        var tokenizer = TestPaths.Asset("npm", "tokenizer-llama2", "models", "tokenizer.json");
        var spec = new TinySpec("mistral", Dim: 64, Layers: 2, Heads: 4, KvHeads: 1, Ffn: 128, Vocab: 32000, Ctx: ctx, Tied: true);
        var tiny = TinyLlama.Random(spec, seed: 8);
        var dir = LlamaHfFolderTests.WriteHfFolder(tiny);
        File.Copy(tokenizer, Path.Combine(dir, "tokenizer.json"));
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["chat_template"] = Template,
        }));
        return dir;
    }

    [Fact]
    public async Task Streamed_text_is_the_decoded_greedy_ids()
    {
        var dir = MistralFolder();
        using var model = LanguageModel.Load(dir);
        Assert.Equal("mistral", model.Config.Architecture);
        var tok = Tokenizer.FromFile(Path.Combine(dir, "tokenizer.json"));
        var prompt = "The quick brown fox";
        var ids = tok.EncodeToIds(prompt);
        Assert.Equal(ids, model.Tokenize(prompt));
        var options = GenerationOptions.Default with { MaxTokens = 24, Sampling = SamplingOptions.Greedy };
        var pieces = new List<string>();
        await foreach (var p in model.GenerateAsync(prompt, options)) pieces.Add(p);

        var gen = new Generator(model.CreateState(), new Sampler(SamplingOptions.Greedy, 32000), model.Config.EosTokenIds);
        var outIds = gen.Generate(ids, 24).ToArray();
        var expected = tok.Decode([ids[^1], .. outIds])[tok.Decode([ids[^1]]).Length..];
        Assert.Equal(expected, string.Concat(pieces));
        Assert.True(pieces.Count > 1, "the text should arrive in pieces");
    }

    [Fact]
    public void A_chat_turn_reuses_the_cached_prefix_and_replies_like_a_fresh_generation()
    {
        var dir = MistralFolder();
        using var model = LanguageModel.Load(dir);
        Assert.NotNull(model.ChatTemplate);
        var options = GenerationOptions.Default with { MaxTokens = 12, Sampling = SamplingOptions.Greedy };
        var session = new ChatSession(model);
        session.Messages.Add(new ChatTurn("system", "Be brief."));
        var first = string.Concat(session.Send("Hello there", options));
        Assert.Equal(0, session.LastReusedTokens);
        var second = string.Concat(session.Send("And again?", options));
        Assert.True(session.LastReusedTokens > 5, $"reused {session.LastReusedTokens} tokens");
        Assert.Equal(5, session.Messages.Count);
        Assert.Equal(first, session.Messages[2].Content);

        // the second reply equals a fresh generation on the whole rendered conversation
        var fresh = new ChatSession(model);
        fresh.Messages.AddRange(session.Messages.Take(4));
        var again = string.Concat(fresh.Reply(options));
        Assert.Equal(second, again);
    }

    [Fact]
    public void Without_a_chat_template_the_session_says_so()
    {
        var dir = MistralFolder();
        File.Delete(Path.Combine(dir, "tokenizer_config.json"));
        using var model = LanguageModel.Load(dir);
        var e = Assert.Throws<InvalidOperationException>(() => new ChatSession(model));
        Assert.Contains("has no chat template", e.Message, StringComparison.Ordinal);
    }
}
