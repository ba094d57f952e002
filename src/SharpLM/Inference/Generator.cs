using System.Diagnostics;
using SharpLM.Inference.Sampling;

namespace SharpLM.Inference;

/// <summary>Receives one logits row (V) per evaluated position, in position order.</summary>
internal delegate void LogitsRowHandler(ReadOnlySpan<float> row);

/// <summary>Token counts and timings of one generation.</summary>
internal sealed class GenerationStats
{
    public int PromptTokens { get; set; }
    public int GeneratedTokens { get; set; }
    public double PrefillSeconds { get; set; }
    public double DecodeSeconds { get; set; }
    /// <summary>Forward passes after the prompt (decode steps) timed in <see cref="DecodeSeconds"/>.</summary>
    public int DecodeSteps { get; set; }
    /// <summary>Generated tokens those passes evaluated and kept: one per step, plus the accepted drafts when speculating.</summary>
    public int DecodeTokens { get; set; }
    /// <summary>Speculative decoding: tokens the drafter proposed and how many of them the model kept.</summary>
    public int DraftedTokens { get; set; }
    public int AcceptedTokens { get; set; }
    public double PrefillTokensPerSecond => PrefillSeconds > 0 ? PromptTokens / PrefillSeconds : 0;
    public double DecodeTokensPerSecond => DecodeSeconds > 0 ? DecodeTokens / DecodeSeconds : 0;
    /// <summary>Generated tokens per decode step (1 without speculation).</summary>
    public double TokensPerStep => DecodeSteps > 0 ? (double)DecodeTokens / DecodeSteps : 0;
}

/// <summary>
/// The token loop of one sequence: the prompt as batched forward passes (chunks of the decoder's batch size), then one
/// token at a time, sampling each next id, until EOS, the token limit or the end of the context. Works on ids; text
/// streaming and stop strings are <see cref="TextStreamer"/>'s job.
/// <para>Speculative decoding (a <see cref="IDrafter"/>, greedy sampling only): each step evaluates the sampled token
/// and the drafter's guesses of what follows it in one forward pass, then samples every row in turn and keeps the
/// guesses while they equal what was sampled; the first disagreement is rolled back. A row of a multi-token pass has
/// the bits of the same token evaluated alone (the matvec below <c>MatMul.GemmMinRows</c> rows sums each row as one
/// row; tested), so the output is exactly the plain greedy output, at fewer passes when the guesses are right.</para>
/// </summary>
internal sealed class Generator
{
    private readonly Sequence _state;
    private readonly Sampler _sampler;
    private readonly HashSet<int> _eos;
    private readonly float[] _logits;
    private readonly List<int> _history = [];

    private readonly IDrafter? _drafter;

    public Generator(Sequence state, Sampler sampler, IEnumerable<int> eosIds, IDrafter? drafter = null)
    {
        _state = state;
        _sampler = sampler;
        _eos = [.. eosIds];
        _logits = new float[sampler.VocabSize];
        if (drafter != null && sampler.Options.Temperature > 0)
            throw new ArgumentException("speculative decoding gives the greedy output: it needs temperature 0", nameof(drafter));
        _drafter = drafter;
    }

    public GenerationStats Stats { get; } = new();

    /// <summary>
    /// Evaluates <paramref name="prompt"/> (appended to whatever the state's cache holds) and yields up to
    /// <paramref name="maxTokens"/> generated ids; an EOS id ends the loop and is not yielded. When
    /// <paramref name="onLogits"/> is set it sees every prompt row, then the row of every generated token (each
    /// generated token is then evaluated, the last one included). Throws when the prompt does not fit the context.
    /// </summary>
    public IEnumerable<int> Generate(IReadOnlyList<int> prompt, int maxTokens, LogitsRowHandler? onLogits = null, CancellationToken ct = default)
    {
        if (prompt.Count == 0) throw new ArgumentException("the prompt is empty: give at least one token (e.g. BOS)", nameof(prompt));
        int capacity = _state.Capacity;
        if (_state.Length + prompt.Count > capacity)
            throw new ArgumentException(_state.Length == 0
                ? $"the prompt has {prompt.Count} tokens but the context holds {capacity}; shorten the prompt or use a larger context size"
                : $"the prompt has {prompt.Count} tokens and {_state.Length} are already cached, but the context holds {capacity}", nameof(prompt));
        Stats.PromptTokens = prompt.Count;
        _history.AddRange(prompt);
        return Loop(prompt, maxTokens, onLogits, ct);
    }

