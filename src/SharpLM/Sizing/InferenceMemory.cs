using SharpLM.Tensors.Types;

namespace SharpLM.Sizing;

/// <summary>
/// Memory to run a model: weights + KV cache + working buffers (activations), in bytes.
/// <list type="bullet">
/// <item>weights = parameters × bytes per value of the weight type (every tensor in that type; llama.cpp keeps norms
///   and sometimes the embedding in other types, so a real file differs by a little);</item>
/// <item>KV cache = 2 × L × KVH × HS × context × batch × bytes per value of the cache type (decoders; encoders keep
///   none);</item>
/// <item>activations (prefill in chunks of U = min(context, 512) tokens, as llama.cpp's n_ubatch, f32 buffers reused
///   by every layer) = 4 × B × U × (2h + NH·HS + 2·KVH·HS + (gated ? 2F : F)) + 4 × B × NH × U × context (one layer's
///   attention scores) + 4 × B × V (the logits of the last position).</item>
/// </list>
/// </summary>
internal sealed record InferenceMemory(
    TypeTraits WeightType, TypeTraits KvType, long Context, long Batch,
    long Weights, long KvCache, long Activations, string WeightsFormula, string KvFormula, string ActivationsFormula)
{
    public const long PrefillChunk = 512;

    public long Total => Weights + KvCache + Activations;

    public static InferenceMemory Estimate(ParameterCount p, TypeTraits weightType, TypeTraits kvType, long context, long batch)
    {
        if (context <= 0) throw new ArgumentOutOfRangeException(nameof(context), context, "context (tokens) must be positive.");
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be positive.");
        var a = p.Config;
        long weights = weightType.BytesFor(p.Total);
        string wf = $"N × {weightType.BytesText} = {p.Total:N0} × {weightType.BytesText}";

        long kv = 0;
        string kf = "0: an encoder keeps no KV cache";
        if (a.Family != Models.ArchFamily.Bert)
        {
            long values = checked(2L * a.Layers * a.KvHeads * a.HeadSize * context * batch);
            kv = kvType.BytesFor(values);
            kf = $"2 × L × KVH × HS × tokens × batch × {kvType.BytesText} = 2 × {a.Layers} × {a.KvHeads} × {a.HeadSize} × {context} × {batch} × {kvType.BytesText}";
        }

        long u = Math.Min(context, PrefillChunk);
        long perToken = 2L * a.Width + a.QueryWidth + 2L * a.KvWidth + (p.GatedMlp ? 2L : 1L) * a.FfnWidth * (a.Experts > 0 ? a.ExpertsPerToken : 1);
        long logits = p.HasLmHead ? a.Vocab : 0;
        long act = checked(4 * batch * u * perToken + 4 * batch * a.Heads * u * context + 4 * batch * logits);
        string af = $"4 × B × U × (2h + NH·HS + 2·KVH·HS + {(p.GatedMlp ? "2F" : "F")}) + 4 × B × NH × U × ctx + 4 × B × V, U = min(ctx, {PrefillChunk}) = {u}";
        return new InferenceMemory(weightType, kvType, context, batch, weights, kv, act, wf, kf, af);
    }
}
