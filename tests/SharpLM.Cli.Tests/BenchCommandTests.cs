using System.Text.Json;

namespace SharpLM.Cli.Tests;

public sealed class BenchCommandTests
{
    [Fact]
    public async Task Json_reports_medians_and_the_bandwidth_figure()
    {
        var (_, path) = GenerateCommandTests.TinyModel();
        var (rc, output, err) = await GenerateCommandTests.Run("bench", "--model", path, "--prompt-tokens", "16", "--gen-tokens", "8", "--repeat", "3", "--threads", "1", "--json");
        Assert.True(rc == 0, err);
        using var doc = JsonDocument.Parse(output);
        var r = doc.RootElement;
        var decodeRuns = r.GetProperty("decode_runs").EnumerateArray().Select(x => x.GetDouble()).Order().ToArray();
        Assert.Equal(3, decodeRuns.Length);
        Assert.Equal(decodeRuns[1], r.GetProperty("decode_tokens_per_s").GetDouble());
        Assert.True(r.GetProperty("prefill_tokens_per_s").GetDouble() > 0);
        // the tiny model's matrices: 2 layers x (q 64x64 + k,v 32x64 + o 64x64 + 3 x 96x64) + head 300x64, F32
        long expectedBytes = 4L * (2 * (64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 96 * 64) + 300 * 64);
        Assert.Equal(expectedBytes, r.GetProperty("weight_bytes_per_token").GetInt64());
        Assert.Equal(1, r.GetProperty("threads").GetInt32());
        // memory: the model file and the KV cache it must hold (2 layers x K and V x 24 positions x 32 wide x 4 bytes)
        var m = r.GetProperty("memory");
        Assert.Equal(new FileInfo(path).Length, m.GetProperty("model_file_bytes").GetInt64());
        Assert.Equal(2L * 2 * 24 * 32 * 4, m.GetProperty("kv_cache_bytes").GetInt64());
        Assert.True(m.GetProperty("peak_rss_bytes").GetInt64() >= m.GetProperty("rss_before_load_bytes").GetInt64());
    }
}
