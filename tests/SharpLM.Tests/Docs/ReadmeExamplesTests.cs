namespace SharpLM.Tests.Docs;

/// <summary>Every C# block of the README compiles against the libraries as they are; its own using directives say
/// which SharpLM namespaces it needs.</summary>
public sealed class ReadmeExamplesTests
{
    public static TheoryData<int> Blocks() => DocCSharpBlocks.Indexes("README.md");

    [Fact]
    public void The_readme_has_csharp_examples() =>
        Assert.True(DocCSharpBlocks.Blocks("README.md").Count >= 3, "the README's .NET examples are gone");

    [Theory]
    [MemberData(nameof(Blocks))]
    public void Readme_csharp_block_compiles(int index) =>
        DocCSharpBlocks.AssertCompiles("README.md", index, DocCSharpBlocks.SdkUsings,
            typeof(SharpLM.Models.LanguageModel), typeof(SharpLM.Tokenizers.Tokenizer));
}
