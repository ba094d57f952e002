using System.Diagnostics;
using System.Globalization;

namespace SharpLM.Benchmarks.Tokenizers;

/// <summary>
/// Single-thread encode speed of SharpLM and its peer on 1 MB of Brown, ALTERNATING the two every round (the machine
/// is shared and noisy: back-to-back blocks would let a neighbour's load land on one side only), reporting medians.
/// Run: <c>dotnet run -c Release --project bench/SharpLM.Benchmarks -- tokenizer-race [--rounds 9] [case ...]</c>
/// (cases: gpt2 cl100k_base o200k_base llama3 qwen3 mistral). Prints a Markdown table for docs/BENCHMARKS.md.
/// </summary>
internal static class TokenizerRace
{
    public static void Run(string[] args)
    {
        int rounds = 9;
        var only = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--rounds") rounds = int.Parse(args[++i], CultureInfo.InvariantCulture);
            else only.Add(args[i]);
        }
        var text = TokenizerPeers.BrownMegabyte();
        double mb = System.Text.Encoding.UTF8.GetByteCount(text) / 1e6;
        Console.WriteLine($"# tokenizer-race: {mb:F3} MB of Brown, {rounds} alternating rounds, 1 thread, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores");
        Console.WriteLine();
        Console.WriteLine("| case | SharpLM MB/s | peer | peer MB/s | SharpLM / peer | tokens (SharpLM, peer) |");
        Console.WriteLine("|---|---:|---|---:|---:|---|");
        foreach (var (name, sharp, peerName, peer) in TokenizerPeers.All(only))
        {
            int ts = sharp(text), tp = peer(text); // warm-up: JIT, caches
            var a = new double[rounds];
            var b = new double[rounds];
            for (int r = 0; r < rounds; r++)
            {
                // Alternate which side goes first, too.
                if (r % 2 == 0) { a[r] = Time(sharp, text); b[r] = Time(peer, text); }
                else { b[r] = Time(peer, text); a[r] = Time(sharp, text); }
            }
            double ma = mb / Median(a), mp = mb / Median(b);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {ma:F2} | {peerName} | {mp:F2} | {ma / mp:F2}x | {ts}, {tp} |"));
        }
    }

    private static double Time(Func<string, int> f, string text)
    {
        var sw = Stopwatch.StartNew();
        f(text);
        return sw.Elapsed.TotalSeconds;
    }

    private static double Median(double[] x)
    {
        var c = (double[])x.Clone();
        Array.Sort(c);
        return c.Length % 2 == 1 ? c[c.Length / 2] : (c[c.Length / 2 - 1] + c[c.Length / 2]) / 2;
    }
}
