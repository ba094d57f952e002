using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;

namespace SharpLM.Tokenizers.Core;

/// <summary>
/// The models' bounded, thread-safe cache of words already tokenized (word text -> ids, with whatever the model
/// stores beside them), looked up by span without allocating. Once <see cref="Capacity"/> words are in, new words
/// are no longer added. The count is kept apart: <see cref="ConcurrentDictionary{TKey,TValue}.Count"/> takes every
/// lock of the dictionary, and asking it on each miss cost 40% of a 1 MB WordPiece encode.
/// </summary>
internal sealed class WordCache<T> where T : class
{
    private readonly ConcurrentDictionary<string, T>.AlternateLookup<ReadOnlySpan<char>> _words;
    private int _count; // only words actually added are counted (TryAdd fails for the second of two threads adding one)

    public WordCache(int capacity)
    {
        Capacity = capacity;
        _words = new ConcurrentDictionary<string, T>(StringComparer.Ordinal).GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public int Capacity { get; }

    public bool TryGet(ReadOnlySpan<char> word, [MaybeNullWhen(false)] out T value) => _words.TryGetValue(word, out value);

    /// <summary>Whether another word may be added (check before building the value, to skip that work when full).</summary>
    public bool HasRoom => Volatile.Read(ref _count) < Capacity;

    /// <summary>Adds <paramref name="word"/> unless full or already there.</summary>
    public void TryAdd(ReadOnlySpan<char> word, T value)
    {
        if (HasRoom && _words.TryAdd(word, value)) Interlocked.Increment(ref _count);
    }
}
