using SharpLM.Lab;

namespace SharpLM.Tests.Lab;

/// <summary>The determinism rule for the experiments whose own test files do not check it already: the quick form
/// run twice with the same seed and thread count gives the same <c>data</c> (wall-clock times live apart, under
/// <c>timings</c>), and another seed changes it where the experiment draws random numbers.</summary>
[Collection("TrainParallel")]
public class DeterminismTests
{
    [Theory]
    [InlineData("warmup", true)]
    [InlineData("embedding-sum", false)]
    [InlineData("sparse-attention", true)]
    [InlineData("albert-sharing", true)]
    [InlineData("tokens-per-character", false)]
    [InlineData("parameters", false)]
    [InlineData("kv-cache", false)]
    [InlineData("complexity", false)]
    public void The_same_seed_and_threads_give_the_same_data(string name, bool seeded)
    {
        var e = LabRegistry.Find(name) ?? throw new Xunit.Sdk.XunitException($"no experiment {name}");
        LabOptions With(ulong seed) => new()
        {
            Quick = true, Seed = seed, Threads = 2, AssetsDir = OovTests.Options.AssetsDir, MiniLm = OovTests.Options.MiniLm,
            Tiktoken = TokensPerCharacterTests.RankFile,
        };
        string a = LabRegistry.Run(e, With(3)).Data.ToJsonString();
        Assert.Equal(a, LabRegistry.Run(e, With(3)).Data.ToJsonString());
        if (seeded) Assert.NotEqual(a, LabRegistry.Run(e, With(4)).Data.ToJsonString());
    }
}
