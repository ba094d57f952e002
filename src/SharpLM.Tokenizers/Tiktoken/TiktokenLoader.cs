using System.Runtime.CompilerServices;
using SharpLM.Tokenizers.Decoders;
using SharpLM.Tokenizers.PreTokenizers;

namespace SharpLM.Tokenizers.Tiktoken;

/// <summary>
/// Loads tiktoken rank files (.tiktoken: "BASE64 RANK" per line) as a <see cref="Tokenizer"/>: the encoding's split
/// regex (served by the hand-written scanners of <see cref="FastSplit"/>), GPT-2 byte-level chars, tiktoken's
/// rank-ordered byte-pair merge, the encoding's special tokens as added tokens, and a ByteLevel decoder.
/// <see cref="Tokenizer.FromFile"/> uses it for ".tiktoken" files and picks the encoding by the file name.
/// <code>
/// var tok = TiktokenLoader.Load("cl100k_base.tiktoken");
/// var tok2 = TiktokenLoader.Load("ranks.tiktoken", TiktokenEncoding.O200kBase);
/// </code>
/// </summary>
public static class TiktokenLoader
{
#pragma warning disable CA2255 // A module initializer is how format loaders plug into Tokenizer.FromFile (see Tokenizer.RegisterLoader).
    [ModuleInitializer]
    internal static void Register() => Tokenizer.RegisterLoader(".tiktoken", path => Load(path));
#pragma warning restore CA2255

    /// <summary>Loads a rank file; <paramref name="encoding"/> defaults to the one its file name names.</summary>
    public static Tokenizer Load(string path, TiktokenEncoding? encoding = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        encoding ??= TiktokenEncoding.FromFileName(path)
            ?? throw new NotSupportedException(
                $"{path}: the tiktoken encoding (split regex and special tokens) cannot be told from the file name. " +
                "Name the file r50k_base/gpt2, cl100k_base or o200k_base .tiktoken, or call TiktokenLoader.Load(path, TiktokenEncoding.Cl100kBase).");
        var ranks = TiktokenRanks.Read(path);
        return Create(ranks, encoding, path);
    }

    /// <summary>Loads ranks from a stream (e.g. an embedded resource).</summary>
    public static Tokenizer Load(Stream ranks, TiktokenEncoding encoding, string? sourceName = null)
    {
        ArgumentNullException.ThrowIfNull(ranks);
        ArgumentNullException.ThrowIfNull(encoding);
        return Create(TiktokenRanks.Read(ranks, sourceName ?? encoding.Name), encoding, sourceName);
    }

    private static Tokenizer Create(Dictionary<string, int> ranks, TiktokenEncoding encoding, string? sourceName)
    {
        var model = new TiktokenModel(ranks, encoding.SpecialTokens);
        var pre = new SequencePreTokenizer(
        [
            new SplitPreTokenizer(encoding.Pattern, isRegex: true, SplitBehavior.Isolated, invert: false),
            new ByteLevelPreTokenizer(addPrefixSpace: false, trimOffsets: false, useRegex: false),
        ]);
        var added = encoding.SpecialTokens.OrderBy(kv => kv.Value).Select(kv => new AddedToken(kv.Key, kv.Value, Special: true));
        return new Tokenizer(null, pre, model, null, new ByteLevelDecoder(), added, sourceName: sourceName);
    }
}
