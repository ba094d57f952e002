using System.Diagnostics;
using System.Threading.Channels;
using SharpLM.Inference.Constrained;
using SharpLM.Inference.Sampling;

namespace SharpLM.Server.Scheduling;

/// <summary>Why a choice ended, as the scheduler sees it (stop strings and tool calls are the HTTP layer's).</summary>
internal enum FinishReason
{
    /// <summary>An end-of-turn token, or a constrained output that is complete.</summary>
    Stop,
    /// <summary>The token limit or the end of the context.</summary>
    Length,
    /// <summary>The client went away, timed out, or asked to stop (a stop string).</summary>
    Cancelled,
    /// <summary>The forward pass failed.</summary>
    Error,
}

/// <summary>A token and its log-probability.</summary>
internal readonly record struct TokenLogprob(int Token, float Logprob);

/// <summary>
/// What the scheduler tells the request: a generated <see cref="Token"/> (with its logprob and alternatives when
/// asked), or the end of a choice (<see cref="Finish"/>), or prompt logprobs (echo).
/// </summary>
internal sealed record JobEvent(int Choice, int Token, float Logprob = 0, TokenLogprob[]? Top = null, FinishReason? Finish = null, string? Error = null)
{
    /// <summary>For echo with logprobs: each prompt token with its logprob given the tokens before it (the first has none).</summary>
    public (int Token, float? Logprob, TokenLogprob[]? Top)[]? Prompt { get; init; }
}

/// <summary>How a job's output is constrained: a grammar from the start (JSON, a required tool call), or one that starts
/// when the output contains <see cref="Trigger"/> and ends with its grammar (a tool call the model chose to make).</summary>
internal sealed record ConstraintSpec(GrammarNode Grammar, string? Trigger = null, bool LeadingWhitespace = false)
{
    public bool IsLazy => Trigger != null;
}

/// <summary>
/// One request to the scheduler: a prompt, <see cref="N"/> choices sampled from it, and how. The scheduler writes
/// <see cref="JobEvent"/>s to <see cref="Events"/>; the request reads them. Cancel (client gone, timeout) or
/// <see cref="StopChoice"/> (a stop string seen) frees the slots within one step.
/// </summary>
internal sealed class GenerationJob
{
    private readonly Channel<JobEvent> _events = Channel.CreateUnbounded<JobEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private int _cancelled;
    private readonly bool[] _stop;

    public GenerationJob(int[] prompt, int n, SamplingOptions sampling, int maxTokens, IReadOnlyCollection<int> stopIds)
    {
        Prompt = prompt;
        N = n;
        Sampling = sampling;
        MaxTokens = maxTokens;
        StopIds = [.. stopIds];
        _stop = new bool[n];
    }

    public int[] Prompt { get; }
    public int N { get; }
    public SamplingOptions Sampling { get; }
    public int MaxTokens { get; }
    public HashSet<int> StopIds { get; }
    public IReadOnlyDictionary<int, float>? LogitBias { get; init; }

    /// <summary>Alternatives per token in the logprobs; -1: no logprobs.</summary>
    public int TopLogprobs { get; init; } = -1;

    /// <summary>Report the prompt tokens' logprobs (echo); the prompt is then evaluated whole (no cached prefix).</summary>
    public bool PromptLogprobs { get; init; }

    public ConstraintSpec? Constraint { get; init; }

    /// <summary>The endpoint, for metrics.</summary>
    public string Endpoint { get; init; } = "";

    public ChannelReader<JobEvent> Events => _events.Reader;
    internal ChannelWriter<JobEvent> Writer => _events.Writer;

    /// <summary>Prompt tokens whose KV came from the prefix cache.</summary>
    public int CachedTokens { get; internal set; }

    /// <summary>Timestamps (Stopwatch ticks): queued, first prompt row evaluated, prompt done, last event.</summary>
    public long QueuedAt { get; } = Stopwatch.GetTimestamp();
    public long StartedAt { get; internal set; }
    public long PromptDoneAt { get; internal set; }
    public long FinishedAt { get; internal set; }

    public bool IsCancelled => Volatile.Read(ref _cancelled) != 0;

    internal Action? Wake { get; set; }

    /// <summary>Frees the job's slots at the next step (the client left, or timed out).</summary>
    public void Cancel()
    {
        if (Interlocked.Exchange(ref _cancelled, 1) == 0) Wake?.Invoke();
    }

    /// <summary>Ends one choice at the next step (its text reached a stop string).</summary>
    public void StopChoice(int choice)
    {
        Volatile.Write(ref _stop[choice], true);
        Wake?.Invoke();
    }

    internal bool StopRequested(int choice) => Volatile.Read(ref _stop[choice]);
}
