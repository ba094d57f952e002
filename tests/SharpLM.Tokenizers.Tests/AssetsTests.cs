using SharpLM.Testing;

namespace SharpLM.Tokenizers.Tests;

public class AssetsTests
{
    [Fact]
    public void MixedTextAndFetchedVocabulariesArePresent()
    {
        Assert.Contains("Tokenization", File.ReadAllText(TestPaths.MixedText), StringComparison.Ordinal);
        Assert.True(new FileInfo(TestPaths.Asset("npm", "tokenizer-llama3", "models", "tokenizer.json")).Length > 1_000_000);
        Assert.True(new FileInfo(TestPaths.Asset("brown.txt")).Length > 5_000_000);
    }
}
