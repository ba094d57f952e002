using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using SharpLM.Models;
using SharpLM.Tensors;

namespace SharpLM.Formats.Onnx;

/// <summary>
/// Reads a BERT-family encoder exported to ONNX (e.g. all-MiniLM-L6-v2's model.onnx) as Hugging Face-named tensors
/// plus an inferred <see cref="ModelConfig"/>. The graph is not executed; it is only followed to name weights.
/// <para>
/// PyTorch's exporter keeps parameter names for biases and norms but stores each linear weight as an anonymous
/// initializer (e.g. "927" or "onnx::MatMul_927") already transposed to (in, out) for a MatMul node. Each such
/// MatMul's output feeds an Add with the named bias "X.bias"; the weight is therefore "X.weight", transposed back
/// to (out, in). The head count is read from the Reshape that splits the query into heads, the LayerNorm epsilon
/// from the constant added before the first Sqrt.
/// </para>
/// </summary>
internal static partial class OnnxBert
{
    /// <summary>Opens an .onnx file; the returned source owns the file mapping and the transposed weights.</summary>
    public static (IWeightSource Weights, ModelConfig Config) Open(string path)
    {
        var onnx = OnnxFile.Open(path);
        try
        {
            var mapped = Map(onnx);
            return (mapped, InferConfig(onnx, mapped));
        }
        catch
        {
            onnx.Dispose();
            throw;
        }
    }

    private static unsafe RenamedWeightSource Map(OnnxFile onnx)
    {
        var result = new RenamedWeightSource(onnx);
        foreach (var (name, t) in onnx.Tensors) result.Add(name, t);
        var consumers = new Dictionary<string, List<OnnxNode>>(StringComparer.Ordinal);
        foreach (var n in onnx.Nodes)
            foreach (var i in n.Inputs)
            {
                if (!consumers.TryGetValue(i, out var list)) consumers[i] = list = [];
                list.Add(n);
            }
        foreach (var n in onnx.Nodes)
        {
            if (n.OpType != "MatMul" || n.Inputs.Length != 2 || n.Outputs.Length != 1) continue;
            if (!onnx.Tensors.TryGetValue(n.Inputs[1], out var w) || w.Shape.Length != 2 || w.Type != DType.F32) continue;
            if (!consumers.TryGetValue(n.Outputs[0], out var cons)) continue;
            string? bias = cons.Where(c => c.OpType == "Add")
                .SelectMany(c => c.Inputs)
                .FirstOrDefault(i => i.EndsWith(".bias", StringComparison.Ordinal) && onnx.Tensors.ContainsKey(i));
            if (bias is null) continue;
            string weightName = bias[..^".bias".Length] + ".weight";
            if (result.Tensors.ContainsKey(weightName)) continue;
            result.Add(weightName, result.Transposed(weightName, w));
        }
        return result;
    }

