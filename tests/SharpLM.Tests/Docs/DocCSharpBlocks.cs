using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using SharpLM.Testing;

namespace SharpLM.Tests.Docs;

/// <summary>
/// The C# blocks of a Markdown file in the repository, compiled with Roslyn against the test's own references (the
/// shared frameworks it runs on and the SharpLM assemblies it loads): a documented example that stops compiling is a
/// failing test. Each block is a program of top-level statements with an SDK's implicit usings.
/// </summary>
internal static partial class DocCSharpBlocks
{
    [GeneratedRegex(@"```csharp\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex CSharpBlock();

    /// <summary>The implicit usings of Microsoft.NET.Sdk.</summary>
    public const string SdkUsings = "global using System; global using System.IO; global using System.Linq; global using System.Collections.Generic; " +
                                    "global using System.Threading; global using System.Threading.Tasks; global using System.Net.Http;";

    /// <summary>The implicit usings of Microsoft.NET.Sdk.Web.</summary>
    public const string WebSdkUsings = SdkUsings + " global using System.Net.Http.Json; global using Microsoft.AspNetCore.Builder; " +
                                       "global using Microsoft.AspNetCore.Hosting; global using Microsoft.AspNetCore.Http; global using Microsoft.AspNetCore.Routing; " +
                                       "global using Microsoft.Extensions.Configuration; global using Microsoft.Extensions.DependencyInjection; " +
                                       "global using Microsoft.Extensions.Hosting; global using Microsoft.Extensions.Logging;";

    /// <summary>The blocks of <paramref name="markdown"/> (a path relative to the repository root).</summary>
    public static IReadOnlyList<string> Blocks(string markdown) =>
        [.. CSharpBlock().Matches(File.ReadAllText(Path.Combine(TestPaths.RepoRoot, markdown))).Select(m => m.Groups[1].Value)];

    public static TheoryData<int> Indexes(string markdown)
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < Blocks(markdown).Count; i++) data.Add(i);
        return data;
    }

    /// <summary>Compiles block <paramref name="index"/> of <paramref name="markdown"/>; fails the test with the errors.</summary>
    public static void AssertCompiles(string markdown, int index, string implicitUsings, params Type[] libraries)
    {
        string code = Blocks(markdown)[index];
        var trees = new[]
        {
            CSharpSyntaxTree.ParseText(implicitUsings, new CSharpParseOptions(LanguageVersion.Preview)),
            CSharpSyntaxTree.ParseText(code, new CSharpParseOptions(LanguageVersion.Preview), path: $"{markdown} block {index}"),
        };
        var refs = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Concat(libraries.Select(t => t.Assembly.Location))
            .Distinct(StringComparer.Ordinal)
            .Where(File.Exists)
            .Select(p => MetadataReference.CreateFromFile(p));
        var compilation = CSharpCompilation.Create($"doc{index}", trees, refs,
            new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable));
        var errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        Assert.True(errors.Count == 0, $"{markdown} C# block {index} does not compile:\n{code}\n{string.Join("\n", errors)}");
    }
}
