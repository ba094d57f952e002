using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;
using SharpLM.Inference;
using SharpLM.Inference.Sampling;
using SharpLM.Server.Chat;
using SharpLM.Server.Http;
using SharpLM.Server.Scheduling;

namespace SharpLM.Server;

/// <summary>What a request asks of the generation, whatever API it came through.</summary>
internal sealed record GenerationSettings
{
    public SamplingOptions Sampling { get; init; } = SamplingOptions.Default;
    public int MaxTokens { get; init; } = int.MaxValue;
    public int N { get; init; } = 1;
    public IReadOnlyDictionary<int, float>? LogitBias { get; init; }
    /// <summary>-1: no logprobs; else alternatives per token (0..20).</summary>
    public int TopLogprobs { get; init; } = -1;
    public bool PromptLogprobs { get; init; }
    public ConstraintSpec? Constraint { get; init; }
    /// <summary>Split tool calls out of the text in this format; null: no tools.</summary>
    public ToolCallFormat? Tools { get; init; }
    /// <summary>Stop at the chat template's end-of-turn tokens (chat) or only at the model's EOS (completions).</summary>
    public bool Chat { get; init; }
    /// <summary>The request field that holds the prompt (named when it does not fit the context).</summary>
    public string PromptParam { get; init; } = "messages";
}

/// <summary>One token's logprob entry as the APIs report it.</summary>
internal sealed record LogprobEntry(string Token, float Logprob, (string Token, float Logprob)[] Top);

/// <summary>New output of one choice: settled text, tool-call pieces (<see cref="ToolCallPart"/>: a call's name as soon as
/// it is known, then its arguments as they arrive), the logprobs of the tokens behind it, and the finish reason with the
/// last piece ("stop", "length", "tool_calls").</summary>
internal sealed record Delta(int Choice, string Content, List<ToolCallPart>? Calls, List<LogprobEntry>? Logprobs, string? Finish);

/// <summary>
/// One request's generation: submits a <see cref="GenerationJob"/> to the scheduler and turns its token events into
/// text deltas per choice, with stop strings (<see cref="TextStreamer"/>), tool-call parsing (<see cref="ToolCallStream"/>)
/// and logprobs; counts tokens and times for usage. The scheduler frees the slots when the request is cancelled (the
/// client left) or a stop string ends a choice.
/// </summary>
internal sealed class Generation
{
    private readonly ServerEngine _engine;
    private readonly GenerationSettings _settings;
    private readonly ChoiceState[] _choices;

    private sealed class ChoiceState(TextStreamer streamer, ToolCallStream? tools)
    {
        public TextStreamer Streamer { get; } = streamer;
        public ToolCallStream? Tools { get; } = tools;
        public List<LogprobEntry>? Pending;
        public List<int> Ids { get; } = [];
        public int Tokens => Ids.Count;
        public bool Done;
    }

    private Generation(ServerEngine engine, GenerationJob job, GenerationSettings settings)
    {
        _engine = engine;
        _settings = settings;
        Job = job;
        var decoder = engine.Decoder!;
        _choices = new ChoiceState[settings.N];
        for (int i = 0; i < settings.N; i++)
            _choices[i] = new ChoiceState(new TextStreamer(decoder, job.Prompt[^1], settings.Sampling.StopStrings),
                                          settings.Tools is { } f ? new ToolCallStream(f) : null);
    }

    public GenerationJob Job { get; }
    public int PromptTokens => Job.Prompt.Length;
    public int CompletionTokens => _choices.Sum(c => c.Tokens);
    public int CachedTokens => Job.CachedTokens;

    /// <summary>The ids generated for a choice so far.</summary>
    public IReadOnlyList<int> Tokens(int choice) => _choices[choice].Ids;

    /// <summary>For echo: the prompt tokens with their logprobs (filled before the first delta when asked).</summary>
    public List<LogprobEntry?>? PromptLogprobs { get; private set; }

    /// <summary>Queues the job; a full queue is 429, a prompt too long for the context 400.</summary>
    public static Generation Start(ServerEngine engine, int[] prompt, GenerationSettings s, string endpoint)
    {
        var scheduler = engine.Scheduler ?? throw new ApiException(400, "this server has no language model loaded (only embeddings)", "model", "model_not_found");
        var stops = s.Chat ? engine.EndOfTurn : [.. engine.Model!.Config.EosTokenIds];
        var job = new GenerationJob(prompt, s.N, s.Sampling, s.MaxTokens, stops)
        {
            LogitBias = s.LogitBias,
            TopLogprobs = s.TopLogprobs,
            PromptLogprobs = s.PromptLogprobs,
            Constraint = s.Constraint,
            Endpoint = endpoint,
        };
        if (s.Constraint != null || s.TopLogprobs >= 0) _ = engine.Vocabulary; // build the token table before the scheduler needs it
        try
        {
            scheduler.Submit(job);
        }
        catch (QueueFullException e)
        {
            engine.Metrics.Rejected();
            throw new ApiException(429, e.Message, null, "rate_limit_exceeded") { RetryAfter = 1 };
        }
        catch (InvalidOperationException e)
        {
            throw new ApiException(503, e.Message, null, "unavailable") { RetryAfter = 5 };
        }
        catch (ArgumentException e)
        {
            bool choices = e.Message.Contains("choices", StringComparison.Ordinal);
            throw new ApiException(400, e.Message, choices ? "n" : s.PromptParam, choices ? "invalid_value" : "context_length_exceeded");
        }
        return new Generation(engine, job, s);
    }

