using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SharpLM.Testing;

namespace SharpLM.Cli.Tests.Reliability;

/// <summary>
/// A mutational fuzz of the whole <c>sharplm</c> process, as an attacker would run it: self-made model, tokenizer,
/// config and checkpoint files are truncated, have bytes flipped, have 4- and 8-byte fields overwritten with values
/// near 2^31, 2^32, 2^63 and -1, and have their JSON broken (numbers replaced, types swapped, deep nesting), then run
/// through <c>inspect</c>, <c>generate</c>, <c>tokenize</c>, <c>calc</c>, <c>convert</c>, <c>embed</c>,
/// <c>fill-mask</c>, <c>chat</c> and <c>train --resume</c> as separate processes. Each run must end with exit code
/// 0, 1 or 2, print no stack trace, finish within its time limit and stay within its memory limit.
/// </summary>
internal sealed partial class CliMutationFuzz
{
    /// <summary>What one input did wrong; empty when it behaved.</summary>
    public sealed record Finding(string Kind, string Case, string Args, string Detail);

    public sealed record Case(string Name, string Fixture, string RelativeFile, Func<string, string, string[]> Args, string? Stdin = null);

    private readonly string _root;
    private readonly string _fixtures;

    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(40);
    public long MemoryLimitBytes { get; init; } = 2L << 30;

    private CliMutationFuzz(string root)
    {
        _root = root;
        _fixtures = Path.Combine(root, "fixtures");
    }

    /// <summary>Makes the fixtures (a tiny trained LLaMA checkpoint, its GGUF export and tokenizer, a BERT folder,
    /// a tiktoken rank file) with SharpLM's own writers.</summary>
    public static async Task<CliMutationFuzz> CreateAsync(string root)
    {
        var f = new CliMutationFuzz(root);
        Directory.CreateDirectory(f._fixtures);
        var data = Path.Combine(f._fixtures, "data.txt");
        var words = new[] { "the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far", "away", "from", "home" };
        var sb = new StringBuilder();
        for (int i = 0; sb.Length < 4000; i++) sb.Append(words[(i * 7 + i / 3) % words.Length]).Append(i % 9 == 8 ? ".\n" : " ");
        await File.WriteAllTextAsync(data, sb.ToString());
        var train = Path.Combine(f._fixtures, "train");
        var o = new StringWriter(); var e = new StringWriter();
        int rc = await CliApp.RunAsync(["train", "--data", data, "--out", train, "--steps", "2", "--vocab-size", "280", "--dim", "16", "--layers", "1",
                                        "--heads", "2", "--context", "16", "--batch", "2", "--threads", "1", "--eval-batches", "1",
                                        "--export-gguf", Path.Combine(f._fixtures, "model.gguf")], o, e);
        if (rc != 0) throw new InvalidOperationException("making the fuzz fixture failed: " + e);
        var hf = Path.Combine(f._fixtures, "hf");
        Directory.CreateDirectory(hf);
        foreach (var name in new[] { "config.json", "model.safetensors", "tokenizer.json" })
            File.Copy(Path.Combine(train, "checkpoint", name), Path.Combine(hf, name));
        await File.WriteAllTextAsync(Path.Combine(hf, "tokenizer_config.json"),
            """{"bos_token": null, "eos_token": null, "chat_template": "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"}""");
        var bert = Path.Combine(f._fixtures, "bert");
        Directory.CreateDirectory(bert);
        foreach (var file in Directory.GetFiles(Path.Combine(TestPaths.TestData, "bert", "bert_mlm")))
            if (Path.GetFileName(file) is "config.json" or "model.safetensors" or "vocab.txt") File.Copy(file, Path.Combine(bert, Path.GetFileName(file)));
        // A tiktoken rank file: the 256 single bytes, then a few merges, named so the loader picks cl100k_base's regex.
        var tik = new StringBuilder();
        int rank = 0;
        for (int b = 0; b < 256; b++) tik.Append(Convert.ToBase64String([(byte)b])).Append(' ').Append(rank++).Append('\n');
        foreach (var m in new[] { "th", "he", "the", " t", " the", "at", "cat", " c", " cat" })
            tik.Append(Convert.ToBase64String(Encoding.UTF8.GetBytes(m))).Append(' ').Append(rank++).Append('\n');
        await File.WriteAllTextAsync(Path.Combine(f._fixtures, "cl100k_base.tiktoken"), tik.ToString());
        return f;
    }

