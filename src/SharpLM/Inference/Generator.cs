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
    /// <summary>Forward passes of one token (decode steps) timed in <see cref="DecodeSeconds"/>.</summary>
    public int DecodeSteps { get; set; }
    public double PrefillTokensPerSecond => PrefillSeconds > 0 ? PromptTokens / PrefillSeconds : 0;
    public double DecodeTokensPerSecond => DecodeSeconds > 0 ? DecodeSteps / DecodeSeconds : 0;
}

/// <summary>
/// The token loop of one sequence: the prompt as batched forward passes (chunks of the decoder's batch size), then one
/// token at a time, sampling each next id, until EOS, the token limit or the end of the context. Works on ids; text
/// streaming and stop strings are <see cref="TextStreamer"/>'s job.
/// </summary>
internal sealed class Generator
{
    private readonly Sequence _state;
    private readonly Sampler _sampler;
    private readonly HashSet<int> _eos;
    private readonly float[] _logits;
    private readonly List<int> _history = [];

    public Generator(Sequence state, Sampler sampler, IEnumerable<int> eosIds)
    {
        _state = state;
        _sampler = sampler;
        _eos = [.. eosIds];
        _logits = new float[sampler.VocabSize];
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
        var one = new int[1];
        for (int n = 0; n < maxTokens; n++)
        {
            ct.ThrowIfCancellationRequested();
            int next = _sampler.Sample(_logits, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_history));
            if (_eos.Contains(next)) break;
            _history.Add(next);
            Stats.GeneratedTokens++;
            bool more = n + 1 < maxTokens && _state.Length < _state.Capacity;
            if (more || (onLogits != null && _state.Length < _state.Capacity))
            {
                one[0] = next;
                var row = _state.Forward(one, false);
                Stats.DecodeSteps++;
                onLogits?.Invoke(row);
                row.CopyTo(_logits);
            }
            Stats.DecodeSeconds += sw.Elapsed.TotalSeconds;
            yield return next;
            if (!more) break;
            sw.Restart(); // the consumer's time between yields is not counted
        }
    }
}
