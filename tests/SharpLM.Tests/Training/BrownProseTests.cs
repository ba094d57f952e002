using System.Diagnostics;
using SharpLM.Testing;
using Xunit;

namespace SharpLM.Tests.Training;

/// <summary>
/// scripts/brown-prose.pl, the step of scripts/fetch-test-assets.sh that turns the tagged Brown corpus into natural
/// prose (the default model's training text), on small tagged strings written here, and the split it produces.
/// </summary>
public class BrownProseTests
{
    private static string Script => Path.Combine(TestPaths.RepoRoot, "scripts", "brown-prose.pl");

    /// <summary>Runs the script over files holding the given tagged texts; returns its stdout.</summary>
    private static string Prose(params string[] taggedFiles)
    {
        var dir = TestPaths.NewTempDir();
        var psi = new ProcessStartInfo("perl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Script);
        for (int i = 0; i < taggedFiles.Length; i++)
        {
            var f = Path.Combine(dir, $"c{i:D2}");
            File.WriteAllText(f, taggedFiles[i]);
            psi.ArgumentList.Add(f);
        }
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"perl brown-prose.pl exited {p.ExitCode}: {stderr}");
        return stdout.Replace("\r\n", "\n", StringComparison.Ordinal);
    }

    [Fact]
    public void Tags_go_and_punctuation_attaches_as_in_ordinary_English()
    {
        string tagged = "\n\n\tThe/at jury/nn said/vbd ,/, ``/`` we/ppss are/ber done/vbn ''/'' ./.\n" +
                        "It/pps rained/vbd (/( briefly/rb )/) ;/. ;/.\nwas/bedz it/pps late/jj ?/. Yes/rb !/.\n";
        Assert.Equal("The jury said, \"we are done\". It rained (briefly); was it late? Yes!\n", Prose(tagged));
    }

    [Fact]
    public void Blank_lines_separate_paragraphs_and_headlines_get_their_own_line()
    {
        string tagged = "\n\n\tFirst/od one/cd ./.\nStill/rb first/od ./.\n\n\n\tSecond/od ./.\n" +
                        "\n\n\tMerger/nn-hl proposed/vbn-hl However/rb ,/, no/at ./.\n";
        Assert.Equal("First one. Still first.\nSecond.\nMerger proposed\nHowever, no.\n", Prose(tagged));
    }

    [Fact]
    public void Split_contractions_are_joined_and_abbreviations_keep_one_period()
    {
        string tagged = "\tI/ppss do/do n't/* know/vb ,/, it/pps 's/bez Mr./np Pye/np Jr./np ./.\nThey/ppss 're/ber here/rb ./.\n";
        Assert.Equal("I don't know, it's Mr. Pye Jr. They're here.\n", Prose(tagged));
    }

    [Fact]
    public void The_packages_doubled_marks_are_written_once()
    {
        string tagged = "\tIs/bez it/pps ''/'' ?/. ?/.\nNo/rb ;/. ;/.\nnever/rb !/. !/.\n";
        Assert.Equal("Is it\"? No; never!\n", Prose(tagged));
    }

    [Fact]
    public void A_lone_quote_opens_then_closes()
    {
        string tagged = "\tHe/pps said/vbd ,/, '/' Do/do come/vb '/' ,/, and/cc left/vbd ./.\n";
        Assert.Equal("He said, 'Do come', and left.\n", Prose(tagged));
    }

    [Fact]
    public void A_file_without_a_final_blank_line_does_not_run_into_the_next()
    {
        Assert.Equal("End of one.\nStart of two.\n", Prose("\tEnd/nn of/in one/cd ./.", "\tStart/nn of/in two/cd ./.\n"));
    }

    [Fact]
    public void The_prepared_corpus_is_natural_prose_split_by_document()
    {
        var all = File.ReadAllLines(TestPaths.Asset("brown.txt"));
        var train = File.ReadAllLines(TestPaths.Asset("brown-train.txt"));
        var heldout = File.ReadAllLines(TestPaths.Asset("brown-heldout.txt"));
        // every paragraph of the whole corpus is in exactly one of the two splits (the split is by document)
        Assert.Equal(all.Order(StringComparer.Ordinal), train.Concat(heldout).Order(StringComparer.Ordinal));
        Assert.InRange(heldout.Length, all.Length / 40, all.Length / 10);
        string text = string.Join('\n', all);
        Assert.DoesNotContain("``", text, StringComparison.Ordinal);
        Assert.DoesNotContain(" , ", text, StringComparison.Ordinal);
        Assert.DoesNotContain("/at ", text, StringComparison.Ordinal);
    }
}
