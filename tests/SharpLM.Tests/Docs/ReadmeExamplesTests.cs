using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using SharpLM.Testing;

namespace SharpLM.Tests.Docs;

/// <summary>
/// Every C# block of the README compiles against the libraries as they are (Roslyn, the test's own references): an
/// example that stops compiling is a failing test. Each block is a program of top-level statements with the SDK's
/// implicit usings; its own using directives say which SharpLM namespaces it needs.
/// </summary>
public sealed partial class ReadmeExamplesTests
{
    [GeneratedRegex(@"```csharp\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex CSharpBlock();

    public static TheoryData<int> Blocks()
    {
        var data = new TheoryData<int>();
        int n = CSharpBlock().Matches(File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "README.md"))).Count;
        for (int i = 0; i < n; i++) data.Add(i);
        return data;
    }

    [Fact]
    public void The_readme_has_csharp_examples() =>
        Assert.True(CSharpBlock().Matches(File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "README.md"))).Count >= 3, "the README's .NET examples are gone");

    [Theory]
    [MemberData(nameof(Blocks))]
    public void Readme_csharp_block_compiles(int index)
    {
        string code = CSharpBlock().Matches(File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "README.md")))[index].Groups[1].Value;
        const string implicitUsings = "global using System; global using System.IO; global using System.Linq; global using System.Collections.Generic; " +
                                      "global using System.Threading; global using System.Threading.Tasks; global using System.Net.Http;";
        var trees = new[]
        {
            CSharpSyntaxTree.ParseText(implicitUsings, new CSharpParseOptions(LanguageVersion.Preview)),
            CSharpSyntaxTree.ParseText(code, new CSharpParseOptions(LanguageVersion.Preview), path: $"README block {index}"),
        };
        var refs = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Concat([typeof(SharpLM.Models.LanguageModel).Assembly.Location, typeof(SharpLM.Tokenizers.Tokenizer).Assembly.Location])
            .Distinct(StringComparer.Ordinal)
            .Where(File.Exists)
            .Select(p => MetadataReference.CreateFromFile(p));
        var compilation = CSharpCompilation.Create($"readme{index}", trees, refs,
            new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable));
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.True(errors.Count == 0, $"README C# block {index} does not compile:\n{code}\n{string.Join("\n", errors)}");
    }
}
