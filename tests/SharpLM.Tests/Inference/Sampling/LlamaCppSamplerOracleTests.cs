using LLama.Native;
using SharpLM.Inference.Sampling;
using Xunit;

namespace SharpLM.Tests.Inference.Sampling;

/// <summary>
/// The same logits through llama.cpp's own sampler chain (via LLamaSharp: penalties -> top-k -> top-p -> min-p ->
/// temperature, as llama.cpp's common sampler builds it) and through <see cref="Sampler.Filter"/>: the surviving
/// candidates and their scaled logits must agree.
/// </summary>
public class LlamaCppSamplerOracleTests
{
    [Theory]
    [InlineData(40, 0.95f, 0.05f, 0.8f, 1.0f, 0f, 0f)]     // llama.cpp's defaults
    [InlineData(0, 0.9f, 0f, 1.0f, 1.0f, 0f, 0f)]
    [InlineData(0, 1f, 0.1f, 0.5f, 1.0f, 0f, 0f)]
    [InlineData(7, 1f, 0f, 1.3f, 1.0f, 0f, 0f)]
    [InlineData(100, 0.8f, 0.02f, 0.7f, 1.3f, 0f, 0f)]     // repetition penalty
    [InlineData(50, 0.99f, 0.01f, 1.0f, 1.1f, 0.3f, 0.5f)] // with presence and frequency penalties
    [InlineData(0, 1f, 0f, 2.0f, 1.0f, 0.0f, 1.0f)]
    public void SameCandidatesAsLlamaCpp(int topK, float topP, float minP, float temperature, float repeat, float presence, float frequency)
    {
        NativeApi.llama_empty_call(); // runs LLamaSharp's native library selection (avx512/avx2/... libllama.so) first
        const int vocab = 2000, lastN = 64;
        int changed = 0;
        for (int seed = 0; seed < 10; seed++)
        {
            var rng = new Random(seed);
            var logits = new float[vocab];
            for (int i = 0; i < vocab; i++) logits[i] = (float)(rng.NextDouble() * 12 - 6);
            var history = new int[100];
            var top = logits.Select((l, i) => (l, i)).OrderByDescending(x => x.l).Take(100).Select(x => x.i).ToArray();
            for (int i = 0; i < history.Length; i++) history[i] = i % 2 == 0 ? top[rng.Next(top.Length)] : rng.Next(0, vocab); // repeats, ids outside the window

            // llama.cpp
            using var chain = SafeLLamaSamplerChainHandle.Create(LLamaSamplerChainParams.Default());
            chain.AddPenalties(lastN, repeat, frequency, presence);
            if (topK > 0) chain.AddTopK(topK);
            chain.AddTopP(topP, 1);
            chain.AddMinP(minP, 1);
            chain.AddTemperature(temperature);
            foreach (var id in history) chain.Accept((LLamaToken)id);
            var data = LLamaTokenDataArray.Create(logits);
            Dictionary<int, float> theirs;
            using (LLamaTokenDataArrayNative.Create(data, out var native))
            {
                chain.Apply(ref native);
                theirs = native.Data[..(int)native.Size].ToArray().ToDictionary(t => (int)t.ID, t => t.Logit);
            }

            // SharpLM
            var o = new SamplingOptions
            {
                TopK = topK, TopP = topP, MinP = minP, Temperature = temperature, RepeatPenalty = repeat,
                PresencePenalty = presence, FrequencyPenalty = frequency, RepeatLastN = lastN, Seed = 1,
            };
            var s = new Sampler(o, vocab);
            s.Filter((float[])logits.Clone(), history);
            var ours = s.Candidates.ToArray().ToDictionary(c => c.Id, c => c.Logit);

            var onlyTheirs = theirs.Keys.Except(ours.Keys).ToList();
            var onlyOurs = ours.Keys.Except(theirs.Keys).ToList();
            Assert.True(onlyTheirs.Count == 0 && onlyOurs.Count == 0,
                $"seed {seed}: {theirs.Count} vs {ours.Count} candidates; only llama.cpp: [{string.Join(",", onlyTheirs)}], only SharpLM: [{string.Join(",", onlyOurs)}]");
            Assert.NotEmpty(ours);
            if (repeat != 1f || presence != 0f || frequency != 0f)
            {
                // the penalties really changed the outcome (so agreeing with llama.cpp means something)
                var plain = new Sampler(o with { RepeatPenalty = 1f, PresencePenalty = 0f, FrequencyPenalty = 0f }, vocab);
                plain.Filter((float[])logits.Clone(), history);
                var unpenalised = plain.Candidates.ToArray().ToDictionary(c => c.Id, c => c.Logit);
                if (unpenalised.Count != ours.Count || unpenalised.Any(kv => !ours.TryGetValue(kv.Key, out var v) || v != kv.Value)) changed++;
            }
            float maxDiff = ours.Max(kv => Math.Abs(kv.Value - theirs[kv.Key]));
            Assert.True(maxDiff <= 1e-5f, $"seed {seed}: max |logit difference| {maxDiff}");
        }
        if (repeat != 1f || presence != 0f || frequency != 0f)
            Assert.True(changed >= 5, $"the penalties changed the candidates for only {changed} of 10 seeds");
    }
}
