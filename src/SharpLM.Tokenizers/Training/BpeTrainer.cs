using System.Text;
using System.Text.RegularExpressions;

namespace SharpLM.Tokenizers.Training;

/// <summary>
/// Byte-level BPE trainer (GPT-2 style): the text is split into words by the GPT-2 or LLaMA-3 regex, every word is
/// turned into its UTF-8 bytes (256 initial tokens, one per byte, written with the GPT-2 byte-to-char map), and the
/// most frequent adjacent pair is merged until the vocabulary reaches <see cref="BpeTrainerOptions.VocabSize"/>.
/// </summary>
/// <remarks>
/// Algorithm: a word frequency table (unique words with counts), pair counts weighted by word frequency, for every
/// pair the set of words that contain it, and a max-heap of (count, pair). Merging a pair only revisits the words that
/// contain it and updates the counts of the pairs around it. Heap entries are lazily refreshed: counts of existing
/// pairs can only fall, so a popped entry whose count is stale is pushed back with its current count.
/// Ties are broken deterministically: higher count first, then the smaller (left id, right id).
/// Ids: special tokens first (0..S-1), then the 256 bytes in byte order (S + byte), then merges in merge order.
/// </remarks>
public static partial class BpeTrainer
{
    [GeneratedRegex(PreTokenizers.SplitPatterns.Gpt2Text, RegexOptions.CultureInvariant)]
    private static partial Regex Gpt2Regex();

    [GeneratedRegex(PreTokenizers.SplitPatterns.Llama3Text, RegexOptions.CultureInvariant)]
    private static partial Regex Llama3Regex();

    internal static Regex SplitRegex(TrainerSplit split) => split switch
    {
        TrainerSplit.Gpt2 => Gpt2Regex(),
        TrainerSplit.Llama3 => Llama3Regex(),
        _ => throw new ArgumentOutOfRangeException(nameof(split), split, "expected Gpt2 or Llama3"),
    };

    /// <summary>The regex string of a split, as written into tokenizer.json (from <see cref="PreTokenizers.SplitPatterns"/>).</summary>
    public static string PatternOf(TrainerSplit split) => split switch
    {
        TrainerSplit.Gpt2 => PreTokenizers.SplitPatterns.Gpt2.Pattern,
        TrainerSplit.Llama3 => PreTokenizers.SplitPatterns.Llama3.Pattern,
        _ => throw new ArgumentOutOfRangeException(nameof(split), split, "expected Gpt2 or Llama3"),
    };

    /// <summary>Trains on a text file read in lines (each line keeps its '\n').</summary>
    public static BpeTrainerResult TrainFromFile(string path, BpeTrainerOptions options, IProgress<BpeTrainerProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Training corpus '{path}' does not exist.", path);
        long total = new FileInfo(path).Length;
        return Train(ReadWithNewlines(path), options, progress, total, ct);
    }

    private static IEnumerable<string> ReadWithNewlines(string path)
    {
        foreach (var line in File.ReadLines(path)) yield return line + "\n";
    }

