using SharpLM.Formats;
using SharpLM.Formats.Gguf;
using SharpLM.Inference;

namespace SharpLM.Models;

/// <summary>The tokenizer and chat template that come with a GGUF file; adapters over the Formats and Tokenizers libraries.</summary>
internal static class ModelTokenizers
{
    /// <summary>The tokenizer described by a GGUF file's tokenizer.ggml.* metadata, or null when it has none.</summary>
    public static ITokenCodec? FromGguf(GgufFile file)
    {
        if (!file.Contains("tokenizer.ggml.model")) return null;
        return new TokenizerJsonCodec(GgufTokenizer.Load(file));
    }

    /// <summary>A tokenizer (a Hugging Face folder's tokenizer.json) as the engine's codec.</summary>
    public static ITokenCodec FromTokenizer(Tokenizers.Tokenizer tokenizer) => new TokenizerJsonCodec(tokenizer);

    /// <summary>A SharpLM tokenizer (from tokenizer.json or GGUF metadata): its post-processor adds BOS when the model uses one.</summary>
    private sealed class TokenizerJsonCodec(Tokenizers.Tokenizer tokenizer) : ITokenCodec
    {
        public int[] Encode(string text, bool addBos) => tokenizer.EncodeToIds(text, addSpecialTokens: addBos);

        public string Decode(ReadOnlySpan<int> ids) => tokenizer.Decode(ids, skipSpecialTokens: true);

        public int? TokenToId(string token) => tokenizer.TokenToId(token);

        public ITokenDecoder Keeping(IEnumerable<string> tokens)
        {
            var keep = tokens.Where(tokenizer.SpecialTokens.ContainsKey).ToHashSet(StringComparer.Ordinal);
            if (keep.Count == 0) return this;
            return new KeepingDecoder(tokenizer, [.. tokenizer.SpecialTokens.Where(t => !keep.Contains(t.Key)).Select(t => t.Value)]);
        }
    }

    /// <summary>Skips the special ids of <paramref name="skip"/> and decodes the rest with no special token skipped: the
    /// tokenizer's own decode of the ids minus those it would skip, but for the special tokens kept.</summary>
    private sealed class KeepingDecoder(Tokenizers.Tokenizer tokenizer, HashSet<int> skip) : ITokenDecoder
    {
        public string Decode(ReadOnlySpan<int> ids)
        {
            int i = 0;
            while (i < ids.Length && !skip.Contains(ids[i])) i++;
            if (i == ids.Length) return tokenizer.Decode(ids, skipSpecialTokens: false);
            var kept = new List<int>(ids.Length);
            foreach (int id in ids) if (!skip.Contains(id)) kept.Add(id);
            return tokenizer.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(kept), skipSpecialTokens: false);
        }
    }

    /// <summary>The chat template of a GGUF file (tokenizer.chat_template), with its BOS/EOS token texts.</summary>
    public static ModelChatTemplate? ChatTemplateFromGguf(GgufFile file)
    {
        var text = file.TryGet("tokenizer.chat_template", out var v) ? v.Value as string : null;
        if (string.IsNullOrEmpty(text)) return null;
        var tokens = file.TryGet("tokenizer.ggml.tokens", out var t) ? (t.Value as Formats.Gguf.GgufArray)?.Items as string[] : null;
        string? Tok(string key) => tokens != null && file.TryGet(key, out var id) && id.Value is IConvertible c
            && Convert.ToInt64(c, System.Globalization.CultureInfo.InvariantCulture) is long i && i >= 0 && i < tokens.Length ? tokens[i] : null;
        return new ModelChatTemplate(text, Tok("tokenizer.ggml.bos_token_id"), Tok("tokenizer.ggml.eos_token_id"), $"{file.Path} (tokenizer.chat_template)");
    }

}

/// <summary>
/// A model's chat template with the texts of its BOS and EOS tokens (the template's bos_token/eos_token). The template
/// is parsed when first used, so a model whose template is broken still loads and generates; chat then fails with a
/// clear error naming the file the template came from.
/// </summary>
internal sealed class ModelChatTemplate
{
    private readonly Lazy<Inference.ChatTemplates.ChatTemplate> _template;

    public ModelChatTemplate(string source, string? bosToken, string? eosToken, string origin)
    {
        Source = source;
        BosToken = bosToken;
        EosToken = eosToken;
        Origin = origin;
        _template = new(() =>
        {
            try
            {
                return Inference.ChatTemplates.ChatTemplate.Parse(source);
            }
            catch (Inference.ChatTemplates.ChatTemplateException e)
            {
                throw new Inference.ChatTemplates.ChatTemplateException($"{origin}: the chat template does not parse: {e.Message}", e);
            }
        });
    }

    /// <summary>The template text.</summary>
    public string Source { get; }
    public string? BosToken { get; }
    public string? EosToken { get; }
    /// <summary>Where the template came from (the model file), for errors.</summary>
    public string Origin { get; }

    public Inference.ChatTemplates.ChatTemplate Template => _template.Value;

    public string Render(IReadOnlyList<Inference.ChatTemplates.ChatTurn> messages, bool addGenerationPrompt)
    {
        var extra = new Dictionary<string, object?>();
        if (BosToken != null) extra["bos_token"] = BosToken;
        if (EosToken != null) extra["eos_token"] = EosToken;
        try
        {
            return Template.Render(messages, addGenerationPrompt, extra);
        }
        catch (Inference.ChatTemplates.ChatTemplateException e) when (!e.Message.StartsWith(Origin, StringComparison.Ordinal))
        {
            throw new Inference.ChatTemplates.ChatTemplateException($"{Origin}: the chat template failed: {e.Message}", e);
        }
    }

    /// <summary>True when the template writes the BOS token itself (so the encoder must not add another).</summary>
    public bool WritesBos => Source.Contains("bos_token", StringComparison.Ordinal);
}