    /// <summary>Every command over every file it reads. Args get the fixture folder (mutated copy) and a scratch folder.</summary>
    public IReadOnlyList<Case> Cases()
    {
        string data = Path.Combine(_fixtures, "data.txt");
        string[] Gen(string m) => ["generate", "--model", m, "--prompt", "the cat", "--max-tokens", "3", "--temperature", "0", "--threads", "1"];
        return
        [
            new("inspect-gguf", "model.gguf", "", (m, _) => ["inspect", "--model", m, "--metadata"]),
            new("generate-gguf", "model.gguf", "", (m, _) => Gen(m)),
            new("tokenize-gguf", "model.gguf", "", (m, _) => ["tokenize", "--tokenizer", m, "--text", "the cat sat"]),
            new("calc-gguf", "model.gguf", "", (m, _) => ["calc", "--model", m]),
            new("convert-gguf", "model.gguf", "", (m, s) => ["convert", "--from", m, "--to", Path.Combine(s, "out.gguf"), "--type", "q8_0"]),
            new("quantize-gguf", "model.gguf", "", (m, s) => ["quantize", "--model", m, "--to", Path.Combine(s, "out.gguf"), "--type", "q4_k_m", "--quiet"]),
            new("chat-gguf", "model.gguf", "", (m, _) => ["chat", "--model", m, "--max-tokens", "3", "--temperature", "0", "--threads", "1"], "hello\n"),
            new("inspect-hf-safetensors", "hf", "model.safetensors", (m, _) => ["inspect", "--model", m]),
            new("generate-hf-safetensors", "hf", "model.safetensors", (m, _) => Gen(m)),
            new("convert-hf-safetensors", "hf", "model.safetensors", (m, s) => ["convert", "--from", m, "--to", Path.Combine(s, "out.gguf")]),
            new("quantize-hf-safetensors", "hf", "model.safetensors", (m, s) => ["quantize", "--model", m, "--to", Path.Combine(s, "out.gguf"), "--type", "q8_0", "--quiet"]),
            new("generate-hf-config", "hf", "config.json", (m, _) => Gen(m)),
            new("calc-config", "hf", "config.json", (m, _) => ["calc", "--config", Path.Combine(m, "config.json")]),
            new("convert-hf-config", "hf", "config.json", (m, s) => ["convert", "--from", m, "--to", Path.Combine(s, "out.gguf")]),
            new("generate-hf-tokenizer", "hf", "tokenizer.json", (m, _) => Gen(m)),
            new("tokenize-json", "hf", "tokenizer.json", (m, _) => ["tokenize", "--tokenizer", Path.Combine(m, "tokenizer.json"), "--text", "the cat sat on a mat"]),
            new("chat-hf-tokenizer-config", "hf", "tokenizer_config.json", (m, _) => ["chat", "--model", m, "--max-tokens", "3", "--temperature", "0", "--threads", "1"], "hello\n"),
            new("tokenize-tiktoken", "cl100k_base.tiktoken", "", (m, _) => ["tokenize", "--tokenizer", m, "--text", "the cat sat on a mat"]),
            new("tokenize-vocab-txt", "bert", "vocab.txt", (m, _) => ["tokenize", "--tokenizer", Path.Combine(m, "vocab.txt"), "--text", "the cat sat"]),
            new("embed-bert-safetensors", "bert", "model.safetensors", (m, _) => ["embed", "--model", m, "--text", "the cat"]),
            new("embed-bert-config", "bert", "config.json", (m, _) => ["embed", "--model", m, "--text", "the cat"]),
            new("fill-mask-bert-safetensors", "bert", "model.safetensors", (m, _) => ["fill-mask", "--model", m, "--text", "the [MASK] sat"]),
            new("fill-mask-bert-vocab", "bert", "vocab.txt", (m, _) => ["fill-mask", "--model", m, "--text", "the [MASK] sat"]),
            new("train-resume-state", "train", "checkpoint/trainer_state.json", (m, s) => ["train", "--data", data, "--out", Path.Combine(s, "out"), "--resume", m, "--steps", "3", "--threads", "1"]),
            new("train-resume-config", "train", "checkpoint/config.json", (m, s) => ["train", "--data", data, "--out", Path.Combine(s, "out"), "--resume", m, "--steps", "3", "--threads", "1"]),
            new("train-resume-weights", "train", "checkpoint/model.safetensors", (m, s) => ["train", "--data", data, "--out", Path.Combine(s, "out"), "--resume", m, "--steps", "3", "--threads", "1"]),
            new("train-resume-optimizer", "train", "checkpoint/optimizer.safetensors", (m, s) => ["train", "--data", data, "--out", Path.Combine(s, "out"), "--resume", m, "--steps", "3", "--threads", "1"]),
            new("train-resume-tokenizer", "train", "checkpoint/tokenizer.json", (m, s) => ["train", "--data", data, "--out", Path.Combine(s, "out"), "--resume", m, "--steps", "3", "--threads", "1"]),
        ];
    }

