using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace SharpLM.Server.Scheduling;

/// <summary>
/// The server's counters, gauges and histograms, written as Prometheus text (GET /metrics): requests by endpoint and
/// status, prompt (and cached prompt) and generated tokens, active sequences, queued requests, KV cache use, time to
/// first token and inter-token latency, forward passes.
/// </summary>
internal sealed class ServerMetrics
{
    private static readonly double[] s_ttftBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
    private static readonly double[] s_itlBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

    private readonly ConcurrentDictionary<(string Endpoint, int Status), long> _requests = new();
    private readonly Histogram _ttft = new(s_ttftBuckets), _itl = new(s_itlBuckets);
    private long _prompt, _cached, _generated, _cancelled, _rejected, _passes, _rows, _passMicros;

    public int Active { get; set; }
    public int Queued { get; set; }
    public long KvUsed { get; set; }
    public long KvCapacity { get; set; }

    public void Request(string endpoint, int status) => _requests.AddOrUpdate((endpoint, status), 1, (_, n) => n + 1);
    public void PromptTokens(int total, int cached)
    {
        Interlocked.Add(ref _prompt, total);
        Interlocked.Add(ref _cached, cached);
    }
    public void GeneratedToken() => Interlocked.Increment(ref _generated);
    public void Cancelled() => Interlocked.Increment(ref _cancelled);
    public void Rejected() => Interlocked.Increment(ref _rejected);
    public void FirstToken(double seconds) => _ttft.Observe(seconds);
    public void InterToken(double seconds) => _itl.Observe(seconds);

    public void Step(int rows, double seconds)
    {
        Interlocked.Increment(ref _passes);
        Interlocked.Add(ref _rows, rows);
        Interlocked.Add(ref _passMicros, (long)(seconds * 1e6));
    }

    public long GeneratedTotal => Interlocked.Read(ref _generated);
    public long CancelledTotal => Interlocked.Read(ref _cancelled);

    public string Render()
    {
        var sb = new StringBuilder();
        void Head(string name, string type, string help) => sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
                                                             .Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        void Value(string name, double v, string labels = "") =>
            sb.Append(name).Append(labels).Append(' ').Append(v.ToString("R", CultureInfo.InvariantCulture)).Append('\n');

        Head("sharplm_requests_total", "counter", "HTTP requests by endpoint and status code.");
        foreach (var ((ep, status), n) in _requests.OrderBy(k => k.Key.Endpoint, StringComparer.Ordinal).ThenBy(k => k.Key.Status))
            Value("sharplm_requests_total", n, $"{{endpoint=\"{ep}\",status=\"{status}\"}}");
        Head("sharplm_prompt_tokens_total", "counter", "Prompt tokens of admitted requests.");
        Value("sharplm_prompt_tokens_total", Interlocked.Read(ref _prompt));
        Head("sharplm_prompt_tokens_cached_total", "counter", "Prompt tokens reused from the prefix cache (not evaluated again).");
        Value("sharplm_prompt_tokens_cached_total", Interlocked.Read(ref _cached));
        Head("sharplm_generation_tokens_total", "counter", "Generated tokens.");
        Value("sharplm_generation_tokens_total", GeneratedTotal);
        Head("sharplm_requests_cancelled_total", "counter", "Requests whose client disconnected or timed out before the end.");
        Value("sharplm_requests_cancelled_total", CancelledTotal);
        Head("sharplm_requests_rejected_total", "counter", "Requests refused because the queue was full (429).");
        Value("sharplm_requests_rejected_total", Interlocked.Read(ref _rejected));
        Head("sharplm_sequences_active", "gauge", "Sequences being prefilled or decoded.");
        Value("sharplm_sequences_active", Active);
        Head("sharplm_requests_queued", "gauge", "Requests waiting for a free slot.");
        Value("sharplm_requests_queued", Queued);
        Head("sharplm_kv_cache_used_tokens", "gauge", "Positions held in the slots' KV caches (active and cached prefixes).");
        Value("sharplm_kv_cache_used_tokens", KvUsed);
        Head("sharplm_kv_cache_capacity_tokens", "gauge", "Positions all slots' KV caches can hold.");
        Value("sharplm_kv_cache_capacity_tokens", KvCapacity);
        Head("sharplm_kv_cache_usage_ratio", "gauge", "Used / capacity.");
        Value("sharplm_kv_cache_usage_ratio", KvCapacity == 0 ? 0 : (double)KvUsed / KvCapacity);
        Head("sharplm_forward_passes_total", "counter", "Forward passes (scheduler steps).");
        Value("sharplm_forward_passes_total", Interlocked.Read(ref _passes));
        Head("sharplm_forward_pass_rows_total", "counter", "Token rows evaluated in forward passes.");
        Value("sharplm_forward_pass_rows_total", Interlocked.Read(ref _rows));
        Head("sharplm_forward_pass_seconds_total", "counter", "Time spent in forward passes.");
        Value("sharplm_forward_pass_seconds_total", Interlocked.Read(ref _passMicros) / 1e6);
        Head("sharplm_time_to_first_token_seconds", "histogram", "From the request's arrival to its first generated token.");
        _ttft.Write(sb, "sharplm_time_to_first_token_seconds");
        Head("sharplm_inter_token_latency_seconds", "histogram", "Between consecutive tokens of one sequence.");
        _itl.Write(sb, "sharplm_inter_token_latency_seconds");
        return sb.ToString();
    }

    private sealed class Histogram(double[] bounds)
    {
        private readonly long[] _counts = new long[bounds.Length + 1];
        private double _sum;
        private long _count;
        private readonly object _lock = new();

        public void Observe(double v)
        {
            lock (_lock)
            {
                int i = 0;
                while (i < bounds.Length && v > bounds[i]) i++;
                _counts[i]++;
                _sum += v;
                _count++;
            }
        }

        public void Write(StringBuilder sb, string name)
        {
            lock (_lock)
            {
                long cum = 0;
                for (int i = 0; i < bounds.Length; i++)
                {
                    cum += _counts[i];
                    sb.Append(name).Append("_bucket{le=\"").Append(bounds[i].ToString("R", CultureInfo.InvariantCulture)).Append("\"} ").Append(cum).Append('\n');
                }
                sb.Append(name).Append("_bucket{le=\"+Inf\"} ").Append(_count).Append('\n');
                sb.Append(name).Append("_sum ").Append(_sum.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
                sb.Append(name).Append("_count ").Append(_count).Append('\n');
            }
        }
    }
}
