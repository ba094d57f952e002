using SharpLM.Models;
using SharpLM.Training;

namespace SharpLM.Tests.Training;

/// <summary>The norm kinds in the encoder and the norm placements in the decoder, trained through the one model
/// definition: whole-model gradients against finite differences, and the invariants that tell the variants apart.</summary>
[Collection("TrainParallel")]
public class NormVariantTests
{
    [Theory]
    [InlineData(NormKind.RmsNorm)]
    [InlineData(NormKind.BatchNorm)]
    [InlineData(NormKind.None)]
    public void Encoder_gradients_match_finite_differences_for_every_norm_kind(NormKind kind)
    {
        var c = TrainModel.NewConfig("bert", 11, 8, 2, 2, 2, 12, 6, normEps: 1e-5) with { Norm = kind };
        var m = ModelGradTests.Scaled(c, 9);
        int[] x = [1, 10, 3, 4, 10, 2, 2, 10, 7, 0];
        int[] y = [-1, 5, -1, -1, 6, -1, 9, 3, -1, -1];
        m.Lengths = [5, 3]; // the second sequence's last two rows are padding
        // 5e-2 (BatchNorm 1e-1) rather than 2e-2: some tensors' exact gradient is 0 (the key bias shifts every score of a row alike; under
        // BatchNorm the token-type row is a constant the batch mean removes), and there the f32 loss's finite differences
        // show 3e-5 to 7e-5 of noise against the check's 1e-3 floor; a wrong backward pass is off by the gradient itself
        // (relative error ~1). The BatchNorm kernel's own backward is checked tightly in double in Kernels/NormKindTests.
        ModelGradTests.CheckAll(m, x, y, 2, 5, tol: kind == NormKind.BatchNorm ? 1e-1 : 5e-2);
    }

    [Theory]
    [InlineData(NormPlacement.Post)]
    [InlineData(NormPlacement.DeepNorm)]
    public void Decoder_gradients_match_finite_differences_for_post_norm_and_deepnorm(NormPlacement placement)
    {
        var c = TrainModel.NewConfig("llama", 11, 8, 2, 4, 2, 12, 6, tied: false) with { NormPlacement = placement };
        var m = ModelGradTests.Scaled(c, 9);
        var (x, y) = ModelGradTests.Batch(2, 5, 11, 7);
        ModelGradTests.CheckAll(m, x, y, 2, 5);
    }

    [Fact]
    public void Decoder_gradients_match_finite_differences_for_post_norm_with_layernorm()
    {
        var c = TrainModel.NewConfig("gpt2", 11, 8, 2, 2, 2, 16, 6) with { NormPlacement = NormPlacement.DeepNorm };
        var m = ModelGradTests.Scaled(c, 9);
        var (x, y) = ModelGradTests.Batch(2, 5, 11, 7);
        ModelGradTests.CheckAll(m, x, y, 2, 5);
    }

    [Fact]
    public void Without_a_norm_post_norm_is_pre_norm_and_deepnorm_is_not()
    {
        // with identity norms (weights 1, no statistics) x + f(x) is the same block in both placements; DeepNorm's α changes it
        var baseCfg = TrainModel.NewConfig("llama", 13, 16, 3, 2, 2, 24, 8, tied: false) with { Norm = NormKind.None };
        var (x, y) = ModelGradTests.Batch(2, 8, 13, 5);
        double Loss(NormPlacement p)
        {
            var m = new TrainModel(baseCfg with { NormPlacement = p });
            m.Initialize(4);
            var rng = new TrainRandom(8); // the same larger weights for every placement (norm weights stay 1)
            foreach (var info in m.Parameters.Infos)
                if (info.Shape.Length == 2) rng.FillNormal(m.Parameters.P(info), 0.3);
            return m.Forward(x, y, 2, 8);
        }
        double pre = Loss(NormPlacement.Pre), post = Loss(NormPlacement.Post), deep = Loss(NormPlacement.DeepNorm);
        Assert.Equal(pre, post, 6);
        Assert.True(Math.Abs(deep - pre) > 1e-3, $"DeepNorm's α did not change the loss: {deep} vs {pre}");
    }

    [Fact]
    public void DeepNorm_initialises_value_output_and_mlp_projections_with_beta()
    {
        int layers = 6;
        var c = TrainModel.NewConfig("llama", 64, 64, layers, 2, 2, 128, 8, tied: false);
        double Std(TrainModel m, string name) { var s = m.Parameters.P(m.Parameters[name]); double q = 0; foreach (var v in s) q += v * (double)v; return Math.Sqrt(q / s.Length); }
        var deep = new TrainModel(c with { NormPlacement = NormPlacement.DeepNorm });
        deep.Initialize(1);
        double beta = Math.Pow(8.0 * layers, -0.25);
        Assert.InRange(Std(deep, "model.layers.0.self_attn.v_proj.weight") / (0.02 * beta), 0.93, 1.07);
        Assert.InRange(Std(deep, "model.layers.0.mlp.down_proj.weight") / (0.02 * beta), 0.93, 1.07);
        Assert.InRange(Std(deep, "model.layers.0.self_attn.q_proj.weight") / 0.02, 0.93, 1.07);
        Assert.Equal((float)Math.Pow(2.0 * layers, 0.25), NormOptions.ResidualScale(deep.Config));
    }

    [Fact]
    public void Padding_leaves_real_tokens_alone_with_per_row_norms_and_moves_them_with_batchnorm()
    {
        // one sequence of 5 tokens, alone and padded to 12: the masked-LM loss of its real tokens
        int[] seq = [3, 7, 1, 9, 4];
        int[] tgt = [5, -1, 2, -1, 8];
        foreach (var kind in new[] { NormKind.LayerNorm, NormKind.RmsNorm, NormKind.None, NormKind.BatchNorm })
        {
            var c = TrainModel.NewConfig("bert", 12, 16, 2, 2, 2, 32, 12, normEps: 1e-5) with { Norm = kind };
            var m = ModelGradTests.Scaled(c, 3);
            double alone = m.Forward(seq, tgt, 1, 5);
            int[] px = [.. seq, .. Enumerable.Repeat(10, 7)];
            int[] py = [.. tgt, .. Enumerable.Repeat(-1, 7)];
            m.Lengths = [5];
            double padded = m.Forward(px, py, 1, 12);
            if (kind == NormKind.BatchNorm) Assert.True(Math.Abs(padded - alone) > 1e-2, $"BatchNorm: padding did not change the loss ({alone} vs {padded})");
            else Assert.True(Math.Abs(padded - alone) < 1e-5, $"{kind}: padding changed the real tokens' loss ({alone} vs {padded})");
        }
    }
}
