using System.Text.Json;
using System.Text.RegularExpressions;
using SharpLM.Testing;
using SharpLM.Tokenizers.Core;
using SharpLM.Tokenizers.Json;

namespace SharpLM.Tokenizers.Tests;

/// <summary>The structures a tokenizer.json load builds (the vocabulary table, the derived cache) against the plain
/// ones they replace: a Dictionary of the real vocabularies, and a load that parses the file.</summary>
public class TokenizerLoadTests
{
    /// <summary>The model's vocabulary of a real tokenizer.json, read with System.Text.Json into a Dictionary.</summary>
    private static Dictionary<string, int> DictionaryOf(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var d = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in doc.RootElement.GetProperty("model").GetProperty("vocab").EnumerateObject()) d[p.Name] = p.Value.GetInt32();
        return d;
    }

    [Theory]
    [InlineData("llama3")]
    [InlineData("qwen3")]
    [InlineData("mistral")]
    public void VocabTableAgreesWithADictionaryOnARealVocabulary(string name)
    {
        var dict = DictionaryOf(HfTestSupport.PathOf(name));
        var table = VocabTable.From(dict);
        Assert.Equal(dict.Count, table.Count);
        Assert.Equal(dict.Values.Max() + 1, table.IdBound);
        var byId = new Dictionary<int, string>();
        foreach (var (token, id) in dict)
        {
            Assert.True(table.TryGetValue(token, out int got), $"'{token}' not found");
            Assert.Equal(id, got);
            byId[id] = token;
            // near misses: one char more, one char less, another last char
            Assert.Equal(dict.ContainsKey(token + "x"), table.ContainsKey(token + "x"));
            if (token.Length > 1) Assert.Equal(dict.ContainsKey(token[..^1]), table.ContainsKey(token.AsSpan(0, token.Length - 1)));
            string other = token[..^1] + (char)(token[^1] ^ 1);
            Assert.Equal(dict.TryGetValue(other, out int o) ? o : -1, table.TryGetValue(other, out int t) ? t : -1);
        }
        for (int id = -1; id <= table.IdBound; id++) Assert.Equal(byId.GetValueOrDefault(id), table.IdToToken(id));
        // the tokenizer built on it answers as the dictionary does
        var tok = Tokenizer.FromFile(HfTestSupport.PathOf(name));
        foreach (var (token, id) in dict.Take(5000))
            if (tok.AddedTokens.All(a => a.Content != token)) Assert.Equal(id, tok.TokenToId(token));
    }

    [Fact]
    public void VocabTableKeepsTheLastIdOfARepeatedTokenAndTheLastTokenOfARepeatedId()
    {
        var table = new VocabTable(2, 2); // grows
        var dict = new Dictionary<string, int>(StringComparer.Ordinal);
        var rng = new Random(5);
        for (int i = 0; i < 5000; i++)
        {
            string token = rng.Next(4) switch
            {
                0 => "",
                1 => ((char)rng.Next(0x20, 0x80)).ToString(),
                2 => new string((char)rng.Next('a', 'e'), rng.Next(1, 4)),
                _ => Guid.NewGuid().ToString("N")[..rng.Next(1, 20)],
            };
            int id = rng.Next(3000);
            Assert.Equal(!dict.ContainsKey(token), table.Add(token, id));
            dict[token] = id;
        }
        Assert.Equal(dict.Count, table.Count);
        foreach (var (token, id) in dict)
        {
            Assert.True(table.TryGetValue(token, out int got));
            Assert.Equal(id, got);
        }
        // id -> token: the last token (in the dictionary's order, which is the order added) that holds the id
        var expected = new Dictionary<int, string>();
        foreach (var (token, id) in dict) expected[id] = token;
        for (int id = 0; id < 3000; id++) Assert.Equal(expected.GetValueOrDefault(id), table.IdToToken(id));
        // rebuilt from its arrays (the cache's path), it answers the same
        var (lengths, ids, chars) = table.CopyTo();
        var copy = VocabTable.FromArrays(lengths, ids, chars.Span);
        Assert.Equal(table.Count, copy.Count);
        foreach (var (token, id) in dict) Assert.True(copy.TryGetValue(token, out int got) && got == id, token);
        Assert.False(copy.ContainsKey("not a token at all"));
        for (int id = 0; id < 3000; id++) Assert.Equal(expected.GetValueOrDefault(id), copy.IdToToken(id));
        Assert.Throws<InvalidDataException>(() => VocabTable.FromArrays(lengths, ids, chars.Span[1..]));
        var e = Assert.Throws<InvalidDataException>(() => table.Add("bad", TokenIds.Limit));
        Assert.Contains("'bad'", e.Message);
    }

    /// <summary>A copy of a real tokenizer.json (qwen3 unless named) in a fresh folder, with a cache folder beside it.</summary>
    private static (string Json, string Cache) CopyOf(string name = "qwen3")
    {
        string dir = TestPaths.NewTempDir("tokcache");
        string json = Path.Combine(dir, "tokenizer.json");
        File.Copy(HfTestSupport.PathOf(name), json);
        return (json, Path.Combine(dir, "cache"));
    }

    private static IReadOnlyList<string> Texts() => [.. HfTestSupport.Corpus("edge"), .. HfTestSupport.Corpus("brown").Take(500), .. HfTestSupport.Corpus("note")];

    private static void AssertSameTokenizer(Tokenizer expected, Tokenizer actual)
    {
        Assert.Equal(expected.VocabSize, actual.VocabSize);
        Assert.Equal((expected.BosId, expected.EosId, expected.PadId), (actual.BosId, actual.EosId, actual.PadId));
        foreach (var text in Texts())
        {
            Assert.Equal(expected.EncodeToIds(text), actual.EncodeToIds(text));
            var a = expected.Encode(text);
            var b = actual.Encode(text);
            Assert.Equal(a.Tokens, b.Tokens);
            Assert.Equal(a.Offsets, b.Offsets);
        }
        var va = expected.Describe();
        var vb = actual.Describe();
        Assert.Equal(va.Tokens, vb.Tokens);
        Assert.Equal(va.Merges, vb.Merges);
    }

    /// <summary>qwen3: merges as pairs, NFC; llama3: merges as "a b" strings, ignore_merges; mistral: SentencePiece
    /// BPE with byte fallback.</summary>
    [Theory]
    [InlineData("qwen3")]
    [InlineData("llama3")]
    [InlineData("mistral")]
    public void TheCacheGivesTheTokenizerTheFileGives(string name)
    {
        var (json, cache) = CopyOf(name);
        var direct = TokenizerJsonLoader.LoadFile(json, null);
        Assert.False(Directory.Exists(cache));
        var first = TokenizerJsonLoader.LoadFile(json, cache);   // a miss: parses, writes the entry
        var entry = TokenizerJsonCache.EntryPath(cache, json);
        Assert.True(File.Exists(entry));
        Assert.NotNull(TokenizerJsonCache.TryRead(cache, json, TokenizerJsonCache.KeyOf(json, File.ReadAllBytes(json))));
        var second = TokenizerJsonLoader.LoadFile(json, cache);  // a hit
        AssertSameTokenizer(direct, first);
        AssertSameTokenizer(direct, second);
    }

    [Fact]
    public void AChangedFileIsParsedAgainEvenWithItsSizeAndTimeKept()
    {
        var (json, cache) = CopyOf();
        var original = TokenizerJsonLoader.LoadFile(json, cache);
        // Move merge 3 (Ġ t) to near the end by swapping it with the last merge of the same byte length: same size,
        // same mtime (restored), other ranks.
        var bytes = File.ReadAllBytes(json);
        var merges = MergeElements(bytes);
        var a = merges[3];
        var b = merges.Last(m => m.Length == a.Length);
        var changed = (byte[])bytes.Clone();
        bytes.AsSpan(b.Start, b.Length).CopyTo(changed.AsSpan(a.Start));
        bytes.AsSpan(a.Start, a.Length).CopyTo(changed.AsSpan(b.Start));
        var mtime = File.GetLastWriteTimeUtc(json);
        File.WriteAllBytes(json, changed);
        File.SetLastWriteTimeUtc(json, mtime);
        Assert.Equal(bytes.Length, new FileInfo(json).Length);
        Assert.Null(TokenizerJsonCache.TryRead(cache, json, TokenizerJsonCache.KeyOf(json, changed)));

        var reloaded = TokenizerJsonLoader.LoadFile(json, cache);
        var direct = TokenizerJsonLoader.LoadFile(json, null);
        // The change matters (else this test would prove nothing), and the cached load follows it.
        Assert.Contains(Texts(), t => !original.EncodeToIds(t).SequenceEqual(direct.EncodeToIds(t)));
        AssertSameTokenizer(direct, reloaded);
        AssertSameTokenizer(direct, TokenizerJsonLoader.LoadFile(json, cache)); // the rewritten entry
    }

    /// <summary>The byte ranges of the [a, b] merge elements of a tokenizer.json, in order.</summary>
    private static (int Start, int Length)[] MergeElements(byte[] json)
    {
        string s = System.Text.Encoding.Latin1.GetString(json); // one char per byte: char offsets are byte offsets
        int from = s.IndexOf("\"merges\"", StringComparison.Ordinal);
        Assert.True(from > 0, "no merges");
        var element = new Regex("""\[\s*"(?:[^"\\]|\\.)*"\s*,\s*"(?:[^"\\]|\\.)*"\s*\]""");
        var found = element.Matches(s, from).Select(m => (m.Index, m.Length)).ToArray();
        Assert.True(found.Length > 100_000, $"{found.Length} merges found");
        return found;
    }

    [Fact]
    public void ATouchedFileOrABrokenEntryIsAMissAndTheLoadStillRight()
    {
        var (json, cache) = CopyOf();
        var direct = TokenizerJsonLoader.LoadFile(json, null);
        TokenizerJsonLoader.LoadFile(json, cache);
        string entry = TokenizerJsonCache.EntryPath(cache, json);
        var bytes = File.ReadAllBytes(json);

        File.SetLastWriteTimeUtc(json, File.GetLastWriteTimeUtc(json).AddMinutes(1));
        Assert.Null(TokenizerJsonCache.TryRead(cache, json, TokenizerJsonCache.KeyOf(json, bytes)));
        AssertSameTokenizer(direct, TokenizerJsonLoader.LoadFile(json, cache));
        var key = TokenizerJsonCache.KeyOf(json, bytes);
        Assert.NotNull(TokenizerJsonCache.TryRead(cache, json, key));

        // one flipped byte in the payload, then a truncated entry
        var good = File.ReadAllBytes(entry);
        var flipped = (byte[])good.Clone();
        flipped[^5] ^= 0x40;
        Assert.Null(TokenizerJsonCache.Parse(flipped, key));
        Assert.Null(TokenizerJsonCache.Parse(good[..^7], key));
        Assert.Null(TokenizerJsonCache.Parse(good[..40], key));
        File.WriteAllBytes(entry, flipped);
        AssertSameTokenizer(direct, TokenizerJsonLoader.LoadFile(json, cache));
        Assert.Equal(good, File.ReadAllBytes(entry)); // rewritten
    }

    [Fact]
    public void TheKeyOfAFileReadInChunksIsTheKeyOfItsBytes()
    {
        string dir = TestPaths.NewTempDir("tokkey");
        var rng = new Random(9);
        foreach (int size in new[] { 0, 1, 31, 32, 33, 1 << 20, (1 << 20) + 1, (1 << 20) + 40, 3 << 20 })
        {
            var bytes = new byte[size];
            rng.NextBytes(bytes);
            string path = Path.Combine(dir, $"f{size}");
            File.WriteAllBytes(path, bytes);
            Assert.Equal(TokenizerJsonCache.KeyOf(path, bytes), TokenizerJsonCache.KeyOfFile(path));
        }
    }

    [Fact]
    public void AnEntryRoundTripsAndAFolderThatCannotBeWrittenIsSkipped()
    {
        var (json, cache) = CopyOf();
        var bytes = File.ReadAllBytes(json);
        var key = TokenizerJsonCache.KeyOf(json, bytes);
        var direct = TokenizerJsonLoader.LoadFile(json, null);
        // a file where the folder should be: the entry cannot be written, the load still works
        File.WriteAllText(cache, "not a folder");
        AssertSameTokenizer(direct, TokenizerJsonLoader.LoadFile(json, cache));
        Assert.Null(TokenizerJsonCache.TryRead(cache, json, key));
        // the key is the content's: another content or size gives another key
        var other = (byte[])bytes.Clone();
        other[^3] ^= 1;
        Assert.NotEqual(key, TokenizerJsonCache.KeyOf(json, other));
        Assert.NotEqual(key, TokenizerJsonCache.KeyOf(json, bytes.AsSpan(0, bytes.Length - 1)));
    }
}
