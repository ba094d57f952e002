using SharpLM.Models;
using SharpLM.Training;
using SharpLM.Training.Optim;

namespace SharpLM.Lab;

/// <summary>Synthetic tasks and short training runs for the experiments, over the trainer's own model, optimizer and
/// step (<see cref="TrainStep"/>).</summary>
internal static class LabTraining
{
    /// <summary>A small LLaMA (RMSNorm, RoPE, SwiGLU, untied head) as <c>sharplm train</c> builds it.</summary>
    public static ModelConfig Llama(int vocab, int width, int layers, int heads, int context) =>
        TrainModel.NewConfig("llama", vocab, width, layers, heads, heads, 2 * width, context, tied: false);

    /// <summary>
    /// The copy task: each sequence is m random tokens (ids 1..V-1) followed by the same m tokens again; inputs are the
    /// first 2m-1 tokens and the loss counts only the predictions of the copied half (targets of the first half are -1),
    /// so the model must find, for each position, the token m places back: a task that needs sharp attention.
    /// </summary>
    public static void CopyBatch(TrainRandom rng, int vocab, int b, int t, int[] x, int[] y)
    {
        int m = (t + 1) / 2;
        var seq = new int[2 * m];
        for (int i = 0; i < b; i++)
        {
            for (int j = 0; j < m; j++) seq[j] = seq[j + m] = 1 + rng.Next(vocab - 1);
            for (int j = 0; j < t; j++)
            {
                x[i * t + j] = seq[j];
                y[i * t + j] = j + 1 >= m && j + 1 < 2 * m ? seq[j + 1] : -1;
            }
        }
    }

    /// <summary>
    /// Trains <paramref name="model"/> for <paramref name="steps"/> AdamW steps (β 0.9/0.95, no weight decay, clip 1,
    /// linear warmup over <paramref name="warmup"/> steps then cosine to lr/10) on batches from <paramref name="fill"/>;
    /// returns the loss of every step, NaN from the step the loss or the gradient stopped being finite.
    /// </summary>
    public static double[] Run(TrainModel model, int steps, int b, int t, double lr, int warmup, Action<int, int[], int[]> fill,
                               Action<int>? onStep = null, double gradClip = 1.0)
    {
        var opt = new AdamW(model.Parameters.Count, 0.0, 0.9, 0.95);
        var stepper = new TrainStep(model, opt, new LrSchedule(lr, lr / 10, warmup, steps), gradClip);
        var x = new int[b * t];
        var y = new int[b * t];
        var losses = new double[steps];
        for (int s = 0; s < steps; s++)
        {
            var r = stepper.Run(s, 1, b, t, x, y, (_, xs, ys) => fill(s, xs, ys));
            if (!double.IsFinite(r.Loss) || !double.IsFinite(r.GradNorm))
            {
                Array.Fill(losses, double.NaN, s, steps - s);
                break;
            }
            losses[s] = r.Loss;
            onStep?.Invoke(s);
        }
        return losses;
    }

    /// <summary>The mean of the last <paramref name="fraction"/> of <paramref name="losses"/> (NaN if any diverged).</summary>
    public static double Final(double[] losses, double fraction = 0.1)
    {
        int n = Math.Max(1, (int)(losses.Length * fraction));
        return losses.AsSpan(losses.Length - n).ToArray().Average();
    }

    /// <summary>The first step whose loss is below <paramref name="threshold"/>, or -1.</summary>
    public static int StepsTo(double[] losses, double threshold) => Array.FindIndex(losses, l => l < threshold);
}
