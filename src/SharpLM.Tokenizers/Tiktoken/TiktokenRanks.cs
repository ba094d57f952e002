using System.Buffers.Text;
using System.Text;

namespace SharpLM.Tokenizers.Tiktoken;

/// <summary>
/// Reads a .tiktoken rank file: one "BASE64 RANK" per line (the base64 of the token's bytes, a space, its rank,
/// which is also its id). Tokens are returned in GPT-2 byte-level form (each byte one char, e.g. " the" -> "Ġthe"),
/// the form tokenizer.json vocabularies use. Also read: the variant the Microsoft.ML.Tokenizers.Data packages embed,
/// a "Capacity: N" first line and then one BASE64 per line whose rank is its line index (from 0).
/// </summary>
internal static class TiktokenRanks
{
    public static Dictionary<string, int> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"tiktoken rank file '{path}' does not exist.", path);
        using var stream = File.OpenRead(path);
        return Read(stream, path);
    }

    public static Dictionary<string, int> Read(Stream stream, string name)
    {
        var ranks = new Dictionary<string, int>(200_000, StringComparer.Ordinal);
        var map = PreTokenizers.ByteLevelTables.ByteToChar;
        using var reader = new StreamReader(stream, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: false);
        var bytes = new byte[1024];
        var chars = new char[1024];
        int lineNo = 0, implicitRank = 0;
        bool implicitRanks = false;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            if (line.Length == 0) continue;
            if (lineNo == 1 && line.StartsWith("Capacity:", StringComparison.Ordinal))
            {
                implicitRanks = true;
                continue;
            }
            int sp = line.IndexOf(' ', StringComparison.Ordinal);
            int rank;
            ReadOnlySpan<char> b64;
            if (implicitRanks)
            {
                b64 = line.AsSpan().TrimEnd();
                rank = implicitRank++;
            }
            else
            {
                if (sp <= 0 || sp == line.Length - 1)
                    throw new InvalidDataException($"{name}: line {lineNo} is '{Clip(line)}'; expected 'BASE64 RANK'. Is this a .tiktoken rank file?");
                b64 = line.AsSpan(0, sp);
                if (!int.TryParse(line.AsSpan(sp + 1).TrimEnd(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out rank))
                    throw new InvalidDataException($"{name}: line {lineNo}: rank '{Clip(line[(sp + 1)..])}' is not a non-negative integer below 2^31.");
                if (Core.TokenIds.Problem(rank) is { } why) throw new InvalidDataException($"{name}: line {lineNo}: rank {rank}: {why}.");
            }
            if (Base64.GetMaxDecodedFromUtf8Length(b64.Length) > bytes.Length) throw new InvalidDataException($"{name}: line {lineNo}: token of {b64.Length} base64 chars is too long.");
            if (!Convert.TryFromBase64Chars(b64, bytes, out int n) || n == 0)
                throw new InvalidDataException($"{name}: line {lineNo}: '{Clip(b64.ToString())}' is not valid base64.");
            for (int i = 0; i < n; i++) chars[i] = map[bytes[i]];
            var token = new string(chars, 0, n);
            if (!ranks.TryAdd(token, rank))
                throw new InvalidDataException($"{name}: line {lineNo}: token '{Clip(b64.ToString())}' appears twice.");
        }
        if (ranks.Count == 0) throw new InvalidDataException($"{name}: no ranks found; expected lines 'BASE64 RANK'.");
        return ranks;
    }

    private static string Clip(string s) => s.Length <= 40 ? s : s[..40] + "...";
}
