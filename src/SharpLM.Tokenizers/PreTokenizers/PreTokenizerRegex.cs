using System.Text.RegularExpressions;

namespace SharpLM.Tokenizers.PreTokenizers;

/// <summary>Finds the matches of a pre-tokenizer regex. Known patterns (GPT-2, LLaMA-3/GPT-4, Qwen) may be
/// served by hand-written scanners that follow Rust's code-point semantics; others use .NET Regex.</summary>
internal static class PreTokenizerRegex
{
    public static void Matches(string pattern, Regex regex, string text, List<(int, int, bool)> output)
    {
        if (text.Length == 0) return;
        SplitHelper.RegexMatches(regex, text, output);
    }
}