    /// <summary>Trains on texts (each text is pre-tokenized on its own; include the newlines you want learned).</summary>
    /// <param name="texts">The corpus.</param>
    /// <param name="options">Vocabulary size, special tokens, split regex.</param>
    /// <param name="progress">Receives "count" then "merge" progress.</param>
    /// <param name="totalChars">Corpus size for the "count" stage's progress (0 when unknown).</param>
    /// <param name="ct">Cancels the run.</param>
    public static BpeTrainerResult Train(IEnumerable<string> texts, BpeTrainerOptions options, IProgress<BpeTrainerProgress>? progress = null, long totalChars = 0, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(options);
        var specials = options.SpecialTokens;
        if (specials.Distinct(StringComparer.Ordinal).Count() != specials.Count)
            throw new ArgumentException($"Special tokens must be distinct, got [{string.Join(", ", specials)}].", nameof(options));
        if (specials.Any(t => t.Length == 1 && Array.IndexOf(PreTokenizers.ByteLevelTables.ByteToChar, t[0]) >= 0))
            throw new ArgumentException("A special token must not equal a single byte-level character token.", nameof(options));
        if (specials.Any(string.IsNullOrEmpty))
            throw new ArgumentException("Special tokens must not be empty.", nameof(options));
        int initial = specials.Count + 256;
        if (options.VocabSize < initial)
            throw new ArgumentException($"VocabSize {options.VocabSize} is too small: it must be at least {initial} (the {specials.Count} special tokens + 256 byte tokens).", nameof(options));
        if (options.BosToken is { } bos && !specials.Contains(bos, StringComparer.Ordinal))
            throw new ArgumentException($"BosToken '{bos}' must be one of the special tokens [{string.Join(", ", specials)}].", nameof(options));

        // 1. Word frequency table.
        var regex = SplitRegex(options.Split);
        var wordCounts = new Dictionary<string, long>(StringComparer.Ordinal);
        var lookup = wordCounts.GetAlternateLookup<ReadOnlySpan<char>>();
        long chars = 0, lastReport = 0;
        foreach (var text in texts)
        {
            ct.ThrowIfCancellationRequested();
            if (string.IsNullOrEmpty(text)) continue;
            foreach (var m in regex.EnumerateMatches(text))
            {
                var piece = text.AsSpan(m.Index, m.Length);
                if (lookup.TryGetValue(piece, out long c)) lookup[piece] = c + 1;
                else lookup[piece] = 1;
            }
            chars += text.Length;
            if (progress != null && chars - lastReport > 1 << 16)
            {
                lastReport = chars;
                progress.Report(new BpeTrainerProgress("count", chars, totalChars));
            }
        }
        progress?.Report(new BpeTrainerProgress("count", chars, Math.Max(chars, totalChars)));

        // 2. Initial vocabulary and words as symbol ids. Words are sorted so that ids never depend on hash order.
        var vocab = new List<string>(options.VocabSize);
        vocab.AddRange(specials);
        int byteBase = vocab.Count;
        var byteChars = PreTokenizers.ByteLevelTables.ByteToChar;
        for (int b = 0; b < 256; b++) vocab.Add(byteChars[b].ToString());

        var sortedWords = wordCounts.Keys.ToArray();
        Array.Sort(sortedWords, StringComparer.Ordinal);
        var words = new int[sortedWords.Length][];
        var freqs = new long[sortedWords.Length];
        var utf8 = new byte[64];
        for (int w = 0; w < sortedWords.Length; w++)
        {
            var s = sortedWords[w];
            int n = System.Text.Encoding.UTF8.GetMaxByteCount(s.Length);
            if (n > utf8.Length) utf8 = new byte[Math.Max(n, utf8.Length * 2)];
            int len = System.Text.Encoding.UTF8.GetBytes(s, utf8);
            var sym = new int[len];
            for (int i = 0; i < len; i++) sym[i] = byteBase + utf8[i];
            words[w] = sym;
            freqs[w] = wordCounts[s];
        }

        // 3. Pair counts, where each pair occurs, and the heap.
        var pairCounts = new Dictionary<long, long>();
        var where = new Dictionary<long, HashSet<int>>();
        for (int w = 0; w < words.Length; w++)
        {
            var sym = words[w];
            for (int i = 0; i + 1 < sym.Length; i++)
            {
                long key = Key(sym[i], sym[i + 1]);
                pairCounts[key] = pairCounts.GetValueOrDefault(key) + freqs[w];
                if (!where.TryGetValue(key, out var set)) where[key] = set = [];
                set.Add(w);
            }
        }
        var heap = new PriorityQueue<long, (long Count, long Key)>(pairCounts.Count, HeapOrder.Instance);
        foreach (var (key, count) in pairCounts) heap.Enqueue(key, (count, key));

        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < vocab.Count; i++) ids.TryAdd(vocab[i], i);
        int targetMerges = options.VocabSize - vocab.Count;
        var merges = new List<(int Left, int Right)>(targetMerges);
        var delta = new Dictionary<long, long>();
        var scratch = new List<int>(64);
        long minFreq = Math.Max(1, options.MinFrequency);
        while (vocab.Count < options.VocabSize && heap.TryDequeue(out long pair, out var entry))
        {
            ct.ThrowIfCancellationRequested();
            long current = pairCounts.GetValueOrDefault(pair);
            if (current != entry.Count)
            {
                if (current > 0) heap.Enqueue(pair, (current, pair));
                continue;
            }
            if (current < minFreq) break;

            int left = (int)(pair >> 32), right = (int)(uint)pair;
            // Two merge paths can spell the same string ("ab"+"c", "a"+"bc"): reuse its id, as HF's trainer does.
            string merged = vocab[left] + vocab[right];
            if (!ids.TryGetValue(merged, out int newId))
            {
                newId = vocab.Count;
                vocab.Add(merged);
                ids[merged] = newId;
            }
            merges.Add((left, right));
            delta.Clear();
            foreach (int w in where[pair])
            {
                var sym = words[w];
                long f = freqs[w];
                bool found = false;
                for (int i = 0; i + 1 < sym.Length; i++)
                    if (sym[i] == left && sym[i + 1] == right) { found = true; break; }
                if (!found) continue;
                for (int i = 0; i + 1 < sym.Length; i++)
                {
                    long k = Key(sym[i], sym[i + 1]);
                    delta[k] = delta.GetValueOrDefault(k) - f;
                }
                scratch.Clear();
                for (int i = 0; i < sym.Length; i++)
                {
                    if (i + 1 < sym.Length && sym[i] == left && sym[i + 1] == right) { scratch.Add(newId); i++; }
                    else scratch.Add(sym[i]);
                }
                sym = words[w] = [.. scratch];
                for (int i = 0; i + 1 < sym.Length; i++)
                {
                    long k = Key(sym[i], sym[i + 1]);
                    delta[k] = delta.GetValueOrDefault(k) + f;
                    if (!where.TryGetValue(k, out var set)) where[k] = set = [];
                    set.Add(w);
                }
            }
            where.Remove(pair);
            foreach (var (k, d) in delta)
            {
                if (d == 0) continue;
                long c = pairCounts.GetValueOrDefault(k) + d;
                if (c <= 0) { pairCounts.Remove(k); where.Remove(k); continue; }
                pairCounts[k] = c;
                if (d > 0) heap.Enqueue(k, (c, k));
            }
            pairCounts.Remove(pair);
            if (progress != null && merges.Count % 64 == 0)
                progress.Report(new BpeTrainerProgress("merge", vocab.Count - initial, targetMerges));
        }
        progress?.Report(new BpeTrainerProgress("merge", vocab.Count - initial, vocab.Count - initial));

        var mergeStrings = merges.Select(m => (vocab[m.Left], vocab[m.Right])).ToArray();
        return new BpeTrainerResult(vocab.ToArray(), mergeStrings, options);
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>Max-heap by count, then the smaller pair key first.</summary>
    private sealed class HeapOrder : IComparer<(long Count, long Key)>
    {
        public static readonly HeapOrder Instance = new();

        public int Compare((long Count, long Key) x, (long Count, long Key) y)
        {
            int c = y.Count.CompareTo(x.Count);
            return c != 0 ? c : x.Key.CompareTo(y.Key);
        }
    }
}
