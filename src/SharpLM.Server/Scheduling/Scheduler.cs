using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using SharpLM.Inference;
using SharpLM.Inference.Constrained;
using SharpLM.Inference.Sampling;
using SharpLM.Models;

namespace SharpLM.Server.Scheduling;

/// <summary>The queue is full: the request is refused (429 with Retry-After).</summary>
internal sealed class QueueFullException(int queued) : Exception($"the server is busy: {queued} requests are waiting for a free slot; retry later")
{
    public int Queued { get; } = queued;
}

/// <summary>
/// Continuous batching: one thread owns the model's <see cref="BatchDecoder"/> and a fixed set of slots (sequences
/// with their KV caches). Every step it admits queued jobs into free slots, then makes ONE forward pass with the next
/// token of every decoding sequence plus a chunk of prompt (so a long prompt is prefilled in pieces between decode
/// steps and running streams keep flowing), samples each sequence's next token and hands it to its request. A finished
/// sequence leaves its slot at once; a new job joins at the next step. A free slot keeps its tokens: a job whose prompt
/// begins with them reuses that KV cache (the prefix cache) and evaluates only the rest.
/// </summary>
internal sealed class Scheduler : IDisposable
{
    private readonly LanguageModel _model;
    private readonly BatchDecoder _decoder;
    private readonly Slot[] _slots;
    private readonly int _context;
    private readonly int _maxQueue;
    private readonly bool _prefixCache;
    private readonly ServerMetrics _metrics;
    private readonly Func<TokenVocabulary> _vocabulary;
    private readonly Queue<GenerationJob> _queue = new();
    private readonly List<Running> _running = [];
    private readonly AutoResetEvent _wake = new(false);
    private readonly Thread _thread;
    private readonly List<SequenceInput> _inputs = [];
    private readonly List<(Running Job, int Take)> _prefills = [];
    private readonly List<Choice> _decodes = [];
    private volatile bool _stopping;
    private volatile bool _draining;
    private long _tick;

    public Scheduler(LanguageModel model, int parallel, int context, int batchTokens, int maxQueue, bool prefixCache, ServerMetrics metrics, Func<TokenVocabulary> vocabulary)
    {
        _model = model;
        _context = context;
        _maxQueue = maxQueue;
        _prefixCache = prefixCache;
        _metrics = metrics;
        _vocabulary = vocabulary;
        _decoder = model.CreateBatch(Math.Max(batchTokens, parallel), parallel);
        _slots = new Slot[parallel];
        for (int i = 0; i < parallel; i++) _slots[i] = new Slot(i);
        _metrics.KvCapacity = (long)parallel * context;
        _thread = new Thread(Loop) { IsBackground = true, Name = "SharpLM scheduler" };
        _thread.Start();
    }

    /// <summary>Slots (sequences decoded together).</summary>
    public int Parallel => _slots.Length;

    /// <summary>Positions per sequence.</summary>
    public int ContextSize => _context;

    public int MaxBatchTokens => _decoder.MaxBatchTokens;

    /// <summary>Jobs waiting for slots.</summary>
    public int Queued
    {
        get { lock (_queue) return _queue.Count; }
    }

    /// <summary>Jobs admitted and not finished.</summary>
    public int Active => Volatile.Read(ref _activeCount);

    private int _activeCount;

    /// <summary>Queues a job; throws <see cref="QueueFullException"/> when the queue is full and
    /// <see cref="InvalidOperationException"/> while shutting down.</summary>
    public void Submit(GenerationJob job)
    {
        if (_draining || _stopping) throw new InvalidOperationException("the server is shutting down");
        if (job.N > _slots.Length) throw new ArgumentException($"n = {job.N} choices need {job.N} slots but the server has {_slots.Length} (--parallel)");
        if (job.Prompt.Length == 0) throw new ArgumentException("the prompt is empty");
        if (job.Prompt.Length >= _context)
            throw new ArgumentException($"the prompt has {job.Prompt.Length} tokens but the context holds {_context} (prompt and output together); shorten the prompt or start the server with a larger --context");
        lock (_queue)
        {
            // a job that can start at once (free slots, nothing ahead of it) is not "queued"
            int waiting = _queue.Count;
            if (waiting >= _maxQueue && !(waiting == 0 && FreeSlots() >= job.N)) throw new QueueFullException(waiting);
            job.Wake = () => _wake.Set();
            _queue.Enqueue(job);
            _metrics.Queued = _queue.Count;
        }
        _wake.Set();
    }

