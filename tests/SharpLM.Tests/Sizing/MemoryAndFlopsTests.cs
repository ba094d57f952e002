using CsCheck;
using SharpLM.Sizing;
using Xunit;

namespace SharpLM.Tests.Sizing;

public class MemoryAndFlopsTests
{
    private static readonly SharpLM.Tensors.Types.TypeTraits F16 = SharpLM.Tensors.Types.DTypes.Parse("f16", "t", SharpLM.Tensors.Types.DTypes.SizingTypes);

    /// <summary>Random decoder and encoder architectures.</summary>
    private static readonly Gen<SharpLM.Models.ModelConfig> GenArch =
        Gen.Select(Gen.Int[1, 64], Gen.Int[1, 16], Gen.Int[1, 8], Gen.Int[1, 48], Gen.Int[100, 200_000], Gen.Int[64, 30_000], Gen.Int[0, 2])
           .Select(t =>
           {
               var (hsUnit, heads, kvDiv, layers, vocab, f, kind) = t;
               int kv = Math.Max(1, heads / kvDiv);
               while (heads % kv != 0) kv--;
               long hs = hsUnit * 2, h = hs * heads;
               var c = new SharpLM.Models.ModelConfig
               {
                   Architecture = kind switch { 0 => "llama", 1 => "gpt2", _ => "bert" },
                   Vocab = vocab, Width = (int)h, Layers = layers, Heads = heads, KvHeads = kind == 0 ? kv : heads, HeadSize = (int)hs,
                   FfnWidth = f, Context = kind switch { 0 => 2048, 1 => 1024, _ => 512 }, EmbeddingWidth = (int)h, LayerGroups = layers,
                   TokenTypes = kind == 2 ? 2 : 0, RopeDim = (int)hs, Activation = kind == 0 ? "silu" : "gelu",
                   QkvBias = kind != 0, OutputBias = kind != 0, MlpBias = kind != 0, TiedEmbeddings = kind == 1,
               };
               return ParameterCount.BaseModel(c);
           });

    [Fact]
    public void KvCache_LinearInContextAndBatch()
    {
        Gen.Select(GenArch, Gen.Int[1, 5000], Gen.Int[1, 16]).Sample((a, ctx, batch) =>
        {
            var p = new ParameterCount(a);
            var m1 = InferenceMemory.Estimate(p, F16, F16, ctx, batch);
            var m2 = InferenceMemory.Estimate(p, F16, F16, 2L * ctx, batch);
            var m3 = InferenceMemory.Estimate(p, F16, F16, ctx, 3L * batch);
            Assert.Equal(2 * m1.KvCache, m2.KvCache);
            Assert.Equal(3 * m1.KvCache, m3.KvCache);
            Assert.Equal(m1.Weights, m2.Weights);
            Assert.Equal(m1.Weights, m3.Weights);
            Assert.True(m3.Activations >= m1.Activations && m2.Activations >= m1.Activations);
            if (a.Family == SharpLM.Models.ArchFamily.Bert) Assert.Equal(0, m1.KvCache);
            else Assert.Equal(2L * a.Layers * a.KvHeads * a.HeadSize * ctx * batch * 2, m1.KvCache);
        }, iter: 300);
    }

    [Fact]
    public void KvCache_Llama2_70b_Gqa_ByHand()
    {
        // 2 × 80 layers × 8 KV heads × 128 × 4096 tokens × 2 bytes = 1.25 GiB (64 heads would be 10 GiB)
        var p = new ParameterCount(ModelPresets.Load("llama-2-70b"));
        var m = InferenceMemory.Estimate(p, F16, F16, 4096, 1);
        Assert.Equal(2L * 80 * 8 * 128 * 4096 * 2, m.KvCache);
        Assert.Equal(1_342_177_280L, m.KvCache);
        Assert.Equal(2 * p.Total, m.Weights);
    }

    [Theory]
    [InlineData("f32", 4.0)]
    [InlineData("f16", 2.0)]
    [InlineData("bf16", 2.0)]
    [InlineData("int8", 34.0 / 32)]
    [InlineData("q8_0", 34.0 / 32)]
    [InlineData("q4_0", 18.0 / 32)]
    [InlineData("q4_k", 144.0 / 256)]
    public void Weights_BytesPerType(string type, double bytesPerParam)
    {
        var p = new ParameterCount(ModelPresets.Load("llama-7b"));   // 6,738,415,616 = 256 · 26,321,936: whole blocks
        var m = InferenceMemory.Estimate(p, SharpLM.Tensors.Types.DTypes.Parse(type, "--dtype", SharpLM.Tensors.Types.DTypes.SizingTypes), F16, 16, 1);
        Assert.Equal((long)Math.Round(p.Total * bytesPerParam), m.Weights);
        Assert.Equal(18, SharpLM.Tensors.Types.DTypes.Parse("q4_0", "x", SharpLM.Tensors.Types.DTypes.SizingTypes).BytesFor(32));
        Assert.Equal(19, SharpLM.Tensors.Types.DTypes.Parse("q4_0", "x", SharpLM.Tensors.Types.DTypes.SizingTypes).BytesFor(33));   // partial blocks round up
        var e = Assert.Throws<ArgumentException>(() => SharpLM.Tensors.Types.DTypes.Parse("q3_z", "--dtype", SharpLM.Tensors.Types.DTypes.SizingTypes));
        Assert.Contains("--dtype", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1, 0, 16)]   // AdamW, mixed: 2 + 2 + 12, the study note's rule
    [InlineData(0, 1, 16)]   // Adam, fp32: 4 + 4 + 8
    [InlineData(2, 1, 12)]   // SGD with momentum, fp32: 4 + 4 + 4
    [InlineData(2, 0, 12)]   // SGD, mixed: 2 + 2 + (4 master + 4 momentum)
    public void ModelStates_BytesPerParameter(int optimizer, int precisionIndex, int bytes)
    {
        var opt = (OptimizerKind)optimizer;
        var precision = (Precision)precisionIndex;
        var p = new ParameterCount(ModelPresets.Load("llama-7b"));
        var t = TrainingMemory.Estimate(p, opt, precision, 0, 1, 1, 512, Recompute.None);
        Assert.Equal(bytes * p.Total, t.ModelStates);
    }

