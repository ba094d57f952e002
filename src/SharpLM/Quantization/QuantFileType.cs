using System.Globalization;
using SharpLM.Tensors;
using SharpLM.Tensors.Types;

namespace SharpLM.Quantization;

/// <summary>
/// A GGUF file type (llama.cpp's llama_ftype, general.file_type): the tensor type most matrices get, and the name of the
/// mix <see cref="QuantMix"/> applies (Q4_K_M keeps attention values and some FFN-down layers at Q6_K, ...). "q4_k"
/// means Q4_K_M, "q5_k" Q5_K_M and "q3_k" Q3_K_M, as llama-quantize's aliases do.
/// </summary>
internal sealed record QuantFileType
{
    private QuantFileType(string name, uint id, DType type, string description, string? unsupported = null)
    {
        Name = name;
        Id = id;
        Type = type;
        Description = description;
        Unsupported = unsupported;
    }

    /// <summary>llama-quantize's name, lower case ("q4_k_m").</summary>
    public string Name { get; }

    /// <summary>The llama_ftype number written as general.file_type.</summary>
    public uint Id { get; }

    /// <summary>The default tensor type (llama_ftype_get_default_type).</summary>
    public DType Type { get; }

    public string Description { get; }

    /// <summary>Why SharpLM cannot write this file type, or null.</summary>
    public string? Unsupported { get; }

    /// <summary>Whether the default type is a block quantization (the mixes apply only then, as in llama.cpp).</summary>
    public bool IsQuantized => DTypes.Of(Type).BlockSize > 1;

    private const string NoIq = "needs the IQ1/IQ2/IQ3 grid types, which SharpLM does not implement";

    /// <summary>Every llama_ftype llama-quantize offers, in its order.</summary>
    public static IReadOnlyList<QuantFileType> All { get; } =
    [
        new("q4_0", 2, DType.Q4_0, "4.34 bits per weight"),
        new("q4_1", 3, DType.Q4_1, "4.78 bits per weight"),
        new("q5_0", 8, DType.Q5_0, "5.21 bits per weight"),
        new("q5_1", 9, DType.Q5_1, "5.65 bits per weight"),
        new("q2_k", 10, DType.Q2_K, "Q2_K mix (attention values Q3_K/Q4_K, FFN down Q3_K)"),
        new("q2_k_s", 21, DType.Q2_K, "Q2_K small", "needs an importance matrix (llama.cpp refuses Q2_K_S without one)"),
        new("q3_k_s", 11, DType.Q3_K, "Q3_K small: all Q3_K"),
        new("q3_k_m", 12, DType.Q3_K, "Q3_K medium: attention values, output and some FFN down at Q4_K/Q5_K"),
        new("q3_k_l", 13, DType.Q3_K, "Q3_K large: attention values and FFN down Q5_K"),
        new("q4_k_s", 14, DType.Q4_K, "Q4_K small: the first attention values and FFN down layers Q5_K"),
        new("q4_k_m", 15, DType.Q4_K, "Q4_K medium: half the attention values and FFN down layers Q6_K"),
        new("q5_k_s", 16, DType.Q5_K, "Q5_K small: all Q5_K"),
        new("q5_k_m", 17, DType.Q5_K, "Q5_K medium: half the attention values and FFN down layers Q6_K"),
        new("q6_k", 18, DType.Q6_K, "6.56 bits per weight"),
        new("q8_0", 7, DType.Q8_0, "8.5 bits per weight"),
        new("iq4_nl", 25, DType.IQ4_NL, "4.50 bits per weight, non-linear levels"),
        new("iq4_xs", 30, DType.IQ4_XS, "4.25 bits per weight, non-linear levels"),
        new("iq2_xxs", 19, DType.Q2_K, "2.06 bpw", NoIq),
        new("iq2_xs", 20, DType.Q2_K, "2.31 bpw", NoIq),
        new("iq2_s", 28, DType.Q2_K, "2.5 bpw", NoIq),
        new("iq2_m", 29, DType.Q2_K, "2.7 bpw", NoIq),
        new("iq1_s", 24, DType.Q2_K, "1.56 bpw", NoIq),
        new("iq1_m", 31, DType.Q2_K, "1.75 bpw", NoIq),
        new("iq3_xxs", 23, DType.Q3_K, "3.06 bpw", NoIq),
        new("iq3_xs", 22, DType.Q3_K, "3.3 bpw", NoIq),
        new("iq3_s", 26, DType.Q3_K, "3.44 bpw", NoIq),
        new("iq3_m", 27, DType.Q3_K, "3.66 bpw", NoIq),
        new("f16", 1, DType.F16, "16-bit floats"),
        new("bf16", 32, DType.BF16, "16-bit brain floats"),
        new("f32", 0, DType.F32, "32-bit floats"),
    ];

    /// <summary>The file type of a name as llama-quantize spells it (case-insensitive; q4_k = q4_k_m, q5_k = q5_k_m,
    /// q3_k = q3_k_m), or of its number; throws listing the names.</summary>
    public static QuantFileType Parse(string name)
    {
        string n = name.Trim().ToLowerInvariant();
        n = n switch
        {
            "q4_k" => "q4_k_m",
            "q5_k" => "q5_k_m",
            "q3_k" => "q3_k_m",
            "fp16" or "float16" or "half" => "f16",
            "fp32" or "float32" or "float" => "f32",
            _ => n,
        };
        var t = All.FirstOrDefault(f => f.Name == n)
                ?? (uint.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out uint id) ? All.FirstOrDefault(f => f.Id == id) : null);
        return t ?? throw new ArgumentException($"unknown file type '{name}'. Known: {string.Join(", ", All.Where(f => f.Unsupported is null).Select(f => f.Name))}");
    }

    /// <summary>The file type whose default is <paramref name="type"/> and which keeps every matrix at it where it can (the
    /// pure types; a k-quant gives its _M mix, as llama-quantize's alias does).</summary>
    public static QuantFileType Of(DType type) => type switch
    {
        DType.Q4_K => Parse("q4_k_m"),
        DType.Q5_K => Parse("q5_k_m"),
        DType.Q3_K => Parse("q3_k_m"),
        _ => All.FirstOrDefault(f => f.Type == type && f.Unsupported is null)
             ?? throw new ArgumentException($"no GGUF file type stores {type}", nameof(type)),
    };

    /// <summary>A pure dtype converts implicitly (HfToGguf's options take either).</summary>
    public static implicit operator QuantFileType(DType type) => Of(type);

    public override string ToString() => Name.ToUpperInvariant();
}
