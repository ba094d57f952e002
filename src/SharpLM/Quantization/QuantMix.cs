using System.Globalization;
using SharpLM.Models;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;

namespace SharpLM.Quantization;

/// <summary>
/// llama.cpp's per-tensor type choice (src/llama-quant.cpp: tensor_allows_quantization, llama_tensor_get_type,
/// tensor_type_fallback) for one file: which tensors are quantized at all (matrices named *.weight, not norms, not expert
/// routers, not learned positions), the mix of the file type (attention values, FFN down, attention output, the output
/// and a tied embedding get more bits, depending on the layer, GQA and experts), and the fallback when a row is not whole
/// blocks (Q4_K to Q5_0, Q6_K to Q8_0, IQ4_XS to IQ4_NL, ..., then F16). Tensors are visited in llama.cpp's order
/// (<see cref="Order"/>), since some rules count layers as they go.
/// </summary>
internal sealed class QuantMix
{
    private readonly QuantFileType _ft;
    private readonly string _arch;
    private readonly int _layers, _gqa, _experts;
    private readonly bool _is70B, _tied;
    private readonly int _nAttentionV;
    private int _iAttentionV, _iFfnDown;

    /// <param name="fileType">the llama.cpp file type asked for.</param>
    /// <param name="config">the model's hyper-parameters (architecture, layers, heads, experts).</param>
    /// <param name="names">every tensor name of the file (GGUF names), to count the attention values and see whether
    /// the head is tied.</param>
    public QuantMix(QuantFileType fileType, ModelConfig config, IEnumerable<string> names)
    {
        if (fileType.Unsupported is { } why) throw new NotSupportedException($"file type {fileType}: {why}");
        _ft = fileType;
        _arch = config.Arch.GgufName;
        _layers = config.Layers;
        _gqa = config.Heads / Math.Max(1, config.KvHeads);
        _experts = config.Experts;
        // llama.cpp's model type LLM_TYPE_70B (LLaMA 2/3 70B, Qwen2 72B): 80 layers with grouped K/V heads
        _is70B = config.Layers == 80 && (_arch == "qwen2" || _arch == "llama" && config.KvHeads != config.Heads);
        var list = names.ToList();
        _tied = !list.Contains("output.weight");
        _nAttentionV = list.Count(n => IsAttentionV(Category(n)));
    }

    private enum Cat { TokenEmbd, AttnQ, AttnV, AttnK, AttnQkv, AttnKvB, AttnOutput, FfnUp, FfnGate, FfnDown, Output, Other }

    private static Cat Category(string name) =>
        name == "output.weight" ? Cat.Output
        : name is "token_embd.weight" or "per_layer_token_embd.weight" ? Cat.TokenEmbd
        : name.Contains("attn_qkv.weight", StringComparison.Ordinal) ? Cat.AttnQkv
        : name.Contains("attn_kv_b.weight", StringComparison.Ordinal) ? Cat.AttnKvB
        : name.Contains("attn_v.weight", StringComparison.Ordinal) ? Cat.AttnV
        : name.Contains("attn_k.weight", StringComparison.Ordinal) ? Cat.AttnK
        : name.Contains("attn_q.weight", StringComparison.Ordinal) ? Cat.AttnQ
        : name.Contains("attn_output.weight", StringComparison.Ordinal) ? Cat.AttnOutput
        : name.Contains("ffn_up", StringComparison.Ordinal) ? Cat.FfnUp
        : name.Contains("ffn_gate", StringComparison.Ordinal) ? Cat.FfnGate
        : name.Contains("ffn_down", StringComparison.Ordinal) ? Cat.FfnDown
        : Cat.Other;

    private static bool IsAttentionV(Cat c) => c is Cat.AttnV or Cat.AttnQkv or Cat.AttnKvB;

    /// <summary>llama.cpp's tensor order (its loader's weight map): by block number (tensors outside the blocks first),
    /// then by name.</summary>
    public static int Order(string a, string b)
    {
        int la = Block(a), lb = Block(b);
        return la != lb ? la.CompareTo(lb) : string.CompareOrdinal(a, b);
    }

    private static int Block(string name)
    {
        if (!name.StartsWith("blk.", StringComparison.Ordinal)) return -1;
        int dot = name.IndexOf('.', 4);
        return dot > 4 && int.TryParse(name.AsSpan(4, dot - 4), NumberStyles.None, CultureInfo.InvariantCulture, out int l) ? l : -1;
    }

    /// <summary>llama.cpp's tensor_allows_quantization for the tensors SharpLM's architectures have: matrices (2-D and
    /// 3-D) whose name ends in "weight", except norms, expert routers and learned position tables.</summary>
    public static bool Quantizable(string name, int dims) =>
        dims >= 2 && name.EndsWith("weight", StringComparison.Ordinal) && !name.Contains("_norm.weight", StringComparison.Ordinal)
        && !name.Contains("ffn_gate_inp.weight", StringComparison.Ordinal) && name != "position_embd.weight" && name != "token_types.weight";

