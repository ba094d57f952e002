using BenchmarkDotNet.Attributes;

namespace SharpLM.Benchmarks.Tokenizers;

/// <summary>
/// BenchmarkDotNet form of the tokenizer comparison (1 MB of Brown, one encode per operation).
/// Run: <c>dotnet run -c Release --project bench/SharpLM.Benchmarks -- --filter '*TokenizerBenchmarks*'</c>.
/// On the shared machine prefer <c>tokenizer-race</c>, which alternates the peers.
/// </summary>
[MemoryDiagnoser]
public class TokenizerBenchmarks
{
    private string _text = "";
    private Func<string, int> _sharp = _ => 0;
    private Func<string, int> _peer = _ => 0;

    [Params("gpt2", "cl100k_base", "o200k_base", "llama3", "qwen3", "mistral")]
    public string Case { get; set; } = "cl100k_base";

    [GlobalSetup]
    public void Setup()
    {
        _text = TokenizerPeers.BrownMegabyte();
        var c = TokenizerPeers.All([Case]).Single();
        _sharp = c.SharpIds;
        _peer = c.Peer;
    }

    [Benchmark(Baseline = true)]
    public int Peer() => _peer(_text);

    [Benchmark]
    public int SharpLM() => _sharp(_text);
}