    private static ModelConfig InferConfig(OnnxFile onnx, IWeightSource src)
    {
        bool distil = src.Tensors.Keys.Any(k => k.EndsWith("transformer.layer.0.attention.q_lin.weight", StringComparison.Ordinal));
        if (src.Tensors.Keys.Any(k => k.EndsWith("encoder.embedding_hidden_mapping_in.weight", StringComparison.Ordinal)))
            throw new NotSupportedException($"{onnx.Path}: ALBERT models are read from Hugging Face folders (config.json + safetensors), not ONNX");
        var archInfo = Architectures.Get(distil ? "distilbert" : "bert");
        string p = EncoderWeights.DetectPrefix(src, archInfo);
        var word = src.Tensors[p + "embeddings.word_embeddings.weight"];
        int v = checked((int)word.Shape[0]), h = checked((int)word.Shape[1]);
        int P = src.Tensors.TryGetValue(p + "embeddings.position_embeddings.weight", out var pos) ? checked((int)pos.Shape[0]) : 0;
        int types = src.Tensors.TryGetValue(p + "embeddings.token_type_embeddings.weight", out var tt) ? checked((int)tt.Shape[0]) : 0;
        var layerRx = distil ? DistilLayerRx() : BertLayerRx();
        int layers = 0;
        foreach (var k in src.Tensors.Keys)
        {
            var m = layerRx.Match(k);
            if (m.Success && k.StartsWith(p, StringComparison.Ordinal))
                layers = Math.Max(layers, int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) + 1);
        }
        if (layers == 0)
            throw new InvalidDataException($"{onnx.Path}: no encoder layers found (looked for '{p}{(distil ? "transformer.layer.N.attention.q_lin.bias" : "encoder.layer.N.attention.self.query.bias")}'); this ONNX file is not a BERT-family encoder");
        string upBias = distil ? $"{p}transformer.layer.0.ffn.lin1.bias" : $"{p}encoder.layer.0.intermediate.dense.bias";
        int f = src.Tensors.TryGetValue(upBias, out var ub) ? checked((int)ub.ElementCount) : 0;
        string qBias = distil ? $"{p}transformer.layer.0.attention.q_lin.bias" : $"{p}encoder.layer.0.attention.self.query.bias";
        int heads = InferHeads(onnx, qBias, h)
            ?? throw new InvalidDataException($"{onnx.Path}: could not find the number of attention heads (no Reshape of '{qBias}' + MatMul into [B, T, NH, HS]); export the model with its config.json and load the folder instead");
        float eps = InferEps(onnx) ?? 1e-12f;
        bool erf = onnx.Nodes.Any(n => n.OpType == "Erf");
        var cfg = new ModelConfig
        {
            Architecture = archInfo.Name,
            Vocab = v,
            Width = h,
            Layers = layers,
            Heads = heads,
            KvHeads = heads,
            HeadSize = heads > 0 ? h / heads : 0,
            FfnWidth = f,
            Context = P,
            EmbeddingWidth = h,
            LayerGroups = layers,
            TokenTypes = types,
            NormEps = eps,
            Activation = erf ? "gelu" : "gelu_tanh",
            QkvBias = true,
            OutputBias = true,
            MlpBias = true,
            Pooler = src.Tensors.ContainsKey(p + "pooler.dense.weight"),
        };
        cfg.Validate(onnx.Path);
        return cfg;
    }

    /// <summary>Follows Add(query bias) -> Reshape(shape = Concat(..., NH, HS)) and reads NH.</summary>
    private static int? InferHeads(OnnxFile onnx, string queryBias, int hidden)
    {
        var producers = new Dictionary<string, OnnxNode>(StringComparer.Ordinal);
        foreach (var n in onnx.Nodes)
            foreach (var o in n.Outputs) producers[o] = n;
        var add = onnx.Nodes.FirstOrDefault(n => n.OpType == "Add" && n.Inputs.Contains(queryBias));
        if (add is null) return null;
        var reshape = onnx.Nodes.FirstOrDefault(n => n.OpType == "Reshape" && n.Inputs.Length == 2 && n.Inputs[0] == add.Outputs[0]);
        if (reshape is null) return null;
        var dims = new List<long>();
        if (producers.TryGetValue(reshape.Inputs[1], out var concat) && concat.OpType == "Concat")
        {
            foreach (var i in concat.Inputs)
            {
                var t = Scalar64(onnx, i);
                dims.Add(t ?? -1);
            }
        }
        else if (Const(onnx, reshape.Inputs[1]) is { Type: DType.I64 } shape)
        {
            unsafe
            {
                for (int i = 0; i < shape.ElementCount; i++) dims.Add(((long*)shape.Data)[i]);
            }
        }
        // [B, T, NH, HS]: the last two are known constants with NH * HS = H.
        if (dims.Count == 4 && dims[2] > 0 && dims[3] > 0 && dims[2] * dims[3] == hidden) return (int)dims[2];
        return null;
    }

    /// <summary>The epsilon of the first decomposed LayerNorm: Sqrt(Add(ReduceMean(...), eps)).</summary>
    private static float? InferEps(OnnxFile onnx)
    {
        var producers = new Dictionary<string, OnnxNode>(StringComparer.Ordinal);
        foreach (var n in onnx.Nodes)
            foreach (var o in n.Outputs) producers[o] = n;
        foreach (var sqrt in onnx.Nodes.Where(n => n.OpType == "Sqrt"))
        {
            if (!producers.TryGetValue(sqrt.Inputs[0], out var add) || add.OpType != "Add") continue;
            foreach (var i in add.Inputs)
                if (Const(onnx, i) is { Type: DType.F32, ElementCount: 1 } c)
                    unsafe { return *(float*)c.Data; }
        }
        return null;
    }

    private static TensorInfo? Const(OnnxFile onnx, string name) =>
        onnx.Constants.TryGetValue(name, out var c) ? c : onnx.Tensors.TryGetValue(name, out var t) ? t : null;

    private static unsafe long? Scalar64(OnnxFile onnx, string name) =>
        Const(onnx, name) is { Type: DType.I64, ElementCount: 1 } t ? *(long*)t.Data : null;

    [GeneratedRegex(@"encoder\.layer\.(\d+)\.attention\.self\.query\.bias$")]
    private static partial Regex BertLayerRx();

    [GeneratedRegex(@"transformer\.layer\.(\d+)\.attention\.q_lin\.bias$")]
    private static partial Regex DistilLayerRx();
}

/// <summary>
/// Tensors of an inner source under new names, plus tensors this object owns (e.g. transposed copies).
/// Disposing it disposes the inner source and frees the owned memory.
/// </summary>
internal sealed unsafe class RenamedWeightSource(IWeightSource inner) : IWeightSource
{
    private readonly Dictionary<string, TensorInfo> _tensors = new(StringComparer.Ordinal);
    private readonly List<nint> _owned = [];

    public string Path => inner.Path;
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;

    public void Add(string name, TensorInfo t) => _tensors[name] = t with { Name = name };

    /// <summary>A (rows, cols) f32 tensor copied as (cols, rows).</summary>
    public TensorInfo Transposed(string name, TensorInfo t)
    {
        int r = checked((int)t.Shape[0]), c = checked((int)t.Shape[1]);
        var dst = (float*)NativeMemory.AlignedAlloc((nuint)((long)r * c * 4), 64);
        _owned.Add((nint)dst);
        var src = (float*)t.Data;
        for (int i = 0; i < r; i++)
            for (int j = 0; j < c; j++)
                dst[(long)j * r + i] = src[(long)i * c + j];
        return new TensorInfo(name, DType.F32, [c, r], (nint)dst, (long)r * c * 4);
    }

    public void Dispose()
    {
        inner.Dispose();
        foreach (var p in _owned) NativeMemory.AlignedFree((void*)p);
        _owned.Clear();
    }
}
