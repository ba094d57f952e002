// A BERT tokenizer.json for a WordPiece vocab.txt, as Hugging Face's BertTokenizerFast writes it: the input the
// HF tokenizers oracle (Tokenizers.DotNet, which loads only tokenizer.json) needs to check SharpLM's WordPiece path.
using System.Text.Json;

namespace SharpLM.Testing;

internal static class BertTokenizerJson
{
    /// <summary>The tokenizer.json HF's BertTokenizerFast writes for a vocab.txt.</summary>
    public static string FromVocab(string vocabText, bool lowercase)
    {
        var vocab = vocabText.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        if (vocab.Count > 0 && vocab[^1].Length == 0) vocab.RemoveAt(vocab.Count - 1);
        int Id(string t) => vocab.IndexOf(t);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteString("version", "1.0");
            w.WriteNull("truncation");
            w.WriteNull("padding");
            w.WriteStartArray("added_tokens");
            foreach (var s in new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" })
            {
                w.WriteStartObject();
                w.WriteNumber("id", Id(s));
                w.WriteString("content", s);
                w.WriteBoolean("single_word", false);
                w.WriteBoolean("lstrip", false);
                w.WriteBoolean("rstrip", false);
                w.WriteBoolean("normalized", false);
                w.WriteBoolean("special", true);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("normalizer");
            w.WriteString("type", "BertNormalizer");
            w.WriteBoolean("clean_text", true);
            w.WriteBoolean("handle_chinese_chars", true);
            w.WriteNull("strip_accents");
            w.WriteBoolean("lowercase", lowercase);
            w.WriteEndObject();
            w.WriteStartObject("pre_tokenizer");
            w.WriteString("type", "BertPreTokenizer");
            w.WriteEndObject();
            w.WriteStartObject("post_processor");
            w.WriteString("type", "TemplateProcessing");
            void Piece(string kind, string id, int type)
            {
                w.WriteStartObject();
                w.WriteStartObject(kind);
                w.WriteString("id", id);
                w.WriteNumber("type_id", type);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteStartArray("single");
            Piece("SpecialToken", "[CLS]", 0); Piece("Sequence", "A", 0); Piece("SpecialToken", "[SEP]", 0);
            w.WriteEndArray();
            w.WriteStartArray("pair");
            Piece("SpecialToken", "[CLS]", 0); Piece("Sequence", "A", 0); Piece("SpecialToken", "[SEP]", 0);
            Piece("Sequence", "B", 1); Piece("SpecialToken", "[SEP]", 1);
            w.WriteEndArray();
            w.WriteStartObject("special_tokens");
            foreach (var s in new[] { "[CLS]", "[SEP]" })
            {
                w.WriteStartObject(s);
                w.WriteString("id", s);
                w.WriteStartArray("ids"); w.WriteNumberValue(Id(s)); w.WriteEndArray();
                w.WriteStartArray("tokens"); w.WriteStringValue(s); w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteStartObject("decoder");
            w.WriteString("type", "WordPiece");
            w.WriteString("prefix", "##");
            w.WriteBoolean("cleanup", true);
            w.WriteEndObject();
            w.WriteStartObject("model");
            w.WriteString("type", "WordPiece");
            w.WriteString("unk_token", "[UNK]");
            w.WriteString("continuing_subword_prefix", "##");
            w.WriteNumber("max_input_chars_per_word", 100);
            w.WriteStartObject("vocab");
            var seen = new HashSet<string>();
            for (int i = 0; i < vocab.Count; i++) if (seen.Add(vocab[i])) w.WriteNumber(vocab[i], i);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }
}
