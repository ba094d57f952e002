using System.Text;
using SharpLM.Testing;

namespace SharpLM.Tokenizers.Tests;

/// <summary>Offsets, pairs, batches, padding, truncation, loading entry points, thread safety.</summary>
public class TokenizerApiTests
{
    private static string ByteLevelChars(string s)
    {
        var sb = new StringBuilder();
        foreach (byte b in System.Text.Encoding.UTF8.GetBytes(s)) sb.Append((char)PreTokenizers.ByteLevelTables.ByteToChar[b]);
        return sb.ToString();
    }

    /// <summary>EncodeToIds puts the post-processor's special tokens around the ids without building an Encoding: the
    /// same ids as Encode for templates with several tokens before and after the sequence, Bert, Roberta and a Sequence.</summary>
    [Theory]
    [InlineData("""{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"SpecialToken":{"id":"<x>","type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"</s>","type_id":0}},{"SpecialToken":{"id":"<s>","type_id":0}}],"pair":[{"Sequence":{"id":"A","type_id":0}},{"Sequence":{"id":"B","type_id":1}}],"special_tokens":{"<s>":{"id":"<s>","ids":[1],"tokens":["<s>"]},"</s>":{"id":"</s>","ids":[2],"tokens":["</s>"]},"<x>":{"id":"<x>","ids":[1, 2],"tokens":["<s>","</s>"]}}}""")]
    [InlineData("""{"type":"BertProcessing","sep":["</s>",2],"cls":["<s>",1]}""")]
    [InlineData("""{"type":"RobertaProcessing","sep":["</s>",2],"cls":["<s>",1],"trim_offsets":true,"add_prefix_space":false}""")]
    [InlineData("""{"type":"Sequence","processors":[{"type":"ByteLevel","trim_offsets":false},{"type":"BertProcessing","sep":["</s>",2],"cls":["<s>",1]}]}""")]
    [InlineData("""{"type":"TemplateProcessing","single":[{"Sequence":{"id":"A","type_id":0}}],"pair":[{"Sequence":{"id":"A","type_id":0}},{"Sequence":{"id":"B","type_id":1}}],"special_tokens":{}}""")]
    public void EncodeToIdsFramesTheIdsAsEncodeDoes(string postProcessor)
    {
        string json = """
        {"added_tokens":[{"id":1,"content":"<s>","special":true,"normalized":false},{"id":2,"content":"</s>","special":true,"normalized":false}],
         "pre_tokenizer":{"type":"WhitespaceSplit"},"post_processor":
        """ + postProcessor + """
        ,"model":{"type":"WordLevel","unk_token":"<unk>","vocab":{"<unk>":0,"<s>":1,"</s>":2,"a":3,"b":4}}}
        """;
        var t = Tokenizer.FromJson(json);
        foreach (string text in new[] { "a b a", "", "b", "a <s> b" })
        {
            Assert.Equal(t.Encode(text).Ids, t.EncodeToIds(text));
            Assert.Equal(t.Encode(text, addSpecialTokens: false).Ids, t.EncodeToIds(text, addSpecialTokens: false));
        }
    }

    [Fact]
    public void WordCacheKeepsWhatItHoldsAndStopsAtItsCapacity()
    {
        var cache = new Core.WordCache<int[]>(3);
        foreach (string w in new[] { "a", "b", "a", "c", "d", "e" }) cache.TryAdd(w, [w[0]]);
        Assert.False(cache.HasRoom);
        Assert.True(cache.TryGet("a", out var a));
        Assert.Equal(['a'], a);
        Assert.True(cache.TryGet("c".AsSpan(), out _));
        Assert.False(cache.TryGet("d", out _));
        Assert.False(cache.TryGet("e", out _));
    }

