using System.Text;
using SharpLM.Kernels;
using SharpLM.Models;

namespace SharpLM.Inference;

/// <summary>
/// How well a model predicts a text: the summed negative log-likelihood (nats) of the tokens it scored and the UTF-8
/// bytes those tokens stand for. Bits per byte = nats / bytes / ln 2 compares models whatever their tokenizers.
/// </summary>
internal readonly record struct TextScore(double Nats, long Tokens, long Bytes)
{
    public double NatsPerToken => Nats / Tokens;
    public double BitsPerByte => BitsPerByteOf(Nats, Bytes);
    public double Perplexity => Math.Exp(NatsPerToken);

    /// <summary>Bits per byte of a summed loss: nats / bytes / ln 2 (the trainer's validation figure uses it too).</summary>
    public static double BitsPerByteOf(double nats, long bytes) => nats / bytes / Math.Log(2);
}

/// <summary>
/// Scores a text with a model's own logits (what <c>sharplm perplexity</c> prints). The text is tokenized whole
/// (BOS first when the model uses one, so every text token is predicted; without BOS the first token is not, and its
/// bytes are not counted) and read in windows of T input tokens that advance by a stride S ≤ T: a window starting at
/// token i predicts tokens i+1..i+T, and scores those no earlier window scored (the first window all T, each later one
/// its last S), so every scored token sees at least T - S + 1 tokens (in the first window, all before it).
/// S = T is the trainer's validation windows (T inputs, the next T tokens as targets).
/// </summary>
internal static class Perplexity
{
    /// <summary>The most rows evaluated per forward call.</summary>
    private const int MaxChunk = 256;

    /// <param name="model">a decoder model with a tokenizer.</param>
    /// <param name="text">the text, scored as one stream.</param>
    /// <param name="window">T, at most the model's context (default: the model's context).</param>
    /// <param name="stride">S (default T / 2).</param>
    /// <param name="progress">called with (tokens scored, tokens to score) after each window.</param>
    /// <param name="ct">stops between windows.</param>
    public static TextScore Score(LanguageModel model, string text, int? window = null, int? stride = null,
                                  Action<long, long>? progress = null, CancellationToken ct = default)
    {
        var tok = model.RequireTokenizer();
        int t = window ?? model.ContextSize;
        if (t < 2 || t > model.ContextSize) throw new ArgumentOutOfRangeException(nameof(window), t, $"the window must be 2..{model.ContextSize} tokens (the model's context)");
        int s = stride ?? Math.Max(1, t / 2);
        if (s < 1 || s > t) throw new ArgumentOutOfRangeException(nameof(stride), s, $"the stride must be 1..{t} (the window)");

        int[] ids = tok.Encode(text, addBos: true);
        bool bos = ids.Length > tok.Encode(text, addBos: false).Length;
        long bytes = Encoding.UTF8.GetByteCount(text);
        if (!bos && ids.Length > 0) bytes -= Encoding.UTF8.GetByteCount(tok.Decode([ids[0]])); // predicted by nothing: not scored
        if (ids.Length < 2 || bytes <= 0) throw new ArgumentException("the text is too short to score: it needs at least two tokens", nameof(text));

        int vocab = model.Config.Vocab;
        int chunk = Math.Clamp((1 << 22) / vocab, 1, MaxChunk); // rows per forward call: (rows, V) probabilities <= 16 MB
        using var batch = model.CreateBatch(Math.Min(chunk, t), 1);
        var seq = batch.AddSequence(t);
        var targets = new int[chunk];
        var probs = new float[(long)chunk * vocab];
        var losses = new float[chunk];
        double nats = 0;
        long scored = 0;
        int last = ids.Length - 1;   // targets are ids[1..last]
        int done = 0;                // targets 1..done are scored
        // a window: inputs ids[start .. start+n), targets ids[start+1 .. start+n]; only targets after `done` count
        for (int start = 0; done < last; start += s)
        {
            ct.ThrowIfCancellationRequested();
            int n = Math.Min(t, last - start);
            seq.Truncate(0);
            for (int c = 0; c < n; c += chunk)
            {
                int rows = Math.Min(chunk, n - c);
                var logits = seq.Forward(ids.AsSpan(start + c, rows), allLogits: true);
                for (int r = 0; r < rows; r++)
                {
                    int target = start + c + r + 1;
                    targets[r] = target <= done ? -1 : ids[target]; // the trainer's loss: a target < 0 is not counted
                }
                var (mean, count) = CrossEntropy.Forward(logits, targets.AsSpan(0, rows), probs, losses, vocab);
                nats += mean * count;
                scored += count;
            }
            done = start + n;
            progress?.Invoke(scored, last);
        }
        return new TextScore(nats, scored, bytes);
    }
}