    /// <summary>
    /// The type of tensor <paramref name="name"/> (row-major <paramref name="shape"/>, stored as <paramref name="source"/>)
    /// in the output; call in <see cref="Order"/>. Tensors that are not quantized keep their type, except that F32/F16/
    /// BF16 file types convert every quantizable matrix.
    /// </summary>
    public DType TypeFor(string name, long[] shape, DType source)
    {
        if (!Quantizable(name, Dims(shape))) return source;
        var type = _ft.Type;
        if (!_ft.IsQuantized) return type;
        type = Mix(name, type, shape[^1]);
        return Fallback(type, shape[^1]);
    }

    /// <summary>ggml_n_dims: the dimensions up to the last one above 1 in GGUF order (leading 1s of the row-major shape do
    /// not count, so Qwen2-MoE's (1, C) shared-expert router is a vector).</summary>
    private static int Dims(long[] shape)
    {
        int lead = 0;
        while (lead < shape.Length - 1 && shape[lead] == 1) lead++;
        return shape.Length - lead;
    }

    private static bool UseMoreBits(int i, int n) => i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;

    /// <summary>The layer of a per-layer rule: llama.cpp counts tensors of the category, or with experts parses the name.</summary>
    private int Layer(int counter, string name) => _experts > 1 ? Block(name) : counter;

    private DType Mix(string name, DType type, long cols)
    {
        string f = _ft.Name;
        var cat = Category(name);
        if (cat == Cat.Output || (_tied && cat == Cat.TokenEmbd))
        {
            // the output (or a tied embedding that serves as it) keeps 6 bits, or 8 when rows are not whole k-blocks
            if (cols % DTypes.Of(type).BlockSize != 0) return DType.Q8_0;
            return type != DType.Q8_0 ? DType.Q6_K : type;
        }
        if (cat == Cat.TokenEmbd) return type;
        // attention values, and fused q/k/v matrices with them (llama.cpp's category_is_attn_v)
        if (IsAttentionV(cat))
        {
            if (f == "q2_k") type = _gqa >= 4 ? DType.Q4_K : DType.Q3_K;
            else if (f == "q3_k_m") type = _iAttentionV < 2 ? DType.Q5_K : DType.Q4_K;
            else if (f == "q3_k_l") type = DType.Q5_K;
            else if (f is "iq4_nl" or "iq4_xs" && _gqa >= 4) type = DType.Q5_K;
            else if (f is "q4_k_m" or "q5_k_m" && UseMoreBits(_iAttentionV, _nAttentionV)) type = DType.Q6_K;
            else if (f == "q4_k_s" && _iAttentionV < 4) type = DType.Q5_K;
            if (_is70B && type is DType.Q3_K or DType.Q4_K) type = DType.Q5_K;
            if (_experts == 8) type = DType.Q8_0;
            _iAttentionV++;
            return type;
        }
        if (cat == Cat.AttnK) return _experts == 8 ? DType.Q8_0 : type;
        if (cat == Cat.AttnQ) return type;
        if (cat == Cat.FfnDown)
        {
            int i = Layer(_iFfnDown, name), n = _layers;
            if (f == "q2_k") type = DType.Q3_K;
            else if (f == "q3_k_m") type = i < n / 16 ? DType.Q5_K : DType.Q4_K; // (arch != falcon || use_more_bits) is always true here
            else if (f == "q3_k_l") type = DType.Q5_K;
            else if (f == "q4_k_m") { if (UseMoreBits(i, n)) type = DType.Q6_K; }
            else if (i < n / 8 && f is "iq4_nl" or "iq4_xs") type = DType.Q5_K;
            else if (f == "q5_k_m" && UseMoreBits(i, n)) type = DType.Q6_K;
            else if (f == "q4_k_s" && i < n / 8) type = DType.Q5_K;
            _iFfnDown++;
            return type;
        }
        if (cat == Cat.AttnOutput)
        {
            if (_experts == 8)
            {
                if (f is "q2_k" or "q3_k_s" or "q3_k_m" or "iq4_nl" or "q4_k_s" or "q4_k_m" or "iq4_xs") type = DType.Q5_K;
            }
            else if (f == "q2_k") type = DType.Q3_K;
            else if (f == "q3_k_m") type = DType.Q4_K;
            else if (f == "q3_k_l") type = DType.Q5_K;
            return type;
        }
        // (FFN gate and up change only for the IQ3 file types, which SharpLM does not write)
        return type;
    }

    /// <summary>llama.cpp's fallback for rows that are not whole blocks of the chosen type.</summary>
    private static DType Fallback(DType type, long cols)
    {
        if (cols % DTypes.Of(type).BlockSize == 0) return type;
        type = type switch
        {
            DType.IQ4_XS => DType.IQ4_NL,
            DType.Q2_K or DType.Q3_K => DType.Q4_0,
            DType.Q4_K => DType.Q5_0,
            DType.Q5_K => DType.Q5_1,
            DType.Q6_K => DType.Q8_0,
            _ => type,
        };
        return cols % DTypes.Of(type).BlockSize == 0 ? type : DType.F16;
    }
}