    [Fact]
    public void ByteLevelOffsetsCoverTheirTokenText()
    {
        var (tok, _) = HfTestSupport.Pair("llama3");
        int checkedTokens = 0;
        foreach (var text in HfTestSupport.EdgeCases().Concat(HfTestSupport.MixedText().Take(50)))
        {
            var e = tok.Encode(text);
            int prevEnd = 0;
            for (int i = 0; i < e.Count; i++)
            {
                var (s, en) = e.Offsets[i];
                Assert.InRange(s, 0, text.Length);
                Assert.InRange(en, s, text.Length);
                Assert.True(s >= prevEnd || (i > 0 && e.Offsets[i - 1] == e.Offsets[i]) || s >= e.Offsets[i - 1].Start,
                    $"offsets go backwards at token {i} of {HfTestSupport.Show(text)}");
                bool sharesSpan = (i > 0 && e.Offsets[i - 1] == (s, en)) || (i + 1 < e.Count && e.Offsets[i + 1] == (s, en));
                if (!sharesSpan && tok.SpecialTokens.ContainsKey(e.Tokens[i]) == false)
                {
                    // A token holding part of a code point's bytes spans the whole code point.
                    Assert.True(ByteLevelChars(text[s..en]).Contains(e.Tokens[i], StringComparison.Ordinal),
                        $"token {i} '{e.Tokens[i]}' has span ({s},{en}) = {HfTestSupport.Show(text[s..en])} in {HfTestSupport.Show(text)}");
                    checkedTokens++;
                }
                prevEnd = en;
            }
        }
        Assert.True(checkedTokens > 500, $"only {checkedTokens} tokens checked");
    }

    [Fact]
    public void WordPieceOffsetsCoverTheirTokenText()
    {
        var (tok, _) = HfTestSupport.Pair("minilm");
        int checkedTokens = 0;
        foreach (var text in HfTestSupport.Brown().Take(300))
        {
            var e = tok.Encode(text);
            for (int i = 0; i < e.Count; i++)
            {
                if (e.SpecialTokensMask[i] == 1 || e.Tokens[i] == "[UNK]") continue;
                var (s, en) = e.Offsets[i];
                string piece = e.Tokens[i].StartsWith("##", StringComparison.Ordinal) ? e.Tokens[i][2..] : e.Tokens[i];
                Assert.Equal(piece, text[s..en].ToLowerInvariant());
                checkedTokens++;
            }
        }
        Assert.True(checkedTokens > 1000);
    }

    [Fact]
    public void OffsetsFollowHuggingFaceConventions()
    {
        var (bert, _) = HfTestSupport.Pair("minilm");
        var e = bert.Encode("Hello, wörld!");
        Assert.Equal(["[CLS]", "hello", ",", "world", "!", "[SEP]"], e.Tokens);
        Assert.Equal([(0, 0), (0, 5), (5, 6), (7, 12), (12, 13), (0, 0)], e.Offsets);
        Assert.Equal([1, 0, 0, 0, 0, 1], e.SpecialTokensMask);

        var (llama, _) = HfTestSupport.Pair("llama3");
        var l = llama.Encode("Hello world<|end_of_text|>");
        Assert.Equal(["Hello", "Ġworld", "<|end_of_text|>"], l.Tokens);
        Assert.Equal([(0, 5), (5, 11), (11, 26)], l.Offsets);

        var (mistral, _) = HfTestSupport.Pair("mistral");
        var m = mistral.Encode("Hi there");
        Assert.Equal(["<s>", "▁Hi", "▁there"], m.Tokens);
        Assert.Equal([(0, 0), (0, 2), (2, 8)], m.Offsets);
    }

