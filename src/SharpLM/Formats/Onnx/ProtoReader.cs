// A minimal protobuf wire-format reader (https://protobuf.dev/programming-guides/encoding/), enough to walk an
// ONNX ModelProto without generated code. Every read is bounds-checked; a malformed message throws
// InvalidDataException naming the file and the absolute byte offset.
//
// Wire types: 0 varint, 1 fixed64, 2 length-delimited (bytes, strings, sub-messages, packed repeated scalars),
// 5 fixed32. Groups (3, 4) are obsolete and rejected. A key is varint (field_number << 3 | wire_type).
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace SharpLM.Formats.Onnx;

/// <summary>Reads one protobuf message held in <c>[Start, End)</c> of a byte buffer (absolute offsets in the file).</summary>
internal unsafe ref struct ProtoReader
{
    private readonly byte* _base;
    private readonly string _file;
    private long _pos;
    private readonly long _end;

    public ProtoReader(byte* fileBase, long start, long end, string file)
    {
        _base = fileBase;
        _pos = start;
        _end = end;
        _file = file;
    }

    /// <summary>Absolute offset of the next byte to read.</summary>
    public readonly long Position => _pos;

    public int Field { get; private set; }
    public int WireType { get; private set; }

    /// <summary>Moves to the next field; false at the end of the message.</summary>
    public bool Next()
    {
        if (_pos >= _end) return false;
        long at = _pos;
        ulong key = ReadVarint();
        Field = (int)(key >> 3);
        WireType = (int)(key & 7);
        if (Field == 0 || WireType is 3 or 4 or 6 or 7)
            Throw(at, $"bad protobuf key 0x{key:x} (field {Field}, wire type {WireType})");
        return true;
    }

    public ulong ReadVarint()
    {
        ulong r = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (_pos >= _end) Throw(_pos, "truncated varint");
            byte b = _base[_pos++];
            r |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80) return r;
        }
        Throw(_pos, "varint longer than 10 bytes");
        return 0;
    }

    /// <summary>A length-delimited field: returns its absolute [start, end) and skips over it.</summary>
    public (long Start, long End) ReadLengthDelimited()
    {
        if (WireType != 2) Throw(_pos, $"field {Field} has wire type {WireType}, expected 2 (length-delimited)");
        long at = _pos;
        ulong len = ReadVarint();
        if (len > (ulong)(_end - _pos)) Throw(at, $"field {Field} claims {len} bytes but only {_end - _pos} remain in the enclosing message");
        long s = _pos;
        _pos += (long)len;
        return (s, _pos);
    }

    public ProtoReader ReadMessage()
    {
        var (s, e) = ReadLengthDelimited();
        return new ProtoReader(_base, s, e, _file);
    }

    public string ReadString()
    {
        var (s, e) = ReadLengthDelimited();
        return Encoding.UTF8.GetString(_base + s, checked((int)(e - s)));
    }

    public long ReadInt64() => WireType == 0 ? (long)ReadVarint() : BadWire<long>(0);

    public float ReadFixed32Float()
    {
        if (WireType != 5) return BadWire<float>(5);
        if (_end - _pos < 4) Throw(_pos, "truncated fixed32");
        float v = BitConverter.Int32BitsToSingle(System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(new ReadOnlySpan<byte>(_base + _pos, 4)));
        _pos += 4;
        return v;
    }

    /// <summary>Repeated int64 in either encoding: packed (wire type 2) appends all, plain varint appends one.</summary>
    public void ReadRepeatedInt64(List<long> into)
    {
        if (WireType == 0) { into.Add((long)ReadVarint()); return; }
        var (s, e) = ReadLengthDelimited();
        var sub = new ProtoReader(_base, s, e, _file);
        while (sub._pos < sub._end) into.Add((long)sub.ReadVarint());
    }

    public void Skip()
    {
        switch (WireType)
        {
            case 0: ReadVarint(); break;
            case 1: Advance(8); break;
            case 2: ReadLengthDelimited(); break;
            case 5: Advance(4); break;
            default: Throw(_pos, $"cannot skip wire type {WireType}"); break;
        }
    }

    private void Advance(int n)
    {
        if (_end - _pos < n) Throw(_pos, $"truncated field {Field}");
        _pos += n;
    }

    private readonly T BadWire<T>(int expected)
    {
        Throw(_pos, $"field {Field} has wire type {WireType}, expected {expected}");
        return default!;
    }

    [DoesNotReturn]
    private readonly void Throw(long offset, string what) =>
        throw new InvalidDataException($"{_file}: malformed protobuf at byte {offset}: {what}. Is this an ONNX model file?");
}
