using Microsoft.Extensions.AI;
using SharpLM.Inference.Embeddings;
using SharpLM.Testing;

namespace SharpLM.Tests.Bert;

/// <summary>TextEncoder on all-MiniLM-L6-v2: tokenizer vs Hugging Face tokenizers, embeddings vs ONNX Runtime + pooling.</summary>
public sealed class EmbeddingTests : IDisposable
{
    private readonly TextEncoder _enc = TextEncoder.Open(MiniLm.OnnxPath);

    public void Dispose() => _enc.Dispose();

    [Fact]
    public void TokenizerMatchesHuggingFaceTokenizers()
    {
        var tok = _enc.Tokenizer;
        var texts = new List<string>
        {
            "Hello, world!", "Paris is the [MASK] of France.", "naïve café résumé Ångström", "北京欢迎你 and 東京",
"emoji 🙂 and ß and İstanbul", "한국어 텍스트 Ελληνικά Русский", "tab\there\nnewline\r\n  spaces", "costs $100 & 50% off #1 ~ok~ `x` ^_^", "zero\u200bwidth\u00adsoft","don't stop-believing... (yes) [SEP] [CLS]",
            "supercalifragilisticexpialidocious antidisestablishmentarianism", "", "   ", "x" + new string('y', 120),
        };
        texts.AddRange(File.ReadLines(TestPaths.Asset("brown.txt")).Where(l => l.Length > 0).Take(400));
        var failures = new List<string>();
        foreach (var t in texts)
        {
            var expected = MiniLm.HfIds(t);
            var actual = tok.Encode(t);
            if (!expected.SequenceEqual(actual)) failures.Add($"text \"{t}\": expected [{string.Join(' ', expected)}], got [{string.Join(' ', actual)}]");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {texts.Count} texts differ:\n{string.Join("\n", failures.Take(10))}");

    }

    [Fact]
    public void MeanPooledNormalisedEmbeddingsMatchOnnxRuntime()
    {
        string[] texts = ["hello", "The cat sits outside.", "A man is playing guitar and singing loudly in the park at night.", "ok"];
        var ours = _enc.Embed(texts);
        for (int i = 0; i < texts.Length; i++)
        {
            var expected = OrtEmbedding(texts[i], EmbeddingPooling.Mean, normalize: true);
            float cos = TextEncoder.CosineSimilarity(expected, ours[i]);
            Assert.True(cos > 0.99999f, $"\"{texts[i]}\": cosine {cos} <= 0.99999");
            MiniLmOrtTests.AssertClose(expected, ours[i], 1e-4f, texts[i]);
            var single = _enc.Embed(texts[i]);
            MiniLmOrtTests.AssertClose(ours[i], single, 1e-5f, texts[i] + " alone vs batched");
        }
    }

    [Theory]
    [InlineData(EmbeddingPooling.Cls)]
    [InlineData(EmbeddingPooling.Max)]
    [InlineData(EmbeddingPooling.MeanMax)]
    public void OtherPoolingsMatchPoolingOnOrtStates(EmbeddingPooling pooling)
    {
        using var enc = TextEncoder.Open(MiniLm.OnnxPath, new TextEncoderOptions { Pooling = pooling, Normalize = false, BatchSize = 3 });
        string[] texts = ["short", "a somewhat longer sentence here", "mid length text", "x"];
        var ours = enc.Embed(texts);
        Assert.Equal(pooling == EmbeddingPooling.MeanMax ? 768 : 384, enc.Dimensions);
        for (int i = 0; i < texts.Length; i++)
            MiniLmOrtTests.AssertClose(OrtEmbedding(texts[i], pooling, normalize: false), ours[i], 1e-4f, $"{pooling} {texts[i]}");
    }

    /// <summary>Pools ORT's last_hidden_state with a straightforward loop (independent of Pooling.cs).</summary>
    private static float[] OrtEmbedding(string text, EmbeddingPooling pooling, bool normalize)
    {
        var ids = MiniLm.Ids(text);
        int t = ids.Length, h = 384;
        var hs = MiniLm.OrtHidden(1, t, ids, Enumerable.Repeat(1, t).ToArray(), null);
        var mean = new float[h];
        var max = Enumerable.Repeat(float.MinValue, h).ToArray();
        for (int i = 0; i < t; i++)
            for (int j = 0; j < h; j++)
            {
                mean[j] += hs[i * h + j] / t;
                max[j] = Math.Max(max[j], hs[i * h + j]);
            }
        float[] v = pooling switch
        {
            EmbeddingPooling.Cls => hs[..h],
            EmbeddingPooling.Mean => mean,
            EmbeddingPooling.Max => max,
            _ => [.. mean, .. max],
        };
        if (normalize)
        {
            float n = MathF.Sqrt(v.Sum(x => x * x));
            v = v.Select(x => x / n).ToArray();
        }
        return v;
    }

    [Fact]
    public void OverlongTextIsTruncatedWithAWarningOrRejected()
    {
        var warnings = new List<string>();
        string longText = string.Join(' ', Enumerable.Repeat("word", 600));
        using var enc = TextEncoder.Open(MiniLm.OnnxPath, new TextEncoderOptions { MaxTokens = 16, Warning = warnings.Add });
        var ids = enc.Tokenize(longText);
        Assert.Equal(16, ids.Length);
        Assert.Equal((101, 102), (ids[0], ids[^1]));
        Assert.Single(warnings);
        Assert.Contains("602 tokens; truncated to 16", warnings[0], StringComparison.Ordinal);
        Assert.Equal(384, enc.Embed(longText).Length);

        using var strict = TextEncoder.Open(MiniLm.OnnxPath, new TextEncoderOptions { Overlong = OverlongInput.Error });
        var ex = Assert.Throws<ArgumentException>(() => strict.Embed(longText));
        Assert.Contains("602 tokens, more than the model's limit of 512", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EmptyInputsGiveEmptyResultsOrClearErrors()
    {
        Assert.Empty(_enc.Embed(Array.Empty<string>()));
        Assert.Equal(384, _enc.Embed("").Length);   // [CLS] [SEP] alone is a valid input
        var ex = Assert.Throws<InvalidOperationException>(() => _enc.FillMask("Paris is the [MASK] of France."));
        Assert.Contains("no masked-LM head", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>The README's .NET example, as written there (with the extracted MiniLM path).</summary>
    [Fact]
    public async Task ReadmeExampleRuns()
    {
        using var encoder = TextEncoder.Open(MiniLm.OnnxPath);
        float[][] vectors = encoder.Embed(["first text", "second text"]);
        float cos = TextEncoder.CosineSimilarity(vectors[0], vectors[1]);
        using var generator = new SharpLMEmbeddingGenerator(MiniLm.OnnxPath);
        var embeddings = await generator.GenerateAsync(["first text", "second text"]);
        Assert.Equal(2, embeddings.Count);
        Assert.InRange(cos, 0.3f, 0.99f);
        Assert.True(Math.Abs(cos - TextEncoder.CosineSimilarity(embeddings[0].Vector.Span, embeddings[1].Vector.Span)) < 1e-6f);
    }

    [Fact]
    public async Task EmbeddingGeneratorReturnsTheEncodersEmbeddings()
    {
        using var gen = _enc.AsEmbeddingGenerator();
        string[] texts = ["first text", "second, longer text"];
        var result = await gen.GenerateAsync(texts);
        Assert.Equal(2, result.Count);
        var direct = _enc.Embed(texts);
        for (int i = 0; i < 2; i++) MiniLmOrtTests.AssertClose(direct[i], result[i].Vector.ToArray(), 0f, texts[i]);
        var meta = gen.GetService<EmbeddingGeneratorMetadata>();
        Assert.NotNull(meta);
        Assert.Equal(384, meta!.DefaultModelDimensions);
        Assert.Equal("SharpLM", meta.ProviderName);
        await Assert.ThrowsAsync<ArgumentException>(() => gen.GenerateAsync(texts, new EmbeddingGenerationOptions { Dimensions = 100 }));
        // Similar sentences are closer than unrelated ones.
        var e = await gen.GenerateAsync(["A cat sits on the mat.", "A kitten is sitting on a rug.", "Stock markets fell sharply today."]);
        Assert.True(TextEncoder.CosineSimilarity(e[0].Vector.Span, e[1].Vector.Span) > TextEncoder.CosineSimilarity(e[0].Vector.Span, e[2].Vector.Span));
    }
}
