using SharpLM.Formats.Gguf;
using SharpLM.Models;
using SharpLM.Quantization;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;

namespace SharpLM.Formats.HuggingFace;

/// <summary>
/// Converts a Hugging Face decoder folder (every runnable architecture) to a GGUF file that llama.cpp loads, following
/// llama.cpp's convert_hf_to_gguf.py: tensor names from the architecture table (<see cref="TensorTable"/>), q/k projection rows permuted from
/// HF's rotate-half layout to GGUF's interleaved pairs for llama/mistral (<see cref="PermuteSourceRow"/>; qwen2 is
/// not permuted: llama.cpp uses NEOX rope for it), 1-D tensors (norms, biases) kept F32, hyperparameters and
/// tokenizer metadata written under llama.cpp's keys, RoPE tables (Llama-3's rope_freqs, LongRoPE's factors) as tensors,
/// Gemma's norms as 1 + w (the binder adds the 1).
/// </summary>
internal static class HfToGguf
{
    /// <summary>A file type for --type: f32, f16, bf16, q8_0, q4_k_m, ... (<see cref="QuantFileType.Parse"/>).</summary>
    public static QuantFileType ParseType(string s) => QuantFileType.Parse(s);

    /// <summary>
    /// convert_hf_to_gguf.py's permute(w, n_head, n_head_kv): w.reshape(nh, 2, rows/nh/2, ...).swapaxes(1, 2).
    /// Output row r = h*HS + 2i + j takes HF row h*HS + j*HS/2 + i, turning rotate-half pairs (i, i+HS/2) into
    /// adjacent pairs (2i, 2i+1). <paramref name="heads"/> is n_head for q and n_head_kv for k.
    /// </summary>
    public static int PermuteSourceRow(int outRow, int heads, int rows)
    {
        int hs = rows / heads, half = hs / 2;
        int h = outRow / hs, w = outRow % hs;
        int i = w / 2, j = w % 2;
        return h * hs + j * half + i;
    }

    /// <summary>The heads by which a tensor's rows (a bias's elements) are permuted between the HF and GGUF layouts:
    /// n_head for q, n_head_kv for k in the architectures llama.cpp reads with adjacent-pair RoPE (GGUF "llama":
    /// llama, mistral); 0 (no permutation) for every other tensor and architecture.</summary>
    public static int QkPermuteHeads(ModelConfig c, string role) => c.Arch.GgufName != "llama" ? 0 : role switch
    {
        "attn_q" or "attn_q.bias" => c.Heads,
        "attn_k" or "attn_k.bias" => c.KvHeads,
        _ => 0,
    };

    /// <summary>The file type (a pure dtype converts to it) and general.name.</summary>
    public sealed record Options(QuantFileType Type, string? Name = null);

    /// <summary>Builds the writer (metadata + lazy tensors reading from the memory-mapped folder, which must stay
    /// open until Write finishes). The tensors are the architecture table's, checked by the one binder (every missing,
    /// mis-shaped and unused tensor is reported at once), written in table order under their GGUF names.</summary>
    public static GgufWriter Build(HfModelFolder folder, Options options)
    {
        var c = folder.Config;
        if (c.Family == ArchFamily.Bert)
            throw new NotSupportedException($"{folder.Path}: converting a {c.Architecture} model to GGUF is not supported (supported: {string.Join(", ", Architectures.All.Where(a => a.Family != ArchFamily.Bert).Select(a => a.Name))})");
        if (c.Unsupported is { } why) throw new NotSupportedException($"{folder.Path}: {why}");
        var bound = BoundTensors.Bind(folder.RequireWeights(), c, TensorNaming.HuggingFace);
        var ft = options.Type;
        var w = new GgufWriter();
        ModelConfigReader.ToGguf(c, w);
        w.Set(GgufKeys.Name, options.Name ?? Path.GetFileName(folder.Path.TrimEnd(Path.DirectorySeparatorChar)))
         .Set(GgufKeys.FileType, ft.Id);
        if (ft.IsQuantized) w.Set(GgufKeys.QuantizationVersion, 2u);

        WriteTokenizer(folder, w);

        var tensors = TensorTable.Expand(c, TensorNaming.HuggingFace)
            .Where(spec => !spec.Decl.NotAParameter && bound.Has(spec.Decl.Role, spec.Layer))
            .Select(spec => (Spec: spec, Name: spec.Decl.GgufFor(Math.Max(spec.Layer, 0)), Info: Stacked(bound, spec)))
            .ToList();
        // the types llama-quantize would give a file convert_hf_to_gguf.py wrote in F32 (or in the float file type)
        var mix = new QuantMix(ft, c, tensors.Select(t => t.Name));
        var types = new Dictionary<string, DType>(StringComparer.Ordinal);
        foreach (var t in tensors.OrderBy(t => t.Name, Comparer<string>.Create(QuantMix.Order)))
            types[t.Name] = t.Info.Shape.Length == 1 ? DType.F32 : mix.TypeFor(t.Name, t.Info.Shape, ft.IsQuantized ? DType.F32 : ft.Type);
        foreach (var (spec, name, info) in tensors)
        {
            AddTensor(w, bound, name, info, QkPermuteHeads(c, spec.Decl.Role), types[name]);
        }
        foreach (var (name, data) in RotaryGguf.RopeTensors(c)) w.AddTensor(name, [data.Length], data);
        return w;
    }