    private IEnumerable<int> Loop(IReadOnlyList<int> prompt, int maxTokens, LogitsRowHandler? onLogits, CancellationToken ct)
    {
        int v = _logits.Length;
        var sw = Stopwatch.StartNew();
        var ids = prompt as int[] ?? [.. prompt];
        for (int start = 0; start < ids.Length; start += _state.Owner.MaxBatchTokens)
        {
            ct.ThrowIfCancellationRequested();
            var chunk = ids.AsSpan(start, Math.Min(_state.Owner.MaxBatchTokens, ids.Length - start));
            bool last = start + chunk.Length == ids.Length;
            var rows = _state.Forward(chunk, onLogits != null);
            if (onLogits != null) for (int i = 0; i < chunk.Length; i++) onLogits(rows.Slice(i * v, v));
            if (last) rows[^v..].CopyTo(_logits);
        }
        Stats.PrefillSeconds = sw.Elapsed.TotalSeconds;
        sw.Restart();
        int baseLength = _state.Length;     // the cache holds the prompt; generated tokens follow
        int yielded = 0;
        var feed = new List<int>(1 + (_drafter?.MaxDraft ?? 0));
        var ready = new Queue<int>();       // accepted drafts: sampled and already in the cache
        var row = _drafter is null ? null : new float[v];
        int draftLimit = _drafter?.MaxDraft ?? 0;
        try
        {
            for (int n = 0; n < maxTokens; n++)
            {
                ct.ThrowIfCancellationRequested();
                bool evaluated = ready.Count > 0;    // an accepted draft: already sampled, evaluated and in the history
                int next = evaluated ? ready.Dequeue() : _sampler.Sample(_logits, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_history));
                if (_eos.Contains(next))
                {
                    if (evaluated) _history.RemoveAt(_history.Count - 1); // an accepted EOS is the last kept guess
                    break;
                }
                if (!evaluated) _history.Add(next);
                Stats.GeneratedTokens++;
                bool more = n + 1 < maxTokens && (ready.Count > 0 || _state.Length < _state.Capacity);
                if (!evaluated && (more || (onLogits != null && _state.Length < _state.Capacity)))
                {
                    feed.Clear();
                    feed.Add(next);
                    // room: the token limit (this token is the (n+1)-th), the context (one position kept for `next`) and
                    // the adaptive draft length
                    if (_drafter != null && more)
                        _drafter.Propose(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_history),
                                         Math.Min(draftLimit, Math.Min(maxTokens - n - 1, _state.Capacity - _state.Length - 1)), feed);
                    int drafted = feed.Count - 1;
                    var rows = _state.Forward(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(feed), drafted > 0);
                    Stats.DecodeSteps++;
                    Stats.DraftedTokens += drafted;
                    // row j holds the logits after feed[j]: sample it (on a copy: penalties write to it) and keep feed[j+1]
                    // while it is what the model picks; a kept guess joins the history at once (the next row's penalties
                    // see it) and is yielded from `ready` later. Without guesses this is the plain one-token step.
                    int kept = 0;
                    for (; kept < drafted; kept++)
                    {
                        rows.Slice(kept * v, v).CopyTo(row!);
                        int pick = _sampler.Sample(row!, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_history));
                        if (pick != feed[kept + 1]) break;
                        _history.Add(pick);
                        ready.Enqueue(pick);
                        if (_eos.Contains(pick)) { kept++; break; }
                    }
                    Stats.AcceptedTokens += kept;
                    Stats.DecodeTokens += 1 + kept;
                    if (onLogits != null) for (int j = 0; j <= kept; j++) onLogits(rows.Slice(j * v, v));
                    rows.Slice(kept * v, v).CopyTo(_logits);
                    if (kept < drafted) _state.Truncate(_state.Length - (drafted - kept));
                    // every extra row of a pass costs a part of a one-row pass: draft longer after a step that kept every
                    // guess, shorter (one past what was kept) after one that did not
                    if (drafted > 0) draftLimit = kept == drafted ? Math.Min(_drafter!.MaxDraft, draftLimit * 2) : Math.Max(1, kept + 1);
                }
                Stats.DecodeSeconds += sw.Elapsed.TotalSeconds;
                yielded++;
                yield return next;
                if (!more) break;
                sw.Restart(); // the consumer's time between yields is not counted
            }
        }
        finally
        {
            // accepted drafts that were never yielded (EOS, the token limit, a consumer that stopped) leave the cache, so
            // it holds what plain decoding would: the prompt and the generated tokens
            if (_drafter != null && _state.Length > baseLength + yielded) _state.Truncate(baseLength + yielded);
            if (ready.Count > 0) _history.RemoveRange(_history.Count - ready.Count, ready.Count);
        }
    }
}
