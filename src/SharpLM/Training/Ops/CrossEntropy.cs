using System.Numerics;

namespace SharpLM.Training.Ops;

/// <summary>
/// Fused softmax + cross-entropy. Forward: logits (N,V), targets (N) (a target &lt; 0 is ignored, e.g. MLM positions
/// that were not chosen) -> probs (N,V), losses (N); returns the mean loss over the counted positions and their count.
/// Backward (+=): dlogits[n] += scale * (probs[n] - onehot(targets[n])) for counted n, scale = dloss / count.
/// </summary>
internal static class CrossEntropy
{
    public static (double Mean, int Count) Forward<T>(ReadOnlySpan<T> logits, ReadOnlySpan<int> targets, Span<T> probs, Span<T> losses, int v)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        double total = 0;
        int count = 0;
        for (int n = 0; n < targets.Length; n++)
        {
            var lr = logits.Slice(n * v, v);
            var pr = probs.Slice(n * v, v);
            T max = T.NegativeInfinity;
            for (int i = 0; i < v; i++) if (lr[i] > max) max = lr[i];
            T sum = T.Zero;
            for (int i = 0; i < v; i++) { T e = T.Exp(lr[i] - max); pr[i] = e; sum += e; }
            T inv = T.One / sum;
            for (int i = 0; i < v; i++) pr[i] *= inv;
            int tg = targets[n];
            if (tg < 0) { losses[n] = T.Zero; continue; }
            if (tg >= v) throw new ArgumentOutOfRangeException(nameof(targets), tg, $"target at position {n} is outside the vocabulary [0, {v})");
            // -log p = log(sum) + max - logit, which keeps precision when p underflows
            T loss = T.Log(sum) + max - lr[tg];
            losses[n] = loss;
            total += double.CreateTruncating(loss);
            count++;
        }
        return (count == 0 ? 0 : total / count, count);
    }

    public static void Backward<T>(ReadOnlySpan<T> probs, ReadOnlySpan<int> targets, Span<T> dlogits, int v, T scale)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int n = 0; n < targets.Length; n++)
        {
            int tg = targets[n];
            if (tg < 0) continue;
            var pr = probs.Slice(n * v, v);
            var dr = dlogits.Slice(n * v, v);
            TrainMath.Axpy(scale, pr, dr);
            dr[tg] -= scale;
        }
    }
}
