using System.Numerics;

namespace SharpLM.Kernels;

/// <summary>
/// Fused softmax + cross-entropy. Forward: logits (N,V), targets (N) (a target &lt; 0 is ignored, e.g. MLM positions that
/// were not chosen) -> probs (N,V), losses (N); returns the mean loss over the counted positions and their count
/// (-log p computed as log(sum) + max - logit, which keeps precision when p underflows; the mean summed in double).
/// Backward (accumulating): dlogits[n] += scale * (probs[n] - onehot(targets[n])) for counted n, scale = dloss / count.
/// </summary>
internal static class CrossEntropy
{
    public static (double Mean, int Count) Forward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, Span<float> probs, Span<float> losses, int v) =>
        Naive.Forward(logits, targets, probs, losses, v);

    public static void Backward(ReadOnlySpan<float> probs, ReadOnlySpan<int> targets, Span<float> dlogits, int v, float scale) =>
        Naive.Backward(probs, targets, dlogits, v, scale);

    /// <summary>The readable version (the f32 kernel is this at T = float: it is not a hot loop).</summary>
    public static class Naive
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
                for (int i = 0; i < v; i++) dr[i] += scale * pr[i];
                dr[tg] -= scale;
            }
        }
    }
}
