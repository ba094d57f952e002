using System.Text;

namespace SharpLM.Tokenizers.Core;

/// <summary>
/// The one way SharpLM writes an output file (GGUF, safetensors, tokenizer.json, plots, checkpoints' files): into a
/// temporary file beside the target (<c>.NAME.RANDOM.tmp</c>, same folder so the rename stays on one file system),
/// renamed over the target only once the whole file is written and flushed. A process killed at any point leaves the
/// previous file intact (and at worst a stray temporary file, which the next write does not reuse); an exception
/// while writing deletes the temporary file and leaves the target untouched.
/// Lives in SharpLM.Tokenizers (which depends on nothing) so the tokenizer trainer, the engine and the CLI share it.
/// </summary>
internal static class AtomicFile
{
    /// <summary>Writes <paramref name="path"/> with <paramref name="write"/> (given a stream at the start of an empty
    /// temporary file), then renames the temporary file over <paramref name="path"/>.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(write);
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tmp = TempPath(full);
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(fs);
                fs.Flush(flushToDisk: false);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>Writes <paramref name="text"/> as UTF-8 without a byte-order mark, atomically.</summary>
    public static void WriteAllText(string path, string text) =>
        Write(path, s =>
        {
            using var w = new StreamWriter(s, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
            w.Write(text);
        });

    /// <summary>The temporary file a write of <paramref name="fullPath"/> goes through: hidden, unique, same folder.</summary>
    public static string TempPath(string fullPath) =>
        Path.Combine(Path.GetDirectoryName(fullPath)!, "." + Path.GetFileName(fullPath) + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp");
}
