using System.Text.Json;
using SharpLM.Tokenizers;

namespace SharpLM.Training.Data;

/// <summary>
/// A SharpLM.Tokenizers <see cref="Tokenizer"/> (a tokenizer.json: given with --tokenizer, or trained on the data
/// with --vocab-size) as the trainer's tokenizer. Text is encoded without special tokens; the tokenizer.json text is
/// kept for checkpoints, and its BPE vocabulary and merges for GGUF export.
/// </summary>
internal sealed class HfTextTokenizer : ITextTokenizer
{
    private readonly Tokenizer _tok;

    public HfTextTokenizer(string json, string source)
    {
        _tok = Tokenizer.FromJson(json, source);
        TokenizerJson = json;
        Source = source;
        VocabSize = Math.Max(_tok.VocabSize, _tok.Describe().Tokens.Count); // VocabSize of some tokenizers excludes added tokens
    }

    public static HfTextTokenizer FromFile(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "tokenizer.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer file '{path}' not found", path);
        return new HfTextTokenizer(File.ReadAllText(path), path);
    }

    public string Source { get; }
    public int VocabSize { get; }
    public string? TokenizerJson { get; }
    public Tokenizer Tokenizer => _tok;

    public int[] Encode(string text) => _tok.EncodeToIds(text, addSpecialTokens: false);

    public string Decode(ReadOnlySpan<int> ids) => _tok.Decode(ids, skipSpecialTokens: false);

    public long ByteCount(ReadOnlySpan<int> ids) => System.Text.Encoding.UTF8.GetByteCount(Decode(ids));


    public Tokenizer AsTokenizer() => _tok;
}
