namespace SharpLM.Tokenizers.Training;

/// <summary>
/// GPT-2's byte-to-char map: printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves and the
/// other 68 bytes map, in byte order, to U+0100, U+0101, ... (so a space is 'Ġ' U+0120 and '\n' is 'Ċ' U+010A).
/// </summary>
internal static class ByteLevelChars
{
    public static readonly char[] Table = Build();

    private static char[] Build()
    {
        var t = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
            t[b] = (b is >= '!' and <= '~') || (b is >= 0xA1 and <= 0xAC) || (b is >= 0xAE and <= 0xFF) ? (char)b : (char)next++;
        return t;
    }
}
