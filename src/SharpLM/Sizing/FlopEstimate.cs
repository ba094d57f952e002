namespace SharpLM.Sizing;

/// <summary>
/// Floating-point operations per token (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", table 1):
/// forward ≈ 2·N + 2·L·ctx·(NH·HS), training (forward + backward) ≈ 3× that = 6·N + 6·L·ctx·(NH·HS), where N counts the
/// parameters that take part in a matrix multiply for each token: all of them but the lookup tables (token, position,
/// token-type embeddings), plus V·h for a head tied to the embedding, for a mixture of experts only the experts a
/// token is routed to, and for shared layers (ALBERT) every layer a token runs through, not the one stored copy. Times assume the given throughput is sustained (divide by your utilisation, e.g. 0.4).
/// </summary>
internal sealed record FlopEstimate(long MatmulParameters, long Context, double ForwardPerToken, double TrainPerToken)
{
    public static FlopEstimate Estimate(ParameterCount p, long context)
    {
        var a = p.Config;
        long n = p.Active - p.EmbeddingLookup + (p.HasLmHead && a.TiedEmbeddings ? (long)a.Vocab * a.Width : 0)
                 + (long)(a.Layers - a.LayerGroups) * p.PerLayer; // ALBERT's shared layers: stored once, run L times
        double attn = 2.0 * a.Layers * context * a.QueryWidth;
        return new FlopEstimate(n, context, 2.0 * n + attn, 6.0 * n + 3 * attn);
    }

    public string ForwardFormula => "2·N + 2·L·ctx·(NH·HS)";
    public string TrainFormula => "6·N + 6·L·ctx·(NH·HS)";

    /// <summary>Seconds for <paramref name="tokens"/> tokens at <paramref name="flopsPerToken"/> on
    /// <paramref name="gpus"/> devices of <paramref name="tflops"/> each.</summary>
    public static double Seconds(double tokens, double flopsPerToken, double tflops, int gpus = 1) =>
        tokens * flopsPerToken / (tflops * 1e12 * gpus);
}
