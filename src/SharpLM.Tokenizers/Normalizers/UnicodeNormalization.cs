using System.Reflection;
using System.Text;

namespace SharpLM.Tokenizers.Normalizers;

/// <summary>
/// Managed NFC / NFD / NFKC / NFKD (UAX #15: full decomposition, canonical ordering, canonical composition with
/// Hangul done algorithmically). .NET's string.Normalize is a no-op under InvariantGlobalization (and needs ICU
/// otherwise), so the tokenizers carry their own. Data: UnicodeNormalizationData.txt, made by
/// tools/gen-unicode-normalization.py from Python's unicodedata.
/// </summary>
internal static class UnicodeNormalization
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    private sealed class Data
    {
        public readonly Dictionary<int, byte> Ccc = [];
        public readonly Dictionary<int, int[]> Canonical = [];
        public readonly Dictionary<int, int[]> Compat = [];
        public readonly Dictionary<long, int> Compose = [];
    }

    private static readonly Lazy<Data> s_data = new(Load);

    private static Data Load()
    {
        var d = new Data();
        var asm = typeof(UnicodeNormalization).Assembly;
        string name = asm.GetManifestResourceNames().Single(n => n.EndsWith("UnicodeNormalizationData.txt", StringComparison.Ordinal));
        using var stream = asm.GetManifestResourceStream(name)!;
        using var reader = new StreamReader(stream, System.Text.Encoding.ASCII);
        string? header = reader.ReadLine();
        if (header == null || !header.StartsWith("# SHARPLM-UNORM 1 ", StringComparison.Ordinal))
            throw new InvalidDataException($"{name}: bad header '{header}'; regenerate it with tools/gen-unicode-normalization.py.");
        for (string? line = reader.ReadLine(); line != null; line = reader.ReadLine())
        {
            if (line.Length < 3) continue;
            var parts = line.Split(' ');
            int cp = Convert.ToInt32(parts[1], 16);
            switch (line[0])
            {
                case 'c': d.Ccc[cp] = byte.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture); break;
                case 'd': d.Canonical[cp] = parts.Skip(2).Select(p => Convert.ToInt32(p, 16)).ToArray(); break;
                case 'k': d.Compat[cp] = parts.Skip(2).Select(p => Convert.ToInt32(p, 16)).ToArray(); break;
                case 'p': d.Compose[((long)cp << 21) | (uint)Convert.ToInt32(parts[2], 16)] = Convert.ToInt32(parts[3], 16); break;
            }
        }
        return d;
    }

    /// <summary>True when <paramref name="s"/> certainly needs no change (only chars below the first code point
    /// the form can alter).</summary>
    public static bool IsTriviallyNormalized(ReadOnlySpan<char> s, NormalizationForm form)
    {
        char limit = form switch
        {
            NormalizationForm.FormC => '\u0300',
            NormalizationForm.FormD => '\u00C0',
            _ => '\u00A0',
        };
        foreach (char c in s) if (c >= limit) return false;
        return true;
    }

    /// <summary>True when normalizing would not change <paramref name="s"/>.</summary>
    public static bool IsNormalized(ReadOnlySpan<char> s, NormalizationForm form)
    {
        if (IsTriviallyNormalized(s, form)) return true;
        string str = s.ToString();
        return Normalize(str, form) == str;
    }

    public static string Normalize(string s, NormalizationForm form)
    {
        if (IsTriviallyNormalized(s, form)) return s;
        var data = s_data.Value;
        bool compat = form is NormalizationForm.FormKC or NormalizationForm.FormKD;
        bool compose = form is NormalizationForm.FormC or NormalizationForm.FormKC;
        var cps = new List<int>(s.Length + 8);
        for (int i = 0; i < s.Length;)
        {
            int cp;
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { cp = char.ConvertToUtf32(s[i], s[i + 1]); i += 2; }
            else { cp = s[i]; i++; }
            Decompose(cp, compat, data, cps);
        }
        // Canonical ordering: stable insertion sort of each run of non-starters by class.
        for (int i = 1; i < cps.Count; i++)
        {
            int c = Ccc(cps[i], data);
            if (c == 0) continue;
            int j = i;
            while (j > 0 && Ccc(cps[j - 1], data) > c)
            {
                (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]);
                j--;
            }
        }
        if (compose) cps = Compose(cps, data);
        var sb = new StringBuilder(cps.Count + 4);
        foreach (int cp in cps)
        {
            if (cp < 0x10000) sb.Append((char)cp);
            else sb.Append(char.ConvertFromUtf32(cp));
        }
        return sb.ToString();
    }

    private static int Ccc(int cp, Data d) => cp < 0x300 ? 0 : d.Ccc.TryGetValue(cp, out byte c) ? c : 0;

    private static void Decompose(int cp, bool compat, Data d, List<int> output)
    {
        if (cp < 0xA0) { output.Add(cp); return; }
        if (cp is >= SBase and < SBase + SCount)
        {
            int si = cp - SBase;
            output.Add(LBase + si / NCount);
            output.Add(VBase + si % NCount / TCount);
            if (si % TCount != 0) output.Add(TBase + si % TCount);
            return;
        }
        if (compat && d.Compat.TryGetValue(cp, out var k)) { output.AddRange(k); return; }
        if (d.Canonical.TryGetValue(cp, out var c)) { output.AddRange(c); return; }
        output.Add(cp);
    }

    private static List<int> Compose(List<int> cps, Data d)
    {
        var result = new List<int>(cps.Count);
        int starter = -1;
        bool adjacent = false;
        int lastCcc = 0;
        foreach (int ch in cps)
        {
            int cc = Ccc(ch, d);
            if (starter >= 0 && (adjacent || (lastCcc != 0 && lastCcc < cc)))
            {
                int a = result[starter];
                int composed = -1;
                if (a is >= LBase and < LBase + LCount && ch is >= VBase and < VBase + VCount)
                    composed = SBase + ((a - LBase) * VCount + (ch - VBase)) * TCount;
                else if (a is >= SBase and < SBase + SCount && (a - SBase) % TCount == 0 && ch is > TBase and < TBase + TCount)
                    composed = a + (ch - TBase);
                else if (d.Compose.TryGetValue(((long)a << 21) | (uint)ch, out int p))
                    composed = p;
                if (composed >= 0)
                {
                    result[starter] = composed;
                    continue;
                }
            }
            if (cc == 0)
            {
                starter = result.Count;
                adjacent = true;
            }
            else
            {
                adjacent = false;
                lastCcc = cc;
            }
            result.Add(ch);
        }
        return result;
    }
}
