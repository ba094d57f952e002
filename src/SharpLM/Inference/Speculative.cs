using SharpLM.Models;

namespace SharpLM.Inference;

/// <summary>
/// Proposes the tokens that probably follow a sequence, for speculative decoding: the big model then checks them all in
/// one forward pass (<see cref="Generator"/>) and keeps the prefix it would have produced itself. A drafter only ever
/// affects speed: what is generated is the big model's greedy output whatever it proposes.
/// </summary>
public interface IDrafter
{
    /// <summary>A short name for reports ("prompt-lookup", "draft-model").</summary>
    string Name { get; }

    /// <summary>The most tokens proposed per step.</summary>
    int MaxDraft { get; }

    /// <summary>Appends to <paramref name="draft"/> up to <paramref name="max"/> tokens that may follow
    /// <paramref name="history"/> (the prompt and every token generated so far, the last one included).</summary>
    void Propose(ReadOnlySpan<int> history, int max, List<int> draft);
}

/// <summary>
/// Prompt-lookup drafting (n-gram matching, no second model): find the latest earlier place where the last n tokens of
/// the history occurred (n from <see cref="MaxNgram"/> down to <see cref="MinNgram"/>) and propose what followed it
/// there. It pays on text that repeats its input: code edits, summaries and quotes of a given text, lists.
/// </summary>
public sealed class PromptLookupDrafter : IDrafter
{
    public PromptLookupDrafter(int maxDraft = 8, int maxNgram = 3, int minNgram = 1)
    {
        if (maxDraft < 1) throw new ArgumentOutOfRangeException(nameof(maxDraft), maxDraft, "at least one drafted token per step");
        if (minNgram < 1 || maxNgram < minNgram) throw new ArgumentOutOfRangeException(nameof(maxNgram), $"n-gram sizes must satisfy 1 <= min ({minNgram}) <= max ({maxNgram})");
        MaxDraft = maxDraft;
        MaxNgram = maxNgram;
        MinNgram = minNgram;
    }

    public string Name => "prompt-lookup";
    public int MaxDraft { get; }
    public int MaxNgram { get; }
    public int MinNgram { get; }

    public void Propose(ReadOnlySpan<int> history, int max, List<int> draft)
    {
        max = Math.Min(max, MaxDraft);
        int len = history.Length;
        if (max <= 0 || len < 2) return;
        for (int n = Math.Min(MaxNgram, len - 1); n >= MinNgram; n--)
        {
            var tail = history[(len - n)..];
            // latest earlier occurrence first: recent text is the likeliest to repeat
            for (int start = len - n - 1; start >= 0; start--)
            {
                if (!history.Slice(start, n).SequenceEqual(tail)) continue;
                int from = start + n, count = Math.Min(max, len - from);
                for (int i = 0; i < count; i++) draft.Add(history[from + i]);
                return;
            }
        }
    }
}

/// <summary>
/// Drafting with a small model that shares the big model's vocabulary: it decodes <see cref="MaxDraft"/> tokens greedily
/// on its own sequence, which is rolled back to the agreed history before each step (only the tokens it has not seen
/// are fed to it).
/// </summary>
public sealed class DraftModelDrafter : IDrafter, IDisposable
{
    private readonly Sequence _seq;
    private readonly BatchDecoder _decoder;
    private readonly int[] _one = new int[1];

    /// <param name="draft">the small model (same token ids as the big one: checked by vocabulary size against <paramref name="target"/>).</param>
    /// <param name="target">the big model's config, to check the vocabularies agree.</param>
    /// <param name="maxDraft">tokens proposed per step.</param>
    public DraftModelDrafter(LanguageModel draft, ModelConfig target, int maxDraft = 4)
    {
        ArgumentNullException.ThrowIfNull(draft);
        ArgumentNullException.ThrowIfNull(target);
        if (maxDraft < 1) throw new ArgumentOutOfRangeException(nameof(maxDraft), maxDraft, "at least one drafted token per step");
        if (draft.Config.Vocab != target.Vocab)
            throw new ArgumentException($"the draft model {draft.Path} has a vocabulary of {draft.Config.Vocab} tokens and the model {target.Vocab}: a draft model must use the same tokenizer", nameof(draft));
        Model = draft;
        MaxDraft = maxDraft;
        _decoder = draft.CreateBatch(maxSequencesPerPass: 1);
        _seq = _decoder.AddSequence();
    }

    public string Name => "draft-model";
    public int MaxDraft { get; }
    public LanguageModel Model { get; }

    public void Propose(ReadOnlySpan<int> history, int max, List<int> draft)
    {
        max = Math.Min(max, MaxDraft);
        // the draft model's own context may be shorter than the big model's: then it stops drafting
        if (max <= 0 || history.Length + max > _seq.Capacity) return;
        var cached = _seq.Tokens;
        int common = 0;
        while (common < cached.Count && common < history.Length - 1 && cached[common] == history[common]) common++;
        _seq.Truncate(common);
        var logits = _seq.Forward(history[common..], allLogits: false);
        for (int i = 0; i < max; i++)
        {
            int next = Sampling.Sampler.ArgMax(logits);
            draft.Add(next);
            if (i + 1 == max) break;
            _one[0] = next;
            logits = _seq.Forward(_one, allLogits: false);
        }
    }

    public void Dispose() => _decoder.Dispose();
}
