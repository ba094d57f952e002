using SharpLM.Tests.Docs;

namespace SharpLM.Server.Tests.Docs;

/// <summary>The C# blocks of docs/DEPLOY.md (mapping SharpLM into an ASP.NET Core app) compile as a project on
/// Microsoft.NET.Sdk.Web would compile them, against SharpLM.Server as it is.</summary>
public sealed class DeployExamplesTests
{
    public static TheoryData<int> Blocks() => DocCSharpBlocks.Indexes("docs/DEPLOY.md");

    [Fact]
    public void The_deploy_guide_has_a_csharp_example() =>
        Assert.NotEmpty(DocCSharpBlocks.Blocks("docs/DEPLOY.md"));

    [Theory]
    [MemberData(nameof(Blocks))]
    public void Deploy_csharp_block_compiles(int index) =>
        DocCSharpBlocks.AssertCompiles("docs/DEPLOY.md", index, DocCSharpBlocks.WebSdkUsings,
            typeof(SharpLMServer), typeof(SharpLM.Models.LanguageModel), typeof(SharpLM.Tokenizers.Tokenizer));
}
