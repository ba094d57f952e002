using System.Globalization;
using System.Text;
using System.Text.Json;
using SharpLM.Tokenizers;

namespace SharpLM.Cli.Commands;

/// <summary>
/// <c>sharplm tokenize --tokenizer PATH [--text TEXT | --file FILE] [--lines] [--no-special] [--format ids|pieces|json]</c>:
/// prints the token ids (space separated, one line), or one line per input line with --lines.
/// </summary>
internal sealed class TokenizeCommand : ICliCommand
{
    public string Name => "tokenize";
    public string Description => "Encode text to token ids with a tokenizer.json, vocab.txt, .tiktoken or .gguf vocabulary";
    public string Usage => "--tokenizer PATH (--text TEXT | --file FILE) [--lines] [--no-special] [--format ids|pieces|json]";

    public IReadOnlyList<CliOption> Options { get; } =
    [
        new("tokenizer", "tokenizer.json, a folder holding one, vocab.txt, a .tiktoken rank file, a .gguf model, or a built-in tiktoken encoding: gpt2, cl100k_base, o200k_base"),
        new("text", "the text to encode"),
        new("file", "a UTF-8 file to encode ('-' reads standard input)"),
        new("lines", "encode each line separately (without its newline); one output line per input line", IsFlag: true),
        new("no-special", "do not add the special tokens the post-processor adds (BOS, [CLS] ...)", IsFlag: true),
        new("format", "ids (default): ids separated by spaces; pieces: token strings; json: {ids,tokens,offsets}"),
    ];

    public async Task<int> RunAsync(CliArgs args, CliContext context)
    {
        var format = args.String("format") ?? "ids";
        if (format is not ("ids" or "pieces" or "json"))
            throw new CliUsageException($"--format must be ids, pieces or json, got '{format}'");
        string tokenizerPath = args.Required("tokenizer");
        string text = await ReadInputAsync(args, context.CancellationToken).ConfigureAwait(false);
        var tokenizer = LoadTokenizer(tokenizerPath);
        bool addSpecial = !args.Flag("no-special");
        bool lines = args.Flag("lines");
        var ct = context.CancellationToken;
        if (format == "ids")
        {
            // Only ids are printed: the fast ids path (no offsets, no token strings), written in 64 KB chunks.
            var w = new IdWriter(context.Out);
            if (lines)
            {
                foreach (var (start, length) in LineRanges(text))
                {
                    ct.ThrowIfCancellationRequested();
                    await w.WriteLineAsync(tokenizer.EncodeToIds(text.AsSpan(start, length), addSpecial)).ConfigureAwait(false);
                }
            }
            else await w.WriteLineAsync(tokenizer.EncodeToIds(text, addSpecial)).ConfigureAwait(false);
            await w.FlushAsync().ConfigureAwait(false);
            return 0;
        }
        var sb = new StringBuilder();
        if (lines)
        {
            foreach (var (start, length) in LineRanges(text))
            {
                ct.ThrowIfCancellationRequested();
                Format(tokenizer.Encode(text.Substring(start, length), addSpecial), format, sb);
                sb.Append('\n');
                if (sb.Length > 1 << 16)
                {
                    await context.Out.WriteAsync(sb.ToString()).ConfigureAwait(false);
                    sb.Clear();
                }
            }
        }
        else
        {
            Format(tokenizer.Encode(text, addSpecial), format, sb);
            sb.Append('\n');
        }
        await context.Out.WriteAsync(sb.ToString()).ConfigureAwait(false);
        await context.Out.FlushAsync().ConfigureAwait(false);
        return 0;
    }

    /// <summary>Ids as decimal text separated by spaces, one line per call, buffered into 64 KB writes.</summary>
    private sealed class IdWriter(TextWriter output)
    {
        private readonly char[] _buf = new char[1 << 16];
        private int _n;

        public async Task WriteLineAsync(int[] ids)
        {
            for (int i = 0; i < ids.Length; i++)
            {
                if (_n > _buf.Length - 16) await FlushBufferAsync().ConfigureAwait(false);
                if (i > 0) _buf[_n++] = ' ';
                ids[i].TryFormat(_buf.AsSpan(_n), out int written, default, CultureInfo.InvariantCulture);
                _n += written;
            }
            if (_n > _buf.Length - 16) await FlushBufferAsync().ConfigureAwait(false);
            _buf[_n++] = '\n';
        }

