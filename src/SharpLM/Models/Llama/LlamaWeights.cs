using SharpLM.Formats;
using SharpLM.Kernels.Naive;
using SharpLM.Tensors;

namespace SharpLM.Models.Llama;

/// <summary>The weights of one block. Matrices are views into the mapped file; vectors (norms, biases) are small F32 copies.</summary>
internal sealed class LlamaLayerWeights
{
    public required float[] AttnNorm { get; init; }     // (C)
    public required WeightMatrix Q { get; init; }       // (NH*HS, C)
    public required WeightMatrix K { get; init; }       // (KVH*HS, C)
    public required WeightMatrix V { get; init; }       // (KVH*HS, C)
    public required WeightMatrix O { get; init; }       // (C, NH*HS)
    public float[]? QBias { get; init; }                // (NH*HS)
    public float[]? KBias { get; init; }                // (KVH*HS)
    public float[]? VBias { get; init; }                // (KVH*HS)
    public required float[] FfnNorm { get; init; }      // (C)
    public required WeightMatrix Gate { get; init; }    // (F, C)
    public required WeightMatrix Up { get; init; }      // (F, C)
    public required WeightMatrix Down { get; init; }    // (C, F)
}

/// <summary>All weights of a LLaMA-family model, bound by name from an <see cref="IWeightSource"/> and checked against the config.</summary>
internal sealed class LlamaWeights
{
    public required LlamaConfig Config { get; init; }
    public required WeightMatrix Embedding { get; init; }   // (V, C)
    public required float[] OutputNorm { get; init; }       // (C)
    /// <summary>(V, C); the embedding itself when tied.</summary>
    public required WeightMatrix Output { get; init; }
    public required LlamaLayerWeights[] Layers { get; init; }
    /// <summary>RoPE inverse frequencies (HS/2) after scaling and per-frequency factors.</summary>
    public required float[] InvFreq { get; init; }

    /// <summary>Every weight-matrix byte touched per decoded token (the bandwidth bound).</summary>
    public long MatrixBytes => Layers.Sum(l => new[] { l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down }.Sum(m => m.RowBytes * m.Rows)) + Output.RowBytes * Output.Rows;

    public static LlamaWeights Bind(IWeightSource source, LlamaConfig c, LlamaTensorNames names)
    {
        if (c.RopeDim != c.HeadDim)
            throw new NotSupportedException($"{source.Path}: partial rotary embeddings (rope dim {c.RopeDim} < head dim {c.HeadDim}) are not supported");
        var t = WeightBinder.Bind(source, names.Declare(c), LlamaTensorNames.Ignorable);
        bool tied = !t.ContainsKey(names.Output);
        WeightMatrix M(string name)
        {
            var info = t[name];
            if (!DTypeInfo.IsSupported(info.Type))
                throw new NotSupportedException($"{source.Path}: tensor '{name}' has unsupported type id {(int)info.Type}");
            long bs = DTypeInfo.BlockSize(info.Type);
            if (info.Shape[^1] % bs != 0)
                throw new InvalidDataException($"{source.Path}: tensor '{name}' is {info.Type} but its rows of {info.Shape[^1]} are not a multiple of the block size {bs}");
            long need = DTypeInfo.RowBytes(info.Type, info.Shape[^1]) * info.Shape[0];
            if (info.ByteLength < need)
                throw new InvalidDataException($"{source.Path}: tensor '{name}' holds {info.ByteLength} bytes, its shape and type need {need}");
            return info.AsMatrix();
        }
        float[] Vec(string name) => ToFloats(t[name], source.Path);
        float[]? OptVec(string name) => t.ContainsKey(name) ? Vec(name) : null;

        var layers = new LlamaLayerWeights[c.Layers];
        for (int l = 0; l < c.Layers; l++)
        {
            string B(string p) => LlamaTensorNames.Block(p, l);
            layers[l] = new LlamaLayerWeights
            {
                AttnNorm = Vec(B(names.AttnNorm)),
                Q = M(B(names.Q)), K = M(B(names.K)), V = M(B(names.V)), O = M(B(names.O)),
                QBias = OptVec(B(names.QBias)), KBias = OptVec(B(names.KBias)), VBias = OptVec(B(names.VBias)),
                FfnNorm = Vec(B(names.FfnNorm)),
                Gate = M(B(names.Gate)), Up = M(B(names.Up)), Down = M(B(names.Down)),
            };
        }
        float[]? freqFactors = names.RopeFreqs != null && t.ContainsKey(names.RopeFreqs) ? Vec(names.RopeFreqs) : null;
        var emb = M(names.Embedding);
        return new LlamaWeights
        {
            Config = c with { TiedEmbeddings = tied },
            Embedding = emb,
            OutputNorm = Vec(names.OutputNorm),
            Output = tied ? emb : M(names.Output),
            Layers = layers,
            InvFreq = c.InverseFrequencies(freqFactors),
        };
    }

    /// <summary>A small 1-D tensor (norm weight, bias) of any float type, as F32.</summary>
    private static unsafe float[] ToFloats(TensorInfo info, string path)
    {
        int n = checked((int)info.ElementCount);
        if (info.Type is not (DType.F32 or DType.F16 or DType.BF16))
            throw new NotSupportedException($"{path}: tensor '{info.Name}' is {info.Type}; norm weights and biases must be F32, F16 or BF16");
        long need = DTypeInfo.RowBytes(info.Type, n);
        if (info.ByteLength < need) throw new InvalidDataException($"{path}: tensor '{info.Name}' holds {info.ByteLength} bytes, needs {need}");
        var dst = new float[n];
        Tensors.Types.DTypes.Of(info.Type).DequantizeRow(new ReadOnlySpan<byte>((void*)info.Data, checked((int)need)), dst);
        return dst;
    }
}
