using System.Text.Json.Nodes;
using SharpLM.Formats;
using SharpLM.Inference;
using SharpLM.Formats.HuggingFace;
using SharpLM.Formats.Safetensors;
using SharpLM.Models;
using SharpLM.Tensors;
using SharpLM.Testing;
using Xunit.Abstractions;

namespace SharpLM.Tests.Models;

/// <summary>
/// A random-weight model of any architecture in the table, made only from its config.json: every tensor the table
/// declares for that configuration (Hugging Face names and shapes) gets seeded random values, saved as a Hugging Face
/// folder (config.json + model.safetensors), and converted to GGUF by SharpLM's own converter with a synthetic
/// vocabulary, so llama.cpp can run the same weights. Nothing here knows an architecture: a new one needs no code.
/// </summary>
internal sealed class RandomModel
{
    public ModelConfig Config { get; }

    /// <summary>The Hugging Face folder (config.json, model.safetensors).</summary>
    public string HfDir { get; }

    private RandomModel(ModelConfig config, string dir)
    {
        Config = config;
        HfDir = dir;
    }

    /// <summary>The keys every rotary decoder's config.json has (the architecture's own are added by its test).</summary>
    public static JsonObject RotaryConfig(string cls, string modelType, int c, int layers, int heads, int kv, int ffn, int vocab,
                                          double theta = 10000, bool tied = false, int context = 512, double eps = 1e-6) => new()
    {
        ["architectures"] = new JsonArray(cls),
        ["model_type"] = modelType,
        ["vocab_size"] = vocab,
        ["hidden_size"] = c,
        ["intermediate_size"] = ffn,
        ["num_hidden_layers"] = layers,
        ["num_attention_heads"] = heads,
        ["num_key_value_heads"] = kv,
        ["max_position_embeddings"] = context,
        ["rms_norm_eps"] = eps,
        ["rope_theta"] = theta,
        ["tie_word_embeddings"] = tied,
    };

    /// <summary>Random weights for the configuration in <paramref name="configJson"/> (a config.json).
    /// <paramref name="attentionGain"/> scales the q and k projections (sharper attention above 1).</summary>
    public static RandomModel Create(JsonObject configJson, int seed, float attentionGain = 2f)
    {
        var dir = TestPaths.NewTempDir("random-" + configJson["model_type"]);
        File.WriteAllText(Path.Combine(dir, "config.json"), configJson.ToJsonString());
        var c = ModelConfigReader.FromHfConfigFile(Path.Combine(dir, "config.json"));
        var rng = new Random(seed);
        var w = new SafetensorsWriter();
        foreach (var spec in TensorTable.Expand(c, TensorNaming.HuggingFace))
        {
            if (spec.Decl.NotAParameter || spec.Need == TensorNeed.Unused || spec.Name.Length == 0) continue;
            // GPT-2's Conv1D matrices are stored (in, out) in Hugging Face checkpoints
            var shape = spec.Decl.HfTransposed ? spec.Shape.Reverse().ToArray() : spec.Shape;
            var values = Values(spec, c, rng, attentionGain);
            if (spec.Name.Contains("{E}", StringComparison.Ordinal))
            {
                // a mixture of experts: one tensor per expert ({E}), as transformers saves them
                long each = values.Length / shape[0];
                for (int e = 0; e < shape[0]; e++)
                    w.Add(spec.Name.Replace("{E}", e.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal), shape[1..],
                          values.AsMemory((int)(e * each), (int)each));
            }
            else w.Add(spec.Name, shape, values);
        }
        w.Write(Path.Combine(dir, "model.safetensors"));
        return new RandomModel(c, dir);
    }

    /// <summary>Norms near 1 (as 1 + w where the checkpoint stores w), small biases, matrices scaled by 1/sqrt(fan-in)
    /// (q and k larger so attention is not uniform), a unit embedding (smaller when it is also the head).</summary>
    private static float[] Values(TensorSpec spec, ModelConfig c, Random rng, float attentionGain)
    {
        var d = new float[spec.Elements];
        float center = 0, spread;
        string role = spec.Decl.Role;
        if (spec.Shape.Length == 1 && role.Contains("norm", StringComparison.Ordinal) && !role.EndsWith(".bias", StringComparison.Ordinal))
        {
            // post-norms (Gemma 2/3) scale what each block adds: make it outweigh the tied embedding's echo of the input
            float target = role.Contains("post", StringComparison.Ordinal) ? 3f : 1f;
            center = spec.Decl.HfAddOne ? target - 1f : target;
            spread = 0.2f * target;
        }
        else if (spec.Shape.Length == 1) spread = 0.3f;
        // a tied head must not just echo the input token: the embedding (times Gemma's sqrt(C)) stays near the size of
        // what the blocks add to the residual stream
        else if (role == "token_embd") spread = !c.TiedEmbeddings ? 1f : c.EmbeddingScale != 1f ? 1f / c.EmbeddingScale : 0.25f;
        else if (role == "position_embd") spread = 1f; // positions move the output along the run
        else
        {
            long fanIn = spec.Shape[^1];
            // with a tied head, the blocks' outputs also outweigh the embedding's echo of the input token
            float blockOut = c.TiedEmbeddings && !c.PostNorms && role is "attn_output" or "ffn_down" ? 3f : 1f;
            spread = 1.7f / MathF.Sqrt(fanIn) * (role is "attn_q" or "attn_k" or "attn_qkv" ? attentionGain : role == "output" ? 3f : blockOut);
        }
        for (int i = 0; i < d.Length; i++) d[i] = center + (float)(rng.NextDouble() * 2 - 1) * spread;
        return d;
    }

