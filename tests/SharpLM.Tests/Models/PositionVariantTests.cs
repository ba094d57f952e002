using SharpLM.Formats;
using SharpLM.Models;
using SharpLM.Sizing;
using SharpLM.Testing;
using SharpLM.Tests.Training;
using SharpLM.Training;
using SharpLM.Training.Checkpoints;

namespace SharpLM.Tests.Models;

/// <summary>
/// The decoder's position kinds (rotary, learned, sinusoidal, none) and shared q/k/v projections (<see cref="ModelConfig.Positions"/>,
/// <see cref="ModelConfig.SharedQkv"/>): whole-model gradients against finite differences, the parameters the table
/// declares, the sinusoidal table's defining property, and a trained variant loading from its checkpoint with the same logits.
/// </summary>
[Collection("TrainParallel")]
public class PositionVariantTests
{
    private static ModelConfig Tiny(PositionKind kind, bool shared = false, bool bias = false) =>
        TrainModel.NewConfig("llama", 11, 8, 2, 2, 2, 12, 6, tied: false) with { Positions = kind, SharedQkv = shared, QkvBias = bias };

    [Theory]
    [InlineData(PositionKind.Learned, false, false)]
    [InlineData(PositionKind.Sinusoidal, false, false)]
    [InlineData(PositionKind.None, false, false)]
    [InlineData(PositionKind.Rotary, true, false)]
    [InlineData(PositionKind.Rotary, true, true)]
    // q = k without RoPE gives this instance a large, sharply curved self-score; the stencil's truncation error at
    // h = 1e-2 is 23% of the largest gradient of model.embed_tokens (numeric -2.548 against analytic -3.141), 2.5% at
    // h = 5e-3, and within 2% at 2.5e-3: the numeric value converges to the analytic one as h shrinks
    [InlineData(PositionKind.Learned, true, true, 2.5e-3f)]
    [InlineData(PositionKind.None, true, false)]
    [InlineData(PositionKind.Learned, true, false)]
    [InlineData(PositionKind.Sinusoidal, true, true)]
    public void Gradients_match_finite_differences(PositionKind kind, bool shared, bool bias, float h = 1e-2f)
    {
        var m = ModelGradTests.Scaled(Tiny(kind, shared, bias), 9);
        var (x, y) = ModelGradTests.Batch(2, 5, 11, 7);
        ModelGradTests.CheckAll(m, x, y, 2, 5, h: h);
    }

    [Fact]
    public void The_embedding_scale_has_its_gradient()
    {
        // the original transformer multiplies the token embedding by sqrt(C) before adding the sinusoidal table
        var m = ModelGradTests.Scaled(Tiny(PositionKind.Sinusoidal) with { EmbeddingScale = MathF.Sqrt(8) }, 9);
        var (x, y) = ModelGradTests.Batch(2, 5, 11, 7);
        ModelGradTests.CheckAll(m, x, y, 2, 5);
    }

    [Fact]
    public void Parameters_are_what_the_table_declares_and_calc_counts()
    {
        var rope = Tiny(PositionKind.Rotary);
        long Count(ModelConfig c) => new TrainModel(c).Parameters.Count;
        long baseCount = Count(rope);
        Assert.Equal(new ParameterCount(rope).Total, baseCount);
        // a learned table is P*C more; sinusoidal and none add nothing (the sinusoidal table is fixed, not trained)
        foreach (var (kind, extra) in new[] { (PositionKind.Learned, (long)rope.Context * rope.Width), (PositionKind.Sinusoidal, 0L), (PositionKind.None, 0L) })
        {
            var c = Tiny(kind);
            Assert.Equal(baseCount + extra, Count(c));
            Assert.Equal(Count(c), new ParameterCount(c).Total);
        }
        Assert.Contains(new TrainModel(Tiny(PositionKind.Learned)).Parameters.Infos, i => i.Role == "position_embd");
        // shared q/k/v: two (KVH*HS, C) matrices fewer per layer (and their biases)
        var shared = Tiny(PositionKind.Rotary, shared: true, bias: true);
        var separate = Tiny(PositionKind.Rotary, bias: true);
        Assert.Equal(Count(separate) - 2L * rope.Layers * (rope.KvWidth * rope.Width + rope.KvWidth), Count(shared));
        Assert.Equal(Count(shared), new ParameterCount(shared).Total);
        Assert.DoesNotContain(new TrainModel(shared).Parameters.Infos, i => i.Role is "attn_k" or "attn_v" or "attn_k.bias" or "attn_v.bias");
    }

