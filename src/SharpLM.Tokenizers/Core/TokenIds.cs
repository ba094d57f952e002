namespace SharpLM.Tokenizers.Core;

/// <summary>
/// The range of token ids a vocabulary may use, and the one id→token table every model builds. Each table is sized by
/// the largest id, so an id read from a file (a tokenizer.json vocabulary or added token, a tiktoken rank, a
/// post-processor's special token) is checked against <see cref="Limit"/> where it is read, with an error naming the
/// file, the key or line, and the value; a table is never sized by an untrusted number. The largest real vocabularies
/// have about 2^18 tokens.
/// </summary>
internal static class TokenIds
{
    /// <summary>Ids are in [0, Limit): 2^24 (16,777,216).</summary>
    public const int Limit = 1 << 24;

    /// <summary>Null when <paramref name="id"/> is a usable token id, otherwise what is wrong with it.</summary>
    public static string? Problem(long id) =>
        id < 0 ? $"token id {id} is negative"
        : id >= Limit ? $"token id {id} is past the limit of {Limit:N0} (the largest vocabularies have about 262,000 tokens)"
        : null;

    /// <summary>The id→token table of <paramref name="vocab"/> (then <paramref name="extra"/> where a slot is free),
    /// sized by the largest id; throws <see cref="InvalidDataException"/> for an id outside [0, <see cref="Limit"/>).</summary>
    public static string?[] Table(IEnumerable<KeyValuePair<string, int>> vocab, IEnumerable<KeyValuePair<string, int>>? extra = null)
    {
        int max = -1;
        foreach (var (token, id) in extra is null ? vocab : vocab.Concat(extra))
        {
            if (Problem(id) is { } why) throw new InvalidDataException($"the vocabulary's token '{Clip(token)}': {why}");
            if (id > max) max = id;
        }
        var table = new string?[max + 1];
        foreach (var (t, id) in vocab) table[id] = t;
        if (extra != null) foreach (var (t, id) in extra) table[id] ??= t;
        return table;
    }

    private static string Clip(string s) => s.Length <= 40 ? s : s[..40] + "...";
}
