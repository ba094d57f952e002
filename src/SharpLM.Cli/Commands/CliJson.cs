using System.Text.Json;
using System.Text.Json.Serialization;

namespace SharpLM.Cli.Commands;

/// <summary>
/// Source-generated JSON for every <c>--json</c> output that is serialized from objects (the native-AOT binary has no
/// reflection-based serializer). Property names are snake_case. <see cref="Indented"/> is for <c>inspect</c>.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(GenerateJson))]
[JsonSerializable(typeof(BenchJson))]
[JsonSerializable(typeof(Dictionary<string, object>))]
[JsonSerializable(typeof(Dictionary<string, object?>))]
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(List<Dictionary<string, object>>))]
[JsonSerializable(typeof(long[]))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(long))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(float))]
[JsonSerializable(typeof(double))]
[JsonSerializable(typeof(bool))]
internal sealed partial class CliJson : JsonSerializerContext
{
    /// <summary>The same types, written indented.</summary>
    public static CliJson Indented { get; } = new(new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower });
}

/// <summary><c>generate --json</c>.</summary>
internal sealed record GenerateJson(
    int[] PromptIds, IReadOnlyList<int> Ids, string? Text, int PromptTokens, int GeneratedTokens, string StopReason,
    double PrefillSeconds, double DecodeSeconds, double PrefillTokensPerS, double DecodeTokensPerS, int Threads, string Model,
    int DecodeSteps, SpeculativeJson? Speculative);

/// <summary>The speculative part of <c>generate --json</c>: the drafter, tokens it proposed and the model kept.</summary>
internal sealed record SpeculativeJson(string Drafter, int MaxDraft, int DraftedTokens, int AcceptedTokens, double AcceptanceRate, double TokensPerStep);

/// <summary><c>bench --json</c>.</summary>
internal sealed record BenchJson(
    string Model, int Threads, int PromptTokens, int GenTokens, int Repeat, double PrefillTokensPerS, double DecodeTokensPerS,
    double[] PrefillRuns, double[] DecodeRuns, long WeightBytesPerToken, double DecodeGbPerS, BenchMemoryJson Memory);

/// <summary>The memory part of <c>bench --json</c>: peak and pre-load resident bytes, the model file and KV cache bytes, and
/// (peak - before) / (file + KV cache) - 1.</summary>
internal sealed record BenchMemoryJson(long PeakRssBytes, long RssBeforeLoadBytes, long ModelFileBytes, long KvCacheBytes, double OverFileAndKv);