    [Fact]
    public void The_sinusoidal_table_moves_by_a_rotation_per_frequency_pair()
    {
        // the original transformer's reason for sin/cos: PE[p + k] is a fixed linear map (a rotation of each (sin, cos)
        // pair by k*w_i) of PE[p], so relative offsets are linear in the table
        int p = 40, c = 16;
        var t = Sinusoid.Table(p, c);
        for (int i = 0; i < c / 2; i++)
        {
            double w = Math.Pow(10000, -2.0 * i / c);
            Assert.Equal(0f, t[2 * i]);            // position 0: sin 0, cos 0
            Assert.Equal(1f, t[2 * i + 1]);
            foreach (var (pos, k) in new[] { (3, 5), (10, 29), (0, 39) })
            {
                double s = t[pos * c + 2 * i], co = t[pos * c + 2 * i + 1];
                double rs = s * Math.Cos(k * w) + co * Math.Sin(k * w), rc = co * Math.Cos(k * w) - s * Math.Sin(k * w);
                Assert.Equal(rs, t[(pos + k) * c + 2 * i], 5);
                Assert.Equal(rc, t[(pos + k) * c + 2 * i + 1], 5);
            }
        }
    }

    [Theory]
    [InlineData(PositionKind.Learned, false)]
    [InlineData(PositionKind.Sinusoidal, false)]
    [InlineData(PositionKind.None, true)]
    [InlineData(PositionKind.Sinusoidal, false, 5.656854f)]
    public void A_trained_variant_loads_from_its_checkpoint_with_the_same_logits(PositionKind kind, bool shared, float embeddingScale = 1f)
    {
        var spec = TrainModel.NewConfig("llama", 64, 32, 2, 4, 4, 48, 16, tied: false) with { Positions = kind, SharedQkv = shared, EmbeddingScale = embeddingScale };
        var (m, dir) = ModelGradTests.RandomCheckpoint(spec);
        var read = ModelConfigReader.FromHfConfigFile(Path.Combine(dir, "config.json"));
        Assert.Equal(kind, read.Positions);
        Assert.Equal(shared, read.SharedQkv);
        Assert.Equal(embeddingScale, read.EmbeddingScale);
        int[] ids = [3, 17, 5, 60, 2, 9, 41, 8, 8, 30, 1, 12];
        m.Forward(ids, default, 1, ids.Length);
        var ours = m.Logits.ToArray();
        using var model = LanguageModel.Load(dir);
        // through the KV cache: the first 7 tokens, then the other 5
        var state = model.CreateState();
        var first = state.Forward(ids[..7], allLogits: true).ToArray();
        var second = state.Forward(ids[7..], allLogits: true).ToArray();
        float[] loaded = [.. first, .. second];
        float d = 0, size = 0;
        for (int i = 0; i < ours.Length; i++) { d = Math.Max(d, Math.Abs(ours[i] - loaded[i])); size = Math.Max(size, Math.Abs(ours[i])); }
        Assert.True(size > 0.1f, $"logits too small to compare ({size})");
        Assert.True(d < 1e-4, $"checkpoint + KV cache vs training forward: max |diff| {d:E3}");
    }

    [Fact]
    public void Options_the_engine_cannot_run_are_refused_with_the_reason()
    {
        var gqa = TrainModel.NewConfig("llama", 11, 8, 1, 4, 2, 12, 6) with { SharedQkv = true };
        var e = Assert.Throws<InvalidDataException>(() => gqa.Validate("test"));
        Assert.Contains("key/value heads", e.Message);
        var gpt2 = TrainModel.NewConfig("gpt2", 11, 8, 1, 2, 2, 12, 6) with { Positions = PositionKind.None };
        Assert.Contains("LLaMA-family", Assert.Throws<InvalidDataException>(() => gpt2.Validate("test")).Message);
    }

    [Theory]
    [InlineData(PositionKind.Learned, false, "learned positions")]
    [InlineData(PositionKind.Sinusoidal, false, "sinusoidal positions")]
    [InlineData(PositionKind.None, false, "none positions")]
    [InlineData(PositionKind.Default, true, "shared q/k/v projections")]
    public void A_gguf_file_cannot_hold_the_variants_and_says_so(PositionKind kind, bool shared, string named)
    {
        var e = Assert.Throws<NotSupportedException>(() => ModelConfigReader.ToGguf(Tiny(kind, shared), new SharpLM.Formats.Gguf.GgufWriter()));
        Assert.Contains(named, e.Message);
        Assert.Contains("Hugging Face folder", e.Message);
        ModelConfigReader.ToGguf(Tiny(PositionKind.Rotary), new SharpLM.Formats.Gguf.GgufWriter()); // the plain model still writes
    }
}
