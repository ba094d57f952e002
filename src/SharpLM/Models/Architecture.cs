using System.Text.Json.Nodes;
using SharpLM.Formats.Gguf;
using SharpLM.Formats.HuggingFace;

namespace SharpLM.Models;

/// <summary>
/// One architecture SharpLM knows, in the manner of llama.cpp's llama-arch.cpp: its family (which forward definition
/// runs it), its names in Hugging Face (model_type, class names) and GGUF, its tensor table, and the readers and
/// writers of its hyper-parameters (config.json keys and GGUF keys, with the transformers defaults stated once).
/// Architectures that calc can size but the engine cannot run yet have <see cref="NotRunnableReason"/> set.
/// </summary>
public sealed class Architecture
{
    internal Architecture(string name, ArchFamily family, string ggufName, string[] hfModelTypes, string[] hfClasses,
                          IReadOnlyList<TensorDecl> tensors, Func<JsonReader, string, ModelConfig> fromHf,
                          Func<GgufFile, string, ModelConfig> fromGguf, Action<ModelConfig, GgufWriter> toGguf,
                          Func<ModelConfig, JsonObject> toHf, string? notRunnableReason = null)
    {
        Name = name;
        Family = family;
        GgufName = ggufName;
        HfModelTypes = hfModelTypes;
        HfClasses = hfClasses;
        Tensors = tensors;
        FromHf = fromHf;
        FromGguf = fromGguf;
        ToGguf = toGguf;
        ToHf = toHf;
        NotRunnableReason = notRunnableReason;
    }

    /// <summary>SharpLM's name (the config's <see cref="ModelConfig.Architecture"/>).</summary>
    public string Name { get; }

    public ArchFamily Family { get; }

    /// <summary>general.architecture in GGUF files (mistral files say "llama").</summary>
    public string GgufName { get; }

    /// <summary>config.json model_type values.</summary>
    public IReadOnlyList<string> HfModelTypes { get; }

    /// <summary>config.json architectures[0] class names.</summary>
    public IReadOnlyList<string> HfClasses { get; }

    /// <summary>Every tensor the architecture may have (<see cref="TensorDecl.Need"/> says which a configuration has).</summary>
    public IReadOnlyList<TensorDecl> Tensors { get; }

    /// <summary>Why the engine cannot run it (calc can still size it); null when it can.</summary>
    public string? NotRunnableReason { get; }

    internal Func<JsonReader, string, ModelConfig> FromHf { get; }
    internal Func<GgufFile, string, ModelConfig> FromGguf { get; }
    internal Action<ModelConfig, GgufWriter> ToGguf { get; }
    internal Func<ModelConfig, JsonObject> ToHf { get; }

    /// <summary>The table entry for a role ("attn_q", "token_embd").</summary>
    public TensorDecl Tensor(string role) =>
        Tensors.FirstOrDefault(t => t.Role == role) ?? throw new KeyNotFoundException($"{Name} has no tensor role '{role}'");

    public override string ToString() => Name;
}

/// <summary>The architecture table: every <see cref="Architecture"/> by name, model_type, class and GGUF name.</summary>
public static class Architectures
{
    private static readonly Architecture[] s_all =
    [
        Llama.LlamaArch.Create("llama", "llama", ["llama"], ["LlamaForCausalLM"]),
        Llama.LlamaArch.Create("mistral", "llama", ["mistral"], ["MistralForCausalLM"]),
        Llama.LlamaArch.Create("qwen2", "qwen2", ["qwen2"], ["Qwen2ForCausalLM"]),
        Llama.LlamaArch.Create("qwen3", "qwen3", ["qwen3"], ["Qwen3ForCausalLM"]),
        Llama.LlamaArch.Create("mixtral", "llama", ["mixtral"], ["MixtralForCausalLM"]),
        Qwen.QwenMoeArch.Create("qwen2moe", "qwen2_moe", ["Qwen2MoeForCausalLM"]),
        Qwen.QwenMoeArch.Create("qwen3moe", "qwen3_moe", ["Qwen3MoeForCausalLM"]),
        Gemma.GemmaArch.Create("gemma", ["gemma"], ["GemmaForCausalLM"]),
        Gemma.GemmaArch.Create("gemma2", ["gemma2"], ["Gemma2ForCausalLM"]),
        Gemma.GemmaArch.Create("gemma3", ["gemma3_text", "gemma3"], ["Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"]),
        Phi3.Phi3Arch.Create(),
        Gpt2.Gpt2Arch.Create(),
        Bert.BertArch.Create("bert", ["bert", "minilm", "sentence-transformers"], ["BertModel", "BertForMaskedLM"]),
        Bert.BertArch.Create("roberta", ["roberta"], ["RobertaModel", "RobertaForMaskedLM"],
            "RoBERTa's position ids start after the padding index, which the encoder does not do; calc sizes it"),
        Bert.BertArch.Create("xlm-roberta", ["xlm-roberta"], ["XLMRobertaModel", "XLMRobertaForMaskedLM"],
            "XLM-RoBERTa's position ids start after the padding index, which the encoder does not do; calc sizes it"),
        Bert.BertArch.Create("distilbert", ["distilbert"], ["DistilBertModel", "DistilBertForMaskedLM"]),
        Bert.BertArch.Create("albert", ["albert"], ["AlbertModel", "AlbertForMaskedLM"]),
    ];

    private static readonly Dictionary<string, Architecture> s_byName = s_all.ToDictionary(a => a.Name, StringComparer.Ordinal);

    public static IReadOnlyList<Architecture> All => s_all;

    /// <summary>The architecture called <paramref name="name"/> (SharpLM's name). Does not allocate (the forward pass asks).</summary>
    public static Architecture Get(string name) =>
        s_byName.TryGetValue(name, out var a) ? a : throw new NotSupportedException(
            $"architecture '{name}' is not supported (supported: {string.Join(", ", s_all.Select(a => a.Name))})");

    /// <summary>By config.json architectures[0] first, then model_type; null when neither is known.</summary>
    public static Architecture? FromHf(string? className, string? modelType) =>
        (className is null ? null : s_all.FirstOrDefault(a => a.HfClasses.Contains(className)))
        ?? (modelType is null ? null : s_all.FirstOrDefault(a => a.HfModelTypes.Contains(modelType)));

    /// <summary>By GGUF general.architecture (the first SharpLM architecture with that GGUF name).</summary>
    public static Architecture? FromGguf(string ggufName) => s_all.FirstOrDefault(a => a.GgufName == ggufName);
}