    /// <summary>Runs <paramref name="perCase"/> mutations of each case (seeded), two processes at a time; with
    /// <paramref name="sample"/>, only that many of them, drawn with the seed (the default suite's small form: a
    /// different seed covers other cases).</summary>
    public async Task<(int Runs, List<Finding> Findings)> RunAsync(int perCase, int seed, Action<string>? log = null, int? sample = null)
    {
        var work = new List<(Case C, string Mutation, byte[] Bytes)>();
        var rng = new Random(seed);
        foreach (var c in Cases())
        {
            string file = FixtureFile(c);
            var original = await File.ReadAllBytesAsync(file);
            foreach (var (name, bytes) in Mutations(original, Path.GetFileName(file), rng).Take(perCase))
                work.Add((c, name, bytes));
        }
        if (sample is int n && n < work.Count) work = work.OrderBy(_ => rng.Next()).Take(n).ToList();
        var findings = new List<Finding>();
        int runs = 0;
        await Parallel.ForEachAsync(work, new ParallelOptions { MaxDegreeOfParallelism = 2 }, async (w, _) =>
        {
            var f = await RunOneAsync(w.C, w.Mutation, w.Bytes);
            Interlocked.Increment(ref runs);
            if (f is null) return;
            lock (findings) findings.Add(f);
            log?.Invoke($"{f.Kind}: {f.Case} [{f.Args}]\n{f.Detail}");
        });
        return (runs, findings);
    }

    private string FixtureFile(Case c) => c.RelativeFile.Length == 0 ? Path.Combine(_fixtures, c.Fixture) : Path.Combine(_fixtures, c.Fixture, c.RelativeFile);