    [Fact]
    public void LoneSurrogatesEncodeAsReplacementChars()
    {
        foreach (var name in new[] { "llama3", "qwen3", "minilm", "mistral" })
        {
            var (ours, hf) = HfTestSupport.Pair(name);
            foreach (var text in new[] { "a\uD800b", "\uDC00", "x\uD83D", "\uDE00y z", "ok \uD83D\uDE00 \uD83D end" })
            {
                string replaced = Tokenizer.Sanitize(text);
                Assert.Equal(text.Length, replaced.Length);
                var expected = hf.Encode(replaced).Select(x => (int)x).ToArray();
                Assert.Equal(expected, ours.EncodeToIds(text));
                var e = ours.Encode(text);
                Assert.All(e.Offsets, o => Assert.InRange(o.End, o.Start, text.Length));
            }
        }
    }

    [Fact]
    public void SentencePairsGetSeparatorsAndTypeIds()
    {
        var (bert, _) = HfTestSupport.Pair("minilm");
        var a = bert.Encode("The cat sat.", addSpecialTokens: false);
        var b = bert.Encode("On the mat", addSpecialTokens: false);
        var p = bert.Encode("The cat sat.", "On the mat");
        int cls = bert.TokenToId("[CLS]")!.Value, sep = bert.TokenToId("[SEP]")!.Value;
        Assert.Equal([cls, .. a.Ids, sep, .. b.Ids, sep], p.Ids);
        Assert.Equal([.. Enumerable.Repeat(0, a.Count + 2), .. Enumerable.Repeat(1, b.Count + 1)], p.TypeIds);
        Assert.Equal(1, p.SpecialTokensMask[0]);
        Assert.Equal(1, p.SpecialTokensMask[^1]);
        Assert.Equal(b.Offsets[0], p.Offsets[a.Count + 2]);
        Assert.Equal(1, p.SequenceIds[a.Count + 2]);
    }

