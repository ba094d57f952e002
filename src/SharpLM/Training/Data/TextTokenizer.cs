using System.Text;

namespace SharpLM.Training.Data;

/// <summary>What the trainer needs from a tokenizer: ids for text, the vocabulary size, and its tokenizer.json
/// (copied into checkpoints) when it has one.</summary>
internal interface ITextTokenizer
{
    int VocabSize { get; }
    int[] Encode(string text);
    string Decode(ReadOnlySpan<int> ids);
    /// <summary>UTF-8 bytes the ids stand for (for bits per byte).</summary>
    long ByteCount(ReadOnlySpan<int> ids);
    /// <summary>The tokenizer.json text, or null when the tokenizer has none (e.g. raw bytes).</summary>
    string? TokenizerJson { get; }

    /// <summary>The same tokenizer as a SharpLM.Tokenizers <see cref="Tokenizers.Tokenizer"/> (for GGUF export).</summary>
    Tokenizers.Tokenizer AsTokenizer();
}

/// <summary>Raw UTF-8 bytes as tokens (vocabulary 256): needs no tokenizer file; used by tests and tiny runs.</summary>
internal sealed class ByteTokenizer : ITextTokenizer
{
    public int VocabSize => 256;
    public int[] Encode(string text) => Array.ConvertAll(Encoding.UTF8.GetBytes(text), b => (int)b);
    public string Decode(ReadOnlySpan<int> ids)
    {
        var bytes = new byte[ids.Length];
        for (int i = 0; i < ids.Length; i++) bytes[i] = (byte)ids[i];
        return Encoding.UTF8.GetString(bytes);
    }
    public long ByteCount(ReadOnlySpan<int> ids) => ids.Length;
    public string? TokenizerJson => null;

    /// <summary>A byte-level BPE of the 256 byte tokens and no merges.</summary>
    public Tokenizers.Tokenizer AsTokenizer() => Tokenizers.TokenizerBuilder.ByteLevelBpe(new Tokenizers.ByteLevelBpeSpec
    {
        Tokens = [.. Enumerable.Range(0, 256).Select(b => Tokenizers.TokenizerBuilder.ToByteLevel([(byte)b]))],
        Merges = [],
        SourceName = "raw bytes",
    });
}