    /// <summary>The tensor of a table entry; Hugging Face's separate experts ({E}) as one stacked (X, rows, cols) tensor
    /// whose rows the writer reads expert by expert.</summary>
    private static TensorInfo Stacked(BoundTensors bound, TensorSpec spec)
    {
        if (!spec.Decl.Hf.Contains("{E}", StringComparison.Ordinal)) return bound.Info(spec.Decl.Role, spec.Layer);
        var parts = bound.ExpertInfos(spec.Decl.Role, spec.Layer);
        if (parts.Any(p => p.Type != parts[0].Type))
            throw new InvalidDataException($"{bound.Path}: the experts of '{spec.Name}' are stored in different types");
        return new TensorInfo(spec.Name, parts[0].Type, spec.Shape, 0, parts.Sum(p => p.ByteLength)) { Parts = parts };
    }

    /// <remarks>The rows are read when the writer writes, after Build has returned: the closure keeps <paramref name="bound"/>
    /// alive, since it owns the pinned copies some tensors point into (GPT-2's transposed Conv1D matrices); without it the
    /// collector may free them under the writer.</remarks>
    private static void AddTensor(GgufWriter w, BoundTensors bound, string name, TensorInfo t, int heads, DType store)
    {
        if (DTypes.Of(t.Type).BlockSize != 1 || !DTypes.Of(t.Type).CanDequantize)
            throw new InvalidDataException($"tensor '{t.Name}' is {t.Type}; only F32, F16 and BF16 checkpoints convert");
        if (t.Shape.Length is 0 or > 3 || t.Shape.Length == 3 && t.Parts is null)
            throw new InvalidDataException($"tensor '{t.Name}' has shape [{string.Join(", ", t.Shape)}], expected 1 or 2 dimensions");
        int rows = t.Shape.Length == 1 ? 1 : checked((int)(t.ElementCount / t.Shape[^1]));
        int cols = checked((int)t.Shape[^1]);
        int permRows = t.Shape.Length == 1 ? cols : rows;
        if (heads > 0 && permRows % (heads * 2) != 0) throw new InvalidDataException($"tensor '{t.Name}' has {permRows} rows, not a multiple of 2 x {heads} heads");

        long srcRowBytes = DTypes.Of(t.Type).RowBytes(cols);
        unsafe
        {
            byte* basePtr = (byte*)t.Data;
            if (t.Shape.Length == 1 && heads > 0)
            {
                // A bias: permute its elements like rows.
                var bias = new float[cols];
                Tensors.Types.DTypes.Of(t.Type).DequantizeRow(new ReadOnlySpan<byte>(basePtr, (int)srcRowBytes), bias);
                var perm = new float[cols];
                for (int r = 0; r < cols; r++) perm[r] = bias[PermuteSourceRow(r, heads, cols)];
                w.AddTensor(name, t.Shape, perm, DType.F32);
                return;
            }
            var shape = t.Shape;
            var parts = t.Parts;
            int perPart = parts is null ? rows : rows / parts.Length;
            w.AddTensor(name, shape, store, (r, dst) =>
            {
                int s = heads > 0 ? PermuteSourceRow(r, heads, rows) : r;
                byte* rowPtr = parts is null ? basePtr + s * srcRowBytes : (byte*)parts[s / perPart].Data + (s % perPart) * srcRowBytes;
                Tensors.Types.DTypes.Of(t.Type).DequantizeRow(new ReadOnlySpan<byte>(rowPtr, checked((int)srcRowBytes)), dst);
                GC.KeepAlive(bound);
            });
        }
    }

    private static void WriteTokenizer(HfModelFolder folder, GgufWriter w)
    {
        if (folder.TokenizerJsonPath is null) return;
        var c = folder.Config;
        var vocab = GgufTokenizer.Write(Tokenizers.Tokenizer.FromFile(folder.TokenizerJsonPath), c.Vocab, w);
        var tc = folder.TokenizerConfig;
        var gen = folder.GenerationConfig;
        int? bos = vocab.IdOf(tc?.BosToken) ?? c.BosTokenId ?? gen?.BosTokenId;
        int? eos = vocab.IdOf(tc?.EosToken) ?? (c.EosTokenIds.Count > 0 ? c.EosTokenIds[0] : (int?)null) ?? (gen?.EosTokenIds.Count > 0 ? gen.EosTokenIds[0] : (int?)null);
        int? unk = vocab.IdOf(tc?.UnkToken);
        int? pad = vocab.IdOf(tc?.PadToken) ?? c.PadTokenId;
        if (bos is { } b) w.Set(GgufKeys.BosId, (uint)b);
        if (eos is { } e) w.Set(GgufKeys.EosId, (uint)e);
        if (unk is { } u) w.Set(GgufKeys.UnkId, (uint)u);
        if (pad is { } p) w.Set(GgufKeys.PadId, (uint)p);
        if (tc?.AddBosToken is { } ab) w.Set(GgufKeys.AddBos, ab);
        else if (vocab.AddsBos is { } pb) w.Set(GgufKeys.AddBos, pb);
        else if (vocab.ByteFallback) w.Set(GgufKeys.AddBos, true);
        if (tc?.AddEosToken is { } ae) w.Set(GgufKeys.AddEos, ae);
        if (tc?.ChatTemplate is { } tpl) w.Set(GgufKeys.ChatTemplate, tpl);
    }
}
