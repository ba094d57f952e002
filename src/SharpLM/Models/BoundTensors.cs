using System.Text;
using SharpLM.Formats;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;

namespace SharpLM.Models;

/// <summary>A float vector (a norm weight, a bias) in memory that outlives the view: a mapped file, a parameter array or
/// a pinned copy.</summary>
internal readonly unsafe struct FloatView(float* data, int length)
{
    public readonly float* Data = data;
    public readonly int Length = length;

    public Span<float> Span => new(Data, Length);

    public bool IsEmpty => Data == null;

    public FloatView Slice(int start, int length) => start < 0 || length < 0 || start + length > Length
        ? throw new ArgumentOutOfRangeException(nameof(start), $"[{start}, {start + length}) is outside a vector of {Length}")
        : new(Data + start, length);
}

/// <summary>
/// The tensors of a model, matched by name against its architecture's table (<see cref="TensorTable"/>) and reachable
/// by role ("attn_q", block 3). A failed bind lists every missing, mis-shaped and unused tensor at once, so a wrong file
/// or a wrong table is obvious from one message. Matrices are views into the weight source (never copied); vectors that
/// are not F32 are dequantized once into pinned copies; Hugging Face GPT-2's transposed (Conv1D) matrices are
/// transposed into pinned copies, and Gemma's Hugging Face norm weights w become 1 + w (as GGUF stores them). The weight source must outlive the bound tensors.
/// </summary>
internal sealed unsafe class BoundTensors
{
    private readonly Dictionary<(string Role, int Layer), TensorInfo> _byRole = [];
    private readonly Dictionary<(string Role, int Layer), TensorInfo[]> _experts = [];
    private readonly List<float[]> _owned = [];

    public string Path { get; }
    public ModelConfig Config { get; }

    private BoundTensors(string path, ModelConfig config)
    {
        Path = path;
        Config = config;
    }