        private async Task FlushBufferAsync()
        {
            await output.WriteAsync(_buf.AsMemory(0, _n)).ConfigureAwait(false);
            _n = 0;
        }

        public async Task FlushAsync()
        {
            await FlushBufferAsync().ConfigureAwait(false);
            await output.FlushAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Loads a tokenizer from a file or from a folder that holds tokenizer.json (or vocab.txt, *.tiktoken, *.gguf).</summary>
    internal static Tokenizer LoadTokenizer(string path)
    {
        path = BuiltinModels.ResolveTokenizer(path, Console.Error);
        if (Directory.Exists(path))
        {
            string[] candidates = ["tokenizer.json", "vocab.txt"];
            var found = candidates.Select(c => Path.Combine(path, c)).FirstOrDefault(File.Exists)
                        ?? Directory.EnumerateFiles(path, "*.tiktoken").Order(StringComparer.Ordinal).FirstOrDefault()
                        ?? Directory.EnumerateFiles(path, "*.gguf").Order(StringComparer.Ordinal).FirstOrDefault();
            if (found is null)
                throw new FileNotFoundException($"Folder '{path}' holds no tokenizer: expected tokenizer.json, vocab.txt, a .tiktoken or a .gguf file.");
            path = found;
        }
        else if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Tokenizer '{path}' does not exist: give a tokenizer.json, a folder holding one, vocab.txt, a .tiktoken or a .gguf file, or one of the built-in encodings {string.Join(", ", BuiltinModels.Tiktoken.Keys)}.", path);
        }
        return Tokenizer.FromFile(path);
    }

    private static async Task<string> ReadInputAsync(CliArgs args, CancellationToken ct)
    {
        var text = args.String("text");
        var file = args.String("file");
        if (text != null && file != null) throw new CliUsageException("give either --text or --file, not both");
        if (text != null) return text;
        if (file is null) throw new CliUsageException("give the input with --text TEXT or --file FILE");
        if (file == "-") return await Console.In.ReadToEndAsync(ct).ConfigureAwait(false);
        if (!File.Exists(file)) throw new FileNotFoundException($"Input file '{file}' does not exist.", file);
        // Read synchronously: an async read of one file only adds thread-pool threads to a short process.
        return File.ReadAllText(file);
    }

    /// <summary>(start, length) of each line without its "\n" or "\r\n"; a final newline does not start another line.</summary>
    internal static IEnumerable<(int Start, int Length)> LineRanges(string text)
    {
        int start = 0;
        while (start < text.Length)
        {
            int nl = text.IndexOf('\n', start);
            int end = nl < 0 ? text.Length : nl;
            int e = end > start && text[end - 1] == '\r' ? end - 1 : end;
            yield return (start, e - start);
            if (nl < 0) yield break;
            start = nl + 1;
        }
    }

    private static void Format(Tokenizers.Encoding e, string format, StringBuilder sb)
    {
        switch (format)
        {
            case "ids":
                for (int i = 0; i < e.Ids.Count; i++)
                {
                    if (i > 0) sb.Append(' ');
                    sb.Append(e.Ids[i]);
                }
                break;
            case "pieces":
                sb.AppendJoin(' ', e.Tokens);
                break;
            default:
                using (var ms = new MemoryStream())
                {
                    using (var w = new Utf8JsonWriter(ms))
                    {
                        w.WriteStartObject();
                        w.WriteStartArray("ids");
                        foreach (var id in e.Ids) w.WriteNumberValue(id);
                        w.WriteEndArray();
                        w.WriteStartArray("tokens");
                        foreach (var t in e.Tokens) w.WriteStringValue(t);
                        w.WriteEndArray();
                        w.WriteStartArray("offsets");
                        foreach (var (s, end) in e.Offsets)
                        {
                            w.WriteStartArray();
                            w.WriteNumberValue(s);
                            w.WriteNumberValue(end);
                            w.WriteEndArray();
                        }
                        w.WriteEndArray();
                        w.WriteEndObject();
                    }
                    sb.Append(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
                }
                break;
        }
    }
}