    /// <summary>The folder converted to GGUF (<paramref name="type"/> for the matrices) by SharpLM's converter, with a
    /// synthetic vocabulary of V tokens.</summary>
    public string Gguf(DType type = DType.F32)
    {
        var path = Path.Combine(TestPaths.NewTempDir("random-gguf"), $"{Config.Architecture}-{type}.gguf");
        using var folder = HfModelFolder.Open(HfDir);
        // (a name with "phi3" in it makes llama.cpp look for Phi-3's special tokens, which the synthetic vocabulary lacks)
        var w = HfToGguf.Build(folder, new HfToGguf.Options(type, Name: "random-model"));
        TinyLlama.WriteVocab(w, Config.Vocab);
        w.Write(path);
        return path;
    }

    /// <summary>Deterministic pseudo-random prompt ids: BOS, then ids in [3, V).</summary>
    public int[] Prompt(int n, int seed)
    {
        var rng = new Random(seed);
        var ids = new int[n];
        ids[0] = 1;
        for (int i = 1; i < n; i++) ids[i] = rng.Next(3, Config.Vocab);
        return ids;
    }
}

/// <summary>The comparison every architecture's parity test makes against llama.cpp on the same GGUF file.</summary>
internal static class Parity
{
    /// <summary>
    /// Prompt logits at every position (max |diff| / max |logit| below <paramref name="tolerance"/>) of SharpLM on
    /// <paramref name="modelPath"/> (a GGUF or a Hugging Face folder) against llama.cpp on <paramref name="gguf"/>, and,
    /// when <paramref name="greedy"/> &gt; 0, that many identical greedy tokens. Returns the relative difference.
    /// </summary>
    public static double AgainstLlamaCpp(string modelPath, string gguf, int[] prompt, double tolerance, int greedy, ITestOutputHelper output,
                                        string label, int context = 256, int minGreedyEqual = -1)
    {
        using var model = LanguageModel.Load(modelPath, new ModelLoadOptions { ContextSize = context, BatchSize = 64 });
        using var cpp = new LlamaCppOracle(gguf, context);
        var expected = cpp.Logits(prompt);
        var ours = LlamaParityTests.OurLogits(model, prompt);
        int v = model.Config.Vocab;
        Assert.Equal(v, cpp.VocabSize);
        double rel = LlamaParityTests.MaxRelativeDiff(expected, r => ours.AsSpan(r * v, v), out int row);
        output.WriteLine($"{label}: max |diff| / max |logit| = {rel:E2} (row {row}) vs llama.cpp");
        Assert.True(rel < tolerance, $"{label}: logits differ from llama.cpp by {rel:E2} of the largest logit at prompt position {row} (tolerance {tolerance:E1})");
        if (greedy > 0)
        {
            var cppIds = cpp.Greedy(prompt, greedy);
            var ourIds = LlamaParityTests.OurGreedy(model, prompt, greedy);
            int same = cppIds.Zip(ourIds).TakeWhile(p => p.First == p.Second).Count();
            output.WriteLine($"{label}: {same} of {greedy} greedy tokens identical before the first difference");
            if (minGreedyEqual < 0) Assert.Equal(cppIds, ourIds);
            else Assert.True(cppIds.Zip(ourIds).Count(p => p.First == p.Second) >= minGreedyEqual,
                $"{label}: only {cppIds.Zip(ourIds).Count(p => p.First == p.Second)} of {greedy} greedy tokens match llama.cpp (need {minGreedyEqual})");
            Assert.True(ourIds.Distinct().Count() > 5, $"{label}: the greedy run is degenerate ({string.Join(' ', ourIds)}): the comparison would prove little");
        }
        return rel;
    }
}
