using System.Runtime.InteropServices;
using SharpLM.Models;

namespace SharpLM.Inference;

/// <summary>
/// One sequence of a <see cref="BatchDecoder"/>: its KV cache, the tokens evaluated so far, and the logits of its last
/// evaluated token. Made by <see cref="BatchDecoder.AddSequence"/> or <see cref="BatchDecoder.Fork"/>; dropped by
/// <see cref="BatchDecoder.Drop"/> (or <see cref="Dispose"/>).
/// </summary>
public sealed class Sequence : IDisposable
{
    private readonly List<int> _tokens;
    private readonly float[] _lastLogits;
    private float[] _allLogits = [];
    private int _allRows;

    internal Sequence(BatchDecoder owner, int id, int capacity)
    {
        Owner = owner;
        Id = id;
        var c = owner.Model.Config;
        Cache = new KvCache(c, capacity, owner.MaxBatchTokens, owner.Model.Options.KvCacheType);
        _tokens = new List<int>(capacity); // never grows: decoding allocates nothing
        _lastLogits = new float[c.Vocab];
    }

    internal BatchDecoder Owner { get; }
    internal KvCache Cache { get; }

    /// <summary>A number unique within its decoder.</summary>
    public int Id { get; }

    /// <summary>Tokens evaluated so far (the position of the next one).</summary>
    public int Length => Cache.Length;

    /// <summary>The most tokens the sequence can hold (its KV cache).</summary>
    public int Capacity => Cache.Capacity;

    /// <summary>The tokens evaluated so far, in order.</summary>
    public IReadOnlyList<int> Tokens => _tokens;

    internal List<int> TokenList => _tokens;

    /// <summary>Whether the sequence was dropped.</summary>
    public bool IsDropped { get; internal set; }

    /// <summary>The logits (V) of the last token evaluated (valid until its next evaluation).</summary>
    public ReadOnlySpan<float> Logits => _lastLogits;

    /// <summary>The logits (T, V) of every token of the last <c>BatchDecoder.Decode</c> that asked for them.</summary>
    public ReadOnlySpan<float> AllLogits => _allLogits.AsSpan(0, _allRows * _lastLogits.Length);

    internal Span<float> LastLogitsBuffer => _lastLogits;

    internal Span<float> AllLogitsBuffer(int rows)
    {
        int v = _lastLogits.Length;
        if (_allLogits.Length < (long)rows * v) _allLogits = new float[checked(rows * v)];
        _allRows = rows;
        return _allLogits.AsSpan(0, rows * v);
    }

    /// <summary>
    /// Evaluates <paramref name="tokens"/> on this sequence alone (a batch of one) and returns the logits of every token
    /// (T,V) when <paramref name="allLogits"/>, else of the last (V). The span is valid until the next evaluation.
    /// </summary>
    public ReadOnlySpan<float> Forward(ReadOnlySpan<int> tokens, bool allLogits)
    {
        Owner.Decode(this, tokens, allLogits);
        return allLogits ? AllLogits : Logits;
    }

    /// <summary>Forgets tokens from <paramref name="length"/> on (reuse a shared prefix, roll back a draft).</summary>
    public void Truncate(int length)
    {
        using var use = Owner.Use.Enter("Sequence.Truncate", Id);
        Cache.Truncate(length);
        _tokens.RemoveRange(length, _tokens.Count - length);
    }

    public void Dispose() => Owner.Drop(this);
}

/// <summary>One sequence's tokens for a <see cref="BatchDecoder.Decode(ReadOnlySpan{SequenceInput})"/> call.</summary>
/// <param name="Sequence">the sequence the tokens continue.</param>
/// <param name="Tokens">its next tokens.</param>
/// <param name="AllLogits">keep the logits of every token (else only the last one's).</param>
public readonly record struct SequenceInput(Sequence Sequence, ReadOnlyMemory<int> Tokens, bool AllLogits = false);

/// <summary>
/// Many sequences in one forward pass: each sequence has its own KV cache and position, and the rows of all of them go
/// through the model together, so every matrix multiply sees all their rows at once and every weight is read once per
/// step for all of them (what a batching server and speculative decoding need). A single sequence is the case B = 1.
/// <code>
/// var batch = model.CreateBatch();
/// var a = batch.AddSequence(); var b = batch.AddSequence();
/// batch.Decode([new(a, promptA), new(b, promptB)]);      // one pass (chunked at MaxBatchTokens)
/// int next = Argmax(a.Logits);
/// var c = batch.Fork(a);                                  // shares a's prefix
/// batch.Drop(b);
/// </code>
/// One thread at a time drives a decoder and its sequences (they share its buffers): a call made while another thread is
/// inside one throws an <see cref="InvalidOperationException"/> naming the decoder, and nothing is changed. Threads that
/// decode at the same time each use their own decoder over the same <see cref="LanguageModel"/>. A decode step allocates
/// nothing.
/// </summary>
public sealed class BatchDecoder : IDisposable
{
    private readonly ForwardBatch _batch;
    private readonly DecoderBuffers _buffers;
    private readonly Sequence?[] _slotOwner;
    private readonly int[] _outputOwner;      // per output row of the pass: the input it belongs to
    private readonly int[] _outputIndex;      // per output row: the token index within its input (AllLogits), or -1
    private readonly SlotKv _kv;
    private readonly HashSet<Sequence> _live = [];
    private int _nextId;

