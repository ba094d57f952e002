using System.ClientModel;
using System.Text;
using Microsoft.Extensions.AI;
using OllamaSharp;
using OllamaSharp.Models;
using OllamaSharp.Models.Chat;
using OpenAI;

namespace SharpLM.Server.Tests;

/// <summary>Microsoft.Extensions.AI's IChatClient over the OpenAI SDK, and OllamaSharp, against the server.</summary>
[Collection("server")]
public sealed class OtherClientTests(ServerFixture fixture)
{
    private TestServer S => fixture.Server;

    private IChatClient Meai => new OpenAI.Chat.ChatClient("default", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = S.V1 }).AsIChatClient();

    [Fact]
    public async Task Extensions_AI_chat_client_gets_the_same_text_whole_and_streamed_with_usage()
    {
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 16 };
        var whole = await Meai.GetResponseAsync("The grand jury", options);
        Assert.Equal(ChatFinishReason.Length, whole.FinishReason);
        Assert.Equal(16, whole.Usage?.OutputTokenCount);
        var sb = new StringBuilder();
        UsageDetails? usage = null;
        await foreach (var u in Meai.GetStreamingResponseAsync("The grand jury", options))
        {
            sb.Append(u.Text);
            foreach (var c in u.Contents) if (c is UsageContent uc) usage = uc.Details;
        }
        Assert.Equal(whole.Text, sb.ToString());
        Assert.Equal(16, usage?.OutputTokenCount);
    }

    [Fact]
    public async Task Extensions_AI_structured_output_deserializes()
    {
        var response = await Meai.GetResponseAsync<Person>("Describe a person", new ChatOptions { Temperature = 0, MaxOutputTokens = 200 });
        Assert.True(response.TryGetResult(out var person), response.Text);
        Assert.NotNull(person!.Name);
    }

    public sealed record Person(string Name, int Age);

    private OllamaApiClient Ollama => new(new HttpClient { BaseAddress = S.Url, Timeout = TimeSpan.FromMinutes(2) }, "default");

    [Fact]
    public async Task OllamaSharp_lists_shows_and_versions()
    {
        var models = (await Ollama.ListLocalModelsAsync()).ToList();
        Assert.Contains(models, m => m.Name == "default:latest");
        Assert.Contains(models, m => m.Name == "bert_mlm:latest");
        Assert.All(models, m => Assert.True(m.Size > 0));
        var show = await Ollama.ShowModelAsync("default");
        Assert.Equal("llama", show.Details.Family);
        Assert.Contains("completion", show.Capabilities ?? []);
        Assert.False(string.IsNullOrEmpty(await Ollama.GetVersionAsync() is { } v ? v.ToString() : null));
    }

    [Fact]
    public async Task OllamaSharp_generate_streams_and_ends_with_counters()
    {
        var sb = new StringBuilder();
        GenerateResponseStream? last = null;
        int pieces = 0;
        await foreach (var r in Ollama.GenerateAsync(new GenerateRequest { Prompt = "The jury said", Options = new RequestOptions { Temperature = 0, NumPredict = 12 } }))
        {
            sb.Append(r?.Response);
            last = r;
            pieces++;
        }
        Assert.True(pieces > 3);
        var done = Assert.IsType<GenerateDoneResponseStream>(last);
        Assert.True(done.Done);
        Assert.Equal(12, done.EvalCount);
        Assert.True(done.PromptEvalCount > 0);
        Assert.True(done.TotalDuration > 0);
#pragma warning disable CS0618 // context is deprecated by Ollama but still sent
        Assert.NotEmpty(done.Context);
#pragma warning restore CS0618

        // /v1/completions with the same prompt and settings gives the same text (no template on this model: raw)
        var (status, body) = await S.PostAsync("v1/completions", """{"model":"default","prompt":"The jury said","max_tokens":12,"temperature":0}""");
        Assert.Equal(200, status);
        Assert.Equal(body.GetProperty("choices")[0].GetProperty("text").GetString(), sb.ToString());
    }

    [Fact]
    public async Task OllamaSharp_chat_streams_the_same_text_as_openai_chat()
    {
        var sb = new StringBuilder();
        ChatResponseStream? last = null;
        await foreach (var r in Ollama.ChatAsync(new ChatRequest
        {
            Model = "default",
            Messages = [new Message(OllamaSharp.Models.Chat.ChatRole.User, "Hello there")],
            Options = new RequestOptions { Temperature = 0, NumPredict = 10 },
        }))
        {
            sb.Append(r?.Message?.Content);
            last = r;
        }
        Assert.True(last!.Done);
        var (status, body) = await S.PostAsync("v1/chat/completions", """{"model":"default","messages":[{"role":"user","content":"Hello there"}],"max_tokens":10,"temperature":0}""");
        Assert.Equal(200, status);
        Assert.Equal(body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(), sb.ToString());
    }

    [Fact]
    public async Task OllamaSharp_embeds_several_texts()
    {
        var r = await Ollama.EmbedAsync(new EmbedRequest { Model = "bert_mlm", Input = ["the cat sat", "a dog ran", "the cat sat"] });
        Assert.Equal(3, r.Embeddings.Count);
        Assert.Equal(r.Embeddings[0], r.Embeddings[2]);
        Assert.NotEqual(r.Embeddings[0], r.Embeddings[1]);
    }
}
