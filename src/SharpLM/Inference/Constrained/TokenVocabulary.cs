namespace SharpLM.Inference.Constrained;

/// <summary>
/// The text every token adds to the output, as the streamer will decode it (a SentencePiece "▁tok" adds " tok"; a
/// lone byte of a multi-byte UTF-8 character adds U+FFFD; special tokens add nothing), and the ids sorted by that text
/// so a walk over them shares the work for common prefixes as a trie would. Built once per model (a decode per token).
/// Also the token strings of logprobs.
/// </summary>
internal sealed class TokenVocabulary
{
    private TokenVocabulary(string[] texts, int[] sorted, int[] common, HashSet<int> eos)
    {
        Texts = texts;
        Sorted = sorted;
        CommonPrefix = common;
        Eos = eos;
    }

    /// <summary>Text of each id ("" for special and unknown ids).</summary>
    public string[] Texts { get; }

    /// <summary>Ids with non-empty text, sorted by text (ordinal).</summary>
    public int[] Sorted { get; }

    /// <summary>For Sorted[k]: the length of the prefix its text shares with Sorted[k-1]'s (0 for k = 0).</summary>
    public int[] CommonPrefix { get; }

    /// <summary>Ids that end the generation.</summary>
    public HashSet<int> Eos { get; }

    public int Size => Texts.Length;

    /// <summary>Builds the table from a tokenizer's decoder: each id's text is the decode of [context, id] minus the
    /// context's decode, so leading spaces survive the decoder's start-of-text stripping.</summary>
    public static TokenVocabulary Build(ITokenDecoder decoder, int vocabSize, int contextId, IEnumerable<int> eos)
    {
        var texts = new string[vocabSize];
        Span<int> pair = [contextId, 0];
        string head = decoder.Decode(pair[..1]);
        for (int id = 0; id < vocabSize; id++)
        {
            pair[1] = id;
            string both = decoder.Decode(pair);
            texts[id] = both.StartsWith(head, StringComparison.Ordinal) ? both[head.Length..] : decoder.Decode(pair[1..]);
        }
        return FromTexts(texts, eos);
    }

    /// <summary>The table for given token texts (tests, and <see cref="Build"/>).</summary>
    public static TokenVocabulary FromTexts(string[] texts, IEnumerable<int> eos)
    {
        var ids = Enumerable.Range(0, texts.Length).Where(i => texts[i].Length > 0).ToArray();
        Array.Sort(ids, (a, b) =>
        {
            int c = string.CompareOrdinal(texts[a], texts[b]);
            return c != 0 ? c : a.CompareTo(b);
        });
        var common = new int[ids.Length];
        for (int k = 1; k < ids.Length; k++)
        {
            string a = texts[ids[k - 1]], b = texts[ids[k]];
            int n = Math.Min(a.Length, b.Length), l = 0;
            while (l < n && a[l] == b[l]) l++;
            common[k] = l;
        }
        return new TokenVocabulary(texts, ids, common, [.. eos]);
    }
}
