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
        _ = config;
        var path = System.IO.Path.Combine(folder, "tokenizer.json");
        return File.Exists(path) ? new TokenizerJsonCodec(Tokenizers.Tokenizer.FromFile(path)) : null;
    }

    /// <summary>A tokenizer.json pipeline: its post-processor adds BOS (and whatever else the model's template says).</summary>
    private sealed class TokenizerJsonCodec(Tokenizers.Tokenizer tokenizer) : ITokenCodec
    {
        public int[] Encode(string text, bool addBos) => tokenizer.EncodeToIds(text, addSpecialTokens: addBos);

        public string Decode(ReadOnlySpan<int> ids) => tokenizer.Decode(ids, skipSpecialTokens: true);
    }

    /// <summary>The safetensors weights of a Hugging Face folder.</summary>
    public static IWeightSource OpenSafetensors(string folder) => Formats.Safetensors.SafetensorsModel.Open(folder);
}