    /// <summary>The deltas, as the tokens come; ends when every choice finished. Cancelling <paramref name="ct"/>
    /// cancels the job, and so does a consumer that stops reading early (a write to a client that went away can fail
    /// before the request's abort token fires: the job must not run on with nobody reading it).</summary>
    public async IAsyncEnumerable<Delta> ReadAsync([EnumeratorCancellation] CancellationToken ct)
    {
        using var reg = ct.Register(Job.Cancel);
        bool ended = false;
        try
        {
        var vocab = _settings.TopLogprobs >= 0 ? _engine.Vocabulary : null;
        await foreach (var ev in Job.Events.ReadAllAsync(ct).ConfigureAwait(false))
        {
            if (ev.Prompt is { } prompt)
            {
                // the first prompt token has no logprob (NaN, written as null)
                PromptLogprobs = [.. prompt.Select(p => (LogprobEntry?)new LogprobEntry(vocab!.Texts[p.Token], p.Logprob ?? float.NaN, Tops(vocab, p.Top)))];
                continue;
            }
            var c = _choices[ev.Choice];
            if (c.Done) continue;
            if (ev.Finish is { } finish)
            {
                if (finish == FinishReason.Error) throw new ApiException(500, $"generation failed: {ev.Error}", null, "generation_failed");
                if (finish == FinishReason.Cancelled) continue;
                yield return Close(ev.Choice, finish == FinishReason.Length ? "length" : "stop");
                continue;
            }
            c.Ids.Add(ev.Token);
            if (vocab != null)
                (c.Pending ??= []).Add(new LogprobEntry(vocab.Texts[ev.Token], ev.Logprob, Tops(vocab, ev.Top)));
            var piece = c.Streamer.Push(ev.Token);
            if (c.Streamer.Stopped)
            {
                Job.StopChoice(ev.Choice);
                var last = Emit(ev.Choice, piece);
                var close = Close(ev.Choice, "stop");
                yield return Merge(last, close);
                continue;
            }
            if (Emit(ev.Choice, piece) is { } d) yield return d;
        }
        ended = true;
        ct.ThrowIfCancellationRequested();
        for (int i = 0; i < _choices.Length; i++)
            if (!_choices[i].Done) yield return Close(i, "length"); // cancelled by the scheduler (shutdown)
        }
        finally
        {
            if (!ended) Job.Cancel();
        }
    }

    private static (string, float)[] Tops(Inference.Constrained.TokenVocabulary vocab, TokenLogprob[]? top) =>
        top is null ? [] : [.. top.Select(t => (vocab.Texts[t.Token], t.Logprob))];

    private Delta? Emit(int choice, string piece)
    {
        var c = _choices[choice];
        string content = piece;
        List<ToolCallPart>? calls = null;
        if (c.Tools != null && piece.Length > 0)
        {
            var (text, found) = c.Tools.Push(piece);
            content = text;
            if (found.Count > 0) calls = found;
        }
        if (content.Length == 0 && calls is null) return null;
        var lp = c.Pending;
        c.Pending = null;
        return new Delta(choice, content, calls, lp, null);
    }

    private Delta Close(int choice, string reason)
    {
        var c = _choices[choice];
        c.Done = true;
        var sb = new StringBuilder(c.Streamer.Flush());
        List<ToolCallPart>? calls = null;
        if (c.Tools != null)
        {
            var (a, ca) = c.Tools.Push(sb.ToString());
            var (b, cb) = c.Tools.Flush(cut: reason == "length" || c.Streamer.Stopped);
            sb.Clear().Append(a).Append(b);
            calls = [.. ca, .. cb];
            if (calls.Count == 0) calls = null;
            if (c.Tools.SawCalls && reason == "stop") reason = "tool_calls";
        }
        var lp = c.Pending;
        c.Pending = null;
        return new Delta(choice, sb.ToString(), calls, lp, reason);
    }

    private static Delta Merge(Delta? a, Delta b)
    {
        if (a is null) return b;
        List<ToolCallPart>? calls = a.Calls is null ? b.Calls : b.Calls is null ? a.Calls : [.. a.Calls, .. b.Calls];
        List<LogprobEntry>? lp = a.Logprobs is null ? b.Logprobs : b.Logprobs is null ? a.Logprobs : [.. a.Logprobs, .. b.Logprobs];
        return new Delta(b.Choice, a.Content + b.Content, calls, lp, b.Finish);
    }

    /// <summary>Seconds from queueing to the end of the prompt and from there to the end.</summary>
    public (double Total, double Prompt, double Eval) Durations()
    {
        long now = Stopwatch.GetTimestamp();
        long end = Job.FinishedAt != 0 ? Job.FinishedAt : now;
        long promptDone = Job.PromptDoneAt != 0 ? Job.PromptDoneAt : end;
        long start = Job.StartedAt != 0 ? Job.StartedAt : Job.QueuedAt;
        return (Stopwatch.GetElapsedTime(Job.QueuedAt, end).TotalSeconds,
                Stopwatch.GetElapsedTime(start, promptDone).TotalSeconds,
                Stopwatch.GetElapsedTime(promptDone, end).TotalSeconds);
    }
}
