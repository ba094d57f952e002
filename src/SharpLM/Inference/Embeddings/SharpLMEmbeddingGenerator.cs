using Microsoft.Extensions.AI;

namespace SharpLM.Inference.Embeddings;

/// <summary>
/// Microsoft.Extensions.AI <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> over a <see cref="TextEncoder"/>, so .NET
/// apps (Semantic Kernel, vector stores, RAG pipelines) use SharpLM embeddings directly.
/// <code>
/// using var gen = new SharpLMEmbeddingGenerator("all-MiniLM-L6-v2/model.onnx");
/// var vectors = await gen.GenerateAsync(["first text", "second text"]);
/// </code>
/// </summary>
public sealed class SharpLMEmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    private readonly TextEncoder _encoder;
    private readonly bool _ownsEncoder;
    private readonly EmbeddingGeneratorMetadata _metadata;

    /// <summary>Opens the model at <paramref name="modelPath"/> (see <see cref="TextEncoder.Open"/>); disposing the generator closes it.</summary>
    public SharpLMEmbeddingGenerator(string modelPath, TextEncoderOptions? options = null)
        : this(TextEncoder.Open(modelPath, options), ownsEncoder: true)
    {
    }

    /// <summary>Wraps an open encoder.</summary>
    public SharpLMEmbeddingGenerator(TextEncoder encoder, bool ownsEncoder)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        _encoder = encoder;
        _ownsEncoder = ownsEncoder;
        _metadata = new EmbeddingGeneratorMetadata("SharpLM", null, encoder.ModelName, encoder.Dimensions);
    }

    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (options?.Dimensions is int d && d != _encoder.Dimensions)
            throw new ArgumentException($"requested {d} dimensions, but {_encoder.ModelName} with {_encoder.PoolingMode} pooling makes {_encoder.Dimensions}", nameof(options));
        var texts = values.ToArray();
        return Task.Run(() =>
        {
            var vectors = _encoder.Embed(texts, cancellationToken);
            var created = DateTimeOffset.UtcNow;
            var result = new GeneratedEmbeddings<Embedding<float>>(vectors.Length);
            foreach (var v in vectors) result.Add(new Embedding<float>(v) { ModelId = _encoder.ModelName, CreatedAt = created });
            return result;
        }, cancellationToken);
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata)) return _metadata;
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType == typeof(TextEncoder)) return _encoder;
        return null;
    }

    public void Dispose()
    {
        if (_ownsEncoder) _encoder.Dispose();
    }
}
