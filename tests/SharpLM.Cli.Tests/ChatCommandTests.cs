using SharpLM.Cli.Commands;
using SharpLM.Testing;
using SharpLM.Tests.Models;

namespace SharpLM.Cli.Tests;

[Collection("chat-input")]
public sealed class ChatCommandTests
{
    [Fact]
    public async Task Two_turns_stream_two_replies_and_the_second_reuses_the_cache()
    {
        var dir = MistralFolder("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}");
        var old = ChatCommand.Input;
        try
        {
            ChatCommand.Input = () => new StringReader("Hello\n\nHow are you?\n/exit\nnot read\n");
            var (rc, output, err) = await GenerateCommandTests.Run("chat", "--model", dir, "--temperature", "0", "--max-tokens", "6", "--system", "Be brief.");
            Assert.True(rc == 0, err);
            var stats = err.Split('\n').Where(l => l.Contains(" generated at ", StringComparison.Ordinal)).ToArray();
            Assert.Equal(2, stats.Length);
            Assert.Contains("(0 reused)", stats[0], StringComparison.Ordinal);
            Assert.DoesNotContain("(0 reused)", stats[1], StringComparison.Ordinal);
        }
        finally
        {
            ChatCommand.Input = old;
        }
    }

    /// <summary>A tiny random model with Mistral-7B's tokenizer.json and the given chat template, as a Hugging Face folder.</summary>
    private static string MistralFolder(string chatTemplate)
    {
        var spec = new TinySpec("mistral", Dim: 64, Layers: 1, Heads: 2, KvHeads: 1, Ffn: 64, Vocab: 32000, Ctx: 256, Tied: true);
        var tiny = TinyLlama.Random(spec, seed: 4);
        var dir = TestPaths.NewTempDir("chat");
        File.WriteAllText(Path.Combine(dir, "config.json"), """
            {"architectures": ["MistralForCausalLM"], "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
             "num_key_value_heads": 1, "intermediate_size": 64, "vocab_size": 32000, "max_position_embeddings": 256,
             "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2}
            """);
        var w = new SharpLM.Formats.Safetensors.SafetensorsWriter();
        foreach (var (name, (shape, data)) in tiny.Tensors) w.Add(name, shape, data);
        w.Write(Path.Combine(dir, "model.safetensors"));
        File.Copy(TestPaths.Asset("npm", "tokenizer-llama2", "models", "tokenizer.json"), Path.Combine(dir, "tokenizer.json"));
        var config = new System.Text.Json.Nodes.JsonObject { ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["chat_template"] = chatTemplate };
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
        return dir;
    }

    /// <summary>A model whose chat template is broken (it comes from a stranger's file) still generates; chat is a clear
    /// error naming the file, never a stack trace; a template that recurses without end is the same kind of error.</summary>
    [Theory]
    [InlineData("{% for m in messages %}{{ m.content }", "does not parse")]
    [InlineData("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursed too deeply")]
    [InlineData("{{ raise_exception('Conversation roles must alternate') }}", "roles must alternate")]
    public async Task A_broken_chat_template_is_a_clear_error_and_generate_still_works(string template, string expected)
    {
        var dir = MistralFolder(template);
        var (rc, _, err) = await GenerateCommandTests.Run("generate", "--model", dir, "--prompt", "Hello", "--max-tokens", "3", "--temperature", "0");
        Assert.True(rc == 0, err);
        var old = ChatCommand.Input;
        try
        {
            ChatCommand.Input = () => new StringReader("Hello\n/exit\n");
            (rc, _, err) = await GenerateCommandTests.Run("chat", "--model", dir, "--max-tokens", "3");
        }
        finally
        {
            ChatCommand.Input = old;
        }
        Assert.Equal(1, rc);
        Assert.Contains("tokenizer_config.json", err, StringComparison.Ordinal);
        Assert.Contains(expected, err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
    }
}