    private async Task<Finding?> RunOneAsync(Case c, string mutation, byte[] bytes)
    {
        var dir = Path.Combine(_root, "runs", Guid.NewGuid().ToString("N")[..12]);
        var scratch = Path.Combine(dir, "scratch");
        Directory.CreateDirectory(scratch);
        string target = Path.Combine(dir, c.Fixture);
        string src = Path.Combine(_fixtures, c.Fixture);
        if (Directory.Exists(src)) CopyFolder(src, target);
        string file = c.RelativeFile.Length == 0 ? target : Path.Combine(target, c.RelativeFile);
        await File.WriteAllBytesAsync(file, bytes);
        var args = c.Args(target, scratch);
        string label = $"{c.Name} {mutation}";
        try
        {
            var (rc, output, timedOut, peak) = await CliProcess.RunAsync(args, c.Stdin, Timeout, MemoryLimitBytes,
                new Dictionary<string, string?> { ["SHARPLM_CACHE"] = Path.Combine(_root, "cache") });
            string shown = string.Join(' ', args.Select(a => a.Replace(dir, "$DIR", StringComparison.Ordinal)));
            if (timedOut) return new("hang", label, shown, Tail(output));
            if (peak > MemoryLimitBytes + (512L << 20) || output.Contains("Insufficient memory", StringComparison.Ordinal) || output.Contains("OutOfMemory", StringComparison.Ordinal))
                return new("memory", label, shown, $"peak RSS {peak >> 20} MiB\n{Tail(output)}");
            if (StackTrace().IsMatch(output) || output.Contains("Unhandled exception", StringComparison.Ordinal)) return new("stack trace", label, shown, Tail(output));
            if (rc is not (0 or 1 or 2)) return new("crash", label, shown, $"exit code {rc}\n{Tail(output)}");
            return null;
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    [GeneratedRegex(@"^\s+at \S+.*\(.*\)", RegexOptions.Multiline)]
    private static partial Regex StackTrace();

    private static string Tail(string s) => s.Length <= 1500 ? s : s[..700] + "\n...\n" + s[^700..];

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from)) CopyFolder(d, Path.Combine(to, Path.GetFileName(d)));
    }

    // ------------------------------------------------------------------ mutations

    private static readonly ulong[] Interesting64 =
    [
        0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000,
        0x1_0000_0001, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, ulong.MaxValue, 1UL << 40, 1UL << 62, 0xFFFF_FFFF_FFFF_FFFE,
    ];

    private static readonly string[] InterestingJsonNumbers =
    [
        "0", "-1", "1", "2147483647", "2147483648", "-2147483648", "-2147483649", "4294967295", "4294967296",
        "9223372036854775807", "9223372036854775808", "18446744073709551616", "1e308", "-1e308", "1e400", "0.5", "-0.0", "65536", "1073741824",
    ];

    /// <summary>Named mutations of a file, in a seeded random order that mixes the kinds.</summary>
    public static IEnumerable<(string Name, byte[] Bytes)> Mutations(byte[] original, string fileName, Random rng)
    {
        var all = new List<(string, byte[])>();
        bool json = fileName.EndsWith(".json", StringComparison.Ordinal);
        bool text = json || fileName.EndsWith(".txt", StringComparison.Ordinal) || fileName.EndsWith(".tiktoken", StringComparison.Ordinal);
        // truncations
        foreach (long at in new long[] { 0, 1, 3, 4, 7, 8, 12, 16, 23, 24, 31, 40, original.Length / 3, original.Length / 2, original.Length - 1 }.Distinct())
            if (at >= 0 && at < original.Length) all.Add(($"truncate@{at}", original[..(int)at]));
        // flipped bytes (in the header region mostly: that is where the structure is)
        int headerEnd = HeaderEnd(original, fileName);
        for (int i = 0; i < 24; i++)
        {
            var b = (byte[])original.Clone();
            int at = rng.Next(Math.Max(1, i < 16 ? headerEnd : b.Length));
            b[at] ^= (byte)(1 << rng.Next(8));
            all.Add(($"flip@{at}", b));
        }
        // 4- and 8-byte fields overwritten with boundary values
        if (!text)
        {
            for (int i = 0; i < 48; i++)
            {
                var b = (byte[])original.Clone();
                int width = rng.Next(2) == 0 ? 4 : 8;
                int at = rng.Next(Math.Max(1, Math.Min(headerEnd, b.Length - width)));
                if (i < 16) at &= ~3; // aligned fields first
                ulong v = Interesting64[rng.Next(Interesting64.Length)];
                if (at + width > b.Length) continue;
                if (width == 4) BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), (uint)v);
                else BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at), v);
                all.Add(($"u{width * 8}@{at}={v}", b));
            }
        }
        if (json) all.AddRange(JsonMutations(original, rng));
        else if (text) all.AddRange(TextMutations(original, rng));
        // the safetensors JSON header: mutate it as JSON and put it back with its length
        if (fileName.EndsWith(".safetensors", StringComparison.Ordinal) && original.Length >= 8)
        {
            long n = BinaryPrimitives.ReadInt64LittleEndian(original);
            if (n > 0 && 8 + n <= original.Length)
            {
                var header = original.AsSpan(8, (int)n).ToArray();
                var rest = original.AsSpan(8 + (int)n).ToArray();
                foreach (var (name, h) in JsonMutations(header, rng))
                {
                    var b = new byte[8 + h.Length + rest.Length];
                    BinaryPrimitives.WriteInt64LittleEndian(b, h.Length);
                    h.CopyTo(b, 8);
                    rest.CopyTo(b, 8 + h.Length);
                    all.Add(("header-" + name, b));
                }
            }
        }
        // a seeded shuffle, so a small prefix still covers every kind
        for (int i = all.Count - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (all[i], all[j]) = (all[j], all[i]);
        }
        return all;
    }

    private static int HeaderEnd(byte[] b, string fileName)
    {
        if (fileName.EndsWith(".safetensors", StringComparison.Ordinal) && b.Length >= 8)
            return (int)Math.Clamp(BinaryPrimitives.ReadInt64LittleEndian(b) + 8, 8, b.Length);
        if (fileName.EndsWith(".gguf", StringComparison.Ordinal))
        {
            // the header ends where the tensor data starts; the data begins with a run of aligned floats: take 3/4 of
            // the bytes before the last tensor info name as the structure (cheap, good enough for aiming mutations)
            int idx = b.AsSpan().LastIndexOf("output"u8);
            return idx > 0 ? Math.Min(b.Length, idx + 64) : b.Length;
        }
        return b.Length;
    }

    private static IEnumerable<(string, byte[])> JsonMutations(byte[] original, Random rng)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(original); }
        catch (System.Text.Json.JsonException) { yield break; }
        if (root is null) yield break;
        var paths = new List<(JsonNode Parent, object Key, JsonNode? Value)>();
        void Walk(JsonNode n)
        {
            if (n is JsonObject o) foreach (var (k, v) in o.ToList()) { paths.Add((o, k, v)); if (v != null) Walk(v); }
            else if (n is JsonArray a) for (int i = 0; i < Math.Min(a.Count, 50); i++) { paths.Add((a, i, a[i])); if (a[i] != null) Walk(a[i]!); }
        }
        Walk(root);
        string text = root.ToJsonString();
        byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);
        yield return ("json-empty", []);
        yield return ("json-null", Bytes("null"));
        yield return ("json-array", Bytes("[]"));
        yield return ("json-empty-object", Bytes("{}"));
        yield return ("json-truncated", Bytes(text[..(text.Length / 2)]));
        yield return ("json-deep-array", Bytes(new string('[', 100_000) + new string(']', 100_000)));
        yield return ("json-deep-object", Bytes(string.Concat(Enumerable.Repeat("{\"a\":", 5000)) + "1" + new string('}', 5000)));
        yield return ("json-bom-garbage", Bytes("\uFEFF\u0000{"));
        var numeric = paths.Where(p => p.Value is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number).ToList();
        var strings = paths.Where(p => p.Value is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.String).ToList();
        // each numeric field in turn set to each boundary value (a bounded number of them)
        for (int i = 0; i < 60 && paths.Count > 0; i++)
        {
            var copy = JsonNode.Parse(text)!;
            var all = new List<(JsonNode Parent, object Key, JsonNode? Value)>();
            void Walk2(JsonNode n)
            {
                if (n is JsonObject o) foreach (var (k, v) in o.ToList()) { all.Add((o, k, v)); if (v != null) Walk2(v); }
                else if (n is JsonArray a) for (int j = 0; j < Math.Min(a.Count, 50); j++) { all.Add((a, j, a[j])); if (a[j] != null) Walk2(a[j]!); }
            }
            Walk2(copy);
            var pickFrom = i % 3 != 2 && numeric.Count > 0
                ? all.Where(p => p.Value is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number).ToList()
                : i % 3 == 2 && strings.Count > 0 ? all.Where(p => p.Value is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.String).ToList() : all;
            if (pickFrom.Count == 0) pickFrom = all;
            var (parent, key, value) = pickFrom[rng.Next(pickFrom.Count)];
            string replacement = rng.Next(6) switch
            {
                0 or 1 or 2 => InterestingJsonNumbers[rng.Next(InterestingJsonNumbers.Length)],
                3 => new[] { "\"\"", "\"x\"", "true", "null", "[]", "{}", "[1,2]", "\"\\u0000\"" }[rng.Next(8)],
                4 => value is null ? "null" : "[" + value.ToJsonString() + "]",
                _ => "\"" + new string('A', rng.Next(2) == 0 ? 70_000 : 300) + "\"",
            };
            string label = key is string s ? s : $"[{key}]";
            var node = JsonNode.Parse(replacement);
            if (parent is JsonObject po) { if (rng.Next(8) == 0) { po.Remove((string)key); replacement = "(removed)"; } else po[(string)key] = node; }
            else if (parent is JsonArray pa) pa[(int)key] = node;
            yield return ($"json {label}={Short(replacement)}", Bytes(copy.ToJsonString()));
        }
    }

    private static string Short(string s) => s.Length > 24 ? s[..20] + "..." : s;

    private static IEnumerable<(string, byte[])> TextMutations(byte[] original, Random rng)
    {
        var lines = Encoding.UTF8.GetString(original).Split('\n');
        byte[] Join(IEnumerable<string> l) => Encoding.UTF8.GetBytes(string.Join('\n', l));
        yield return ("text-empty", []);
        yield return ("text-one-line", Join(lines.Take(1)));
        yield return ("text-long-line", Join(lines.Append(new string('x', 1 << 20))));
        yield return ("text-nul", Join(lines.Select((l, i) => i == 3 ? "\0\0" : l)));
        for (int i = 0; i < 30; i++)
        {
            var copy = (string[])lines.Clone();
            int at = rng.Next(copy.Length);
            var parts = copy[at].Split(' ');
            string num = InterestingJsonNumbers[rng.Next(InterestingJsonNumbers.Length)];
            copy[at] = rng.Next(5) switch
            {
                0 when parts.Length == 2 => parts[0] + " " + num,
                1 when parts.Length == 2 => "!!notbase64 " + parts[1],
                2 => copy[at] + " " + num,
                3 => copy[rng.Next(copy.Length)], // a duplicate line
                _ => "",
            };
            yield return ($"line{at}={Short(copy[at])}", Join(copy));
        }
    }
}
