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

    /// <summary>The entry's path for <paramref name="source"/>: a hash of its full path.</summary>
    public static string EntryPath(string folder, string source)
    {
        var (h, _) = Hash128(MemoryMarshal.AsBytes(Path.GetFullPath(source).AsSpan()));
        return Path.Combine(folder, $"{h:x16}.tokcache");
    }

    /// <summary>The cached parts of <paramref name="source"/> when its entry exists and matches <paramref name="key"/>.</summary>
    public static Parts? TryRead(string folder, string source, Key key)
    {
        byte[] data;
        try
        {
            string path = EntryPath(folder, source);
            if (!File.Exists(path)) return null;
            data = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        return Parse(data, key);
    }

    /// <summary>The parts stored in <paramref name="data"/>, or null when it is not a whole, valid entry for <paramref name="key"/>.</summary>
    internal static Parts? Parse(byte[] data, Key key)
    {
        var s = data.AsSpan();
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
            var rest = data.AsMemory(HeaderBytes + at, restLength);
            at += restLength;
            int n = Take(payload, ref at), c = Take(payload, ref at);
            var lengths = MemoryMarshal.Cast<byte, int>(payload.Slice(at, checked(4 * n)));
            at += 4 * n;
            var ids = MemoryMarshal.Cast<byte, int>(payload.Slice(at, checked(4 * n)));
            at += 4 * n;
            var chars = MemoryMarshal.Cast<byte, char>(payload.Slice(at, checked(2 * c)));
            at += 2 * c;
            var vocab = new VocabTable(n, c);
            int offset = 0;
            for (int e = 0; e < n; e++)
            {
                if (lengths[e] < 0 || offset + lengths[e] > c) return null;
                vocab.Add(chars.Slice(offset, lengths[e]), ids[e]);
                offset += lengths[e];
            }
            int m = Take(payload, ref at);
            var merges = new (int, int, int)[m];
            var triples = MemoryMarshal.Cast<byte, int>(payload.Slice(at, checked(12 * m)));
            for (int k = 0; k < m; k++) merges[k] = (triples[3 * k], triples[3 * k + 1], triples[3 * k + 2]);
            at += 12 * m;
            return at == payload.Length && offset == c ? new Parts(rest, vocab, merges) : null;
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
        var vocab = parts.Vocab;
        int n = vocab.Count, c = 0;
        for (int e = 0; e < n; e++) c += vocab.KeyAt(e).Length;
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
        for (int e = 0; e < n; e++) Put(payload, ref at, vocab.KeyAt(e).Length);
        for (int e = 0; e < n; e++) Put(payload, ref at, vocab.IdAt(e));
        for (int e = 0; e < n; e++)
        {
            var k = MemoryMarshal.AsBytes(vocab.KeyAt(e));
            k.CopyTo(payload[at..]);
            at += k.Length;
        }
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

    /// <summary>A 128-bit hash of <paramref name="data"/>: four 64-bit multiply-rotate lanes over 32-byte blocks (the
    /// xxHash64 round), the tail folded in 8 bytes and then 1 byte at a time, the lanes mixed into two outputs. Not
    /// cryptographic: it tells a changed file from the one an entry was made from (size and mtime are checked too).</summary>
    internal static (ulong, ulong) Hash128(ReadOnlySpan<byte> data)
    {
        const ulong P1 = 0x9E3779B185EBCA87UL, P2 = 0xC2B2AE3D27D4EB4FUL, P3 = 0x165667B19E3779F9UL;
        ulong a = unchecked(P1 + P2), b = P2, c = 0, d = unchecked(0UL - P1);
        ref byte p = ref MemoryMarshal.GetReference(data);
        int n = data.Length, i = 0;
        for (; i + 32 <= n; i += 32)
        {
            a = Round(a, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i)));
            b = Round(b, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 8)));
            c = Round(c, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 16)));
            d = Round(d, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i + 24)));
        }
        for (; i + 8 <= n; i += 8) a = Round(a ^ b, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i)));
        for (; i < n; i++) b = Round(b ^ a, Unsafe.Add(ref p, i));
        ulong h0 = Avalanche(BitOperations.RotateLeft(a, 1) + BitOperations.RotateLeft(b, 7) + BitOperations.RotateLeft(c, 12)
            + BitOperations.RotateLeft(d, 18) + (ulong)n * P3);
        ulong h1 = Avalanche((a * P3) ^ BitOperations.RotateLeft(b * P1, 29) ^ BitOperations.RotateLeft(c * P2, 43) ^ (d + (ulong)n));
        return (h0, h1);

        static ulong Round(ulong acc, ulong x) => BitOperations.RotateLeft(acc + x * P2, 31) * P1;

        static ulong Avalanche(ulong h)
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