    [Fact]
    public void BatchPadsToLongestOrFixedLengthOnEitherSide()
    {
        var (bert, _) = HfTestSupport.Pair("minilm");
        string[] texts = ["short", "a somewhat longer sentence here", "mid length text"];
        var single = texts.Select(t => bert.Encode(t)).ToArray();
        int longest = single.Max(e => e.Count);
        var batch = bert.EncodeBatch(texts, padding: new PaddingOptions());
        Assert.All(batch, e => Assert.Equal(longest, e.Count));
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(single[i].Ids, batch[i].Ids.Take(single[i].Count));
            Assert.All(batch[i].Ids.Skip(single[i].Count), id => Assert.Equal(bert.TokenToId("[PAD]"), id));
            Assert.Equal(single[i].Count, batch[i].AttentionMask.Sum());
        }
        var left = bert.EncodeBatch(texts, padding: new PaddingOptions { Direction = PaddingDirection.Left, Length = 20, PadId = 7, PadToken = "<p>" });
        Assert.All(left, e => Assert.Equal(20, e.Count));
        Assert.Equal(single[0].Ids, left[0].Ids.Skip(20 - single[0].Count));
        Assert.Equal("<p>", left[0].Tokens[0]);
        Assert.Equal(7, left[0].Ids[0]);
        Assert.Equal(0, left[0].AttentionMask[0]);
        var multiple = bert.EncodeBatch(texts, padding: new PaddingOptions { PadToMultipleOf = 8 });
        Assert.All(multiple, e => Assert.Equal(0, e.Count % 8));
    }

    [Fact]
    public void TruncationKeepsSpecialTokensAndReturnsOverflow()
    {
        var (bert, _) = HfTestSupport.Pair("minilm");
        string text = "one two three four five six seven eight nine ten eleven twelve";
        var full = bert.Encode(text);
        var cut = bert.EncodeBatch([text], truncation: new TruncationOptions { MaxLength = 6, Stride = 1 })[0];
        Assert.Equal(6, cut.Count);
        Assert.Equal(full.Ids.Take(5), cut.Ids.Take(5));
        Assert.Equal(full.Ids[^1], cut.Ids[^1]);
        Assert.NotEmpty(cut.Overflowing);
        // Every overflow chunk is [CLS] + 4 tokens (one overlapping the previous chunk) + [SEP] (the last may be shorter).
        Assert.All(cut.Overflowing, o => Assert.Equal(full.Ids[0], o.Ids[0]));
        Assert.Equal(full.Ids[4], cut.Overflowing[0].Ids[1]);
        var left = bert.EncodeBatch([text], truncation: new TruncationOptions { MaxLength = 4, Direction = PaddingDirection.Left })[0];
        Assert.Equal([full.Ids[0], full.Ids[^3], full.Ids[^2], full.Ids[^1]], left.Ids);
    }

    [Fact]
    public void FromFileFindsFoldersVocabTxtAndRejectsOtherFormatsClearly()
    {
        string dir = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(dir, "vocab.txt"), HfTestSupport.MiniLmVocabText());
        var fromFolder = Tokenizer.FromFile(dir);
        var fromJson = Tokenizer.FromFile(HfTestSupport.PathOf("minilm"));
        var fromVocab = Tokenizer.FromVocabTxt(Path.Combine(dir, "vocab.txt"));
        foreach (var text in HfTestSupport.EdgeCases())
        {
            Assert.Equal(fromJson.EncodeToIds(text), fromFolder.EncodeToIds(text));
            Assert.Equal(fromJson.EncodeToIds(text), fromVocab.EncodeToIds(text));
        }
        Assert.Equal(30522, fromVocab.VocabSize);
        var cased = Tokenizer.FromVocabTxt(Path.Combine(dir, "vocab.txt"), lowercase: false);
        Assert.NotEqual(fromVocab.EncodeToIds("Hello"), cased.EncodeToIds("Hello"));

        string unknown = Path.Combine(dir, "x.xyz");
        File.WriteAllText(unknown, "hello");
        var e = Assert.Throws<NotSupportedException>(() => Tokenizer.FromFile(unknown));
        Assert.Contains("'.xyz'", e.Message, StringComparison.Ordinal);
        Assert.Throws<FileNotFoundException>(() => Tokenizer.FromFile(Path.Combine(dir, "missing.json")));
        string empty = TestPaths.NewTempDir();
        Assert.Throws<FileNotFoundException>(() => Tokenizer.FromFile(empty));
    }

    [Fact]
    public void VocabularyAndSpecialTokenAccessors()
    {
        var (llama, _) = HfTestSupport.Pair("llama3");
        Assert.Equal(128256, llama.VocabSize);
        Assert.Equal(128000, llama.SpecialTokens["<|begin_of_text|>"]);
        Assert.Equal(128000, llama.BosId);
        Assert.Equal("<|begin_of_text|>", llama.IdToToken(128000));
        Assert.Equal(128000, llama.TokenToId("<|begin_of_text|>"));
        Assert.Null(llama.TokenToId("definitely not a token"));
        Assert.Null(llama.IdToToken(999_999));
        var (mistral, _) = HfTestSupport.Pair("mistral");
        Assert.Equal(32000, mistral.VocabSize);
        Assert.Equal(1, mistral.BosId);
        Assert.Equal(2, mistral.EosId);
        Assert.Equal(0, mistral.UnkId);
        Assert.Equal("<s> Hello", mistral.Decode(mistral.EncodeToIds("Hello"), skipSpecialTokens: false));
    }

    [Fact]
    public void EncodeIsThreadSafe()
    {
        var (llama, _) = HfTestSupport.Pair("qwen3");
        var texts = HfTestSupport.Brown().Take(400).Concat(HfTestSupport.EdgeCases()).ToArray();
        var expected = texts.Select(t => llama.EncodeToIds(t)).ToArray();
        var results = new int[texts.Length][];
        Parallel.For(0, texts.Length * 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            int k = i % texts.Length;
            results[k] = i % 2 == 0 ? llama.EncodeToIds(texts[k]) : llama.Encode(texts[k]).ToIdArray();
        });
        for (int i = 0; i < texts.Length; i++) Assert.Equal(expected[i], results[i]);
    }
}
