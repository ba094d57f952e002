using LLama;
using LLama.Common;
using LLama.Native;

namespace SharpLM.Tests.Models;

/// <summary>
/// llama.cpp (through LLamaSharp) as the reference: F32 K/V cache (unless asked for another) and FlashAttention off so
/// nothing is rounded through F16; a batch with logits requested for every position.
/// </summary>
internal sealed class LlamaCppOracle : IDisposable
{
    private static readonly object Gate = new();
    private readonly LLamaWeights _weights;
    private readonly LLamaContext _context;

    static LlamaCppOracle()
    {
        // SHARPLM_LLAMA_LOG=1 shows all of llama.cpp's log (why a file does not load), else only its errors
        bool all = Environment.GetEnvironmentVariable("SHARPLM_LLAMA_LOG") == "1";
        NativeLogConfig.llama_log_set((level, message) => { if (all || level == LLamaLogLevel.Error) Console.Error.Write(message); });
    }

    /// <summary>Loads llama.cpp's library (and sets its log) before a call that does not load a model first.</summary>
    public static void EnsureLoaded() => NativeApi.llama_empty_call();

    public LlamaCppOracle(string path, int contextSize, int threads = 2, GGMLType kvType = GGMLType.GGML_TYPE_F32)
    {
        var p = new ModelParams(path)
        {
            ContextSize = (uint)contextSize,
            BatchSize = (uint)contextSize,
            UBatchSize = (uint)contextSize,
            GpuLayerCount = 0,
            Threads = threads,
            BatchThreads = threads,
            TypeK = kvType,
            TypeV = kvType,
            FlashAttention = false,
        };
        lock (Gate)
        {
            _weights = LLamaWeights.LoadFromFile(p);
            _context = _weights.CreateContext(p);
        }
    }

    public int VocabSize => _context.Vocab.Count;

    /// <summary>Logits (T, V) for every position of <paramref name="ids"/> evaluated as one batch at positions 0..T-1.</summary>
    public float[][] Logits(int[] ids)
    {
        _context.NativeHandle.MemoryClear();
        var batch = new LLamaBatch();
        for (int i = 0; i < ids.Length; i++) batch.Add((LLamaToken)ids[i], i, LLamaSeqId.Zero, true);
        var r = _context.NativeHandle.Decode(batch);
        if (r != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp decode failed: {r}");
        var rows = new float[ids.Length][];
        for (int i = 0; i < ids.Length; i++) rows[i] = _context.NativeHandle.GetLogitsIth(i).ToArray();
        return rows;
    }

    /// <summary>Greedy generation: the prompt as one batch, then one token at a time, argmax of the logits.</summary>
    public int[] Greedy(int[] prompt, int n)
    {
        _context.NativeHandle.MemoryClear();
        var batch = new LLamaBatch();
        for (int i = 0; i < prompt.Length; i++) batch.Add((LLamaToken)prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
        if (_context.NativeHandle.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp decode failed");
        var output = new int[n];
        int pos = prompt.Length, logitIndex = prompt.Length - 1;
        for (int k = 0; k < n; k++)
        {
            var logits = _context.NativeHandle.GetLogitsIth(logitIndex);
            int best = 0;
            for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
            output[k] = best;
            batch.Clear();
            batch.Add((LLamaToken)best, pos++, LLamaSeqId.Zero, true);
            if (_context.NativeHandle.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp decode failed");
            logitIndex = 0;
        }
        return output;
    }

    public void Dispose()
    {
        _context.Dispose();
        _weights.Dispose();
    }
}