    internal BatchDecoder(LanguageModel model, int maxBatchTokens, int maxSequencesPerPass)
    {
        Model = model;
        MaxBatchTokens = Math.Max(1, maxBatchTokens);
        int slots = Math.Max(1, Math.Min(maxSequencesPerPass, MaxBatchTokens));
        _batch = new ForwardBatch(MaxBatchTokens, slots);
        _buffers = new DecoderBuffers(model.Config, MaxBatchTokens, perLayer: false);
        _slotOwner = new Sequence?[slots];
        _outputOwner = new int[MaxBatchTokens];
        _outputIndex = new int[MaxBatchTokens];
        _kv = new SlotKv(_slotOwner, model.Options.KvCacheType);
        Use = new ExclusiveUse(() => $"the BatchDecoder of {Model.Path}");
    }

    /// <summary>Fails a call made while another thread is inside one (the decoder and its sequences).</summary>
    internal ExclusiveUse Use { get; }

    public LanguageModel Model { get; }

    /// <summary>The most tokens one forward pass evaluates (longer inputs are evaluated in several passes).</summary>
    public int MaxBatchTokens { get; }

    /// <summary>The most sequences one forward pass takes.</summary>
    public int MaxSequencesPerPass => _slotOwner.Length;

    /// <summary>Called after each forward pass with its rows (tokens, positions, slots and the keys each row sees), as
    /// the decoder built them; valid during the call only (the lab draws its causal mask from them).</summary>
    internal Action<ForwardBatch>? OnPass { get; set; }

    /// <summary>The sequences that have not been dropped.</summary>
    public IReadOnlyCollection<Sequence> Sequences => _live;

    /// <summary>A new, empty sequence holding up to <paramref name="capacity"/> tokens (the model's context size by default).</summary>
    public Sequence AddSequence(int? capacity = null)
    {
        int cap = capacity ?? Model.ContextSize;
        if (cap <= 0) throw new ArgumentOutOfRangeException(nameof(capacity), cap, "a sequence holds at least one token");
        using var use = Use.Enter("AddSequence");
        var s = new Sequence(this, _nextId++, cap);
        _live.Add(s);
        return s;
    }

    /// <summary>A new sequence that starts as the first <paramref name="length"/> tokens of <paramref name="source"/>
    /// (all of them by default), KV cache and logits included, so it continues exactly as the source would.</summary>
    public Sequence Fork(Sequence source, int? length = null, int? capacity = null)
    {
        using var use = Use.Enter("Fork");
        Check(source);
        int len = length ?? source.Length;
        if (len < 0 || len > source.Length) throw new ArgumentOutOfRangeException(nameof(length), len, $"the source holds {source.Length} tokens");
        var s = AddSequence(capacity ?? source.Capacity);
        ForkInto(source, s, len);
        return s;
    }

    /// <summary>Makes <paramref name="destination"/> (an existing sequence, e.g. a server's slot) the first
    /// <paramref name="length"/> tokens of <paramref name="source"/>, as <see cref="Fork"/> does, without allocating.</summary>
    internal void ForkInto(Sequence source, Sequence destination, int length)
    {
        using var use = Use.Enter("Fork");
        Check(source);
        Check(destination);
        if (length < 0 || length > source.Length) throw new ArgumentOutOfRangeException(nameof(length), length, $"the source holds {source.Length} tokens");
        destination.Cache.CopyPrefix(source.Cache, length);
        destination.TokenList.Clear();
        for (int i = 0; i < length; i++) destination.TokenList.Add(source.TokenList[i]);
        if (length == source.Length) source.Logits.CopyTo(destination.LastLogitsBuffer);
    }

    /// <summary>Drops a sequence: its KV cache is freed and it can no longer be decoded.</summary>
    public void Drop(Sequence sequence)
    {
        if (sequence.Owner != this) throw new ArgumentException("the sequence belongs to another decoder", nameof(sequence));
        using var use = Use.Enter("Drop", sequence.Id);
        sequence.IsDropped = true;
        _live.Remove(sequence);
    }

    private void Check(Sequence s)
    {
        if (s.Owner != this) throw new ArgumentException("the sequence belongs to another decoder", nameof(s));
        if (s.IsDropped) throw new InvalidOperationException($"sequence {s.Id} was dropped");
    }

    private int[] _single = [];

    /// <summary>One sequence alone (the tokens are copied into a buffer the decoder keeps, so the call allocates nothing).</summary>
    internal void Decode(Sequence s, ReadOnlySpan<int> tokens, bool allLogits)
    {
        using var use = Use.Enter("Sequence.Forward", s.Id);
        if (_single.Length < tokens.Length) _single = new int[Math.Max(tokens.Length, 16)];
        tokens.CopyTo(_single);
        Decode([new SequenceInput(s, _single.AsMemory(0, tokens.Length), allLogits)]);
    }

