using System.Diagnostics;
using System.Globalization;

namespace SharpLM.Benchmarks.Tokenizers;

/// <summary>
/// Single-thread encode speed of SharpLM and its peer on 1 MB of Brown, ALTERNATING the two every round (the machine
/// is shared and noisy: back-to-back blocks would let a neighbour's load land on one side only), reporting medians.
/// Run: <c>dotnet run -c Release --project bench/SharpLM.Benchmarks -- tokenizer-race [--rounds 9] [--whole] [--encode] [case ...]</c>
/// (cases: gpt2 cl100k_base o200k_base llama3 qwen3 mistral wordpiece). <c>--encode</c> races SharpLM's general
/// <c>Encode</c> (offsets and token strings, what HF tokenizers always computes) instead of the ids-only fast path.
/// Prints a Markdown table for docs/BENCHMARKS.md.
/// </summary>
internal static class TokenizerRace
{
    public static void Run(string[] args)
    {
        int rounds = 9;
        bool whole = false, encode = false;
        var only = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--rounds") rounds = int.Parse(args[++i], CultureInfo.InvariantCulture);
            else if (args[i] == "--whole") whole = true;
            else if (args[i] == "--encode") encode = true;
            else only.Add(args[i]);
        }
        var text = TokenizerPeers.BrownMegabyte();
        var lines = text.Split('\n');
        double mb = System.Text.Encoding.UTF8.GetByteCount(text) / 1e6;
        string mode = whole ? "the whole MB as one string per call" : $"line by line ({lines.Length} lines, newlines left out)";
        string api = encode ? "SharpLM Encode (ids, offsets, token strings)" : "SharpLM EncodeToIds (ids only)";
        Console.WriteLine($"# tokenizer-race: {mb:F3} MB of Brown, {mode}, {api}, {rounds} alternating rounds, 1 thread, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores");
        Console.WriteLine();
        Console.WriteLine("MB/s = MB / median process CPU seconds of one pass (CPU time, not wall time: the machine is shared and");
        Console.WriteLine("oversubscribed, so wall time mostly measures the neighbours); the wall-time ratio is given too.");
        Console.WriteLine();
        Console.WriteLine("| case | SharpLM MB/s | peer | peer MB/s | SharpLM / peer (CPU) | SharpLM / peer (wall) | tokens (SharpLM, peer) |");
        Console.WriteLine("|---|---:|---|---:|---:|---:|---|");
        foreach (var (name, sharpIds, sharpEncode, peerName, peerOne) in TokenizerPeers.All(only))
        {
            var sharpOne = encode ? sharpEncode : sharpIds;
            Func<string, int> sharp = whole ? sharpOne : _ => lines.Sum(sharpOne);
            Func<string, int> peer = whole ? peerOne : _ => lines.Sum(peerOne);
            int ts = sharp(text), tp = peer(text); // warm-up: JIT, caches
            var a = new double[rounds];
            var b = new double[rounds];
            var aw = new double[rounds];
            var bw = new double[rounds];
            for (int r = 0; r < rounds; r++)
            {
                // Alternate which side goes first, too.
                if (r % 2 == 0) { (a[r], aw[r]) = Time(sharp, text); (b[r], bw[r]) = Time(peer, text); }
                else { (b[r], bw[r]) = Time(peer, text); (a[r], aw[r]) = Time(sharp, text); }
            }
            double ma = mb / Median(a), mp = mb / Median(b);
            double wallRatio = Median(bw) / Median(aw);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {ma:F2} | {peerName} | {mp:F2} | {ma / mp:F2}x | {wallRatio:F2}x | {ts}, {tp} |"));
        }
    }

    private static readonly Process Self = Process.GetCurrentProcess();

    private static double CpuSeconds()
    {
        Self.Refresh();
        return Self.TotalProcessorTime.TotalSeconds;
    }

    /// <summary>(process CPU seconds, wall seconds) of one call.</summary>
    private static (double Cpu, double Wall) Time(Func<string, int> f, string text)
    {
        var c0 = CpuSeconds();
        var sw = Stopwatch.StartNew();
        f(text);
        double wall = sw.Elapsed.TotalSeconds;
        return (CpuSeconds() - c0, wall);
    }

    private static double Median(double[] x)
    {
        var c = (double[])x.Clone();
        Array.Sort(c);
        return c.Length % 2 == 1 ? c[c.Length / 2] : (c[c.Length / 2 - 1] + c[c.Length / 2]) / 2;
    }
}
