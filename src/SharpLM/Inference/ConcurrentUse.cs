namespace SharpLM.Inference;

/// <summary>
/// Makes concurrent use of a mutable object (a <see cref="BatchDecoder"/> with its sequences and KV caches) fail loudly
/// instead of corrupting it: a call enters, and a call entering from another thread while one is inside throws an
/// <see cref="InvalidOperationException"/> naming the object and both calls. Handing the object from thread to thread
/// between calls (an async enumeration resumed elsewhere) is fine; a nested call on the thread inside is allowed.
/// Entering and leaving allocate nothing (one compare-exchange each).
/// </summary>
internal sealed class ExclusiveUse(Func<string> describe)
{
    private int _thread;     // managed id of the thread inside, 0 when free
    private string _call = "";
    private int _sequence = -1;

    /// <summary>Enters <paramref name="call"/> (a constant such as "Decode"), on sequence <paramref name="sequence"/> when
    /// it is about one; dispose the scope to leave.</summary>
    public Scope Enter(string call, int sequence = -1)
    {
        int me = Environment.CurrentManagedThreadId;
        int inside = Interlocked.CompareExchange(ref _thread, me, 0);
        if (inside == me) return default; // nested: the outer call leaves
        if (inside != 0)
            throw new InvalidOperationException(
                $"{describe()} is in use by another thread ({Name(Volatile.Read(ref _call), Volatile.Read(ref _sequence))} on managed thread " +
                $"{inside}) and {Name(call, sequence)} was called on managed thread {me}: a BatchDecoder and its sequences are used by one " +
                "thread at a time. Give each thread its own (LanguageModel.CreateBatch), or serialize the calls.");
        Volatile.Write(ref _call, call);
        Volatile.Write(ref _sequence, sequence);
        return new Scope(this);
    }

    private static string Name(string call, int sequence) => sequence < 0 ? call : $"{call} of sequence {sequence}";

    /// <summary>Leaves the call it entered (nothing for a nested one).</summary>
    public readonly struct Scope(ExclusiveUse? owner) : IDisposable
    {
        public void Dispose()
        {
            if (owner != null) Volatile.Write(ref owner._thread, 0);
        }
    }
}

/// <summary>
/// The calls in flight on an object that owns memory other threads may be reading (a model's memory-mapped weights):
/// <see cref="Dispose"/> marks it disposed, then waits for the calls inside to finish before the owner frees anything,
/// and a call that starts after that throws <see cref="ObjectDisposedException"/> (instead of reading unmapped memory).
/// A call also puts the object's own worker pool in place on its thread, when it has one (its thread count).
/// </summary>
internal sealed class InFlightCalls(string objectName)
{
    private int _calls;
    private int _disposed;

    /// <summary>Starts a call whose kernels run on <paramref name="pool"/> (null: the caller's); dispose the scope when it ends.</summary>
    public Scope Enter(Kernels.WorkerPool? pool)
    {
        Interlocked.Increment(ref _calls);
        if (Volatile.Read(ref _disposed) != 0)
        {
            Interlocked.Decrement(ref _calls);
            throw new ObjectDisposedException(objectName, $"{objectName} was disposed; load it again to use it");
        }
        return new Scope(this, pool?.Use());
    }

    /// <summary>Marks the object disposed and waits until no call is inside; false when it was already disposed.</summary>
    public bool Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return false;
        SpinWait sw = default;
        while (Volatile.Read(ref _calls) != 0) sw.SpinOnce(sleep1Threshold: 20);
        return true;
    }

    /// <summary>Ends the call (and restores the thread's pool).</summary>
    public readonly struct Scope(InFlightCalls owner, Kernels.WorkerPool.Scope? pool) : IDisposable
    {
        public void Dispose()
        {
            pool?.Dispose();
            Interlocked.Decrement(ref owner._calls);
        }
    }
}