    /// <summary>
    /// Evaluates each input's tokens after what its sequence holds, all sequences together (in passes of at most
    /// <see cref="MaxBatchTokens"/> rows and <see cref="MaxSequencesPerPass"/> sequences). Afterwards each sequence's
    /// <see cref="Sequence.Logits"/> are its last token's (and <see cref="Sequence.AllLogits"/> every token's when asked).
    /// Throws before evaluating anything when a sequence would overflow its context or a token is outside the vocabulary.
    /// </summary>
    public void Decode(ReadOnlySpan<SequenceInput> inputs)
    {
        using var use = Use.Enter("Decode");
        using var call = Model.EnterCall();
        int vocab = Model.Config.Vocab;
        for (int i = 0; i < inputs.Length; i++)
        {
            var (s, toks, _) = inputs[i];
            Check(s);
            for (int j = 0; j < i; j++)
                if (inputs[j].Sequence == s) throw new ArgumentException($"sequence {s.Id} appears twice in one decode call", nameof(inputs));
            if (toks.Length == 0) throw new ArgumentException($"sequence {s.Id} has no tokens to evaluate", nameof(inputs));
            if (s.Length + toks.Length > s.Capacity)
                throw new InvalidOperationException(s.Length == 0
                    ? $"the prompt has {toks.Length} tokens but the context holds {s.Capacity}; shorten the prompt or use a larger context size"
                    : $"the context is full: {s.Length} tokens are cached and {toks.Length} more do not fit in the context of {s.Capacity}");
            foreach (int id in toks.Span)
                if ((uint)id >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(inputs), id, $"token id {id} is outside the vocabulary of {vocab}");
            if (inputs[i].AllLogits) s.AllLogitsBuffer(toks.Length);
        }

        Span<int> done = inputs.Length <= 64 ? stackalloc int[inputs.Length] : new int[inputs.Length];
        done.Clear();
        while (true)
        {
            _batch.Clear();
            Array.Clear(_slotOwner);
            int slots = 0, outputs = 0;
            for (int i = 0; i < inputs.Length && _batch.Rows < MaxBatchTokens; i++)
            {
                var (s, toks, all) = inputs[i];
                if (done[i] == toks.Length) continue;
                if (slots == _slotOwner.Length) break;
                int slot = slots++;
                _slotOwner[slot] = s;
                var span = toks.Span;
                int take = Math.Min(toks.Length - done[i], MaxBatchTokens - _batch.Rows);
                for (int j = 0; j < take; j++)
                {
                    int t = done[i] + j, pos = s.Length + j;
                    bool last = t == toks.Length - 1;
                    bool output = all || last;
                    _batch.Add(span[t], pos, slot, 0, pos + 1, output);
                    if (output)
                    {
                        _outputOwner[outputs] = i;
                        _outputIndex[outputs] = all ? t : -1;
                        outputs++;
                    }
                }
                done[i] += take;
            }
            if (_batch.Rows == 0) break;
            var logits = Decoder.Forward(Model.Weights, _batch, _buffers, _kv);
            OnPass?.Invoke(_batch);
            // the rows are in the caches now: advance each sequence and hand out the logits
            for (int r = 0; r < _batch.Rows; r++)
            {
                var s = _slotOwner[_batch.Slot[r]]!;
                s.TokenList.Add(_batch.Tokens[r]);
            }
            for (int slot = 0; slot < slots; slot++)
            {
                var s = _slotOwner[slot]!;
                s.Cache.Advance(s.TokenList.Count - s.Cache.Length);
            }
            for (int o = 0; o < outputs; o++)
            {
                var input = inputs[_outputOwner[o]];
                var row = logits.Slice(o * vocab, vocab);
                if (_outputIndex[o] >= 0) row.CopyTo(input.Sequence.AllLogitsBuffer(input.Tokens.Length).Slice(_outputIndex[o] * vocab, vocab));
                if (_outputIndex[o] < 0 || _outputIndex[o] == input.Tokens.Length - 1) row.CopyTo(input.Sequence.LastLogitsBuffer);
            }
        }
    }

    public void Dispose()
    {
        using var use = Use.Enter("Dispose");
        foreach (var s in _live.ToArray()) Drop(s);
    }

    /// <summary>The KV store of a pass: slot s is a sequence's cache.</summary>
    private sealed class SlotKv(Sequence?[] owners, Tensors.DType type) : IKvStore
    {
        public bool IsActivations => false;
        public Tensors.DType KvType => type;
        public nint Keys(int layer, int slot) => owners[slot]!.Cache.KeysPointer(layer);
        public nint Values(int layer, int slot) => owners[slot]!.Cache.ValuesPointer(layer);
        public int Ring(int layer, int slot) => owners[slot]!.Cache.Ring(layer);
    }
}
