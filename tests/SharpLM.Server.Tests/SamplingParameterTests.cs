using System.Text.Json;

namespace SharpLM.Server.Tests;

/// <summary>The sampling fields of a chat request take effect: top_k 1 and min_p 1 leave only the most likely token
/// (so any temperature and seed give the greedy text), the three penalties change a greedy text that repeats itself,
/// and max_completion_tokens is max_tokens.</summary>
[Collection("server")]
public sealed class SamplingParameterTests(ServerFixture fixture)
{
    private async Task<(string Text, string[] Tokens)> ChatAsync(string fields)
    {
        var (status, body) = await fixture.Server.PostAsync("v1/chat/completions",
            $$"""{"model":"default","messages":[{"role":"user","content":"The jury said"}],"logprobs":true,{{fields}}}""");
        Assert.True(status == 200, body.ToString());
        var c = body.GetProperty("choices")[0];
        return (c.GetProperty("message").GetProperty("content").GetString()!,
                [.. c.GetProperty("logprobs").GetProperty("content").EnumerateArray().Select(t => t.GetProperty("token").GetString()!)]);
    }

    [Fact]
    public async Task Sampling_fields_take_effect()
    {
        var greedy = await ChatAsync("\"temperature\":0,\"max_tokens\":32");
        Assert.Equal(32, greedy.Tokens.Length);
        Assert.True(greedy.Tokens.Distinct().Count() < greedy.Tokens.Length, $"the greedy text does not repeat a token: {greedy.Text}");
        Assert.Equal(greedy.Text, (await ChatAsync("\"temperature\":1.5,\"top_k\":1,\"seed\":3,\"max_tokens\":32")).Text);
        Assert.Equal(greedy.Text, (await ChatAsync("\"temperature\":1.5,\"min_p\":1,\"seed\":4,\"max_tokens\":32")).Text);
        Assert.Equal(greedy.Text, (await ChatAsync("\"temperature\":0,\"max_completion_tokens\":32")).Text);
        foreach (var penalty in new[] { "\"frequency_penalty\":2", "\"presence_penalty\":2", "\"repeat_penalty\":1.5" })
        {
            var penalised = await ChatAsync("\"temperature\":0,\"max_tokens\":32," + penalty);
            Assert.True(penalised.Text != greedy.Text, $"{penalty} did not change '{greedy.Text}'");
        }
    }
}
