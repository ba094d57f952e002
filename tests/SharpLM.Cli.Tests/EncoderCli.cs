using SharpLM.Testing;

namespace SharpLM.Cli.Tests;

/// <summary>Runs the CLI in-process; the built-in 'minilm' model is extracted once into a test cache folder.</summary>
internal static class EncoderCli
{
    static EncoderCli() =>
        Environment.SetEnvironmentVariable("SHARPLM_CACHE", Path.Combine(TestPaths.TempRoot, "cli-cache"));

    public static Task<(int Rc, string Out, string Err)> Run(params string[] args) => CliRun.Run(args);

    public static string TinyModel(string name) => Path.Combine(TestPaths.TestData, "bert", name);

    public static float[][] ParseJsonVectors(string json)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        return [.. doc.RootElement.EnumerateArray().Select(a => a.EnumerateArray().Select(x => x.GetSingle()).ToArray())];
    }
}