    [Fact]
    public void Zero_PaperExample_7_5B_On64Gpus()
    {
        // ZeRO paper figure 1: Ψ = 7.5B, N = 64, K = 12: baseline 120 GB, P_os 31.4 GB, P_os+g 16.6 GB, P_os+g+p 1.9 GB
        var psi = new ParameterCount(ModelPresets.Load("llama-7b"));   // 6.74B; scaled to 7.5B (memory is linear in Ψ)
        double scale = 7.5e9 / psi.Total;
        double Gb(int stage) => TrainingMemory.Estimate(psi, OptimizerKind.Adam, Precision.Mixed, stage, 64, 1, 1, Recompute.None).ModelStates * scale / 1e9;
        Assert.Equal(120.0, Gb(0), 1);
        Assert.Equal(31.4, Gb(1), 1);
        Assert.Equal(16.6, Gb(2), 1);
        Assert.Equal(1.9, Gb(3), 1);
    }

    [Fact]
    public void Zero_StagesOrdered_AndStage3IsOneOverN()
    {
        Gen.Select(GenArch, Gen.Int[1, 1024], Gen.Int[0, 2]).Sample((a, gpus, optIndex) =>
        {
            var p = new ParameterCount(a);
            var opt = (OptimizerKind)optIndex;
            long[] states = [.. Enumerable.Range(0, 4).Select(s => TrainingMemory.Estimate(p, opt, Precision.Mixed, s, gpus, 1, 128, Recompute.None).ModelStates)];
            for (int s = 1; s < 4; s++) Assert.True(states[s] <= states[s - 1], $"stage {s} {states[s]} > stage {s - 1} {states[s - 1]}");
            if (gpus == 1) Assert.All(states, x => Assert.Equal(states[0], x));
            // stage 3 shards everything: per GPU = ceil of each part / N, so N × per-GPU is within 3N bytes of the total
            Assert.InRange(states[3] * (long)gpus - states[0], 0, 3L * gpus);
            // activations do not depend on ZeRO
            var t0 = TrainingMemory.Estimate(p, opt, Precision.Mixed, 0, gpus, 2, 64, Recompute.None);
            var t3 = TrainingMemory.Estimate(p, opt, Precision.Mixed, 3, gpus, 2, 64, Recompute.None);
            Assert.Equal(t0.Activations, t3.Activations);
        }, iter: 300);
    }

    [Fact]
    public void Activations_Korthikanti_AndRecomputationOrdering()
    {
        var p = new ParameterCount(ModelPresets.Load("gpt2"));
        long s = 1024, b = 4, h = 768, a = 12, L = 12, V = 50257;
        var none = TrainingMemory.Estimate(p, OptimizerKind.AdamW, Precision.Mixed, 0, 1, b, s, Recompute.None);
        Assert.Equal(L * (s * b * h * 34 + 5 * a * s * s * b) + 4 * s * b * V, none.Activations);
        var sel = TrainingMemory.Estimate(p, OptimizerKind.AdamW, Precision.Mixed, 0, 1, b, s, Recompute.Selective);
        var full = TrainingMemory.Estimate(p, OptimizerKind.AdamW, Precision.Mixed, 0, 1, b, s, Recompute.Full);
        Assert.True(full.Activations < sel.Activations && sel.Activations < none.Activations);
        // linear in batch
        var none2 = TrainingMemory.Estimate(p, OptimizerKind.AdamW, Precision.Mixed, 0, 1, 2 * b, s, Recompute.None);
        Assert.Equal(2 * none.Activations, none2.Activations);
    }

    [Fact]
    public void Flops_KaplanFormula_ByHand()
    {
        var p = new ParameterCount(ModelPresets.Load("gpt2"));
        var f = FlopEstimate.Estimate(p, 1024);
        // N = all but the lookup tables (wte, wpe) + the tied head V·h
        long nonEmbedding = 124_439_808L - 50257L * 768 - 1024L * 768;
        long n = nonEmbedding + 50257L * 768;
        Assert.Equal(n, f.MatmulParameters);
        Assert.Equal(2.0 * n + 2.0 * 12 * 1024 * 768, f.ForwardPerToken);
        Assert.Equal(3 * f.ForwardPerToken, f.TrainPerToken);
        // MoE: only the routed experts count
        var m = new ParameterCount(ModelPresets.Load("mixtral-8x7b"));
        var mf = FlopEstimate.Estimate(m, 1);
        Assert.Equal(m.Active - 32000L * 4096, mf.MatmulParameters);
        Assert.Equal(1.0, FlopEstimate.Seconds(1e12, 1, 1), 9);
        // ALBERT: shared layers store one layer's parameters but run all L of them, so the compute equals the separate model's
        var separate = SharpLM.Training.TrainModel.NewConfig("bert", 100, 64, 6, 4, 4, 256, 32);
        var shared = separate with { LayerGroups = 1 };
        Assert.True(new ParameterCount(shared).Total < new ParameterCount(separate).Total);
        Assert.Equal(FlopEstimate.Estimate(new ParameterCount(separate), 32).ForwardPerToken, FlopEstimate.Estimate(new ParameterCount(shared), 32).ForwardPerToken);
    }
}
