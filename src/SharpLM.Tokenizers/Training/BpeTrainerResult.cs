using System.Text;
using SharpLM.Tokenizers.Core;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace SharpLM.Tokenizers.Training;

/// <summary>
/// A trained byte-level BPE vocabulary: tokens by id and merges in rank order. <see cref="ToTokenizerJson"/> writes a
/// Hugging Face tokenizer.json (BPE model, Split regex + ByteLevel pre-tokenizer, ByteLevel decoder, the special
/// tokens as added_tokens, and a BOS TemplateProcessing post-processor when <see cref="BpeTrainerOptions.BosToken"/>
/// is set) that both HF tokenizers and SharpLM load.
/// </summary>
public sealed class BpeTrainerResult
{
    internal BpeTrainerResult(string[] tokens, (string Left, string Right)[] merges, BpeTrainerOptions options)
    {
        Tokens = tokens;
        Merges = merges;
        Options = options;
    }

    /// <summary>Token strings by id (specials, then the 256 byte tokens, then one per merge).</summary>
    public IReadOnlyList<string> Tokens { get; }

    /// <summary>Merges in rank order, as byte-level strings.</summary>
    public IReadOnlyList<(string Left, string Right)> Merges { get; }

    /// <summary>The options the vocabulary was trained with.</summary>
    public BpeTrainerOptions Options { get; }

    /// <summary>Vocabulary size (may be below the requested size when the corpus ran out of pairs).</summary>
    public int VocabSize => Tokens.Count;

    /// <summary>Writes the tokenizer.json to <paramref name="path"/>.</summary>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        AtomicFile.WriteAllText(path, ToTokenizerJson());
    }

    /// <summary>The tokenizer.json text.</summary>
    public string ToTokenizerJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("version", "1.0");
            w.WriteNull("truncation");
            w.WriteNull("padding");

            w.WriteStartArray("added_tokens");
            for (int i = 0; i < Options.SpecialTokens.Count; i++)
            {
                w.WriteStartObject();
                w.WriteNumber("id", i);
                w.WriteString("content", Options.SpecialTokens[i]);
                w.WriteBoolean("single_word", false);
                w.WriteBoolean("lstrip", false);
                w.WriteBoolean("rstrip", false);
                w.WriteBoolean("normalized", false);
                w.WriteBoolean("special", true);
                w.WriteEndObject();
            }
            w.WriteEndArray();

            w.WriteNull("normalizer");

            w.WriteStartObject("pre_tokenizer");
            w.WriteString("type", "Sequence");
            w.WriteStartArray("pretokenizers");
            w.WriteStartObject();
            w.WriteString("type", "Split");
            w.WriteStartObject("pattern");
            w.WriteString("Regex", BpeTrainer.PatternOf(Options.Split));
            w.WriteEndObject();
            w.WriteString("behavior", "Isolated");
            w.WriteBoolean("invert", false);
            w.WriteEndObject();
            w.WriteStartObject();
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", false);
            w.WriteBoolean("trim_offsets", true);
            w.WriteBoolean("use_regex", false);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();

            if (Options.BosToken is { } bos)
            {
                int bosId = IndexOf(bos);
                w.WriteStartObject("post_processor");
                w.WriteString("type", "TemplateProcessing");
                w.WriteStartArray("single");
                WriteSpecial(w, bos, 0);
                WriteSequence(w, "A", 0);
                w.WriteEndArray();
                w.WriteStartArray("pair");
                WriteSpecial(w, bos, 0);
                WriteSequence(w, "A", 0);
                WriteSpecial(w, bos, 1);
                WriteSequence(w, "B", 1);
                w.WriteEndArray();
                w.WriteStartObject("special_tokens");
                w.WriteStartObject(bos);
                w.WriteString("id", bos);
                w.WriteStartArray("ids");
                w.WriteNumberValue(bosId);
                w.WriteEndArray();
                w.WriteStartArray("tokens");
                w.WriteStringValue(bos);
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndObject();
                w.WriteEndObject();
            }
            else
            {
                w.WriteNull("post_processor");
            }

            w.WriteStartObject("decoder");
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", true);
            w.WriteBoolean("trim_offsets", true);
            w.WriteBoolean("use_regex", true);
            w.WriteEndObject();

            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            w.WriteNull("dropout");
            w.WriteNull("unk_token");
            w.WriteNull("continuing_subword_prefix");
            w.WriteNull("end_of_word_suffix");
            w.WriteBoolean("fuse_unk", false);
            w.WriteBoolean("byte_fallback", false);
            w.WriteBoolean("ignore_merges", false);
            w.WriteStartObject("vocab");
            for (int i = 0; i < Tokens.Count; i++) w.WriteNumber(Tokens[i], i);
            w.WriteEndObject();
            // "left right" strings: byte-level tokens never contain a space, and every tokenizers version reads this form.
            w.WriteStartArray("merges");
            foreach (var (l, r) in Merges) w.WriteStringValue(l + " " + r);
            w.WriteEndArray();
            w.WriteEndObject();

            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    private int IndexOf(string token)
    {
        for (int i = 0; i < Tokens.Count; i++)
            if (Tokens[i] == token) return i;
        throw new InvalidOperationException($"token '{token}' is not in the vocabulary");
    }

    private static void WriteSpecial(Utf8JsonWriter w, string id, int typeId)
    {
        w.WriteStartObject();
        w.WriteStartObject("SpecialToken");
        w.WriteString("id", id);
        w.WriteNumber("type_id", typeId);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteSequence(Utf8JsonWriter w, string id, int typeId)
    {
        w.WriteStartObject();
        w.WriteStartObject("Sequence");
        w.WriteString("id", id);
        w.WriteNumber("type_id", typeId);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
