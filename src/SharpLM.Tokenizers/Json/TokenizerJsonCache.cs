using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text.Json;
using SharpLM.Tokenizers.Core;

namespace SharpLM.Tokenizers.Json;

/// <summary>
/// The derived cache of a large BPE tokenizer.json: the vocabulary and the merges as the loader resolves them (tokens
/// with their ids, merges as (left, right, merged) ids), beside the rest of the file as JSON. A hit skips parsing
/// 9-11 MB of JSON and the 840,000 string lookups that resolve LLaMA-3's merges; the tables are rebuilt from arrays.
/// The result is the same tokenizer: the cached data is what the loader derived from this very content.
/// <para>One file per tokenizer.json path, in the folder the host names (the CLI: <c>$SHARPLM_CACHE/tokenizers</c>).
/// An entry is used only when the source's size, modification time and content hash (128 bits over every byte) all
/// equal the ones it was made from, and its own payload hash checks; anything else (a changed, touched or replaced
/// file, a truncated or corrupt entry, another format version) is a miss: the file is parsed and the entry rewritten
/// (atomically). A cache that cannot be written (read-only folder) is skipped silently.</para>
/// <para>Layout (little-endian):
/// <code>
/// "SLMTOKC\0" (8 bytes), format version (int32),
/// source size (int64), source mtime (int64, UTC ticks), source hash (2 x uint64),
/// payload length (int64), payload hash (2 x uint64), then the payload:
///   rest length (int32), rest (UTF-8 JSON: the tokenizer.json without model.vocab and model.merges),
///   token count n (int32), char count c (int32), lengths (n x int32), ids (n x int32), chars (c x UTF-16),
///   merge count m (int32), merges (m x 3 x int32: left, right, merged id, in rank order).
/// </code></para>
/// </summary>
internal static class TokenizerJsonCache
{
    private static ReadOnlySpan<byte> Magic => "SLMTOKC\0"u8;
    private const int Version = 1;
    private const int HeaderBytes = 8 + 4 + 8 + 8 + 16 + 8 + 16;

    /// <summary>Files smaller than this are parsed directly (they load in milliseconds).</summary>
    public const int MinBytes = 1 << 20;

    /// <summary>The folder the CLI's loads cache in (null: no cache). SHARPLM_TOKENIZER_CACHE=0 turns it off.</summary>
    public static string? Folder { get; set; }

    public static bool Disabled { get; } = Environment.GetEnvironmentVariable("SHARPLM_TOKENIZER_CACHE") == "0" || !BitConverter.IsLittleEndian;

    /// <summary>What a load derived from a tokenizer.json: the rest of the file, the vocabulary, the merges.</summary>
    internal sealed record Parts(ReadOnlyMemory<byte> RestJson, VocabTable Vocab, (int Left, int Right, int Merged)[] Merges);

    /// <summary>What identifies the source's content.</summary>
    internal readonly record struct Key(long Size, long MtimeTicks, ulong Hash0, ulong Hash1);

    public static Key KeyOf(string path, ReadOnlySpan<byte> content)
    {
        var (h0, h1) = Hash128(content);
        return new Key(content.Length, File.GetLastWriteTimeUtc(path).Ticks, h0, h1);
    }

