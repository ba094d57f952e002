using Microsoft.Extensions.AI;
using SharpLM.Inference;
using SharpLM.Inference.ChatTemplates;
using SharpLM.Inference.Sampling;
using SharpLM.Models;

namespace SharpLM.Tests.Inference;

public sealed class LlamaChatClientTests
{
    [Fact]
    public async Task The_reply_is_the_chat_session_reply_and_options_are_honoured()
    {
        var dir = ChatAndStreamingTests.MistralFolder();
        using var model = LanguageModel.Load(dir);
        using var client = new SharpLMChatClient(model);
        var opts = new ChatOptions { Temperature = 0, MaxOutputTokens = 10 };
        ChatMessage[] messages = [new(ChatRole.System, "Be brief."), new(ChatRole.User, "Hello there")];
        var response = await client.GetResponseAsync(messages, opts);

        var session = new ChatSession(model);
        session.Messages.Add(new ChatTurn("system", "Be brief."));
        var expected = string.Concat(session.Send("Hello there", GenerationOptions.Default with { MaxTokens = 10, Sampling = SamplingOptions.Greedy }));
        Assert.Equal(expected, response.Text);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.Equal(10, response.Usage?.OutputTokenCount);

        // streaming gives the same text in pieces; a second call reuses the cached prefix
        var pieces = new List<string>();
        await foreach (var u in client.GetStreamingResponseAsync(messages, opts)) if (u.Text.Length > 0) pieces.Add(u.Text);
        Assert.Equal(expected, string.Concat(pieces));
        Assert.Same(model, client.GetService(typeof(LanguageModel)));
        Assert.NotNull(client.GetService(typeof(ChatClientMetadata)));
    }
}
