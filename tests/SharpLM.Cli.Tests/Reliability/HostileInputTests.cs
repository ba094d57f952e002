using SharpLM.Testing;

namespace SharpLM.Cli.Tests.Reliability;

/// <summary>Hostile inputs the fuzzers found, through the commands a user runs: each ends with a one-line error that
/// names the file and the key, line or value, a non-zero exit and no stack trace.</summary>
public sealed class HostileInputTests
{
    private static string Corpus(string target, string name) => Path.Combine(TestPaths.RepoRoot, "tests", "fuzz", target, "regressions", name);

    private static async Task<(int Rc, string Err)> Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = await CliApp.RunAsync(args, o, e);
        return (rc, e.ToString());
    }

    private static void Clear((int Rc, string Err) r, params string[] mentions)
    {
        Assert.True(r.Rc is 1 or 2, $"exit {r.Rc}: {r.Err}");
        Assert.StartsWith("error: ", r.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
        foreach (var m in mentions) Assert.Contains(m, r.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tiktoken_rank_of_int_max_names_the_file_the_line_and_the_rank()
    {
        var dir = TestPaths.NewTempDir();
        var file = Path.Combine(dir, "cl100k_base.tiktoken"); // the name picks the encoding
        File.Copy(Corpus("tiktoken", "rank-2147483647.tiktoken"), file);
        Clear(await Run("tokenize", "--tokenizer", file, "--text", "the cat"), file, "line 257", "2147483647");
    }

    [Fact]
    public async Task A_vocabulary_id_of_two_to_the_thirty_names_the_json_path()
    {
        var file = Corpus("tokenizer-json", "vocab-id-2pow30.json");
        Clear(await Run("tokenize", "--tokenizer", file, "--text", "the cat"), file, "model.vocab.the", "1073741824");
    }

    [Fact]
    public async Task A_catastrophic_split_regex_stops_with_its_pattern_named()
    {
        var file = Corpus("tokenizer-json", "split-catastrophic-backtracking.json");
        // a long line of text without the 'y' the pattern ends with: exponential backtracking
        Clear(await Run("tokenize", "--tokenizer", file, "--text", new string('x', 40) + " the cat sat on the mat"), "(.+.+)+y", "backtracks");
    }

    [Fact]
    public async Task Sizes_whose_memory_overflows_are_a_clear_error()
    {
        Clear(await Run("calc", "--preset", "tinyllama-1.1b", "--batch", "2147483647", "--context", "2147483647"), "2^63");
        Clear(await Run("calc", "--preset", "tinyllama-1.1b", "--train", "--batch", "2147483647", "--context", "2147483647"), "2^63");
    }
}