    /// <summary>The key of the file at <paramref name="path"/>, its bytes hashed as they are read in 1 MB chunks (one
    /// buffer, where reading the whole file would fault in and zero 9-11 MB of fresh heap).</summary>
    public static Key KeyOfFile(string path)
    {
        long mtime = File.GetLastWriteTimeUtc(path).Ticks;
        using var handle = File.OpenHandle(path);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            var state = new HashState();
            long at = 0;
            while (true)
            {
                int n = 0, got;
                while (n < buffer.Length && (got = RandomAccess.Read(handle, buffer.AsSpan(n), at + n)) > 0) n += got;
                if (n < buffer.Length)
                {
                    var (h0, h1) = state.Finish(buffer.AsSpan(0, n), at + n);
                    return new Key(at + n, mtime, h0, h1);
                }
                state.Blocks(buffer);
                at += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary><paramref name="read"/> over the bytes of a (non-empty) file, mapped read-only: the page cache's pages
    /// are read in place, where reading the file would copy them into fresh (zeroed, faulted-in) heap pages.</summary>
    private static unsafe T Mapped<T, TState>(string path, MappedReader<T, TState> read, TState state)
    {
        using var file = System.IO.MemoryMappedFiles.MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0,
            System.IO.MemoryMappedFiles.MemoryMappedFileAccess.Read);
        using var view = file.CreateViewAccessor(0, 0, System.IO.MemoryMappedFiles.MemoryMappedFileAccess.Read);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        try
        {
            long length = (long)view.SafeMemoryMappedViewHandle.ByteLength - view.PointerOffset;
            if (length > int.MaxValue) throw new IOException($"{path}: {length} bytes is too large to map in one span");
            return read(new ReadOnlySpan<byte>(p + view.PointerOffset, (int)Math.Min(length, new FileInfo(path).Length)), state);
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    private delegate T MappedReader<T, TState>(ReadOnlySpan<byte> bytes, TState state);

    /// <summary>The entry's path for <paramref name="source"/>: a hash of its full path.</summary>
    public static string EntryPath(string folder, string source)
    {
        var (h, _) = Hash128(MemoryMarshal.AsBytes(Path.GetFullPath(source).AsSpan()));
        return Path.Combine(folder, $"{h:x16}.tokcache");
    }

    /// <summary>The cached parts of <paramref name="source"/> when its entry exists and matches <paramref name="key"/>.</summary>
    public static Parts? TryRead(string folder, string source, Key key)
    {
        try
        {
            string path = EntryPath(folder, source);
            var info = new FileInfo(path);
            if (!info.Exists || info.Length < HeaderBytes) return null;
            return Mapped(path, (span, k) => Parse(span, k), key);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The parts stored in <paramref name="s"/>, or null when it is not a whole, valid entry for <paramref name="key"/>.</summary>
    internal static Parts? Parse(ReadOnlySpan<byte> s, Key key)
    {
        if (s.Length < HeaderBytes || !s[..8].SequenceEqual(Magic) || I32(s, 8) != Version) return null;
        if (I64(s, 12) != key.Size || I64(s, 20) != key.MtimeTicks || U64(s, 28) != key.Hash0 || U64(s, 36) != key.Hash1) return null;
        long payloadLength = I64(s, 44);
        if (payloadLength != s.Length - HeaderBytes) return null;
        var payload = s[HeaderBytes..];
        var (p0, p1) = Hash128(payload);
        if (U64(s, 52) != p0 || U64(s, 60) != p1) return null;
        try
        {
            int at = 0;
            int restLength = Take(payload, ref at);
            var rest = payload.Slice(at, restLength).ToArray();
            at += restLength;
            int n = Take(payload, ref at), c = Take(payload, ref at);
            var lengths = MemoryMarshal.Cast<byte, int>(payload.Slice(at, checked(4 * n)));
            at += 4 * n;
            var ids = MemoryMarshal.Cast<byte, int>(payload.Slice(at, checked(4 * n)));
            at += 4 * n;
            var chars = MemoryMarshal.Cast<byte, char>(payload.Slice(at, checked(2 * c)));
            at += 2 * c;
            var vocab = VocabTable.FromArrays(lengths, ids, chars);
            int m = Take(payload, ref at);
            var merges = new (int, int, int)[m];
            var triples = MemoryMarshal.Cast<byte, int>(payload.Slice(at, checked(12 * m)));
            for (int k = 0; k < m; k++) merges[k] = (triples[3 * k], triples[3 * k + 1], triples[3 * k + 2]);
            at += 12 * m;
            return at == payload.Length ? new Parts(rest, vocab, merges) : null;
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or InvalidDataException or OverflowException)
        {
            return null;
        }
    }

    /// <summary>Writes the entry of <paramref name="source"/> (atomically); false when the folder cannot be written.</summary>
    public static bool TryWrite(string folder, string source, Key key, Parts parts)
    {
        try
        {
            AtomicFile.Write(EntryPath(folder, source), stream => stream.Write(Serialize(key, parts)));
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    internal static byte[] Serialize(Key key, Parts parts)
    {
        var (lengths, ids, chars) = parts.Vocab.CopyTo();
        int n = lengths.Length, c = chars.Length;
        long payloadLength = 4L + parts.RestJson.Length + 8 + 8L * n + 2L * c + 4 + 12L * parts.Merges.Length;
        var data = new byte[checked((int)(HeaderBytes + payloadLength))];
        var s = data.AsSpan();
        Magic.CopyTo(s);
        BinaryPrimitives.WriteInt32LittleEndian(s[8..], Version);
        BinaryPrimitives.WriteInt64LittleEndian(s[12..], key.Size);
        BinaryPrimitives.WriteInt64LittleEndian(s[20..], key.MtimeTicks);
        BinaryPrimitives.WriteUInt64LittleEndian(s[28..], key.Hash0);
        BinaryPrimitives.WriteUInt64LittleEndian(s[36..], key.Hash1);
        BinaryPrimitives.WriteInt64LittleEndian(s[44..], payloadLength);
        var payload = s[HeaderBytes..];
        int at = 0;
        Put(payload, ref at, parts.RestJson.Length);
        parts.RestJson.Span.CopyTo(payload[at..]);
        at += parts.RestJson.Length;
        Put(payload, ref at, n);
        Put(payload, ref at, c);
        foreach (int length in lengths) Put(payload, ref at, length);
        foreach (int id in ids) Put(payload, ref at, id);
        MemoryMarshal.AsBytes(chars.Span).CopyTo(payload[at..]);
        at += 2 * c;
        Put(payload, ref at, parts.Merges.Length);
        foreach (var (l, r, m) in parts.Merges)
        {
            Put(payload, ref at, l);
            Put(payload, ref at, r);
            Put(payload, ref at, m);
        }
        var (p0, p1) = Hash128(payload);
        BinaryPrimitives.WriteUInt64LittleEndian(s[52..], p0);
        BinaryPrimitives.WriteUInt64LittleEndian(s[60..], p1);
        return data;
    }

    /// <summary>The tokenizer.json without model.vocab and model.merges (what the cache keeps as JSON).</summary>
    public static byte[] RestOf(JsonElement root)
    {
        var buffer = new ArrayBufferWriter<byte>(1 << 16);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach (var p in root.EnumerateObject())
            {
                if (p.NameEquals("model") && p.Value.ValueKind == JsonValueKind.Object)
                {
                    w.WriteStartObject("model");
                    foreach (var m in p.Value.EnumerateObject())
                        if (!m.NameEquals("vocab") && !m.NameEquals("merges")) m.WriteTo(w);
                    w.WriteEndObject();
                }
                else p.WriteTo(w);
            }
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static int I32(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadInt32LittleEndian(s[at..]);
    private static long I64(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadInt64LittleEndian(s[at..]);
    private static ulong U64(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadUInt64LittleEndian(s[at..]);

    private static int Take(ReadOnlySpan<byte> s, ref int at)
    {
        int v = BinaryPrimitives.ReadInt32LittleEndian(s[at..]);
        at += 4;
        if (v < 0) throw new InvalidDataException("negative count");
        return v;
    }

    private static void Put(Span<byte> s, ref int at, int v)
    {
        BinaryPrimitives.WriteInt32LittleEndian(s[at..], v);
        at += 4;
    }

    /// <summary>A 128-bit hash of <paramref name="data"/> (see <see cref="HashState"/>).</summary>
    internal static (ulong, ulong) Hash128(ReadOnlySpan<byte> data) => new HashState().Finish(data, data.Length);

    /// <summary>A 128-bit hash: four 64-bit multiply-rotate lanes over 32-byte blocks (the xxHash64 round), the tail
    /// folded in 8 bytes and then 1 byte at a time, the lanes and the length mixed into two outputs. Not cryptographic:
    /// it tells a changed file from the one an entry was made from (size and mtime are checked too). Fed in pieces
    /// whose lengths are multiples of 32 (<see cref="Blocks"/>), then the rest (<see cref="Finish"/>).</summary>
    internal struct HashState
    {
        private const ulong P1 = 0x9E3779B185EBCA87UL, P2 = 0xC2B2AE3D27D4EB4FUL, P3 = 0x165667B19E3779F9UL;
        private ulong _a, _b, _c, _d;

        public HashState()
        {
            _a = unchecked(P1 + P2);
            _b = P2;
            _c = 0;
            _d = unchecked(0UL - P1);
        }

        /// <summary>Folds in the whole 32-byte blocks of <paramref name="data"/>; returns how many bytes that was.</summary>
        public int Blocks(ReadOnlySpan<byte> data)
        {
            ref byte p = ref MemoryMarshal.GetReference(data);
            int i = 0;
            ulong a = _a, b = _b, c = _c, d = _d;
            for (; i + 32 <= data.Length; i += 32)
            {
                a = Round(a, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i)));
                b = Round(b, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 8)));
                c = Round(c, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 16)));
                d = Round(d, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 24)));
            }
            (_a, _b, _c, _d) = (a, b, c, d);
            return i;
        }

        /// <summary>Folds in <paramref name="last"/> (the final piece) and returns the hash of all
        /// <paramref name="totalLength"/> bytes.</summary>
        public (ulong, ulong) Finish(ReadOnlySpan<byte> last, long totalLength)
        {
            int i = Blocks(last);
            ref byte p = ref MemoryMarshal.GetReference(last);
            ulong a = _a, b = _b, c = _c, d = _d;
            for (; i + 8 <= last.Length; i += 8) a = Round(a ^ b, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i)));
            for (; i < last.Length; i++) b = Round(b ^ a, Unsafe.Add(ref p, i));
            ulong n = (ulong)totalLength;
            ulong h0 = Avalanche(BitOperations.RotateLeft(a, 1) + BitOperations.RotateLeft(b, 7) + BitOperations.RotateLeft(c, 12)
                + BitOperations.RotateLeft(d, 18) + n * P3);
            ulong h1 = Avalanche((a * P3) ^ BitOperations.RotateLeft(b * P1, 29) ^ BitOperations.RotateLeft(c * P2, 43) ^ (d + n));
            return (h0, h1);
        }

        private static ulong Round(ulong acc, ulong x) => BitOperations.RotateLeft(acc + x * P2, 31) * P1;

        private static ulong Avalanche(ulong h)
        {
            h ^= h >> 33;
            h *= P2;
            h ^= h >> 29;
            h *= P3;
            h ^= h >> 32;
            return h;
        }
    }
}
