
namespace SharpLM.Training.Data;

/// <summary>
/// BERT's masked-LM corruption: each position is chosen with probability 15%; a chosen token becomes [MASK] 80% of
/// the time, a random token 10%, and stays unchanged 10%. Targets are the original token at chosen positions and -1
/// (ignored by the loss) elsewhere. The random stream comes from (seed, batch index), so runs and resumes agree.
/// </summary>
internal static class MlmMasking
{
    public const double ChooseRate = 0.15;

    /// <param name="tokens">the clean sequence (B*T)</param>
    /// <param name="inputs">receives the corrupted sequence</param>
    /// <param name="targets">receives the original ids at chosen positions, -1 elsewhere</param>
    /// <param name="maskId">the [MASK] id</param>
    /// <param name="randomVocab">random replacements are drawn from [0, randomVocab)</param>
    /// <param name="seed">the run's seed</param>
    /// <param name="batchIndex">which batch: with the seed, it fixes the choices</param>
    public static int Apply(ReadOnlySpan<int> tokens, Span<int> inputs, Span<int> targets, int maskId, int randomVocab, ulong seed, long batchIndex)
    {
        var rng = new TrainRandom(seed ^ (0xD1B54A32D192ED03UL * (ulong)(batchIndex + 1)));
        int chosen = 0;
        for (int i = 0; i < tokens.Length; i++)
        {
            int tok = tokens[i];
            if (rng.NextDouble() >= ChooseRate) { inputs[i] = tok; targets[i] = -1; continue; }
            chosen++;
            targets[i] = tok;
            double r = rng.NextDouble();
            inputs[i] = r < 0.8 ? maskId : r < 0.9 ? rng.Next(randomVocab) : tok;
        }
        return chosen;
    }
}