    private int _free = -1;

    private int FreeSlots() => Volatile.Read(ref _free) < 0 ? _slots.Length : Volatile.Read(ref _free);

    /// <summary>Stops admitting jobs and waits until the running and queued ones are done (or the token fires).</summary>
    public async Task DrainAsync(CancellationToken ct)
    {
        _draining = true;
        _wake.Set();
        try
        {
            while (Active > 0 || Queued > 0) await Task.Delay(20, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) { }
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Set();
        // the decoder belongs to the scheduler thread: disposing it while that thread is still inside a pass would be
        // refused (BatchDecoder throws on concurrent use); if the thread has not ended, the model's disposal waits for it
        if (_thread.Join(TimeSpan.FromSeconds(10))) _decoder.Dispose();
        _wake.Dispose();
    }

    // ------------------------------------------------------------------ the loop (scheduler thread only below)

    private sealed class Slot(int index)
    {
        public int Index { get; } = index;
        public Sequence? Sequence;
        public Choice? Owner;
        public long LastUsed;
        /// <summary>The logits after the last prompt evaluated in this slot (its first SavedLength tokens), kept so that
        /// the same prompt again starts from the very same numbers: evaluating its last token alone would take the
        /// matvec where the whole prompt took the GEMM, whose f32 rounding differs, and a greedy near-tie could then
        /// go the other way (a request repeated, or sent once whole and once streamed, gives the same tokens).</summary>
        public float[]? SavedLogits;
        public int SavedLength;
    }

    private sealed class Running(GenerationJob job, Choice[] choices)
    {
        public GenerationJob Job { get; } = job;
        public Choice[] Choices { get; } = choices;
        public int PromptPos;         // prompt tokens evaluated in choice 0's sequence
        public bool Prefilling = true;
        public List<(int, float?, TokenLogprob[]?)>? PromptLogprobs;
    }

    private sealed class Choice
    {
        public required Running Owner;
        public required int Index;
        public required Slot Slot;
        public required Sampler Sampler;
        public required List<int> History;
        public required float[] Work;
        public required float[] Spare;
        public TokenConstraint? Constraint;
        public StringBuilder? Tail;     // recent output text, while waiting for a lazy constraint's trigger
        public int Generated;
        public int Pending = -1;       // sampled, not yet evaluated
        public readonly int[] One = new int[1];
        public bool Finished;
        public long LastTokenAt;
        public Sequence Sequence => Slot.Sequence!;
    }

    private void Loop()
    {
        while (!_stopping)
        {
            try
            {
                Admit();
                Reap();
                if (_running.Count == 0)
                {
                    _metrics.Active = 0;
                    _wake.WaitOne(_draining ? 20 : 1000);
                    continue;
                }
                Step();
            }
            catch (Exception e)
            {
                // never let the loop die: fail what was running and go on
                foreach (var r in _running.ToArray()) FailJob(r, e);
            }
        }
        foreach (var r in _running.ToArray()) FailJob(r, new OperationCanceledException("the server stopped"));
        lock (_queue)
            while (_queue.Count > 0) _queue.Dequeue().Writer.TryComplete(new OperationCanceledException("the server stopped"));
    }

    private void Admit()
    {
        while (true)
        {
            GenerationJob job;
            lock (_queue)
            {
                if (_queue.Count == 0) break;
                var head = _queue.Peek();
                if (head.IsCancelled)
                {
                    _queue.Dequeue();
                    _metrics.Queued = _queue.Count;
                    head.Writer.TryComplete();
                    _metrics.Cancelled();
                    continue;
                }
                if (_slots.Count(s => s.Owner is null) < head.N) break;
                job = _queue.Dequeue();
                _metrics.Queued = _queue.Count;
            }
            Start(job);
        }
        Volatile.Write(ref _free, _slots.Count(s => s.Owner is null));
    }

    private void Start(GenerationJob job)
    {
        var free = _slots.Where(s => s.Owner is null).ToList();
        // choice 0 takes the free slot whose cached tokens share the longest prefix with the prompt (else the least
        // recently used one); the other choices take the least recently used slots and are forked after the prompt
        Slot first = free.OrderBy(s => s.LastUsed).First();
        int best = 0;
        if (_prefixCache && !job.PromptLogprobs)
            foreach (var s in free)
            {
                if (s.Sequence is null) continue;
                int c = CommonPrefix(s.Sequence.Tokens, job.Prompt);
                if (c > best) { best = c; first = s; }
            }
        var slots = new List<Slot> { first };
        slots.AddRange(free.Where(s => s != first).OrderBy(s => s.LastUsed).Take(job.N - 1));
        var vocab = _model.Config.Vocab;
        var choices = new Choice[job.N];
        var running = new Running(job, choices);
        for (int i = 0; i < job.N; i++)
        {
            var slot = slots[i];
            slot.Sequence ??= _decoder.AddSequence(_context);
            if (i > 0) slot.SavedLength = 0; // forked over after the prompt
            var sampling = job.Sampling;
            if (i > 0 && sampling.Seed is ulong seed) sampling = sampling with { Seed = unchecked(seed + (ulong)i) };
            var choice = new Choice
            {
                Owner = running, Index = i, Slot = slot,
                Sampler = new Sampler(sampling, vocab),
                History = new List<int>(job.Prompt.Length + 64),
                Work = new float[vocab],
                Spare = new float[vocab],
            };
            choice.History.AddRange(job.Prompt);
            if (job.Constraint is { } spec)
            {
                if (spec.IsLazy) choice.Tail = new StringBuilder();
                else choice.Constraint = new TokenConstraint(_vocabulary(), spec.Grammar, spec.LeadingWhitespace);
            }
            slot.Owner = choice;
            choices[i] = choice;
        }
        // the whole prompt cached with the logits after it: nothing to evaluate; else at least its last token is
        bool whole = best == job.Prompt.Length && first.SavedLength == best && first.SavedLogits != null;
        int reuse = whole ? best : Math.Min(best, job.Prompt.Length - 1);
        first.Sequence!.Truncate(Math.Min(reuse, first.Sequence.Length));
        if (first.Sequence.Length < first.SavedLength) first.SavedLength = 0; // its positions are gone
        running.PromptPos = first.Sequence.Length;
        job.CachedTokens = running.PromptPos;
        job.StartedAt = Stopwatch.GetTimestamp();
        _running.Add(running);
        Interlocked.Increment(ref _activeCount);
        _metrics.PromptTokens(job.Prompt.Length, job.CachedTokens);
        if (job.PromptLogprobs) running.PromptLogprobs = [(job.Prompt[0], null, null)];
        if (whole)
        {
            first.SavedLogits!.CopyTo(first.Sequence.LastLogitsBuffer);
            PromptDone(running);
        }
    }

    internal static int CommonPrefix(IReadOnlyList<int> a, int[] b)
    {
        int n = Math.Min(a.Count, b.Length), i = 0;
        while (i < n && a[i] == b[i]) i++;
        return i;
    }

    /// <summary>Ends the choices whose request went away or saw a stop string.</summary>
    private void Reap()
    {
        foreach (var r in _running.ToArray())
        {
            if (r.Job.IsCancelled)
            {
                foreach (var c in r.Choices) if (!c.Finished) Finish(c, FinishReason.Cancelled, emit: false);
                _metrics.Cancelled();
                continue;
            }
            foreach (var c in r.Choices)
                if (!c.Finished && r.Job.StopRequested(c.Index)) Finish(c, FinishReason.Cancelled, emit: false);
        }
    }

    private void Step()
    {
        _inputs.Clear();
        _prefills.Clear();
        _decodes.Clear();
        int budget = _decoder.MaxBatchTokens;
        foreach (var r in _running)
            foreach (var c in r.Choices)
                if (!c.Finished && c.Pending >= 0 && budget > 0)
                {
                    c.One[0] = c.Pending;
                    _inputs.Add(new SequenceInput(c.Sequence, c.One));
                    _decodes.Add(c);
                    budget--;
                }
        foreach (var r in _running)
        {
            if (!r.Prefilling || budget == 0) continue;
            int take = Math.Min(r.Job.Prompt.Length - r.PromptPos, budget);
            _inputs.Add(new SequenceInput(r.Choices[0].Sequence, r.Job.Prompt.AsMemory(r.PromptPos, take), r.PromptLogprobs != null));
            _prefills.Add((r, take));
            budget -= take;
            if (r.Job.StartedAt == 0) r.Job.StartedAt = Stopwatch.GetTimestamp();
        }
        if (_inputs.Count == 0) return;

        long t0 = Stopwatch.GetTimestamp();
        try
        {
            _decoder.Decode(CollectionsMarshal.AsSpan(_inputs));
        }
        catch (Exception e)
        {
            foreach (var c in _decodes) FailJob(c.Owner, e);
            foreach (var (r, _) in _prefills) FailJob(r, e);
            return;
        }
        _metrics.Step(_decoder.MaxBatchTokens - budget, Stopwatch.GetElapsedTime(t0).TotalSeconds);

        foreach (var c in _decodes)
        {
            c.Pending = -1;
            if (!c.Finished) SampleNext(c);
        }
        foreach (var (r, take) in _prefills)
        {
            if (r.Job.IsCancelled) continue;
            if (r.PromptLogprobs != null) CollectPromptLogprobs(r, take);
            r.PromptPos += take;
            if (r.PromptPos < r.Job.Prompt.Length) continue;
            var slot = r.Choices[0].Slot;
            slot.SavedLogits ??= new float[_model.Config.Vocab];
            r.Choices[0].Sequence.Logits.CopyTo(slot.SavedLogits);
            slot.SavedLength = r.PromptPos;
            PromptDone(r);
        }
        long kv = 0;
        foreach (var s in _slots) kv += s.Sequence?.Length ?? 0;
        _metrics.KvUsed = kv;
        _metrics.Active = _running.Sum(r => r.Choices.Count(c => !c.Finished));
    }

    /// <summary>The prompt is in choice 0's sequence and its logits are there: fork the other choices, sample each.</summary>
    private void PromptDone(Running r)
    {
        r.Prefilling = false;
        r.Job.PromptDoneAt = Stopwatch.GetTimestamp();
        var source = r.Choices[0].Sequence;
        for (int i = 1; i < r.Choices.Length; i++) _decoder.ForkInto(source, r.Choices[i].Sequence, source.Length);
        if (r.PromptLogprobs != null)
            r.Job.Writer.TryWrite(new JobEvent(0, -1) { Prompt = [.. r.PromptLogprobs] });
        foreach (var c in r.Choices) if (!c.Finished) SampleNext(c);
    }

    private void CollectPromptLogprobs(Running r, int take)
    {
        var all = r.Choices[0].Sequence.AllLogits;
        int v = _model.Config.Vocab;
        for (int i = 0; i < take; i++)
        {
            int next = r.PromptPos + i + 1;
            if (next >= r.Job.Prompt.Length) break;
            var row = all.Slice(i * v, v);
            int tok = r.Job.Prompt[next];
            float lp = Logprobs.Of(row, tok, out _);
            r.PromptLogprobs!.Add((tok, lp, r.Job.TopLogprobs > 0 ? Logprobs.Top(row, r.Job.TopLogprobs) : null));
        }
    }

    /// <summary>Samples the next token of a choice from its sequence's logits and hands it to the request.</summary>
    private void SampleNext(Choice c)
    {
        var job = c.Owner.Job;
        var seq = c.Sequence;
        int remaining = Math.Min(job.MaxTokens - c.Generated, seq.Capacity - seq.Length + 1);
        if (remaining <= 0) { Finish(c, FinishReason.Length); return; }
        if (c.Constraint is { IsDone: true }) { Finish(c, FinishReason.Stop); return; }

        var logits = seq.Logits;
        var work = c.Work.AsSpan();
        logits.CopyTo(work);
        if (job.LogitBias is { } bias)
            foreach (var (id, b) in bias)
                if ((uint)id < (uint)work.Length) work[id] += b;
        var history = CollectionsMarshal.AsSpan(c.History);
        int next;
        if (c.Constraint is { } con)
        {
            var spare = c.Spare.AsSpan();
            work.CopyTo(spare);
            next = c.Sampler.Sample(spare, history);
            if (!con.Allows(next, remaining - 1))
            {
                if (con.Mask(work, remaining - 1) == 0) { Finish(c, FinishReason.Length); return; }
                next = c.Sampler.Sample(work, history);
            }
            con.Accept(next);
        }
        else next = c.Sampler.Sample(work, history);

        if (job.StopIds.Contains(next)) { Finish(c, FinishReason.Stop); return; }

        float lp = 0;
        TokenLogprob[]? top = null;
        if (job.TopLogprobs >= 0)
        {
            lp = Logprobs.Of(logits, next, out _);
            if (job.TopLogprobs > 0) top = Logprobs.Top(logits, job.TopLogprobs);
        }
        long now = Stopwatch.GetTimestamp();
        if (c.Generated == 0) _metrics.FirstToken(Stopwatch.GetElapsedTime(job.QueuedAt, now).TotalSeconds);
        else _metrics.InterToken(Stopwatch.GetElapsedTime(c.LastTokenAt, now).TotalSeconds);
        c.LastTokenAt = now;
        c.Generated++;
        c.History.Add(next);
        _metrics.GeneratedToken();
        job.Writer.TryWrite(new JobEvent(c.Index, next, lp, top));

        if (c.Tail != null && c.Constraint is null) WatchTrigger(c, next);
        else if (c.Constraint is { IsDone: true } && job.Constraint!.IsLazy)
        {
            // the tool call is complete: free text again, and watch for the next one
            c.Constraint = null;
            c.Tail!.Clear();
        }

        if (c.Constraint is { IsDone: true } && !job.Constraint!.IsLazy) { Finish(c, FinishReason.Stop); return; }
        if (c.Generated >= job.MaxTokens || seq.Length >= seq.Capacity) { Finish(c, FinishReason.Length); return; }
        c.Pending = next;
    }

    /// <summary>A lazy constraint starts when the output contains its trigger; the text after the trigger in the same
    /// token is fed to it.</summary>
    private void WatchTrigger(Choice c, int token)
    {
        var spec = c.Owner.Job.Constraint!;
        var vocab = _vocabulary();
        c.Tail!.Append(vocab.Texts[token]);
        var tail = c.Tail.ToString();
        int at = tail.IndexOf(spec.Trigger!, StringComparison.Ordinal);
        if (at < 0)
        {
            int keep = spec.Trigger!.Length - 1;
            if (tail.Length > keep) c.Tail.Remove(0, tail.Length - keep);
            return;
        }
        var con = new TokenConstraint(vocab, spec.Grammar, spec.LeadingWhitespace);
        c.Tail.Clear();
        if (con.AcceptText(tail[(at + spec.Trigger!.Length)..])) c.Constraint = con;
    }

    private void Finish(Choice c, FinishReason reason, bool emit = true, string? error = null)
    {
        if (c.Finished) return;
        c.Finished = true;
        var r = c.Owner;
        if (emit) r.Job.Writer.TryWrite(new JobEvent(c.Index, -1, Finish: reason, Error: error));
        c.Slot.Owner = null;
        c.Slot.LastUsed = ++_tick;
        if (r.Prefilling && c.Index == 0)
        {
            // the prompt was not finished: forget the partial cache of the other choices too
            foreach (var o in r.Choices) if (!o.Finished) Finish(o, reason, emit, error);
        }
        if (Array.TrueForAll(r.Choices, x => x.Finished))
        {
            _running.Remove(r);
            Interlocked.Decrement(ref _activeCount);
            r.Job.FinishedAt = Stopwatch.GetTimestamp();
            r.Job.Writer.TryComplete();
        }
    }

    private void FailJob(Running r, Exception e)
    {
        if (!_running.Contains(r)) return;
        foreach (var c in r.Choices)
        {
            // the failed pass may have left the cache half written: the slot starts over
            c.Slot.Sequence?.Truncate(0);
            c.Slot.SavedLength = 0;
            Finish(c, FinishReason.Error, emit: true, error: e.Message);
        }
    }
}
