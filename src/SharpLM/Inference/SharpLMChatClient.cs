using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using SharpLM.Inference.ChatTemplates;
using SharpLM.Models;

namespace SharpLM.Inference;

/// <summary>
/// <see cref="IChatClient"/> (Microsoft.Extensions.AI) over a local <see cref="LanguageModel"/>: renders the messages with
/// the model's chat template and generates the reply, reusing the KV cache for the part of the conversation it has
/// already seen. Calls are serialized (one sequence at a time). Maps ChatOptions: Temperature, TopP, TopK,
/// MaxOutputTokens, Seed, StopSequences, PresencePenalty, FrequencyPenalty.
/// <code>
/// using var model = LanguageModel.Load("qwen2.5-0.5b-instruct.gguf");
/// IChatClient client = new SharpLMChatClient(model);
/// var reply = await client.GetResponseAsync("Say hello");
/// </code>
/// </summary>
public sealed class SharpLMChatClient : IChatClient
{
    private readonly LanguageModel _model;
    private readonly ChatSession _session;
    private readonly SemaphoreSlim _gate = new(1, 1);

    public SharpLMChatClient(LanguageModel model, GenerationOptions? defaults = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _model = model;
        _session = new ChatSession(model);
        Defaults = defaults ?? GenerationOptions.Default with { MaxTokens = 512 };
        Metadata = new ChatClientMetadata("sharplm", null, Path.GetFileName(model.Path));
    }

    /// <summary>Options used where a request's ChatOptions say nothing.</summary>
    public GenerationOptions Defaults { get; }

    public ChatClientMetadata Metadata { get; }

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var text = new System.Text.StringBuilder();
        ChatFinishReason? finish = null;
        UsageDetails? usage = null;
        await foreach (var u in GetStreamingResponseAsync(messages, options, cancellationToken).ConfigureAwait(false))
        {
            text.Append(u.Text);
            finish ??= u.FinishReason;
            foreach (var c in u.Contents) if (c is UsageContent uc) usage = uc.Details;
        }
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, text.ToString()))
        {
            FinishReason = finish,
            Usage = usage,
            ModelId = Metadata.DefaultModelId,
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
                                                                                [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var gen = Map(options);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _session.Messages.Clear();
            foreach (var m in messages) _session.Messages.Add(new ChatTurn(m.Role.Value, m.Text));
            string id = Guid.NewGuid().ToString("N");
            foreach (var piece in _session.Reply(gen, cancellationToken))
            {
                yield return new ChatResponseUpdate(ChatRole.Assistant, piece) { ResponseId = id, ModelId = Metadata.DefaultModelId };
                await Task.Yield();
            }
            var stats = _session.LastStats;
            bool length = stats != null && stats.GeneratedTokens >= gen.MaxTokens;
            var usage = new UsageDetails
            {
                InputTokenCount = stats?.PromptTokens + _session.LastReusedTokens,
                OutputTokenCount = stats?.GeneratedTokens,
                TotalTokenCount = stats?.PromptTokens + _session.LastReusedTokens + stats?.GeneratedTokens,
            };
            yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(usage)])
            {
                ResponseId = id,
                ModelId = Metadata.DefaultModelId,
                FinishReason = length ? ChatFinishReason.Length : ChatFinishReason.Stop,
            };
        }
        finally
        {
            _gate.Release();
        }
    }

    private GenerationOptions Map(ChatOptions? o)
    {
        if (o is null) return Defaults;
        var s = Defaults.Sampling;
        s = s with
        {
            Temperature = o.Temperature ?? s.Temperature,
            TopP = o.TopP ?? s.TopP,
            TopK = o.TopK ?? s.TopK,
            Seed = o.Seed is long seed ? unchecked((ulong)seed) : s.Seed,
            StopStrings = o.StopSequences is { Count: > 0 } stops ? [.. stops] : s.StopStrings,
            PresencePenalty = o.PresencePenalty ?? s.PresencePenalty,
            FrequencyPenalty = o.FrequencyPenalty ?? s.FrequencyPenalty,
        };
        return Defaults with { Sampling = s, MaxTokens = o.MaxOutputTokens ?? Defaults.MaxTokens };
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return Metadata;
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType.IsInstanceOfType(_model)) return _model;
        return null;
    }

    public void Dispose() => _gate.Dispose();
}
