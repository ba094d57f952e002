using SharpLM.Inference.ChatTemplates;
using SharpLM.Inference.Sampling;
using SharpLM.Models;

namespace SharpLM.Inference;

/// <summary>
/// A multi-turn conversation with one model: each turn renders the whole conversation with the chat template,
/// reuses the KV cache for the longest prefix of tokens already evaluated, evaluates only the rest, and streams the
/// reply. Stops at the model's EOS ids and the template's end-of-turn token.
/// </summary>
internal sealed class ChatSession
{
    private readonly LanguageModel _model;
    private readonly ModelChatTemplate _template;
    private readonly ITokenCodec _codec;
    private readonly Sequence _state;
    private readonly List<int> _cached = [];   // the ids whose keys/values are in the cache, in order
    private readonly int[] _eos;

    public ChatSession(LanguageModel model, ModelChatTemplate? template = null, Sequence? state = null)
    {
        _model = model;
        _template = template ?? model.ChatTemplate
            ?? throw new InvalidOperationException($"{model.Path} has no chat template (tokenizer.chat_template in GGUF or chat_template in tokenizer_config.json)");
        _codec = model.RequireTokenizer();
        _state = state ?? model.CreateState();
        _eos = EndOfTurnIds(model, _template.EosToken);
    }

    /// <summary>The ids that end an assistant turn: the model's EOS ids, the common end-of-turn tokens its vocabulary
    /// has, and the chat template's EOS token.</summary>
    internal static int[] EndOfTurnIds(LanguageModel model, string? templateEos)
    {
        var eos = new HashSet<int>(model.Config.EosTokenIds);
        var codec = model.RequireTokenizer();
        foreach (var t in Tokenizers.SpecialTokenConventions.EndOfTurn.Append(templateEos ?? ""))
            if (t.Length > 0 && codec.TokenToId(t) is int id) eos.Add(id);
        return [.. eos];
    }

    /// <summary>The conversation so far (system, user and assistant turns).</summary>
    public List<ChatTurn> Messages { get; } = [];

    /// <summary>Statistics of the last reply.</summary>
    public GenerationStats? LastStats { get; private set; }

    /// <summary>Tokens the last turn could reuse from the cache.</summary>
    public int LastReusedTokens { get; private set; }

    /// <summary>Renders the conversation plus the generation prompt and encodes it (the template writes BOS itself).</summary>
    internal int[] EncodeConversation() =>
        _codec.Encode(_template.Render(Messages, addGenerationPrompt: true), addBos: !_template.WritesBos);

    /// <summary>Adds the user's message, streams the assistant's reply, and appends it to <see cref="Messages"/>.</summary>
    public IEnumerable<string> Send(string userMessage, GenerationOptions options, CancellationToken ct = default)
    {
        Messages.Add(new ChatTurn("user", userMessage));
        return Reply(options, ct);
    }

    /// <summary>Streams the assistant's reply to the conversation as it stands, and appends it.</summary>
    public IEnumerable<string> Reply(GenerationOptions options, CancellationToken ct = default)
    {
        options.Validate();
        var ids = EncodeConversation();
        int common = 0;
        while (common < _cached.Count && common < ids.Length && _cached[common] == ids[common]) common++;
        if (common == ids.Length) common--; // at least one token must be evaluated to get logits
        _state.Truncate(Math.Min(common, _state.Length));
        _cached.RemoveRange(common, _cached.Count - common);
        LastReusedTokens = common;
        var rest = ids[common..];
        int room = _state.Capacity - common;
        if (rest.Length > room)
            throw new ArgumentException($"the conversation has {ids.Length} tokens but the context holds {_state.Capacity}; start a new conversation or use a larger context size");
        var gen = new Generator(_state, new Sampler(options.Sampling, _model.Config.Vocab), _eos, options.Drafter);
        var tokens = gen.Generate(rest, options.MaxTokens, null, ct);
        return Stream(gen, tokens, ids, options, ct);
    }

    private IEnumerable<string> Stream(Generator gen, IEnumerable<int> tokens, int[] ids, GenerationOptions options, CancellationToken ct)
    {
        var streamer = new TextStreamer(_codec, ids[^1], options.Sampling.StopStrings);
        var generated = new List<int>();
        try
        {
            foreach (var id in tokens)
            {
                generated.Add(id);
                var piece = streamer.Push(id);
                if (piece.Length > 0) yield return piece;
                if (streamer.Stopped) break;
                ct.ThrowIfCancellationRequested();
            }
            var tail = streamer.Flush();
            if (tail.Length > 0) yield return tail;
        }
        finally
        {
            _cached.AddRange(ids.AsSpan(_cached.Count));
            int evaluated = Math.Max(0, _state.Length - _cached.Count);
            _cached.AddRange(generated.Take(evaluated));
            _state.Truncate(Math.Min(_state.Length, _cached.Count));
            Messages.Add(new ChatTurn("assistant", streamer.Emitted)); // what the user saw
            LastStats = gen.Stats;
        }
    }
}
