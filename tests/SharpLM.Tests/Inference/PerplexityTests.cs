using System.Text;
using SharpLM.Inference;
using SharpLM.Models;
using SharpLM.Testing;
using SharpLM.Tokenizers.Training;
using SharpLM.Training;
using SharpLM.Training.Checkpoints;
using SharpLM.Training.Data;
using Xunit;
using Xunit.Abstractions;

namespace SharpLM.Tests.Inference;

/// <summary>
/// <see cref="Perplexity.Score"/> (inference: the GGUF model, its KV cache, sliding windows) against the same loss
/// recomputed here from the training model's forward pass over the same windows (another code path: activations
/// instead of a KV cache), on a small BPE model exported to GGUF.
/// </summary>
[Collection("TrainParallel")]
public class PerplexityTests(ITestOutputHelper output)
{
    private const int T = 32;

    private static readonly string Text = string.Join("\n", Enumerable.Range(0, 12).Select(i =>
        $"On day {i} the ferry left the harbour late; the gulls followed it past the breakwater, and nobody on deck minded the rain."));

    private static (TrainModel Model, HfTextTokenizer Tok, string Path) Build()
    {
        var trained = BpeTrainer.Train([Text], new BpeTrainerOptions { VocabSize = 300, SpecialTokens = ["<|endoftext|>"] });
        var tok = new HfTextTokenizer(trained.ToTokenizerJson(), "trained");
        var spec = TrainModel.NewConfig("llama", tok.VocabSize, 64, 2, 4, 2, 96, T);
        var m = new TrainModel(spec);
        m.Initialize(7);
        var r = new TrainRandom(5);
        foreach (var info in m.Parameters.Infos)
            if (info.Shape.Length == 2) r.FillNormal(m.Parameters.P(info), 0.15);
        var path = System.IO.Path.Combine(TestPaths.NewTempDir(), "m.gguf");
        GgufExport.Write(path, spec, m.Parameters, tok);
        return (m, tok, path);
    }

    /// <summary>Σ −log p(target) over the targets of windows of T inputs starting every <paramref name="stride"/>
    /// tokens, each target counted once (in the first window that reaches it), from the training forward pass.</summary>
    private static (double Nats, int Count) Reference(TrainModel m, int[] ids, int stride)
    {
        int v = m.Config.Vocab, scoredUpTo = 0; // targets 1..scoredUpTo are counted
        double nats = 0;
        int count = 0;
        for (int start = 0; scoredUpTo < ids.Length - 1; start += stride)
        {
            int n = Math.Min(T, ids.Length - 1 - start);
            m.Forward(ids.AsSpan(start, n), default, 1, n);
            var logits = m.Logits;
            for (int r = 0; r < n; r++)
            {
                int target = start + r + 1;
                if (target <= scoredUpTo) continue;
                var row = logits.Slice(r * v, v);
                double max = double.NegativeInfinity, sum = 0;
                foreach (float x in row) max = Math.Max(max, x);
                foreach (float x in row) sum += Math.Exp(x - max);
                nats += max + Math.Log(sum) - row[ids[target]];
                count++;
            }
            scoredUpTo = start + n;
        }
        return (nats, count);
    }

    [Theory]
    [InlineData(T)]      // non-overlapping windows: exactly the trainer's validation windows
    [InlineData(T / 2)]
    [InlineData(5)]
    public void Scores_every_token_once_with_the_models_own_logits(int stride)
    {
        var (m, tok, path) = Build();
        using var model = LanguageModel.Load(path);
        int[] ids = tok.Encode(Text);
        Assert.Equal(ids, model.Tokenize(Text, addBos: false));
        Assert.Equal(ids, model.Tokenize(Text, addBos: true)); // the exported model uses no BOS

        var score = Perplexity.Score(model, Text, T, stride);
        var (nats, count) = Reference(m, ids, stride);
        output.WriteLine($"stride {stride}: {score.Tokens} tokens, {score.Nats:F4} nats (reference {nats:F4}), {score.BitsPerByte:F4} bits/byte");
        Assert.Equal(ids.Length - 1, score.Tokens);
        Assert.Equal(count, score.Tokens);
        // the first token is predicted by nothing: its bytes are not counted
        Assert.Equal(Encoding.UTF8.GetByteCount(Text) - Encoding.UTF8.GetByteCount(tok.Decode(ids[..1])), score.Bytes);
        Assert.True(Math.Abs(score.Nats - nats) < 1e-4 * count, $"nats {score.Nats} vs reference {nats}");
        Assert.Equal(score.Nats / score.Bytes / Math.Log(2), score.BitsPerByte, 12);
    }

    [Fact]
    public void Bad_windows_and_short_texts_are_clear_errors()
    {
        var (_, _, path) = Build();
        using var model = LanguageModel.Load(path);
        Assert.Throws<ArgumentOutOfRangeException>(() => Perplexity.Score(model, Text, T + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Perplexity.Score(model, Text, T, T + 1));
        Assert.Throws<ArgumentException>(() => Perplexity.Score(model, "a"));
    }
}