    /// <summary>Names that may sit in a checkpoint without being parameters (precomputed tables, masks).</summary>
    public static bool Ignorable(string name) =>
        name.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal) || name.EndsWith(".attn.bias", StringComparison.Ordinal)
        || name.EndsWith(".attn.masked_bias", StringComparison.Ordinal) || name.EndsWith("position_ids", StringComparison.Ordinal);

    /// <summary>
    /// Binds <paramref name="source"/>'s tensors for <paramref name="config"/> under <paramref name="naming"/>.
    /// <paramref name="hfPrefix"/> replaces "{P}" in Hugging Face names (BERT's class prefix). Tensors the table does not
    /// declare are an error unless <see cref="Ignorable"/>, or unless <paramref name="allowExtra"/> (a checkpoint with heads
    /// this model does not use).
    /// </summary>
    public static BoundTensors Bind(IWeightSource source, ModelConfig config, TensorNaming naming, string hfPrefix = "", bool allowExtra = false,
                                    Func<TensorDecl, bool>? require = null)
    {
        var b = new BoundTensors(source.Path, config);
        var missing = new List<string>();
        var misShaped = new List<string>();
        var declared = new HashSet<string>(StringComparer.Ordinal);
        foreach (var spec in TensorTable.Expand(config, naming))
        {
            string name = spec.Name.Replace("{P}", hfPrefix, StringComparison.Ordinal);
            if (name.Length == 0) continue; // no name in this naming (rope_freqs in Hugging Face)
            if (name.Contains("{E}", StringComparison.Ordinal))
            {
                b.BindExperts(source, spec, name, declared, missing, misShaped);
                continue;
            }
            declared.Add(name);
            var need = spec.Need == TensorNeed.Optional && (require?.Invoke(spec.Decl) ?? false) ? TensorNeed.Required : spec.Need;
            if (!source.Tensors.TryGetValue(name, out var info))
            {
                // another name a checkpoint may use for it
                foreach (var alias in naming == TensorNaming.HuggingFace ? spec.Decl.HfAliases : [])
                {
                    string an = alias.Replace("{N}", spec.Layer.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
                                     .Replace("{P}", hfPrefix, StringComparison.Ordinal);
                    declared.Add(an);
                    if (info is null && source.Tensors.TryGetValue(an, out var found)) info = found;
                }
            }
            if (info is null)
            {
                if (need == TensorNeed.Required) missing.Add($"{name} [{string.Join(", ", spec.Shape)}]");
                continue;
            }
            if (spec.Need == TensorNeed.Unused) continue;
            // Hugging Face GPT-2 stores its Conv1D matrices (in, out): always transposed, square ones too
            bool conv1D = naming == TensorNaming.HuggingFace && spec.Decl.HfTransposed && spec.Shape.Length == 2 && source.HfConv1DLayout;
            var expected = conv1D ? [spec.Shape[1], spec.Shape[0]] : spec.Shape;
            if (!info.Shape.AsSpan().SequenceEqual(expected))
            {
                misShaped.Add($"{name} has shape [{string.Join(", ", info.Shape)}], expected [{string.Join(", ", expected)}]{(conv1D ? " (a Conv1D matrix, stored (in, out))" : "")}");
                continue;
            }
            if (conv1D) info = b.TransposeCopy(info);
            if (naming == TensorNaming.HuggingFace && spec.Decl.HfAddOne) info = b.AddOneCopy(info);
            b._byRole[(spec.Decl.Role, spec.Layer)] = info;
        }
        var unused = allowExtra ? [] : source.Tensors.Keys.Where(n => !declared.Contains(n) && !Ignorable(n)).Order(StringComparer.Ordinal).ToList();
        if (missing.Count + misShaped.Count + unused.Count == 0) return b;

        var sb = new StringBuilder($"{source.Path}: the tensors do not match a {config.Architecture} model ({config})");
        void Section(string title, List<string> items)
        {
            if (items.Count == 0) return;
            sb.Append($"; {items.Count} {title}: ");
            sb.Append(string.Join(", ", items.Take(12)));
            if (items.Count > 12) sb.Append($", ... ({items.Count - 12} more)");
        }
        Section("missing", missing);
        Section("mis-shaped", misShaped);
        Section("unused", unused);
        sb.Append(". Check that the file is a complete model of this architecture (not a shard or an adapter) and not corrupted.");
        throw new InvalidDataException(sb.ToString());
    }

    /// <summary>A Hugging Face checkpoint's experts, one tensor each ("{E}" in the name): all X of them, each of the
    /// declared shape without its leading X.</summary>
    private void BindExperts(IWeightSource source, TensorSpec spec, string pattern, HashSet<string> declared, List<string> missing, List<string> misShaped)
    {
        var shape = spec.Shape[1..];
        var infos = new TensorInfo[spec.Shape[0]];
        for (int e = 0; e < infos.Length; e++)
        {
            string name = pattern.Replace("{E}", e.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
            declared.Add(name);
            if (!source.Tensors.TryGetValue(name, out var info))
            {
                if (spec.Need == TensorNeed.Required) missing.Add($"{name} [{string.Join(", ", shape)}]");
                return;
            }
            if (!info.Shape.AsSpan().SequenceEqual(shape))
            {
                misShaped.Add($"{name} has shape [{string.Join(", ", info.Shape)}], expected [{string.Join(", ", shape)}]");
                return;
            }
            infos[e] = info;
        }
        _experts[(spec.Decl.Role, spec.Layer)] = infos;
    }

    public bool Has(string role, int layer = -1) => _byRole.ContainsKey((role, layer)) || _experts.ContainsKey((role, layer));

    /// <summary>The X expert matrices of a stacked role ((X, rows, cols) in the table): views into a GGUF's 3-D tensor, or a
    /// Hugging Face checkpoint's separate tensors.</summary>
    public TensorInfo[] ExpertInfos(string role, int layer)
    {
        if (_experts.TryGetValue((role, layer), out var list)) return list;
        var t = Info(role, layer);
        if (t.Shape.Length != 3) throw new InvalidDataException($"{Path}: tensor '{t.Name}' has shape [{string.Join(", ", t.Shape)}], expected (experts, rows, cols)");
        long each = t.ByteLength / t.Shape[0];
        return [.. Enumerable.Range(0, checked((int)t.Shape[0])).Select(e =>
            new TensorInfo($"{t.Name}[{e}]", t.Type, t.Shape[1..], t.Data + (nint)(e * each), each))];
    }

    /// <summary>The expert matrices of a stacked role (see <see cref="ExpertInfos"/>), checked as <see cref="Matrix"/> checks.</summary>
    public WeightMatrix[] Experts(string role, int layer) => [.. ExpertInfos(role, layer).Select(CheckedMatrix)];

    public TensorInfo Info(string role, int layer = -1) => _byRole.TryGetValue((role, layer), out var t) ? t
        : throw new InvalidDataException($"{Path}: the model has no '{role}' tensor{(layer >= 0 ? $" in block {layer}" : "")}");

    /// <summary>A matrix by role, checked against its dtype (readable, whole blocks, enough bytes).</summary>
    public WeightMatrix Matrix(string role, int layer = -1) => CheckedMatrix(Info(role, layer));

    private WeightMatrix CheckedMatrix(TensorInfo info)
    {
        var traits = DTypes.IsKnown(info.Type) ? DTypes.Of(info.Type) : null;
        if (traits is null || !traits.CanDequantize)
            throw new NotSupportedException($"{Path}: tensor '{info.Name}' has type {info.Type}, which SharpLM cannot compute with (supported: {string.Join(", ", DTypes.Readable)})");
        long cols = info.Shape[^1], rows = info.Shape.Length == 1 ? 1 : info.ElementCount / cols;
        if (cols % traits.BlockSize != 0)
            throw new InvalidDataException($"{Path}: tensor '{info.Name}' is {info.Type} but its rows of {cols} are not a multiple of the block size {traits.BlockSize}");
        long need = traits.RowBytes(cols) * rows;
        if (info.ByteLength < need)
            throw new InvalidDataException($"{Path}: tensor '{info.Name}' holds {info.ByteLength} bytes, its shape and type need {need}");
        return new WeightMatrix(info.Type, (byte*)info.Data, checked((int)rows), checked((int)cols));
    }

    public WeightMatrix? OptionalMatrix(string role, int layer = -1) => Has(role, layer) ? Matrix(role, layer) : null;

    /// <summary>A 1-D tensor (norm weight, bias) as f32: a view of F32 data, else a dequantized pinned copy.</summary>
    public FloatView Vector(string role, int layer = -1)
    {
        var info = Info(role, layer);
        int n = checked((int)info.ElementCount);
        if (!DTypes.IsKnown(info.Type) || !DTypes.Of(info.Type).CanDequantize)
            throw new NotSupportedException($"{Path}: tensor '{info.Name}' is {info.Type}; norm weights and biases must be a float type");
        var traits = DTypes.Of(info.Type);
        long need = traits.RowBytes(n);
        if (info.ByteLength < need) throw new InvalidDataException($"{Path}: tensor '{info.Name}' holds {info.ByteLength} bytes, needs {need}");
        if (info.Type == DType.F32) return new FloatView((float*)info.Data, n);
        var copy = GC.AllocateArray<float>(Math.Max(n, 1), pinned: true);
        traits.DequantizeRow(new ReadOnlySpan<byte>((void*)info.Data, checked((int)need)), copy.AsSpan(0, n));
        _owned.Add(copy);
        fixed (float* p = copy) return new FloatView(p, n);
    }

    public FloatView OptionalVector(string role, int layer = -1) => Has(role, layer) ? Vector(role, layer) : default;

    /// <summary>1 + w as an F32 pinned copy (Gemma's norms: Hugging Face stores w, the model multiplies by 1 + w).</summary>
    private TensorInfo AddOneCopy(TensorInfo info)
    {
        int n = checked((int)info.ElementCount);
        var traits = DTypes.Of(info.Type);
        var dst = GC.AllocateArray<float>(Math.Max(n, 1), pinned: true);
        traits.DequantizeRowNaive(new ReadOnlySpan<byte>((byte*)info.Data, checked((int)traits.RowBytes(n))), dst.AsSpan(0, n));
        for (int i = 0; i < n; i++) dst[i] += 1f;
        _owned.Add(dst);
        fixed (float* p = dst)
            return new TensorInfo(info.Name, DType.F32, info.Shape, (nint)p, 4L * n);
    }

    private TensorInfo TransposeCopy(TensorInfo info)
    {
        int rows = checked((int)info.Shape[0]), cols = checked((int)info.Shape[1]);
        var src = new float[info.ElementCount];
        var traits = DTypes.Of(info.Type);
        long rowBytes = traits.RowBytes(cols);
        for (int r = 0; r < rows; r++)
            traits.DequantizeRow(new ReadOnlySpan<byte>((byte*)info.Data + r * rowBytes, checked((int)rowBytes)), src.AsSpan(r * cols, cols));
        var dst = GC.AllocateArray<float>(Math.Max(src.Length, 1), pinned: true);
        Kernels.MatMul.Transpose(src, dst, rows, cols);
        _owned.Add(dst);
        fixed (float* p = dst)
            return new TensorInfo(info.Name, DType.F32, [cols, rows], (nint)p, 4L * src.Length);
    }
}
